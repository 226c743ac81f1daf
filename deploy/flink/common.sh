# shellcheck shell=bash disable=SC2034   # variables here are used by the scripts that source it
# Shared helpers for deploy/flink/build.sh and .ci/run. Source it; don't run it.
#
# Settings (environment):
#   IOT_FLINK_LIBS   folder of Flink, connector and driver jars (default:
#                    ${XDG_CACHE_HOME:-$HOME/.cache}/iot-monitor/flink-libs-<flink version>), filled
#                    from Maven Central with `mvn dependency:copy-dependencies` on pom.xml
#   IOT_FLINK_JOB_DIR  where the compiled launcher jar goes (default: the libs folder's sibling
#                    flink-job-<checksum of the sources>)
#   JAVA_HOME        Java 17+ (with javac) to use (default: java/javac on PATH)

FLINK_HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FLINK_POM="$FLINK_HERE/pom.xml"
FLINK_SRC="$FLINK_HERE/src/main"
FLINK_LIBS_MARKER=.complete
FLINK_MVN_DEP_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

flink_say () { printf '[flink] %s\n' "$*" >&2; }
flink_die () { printf '[flink] ERROR: %s\n' "$*" >&2; exit 1; }

flink_version () {
  local v
  v=$(sed -n 's:.*<flink\.version>\([^<]*\)</flink\.version>.*:\1:p' "$FLINK_POM" | head -n 1)
  [ -n "$v" ] || flink_die "no <flink.version> in $FLINK_POM"
  printf '%s\n' "$v"
}

# Sets FLINK_JAVA and FLINK_JAVAC (Java 17+) or dies.
flink_require_java () {
  local bin=
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then bin="$JAVA_HOME/bin/"; fi
  FLINK_JAVA="${bin}java"
  FLINK_JAVAC="${bin}javac"
  FLINK_JAR="${bin}jar"
  command -v "$FLINK_JAVA" >/dev/null 2>&1 || flink_die "java not found: the Flink job needs Java 17+ (Debian: apt-get install default-jdk-headless; or set JAVA_HOME)"
  command -v "$FLINK_JAVAC" >/dev/null 2>&1 || flink_die "javac not found: the Flink launcher is compiled here (Debian: apt-get install default-jdk-headless)"
  local ver major
  ver=$("$FLINK_JAVA" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n 1)
  major=${ver%%[.+-]*}
  [[ "$major" =~ ^[0-9]+$ ]] && [ "$major" -ge 17 ] || flink_die "$FLINK_JAVA is Java '$ver'; the Flink job needs Java 17+ (set JAVA_HOME)"
}

# Sets FLINK_LIBS (not necessarily filled yet).
flink_libs_dir () {
  FLINK_LIBS="${IOT_FLINK_LIBS:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/iot-monitor/flink-libs-$(flink_version)}"
  case "$FLINK_LIBS" in /*) ;; *) FLINK_LIBS="$PWD/$FLINK_LIBS" ;; esac
}

# The version and a checksum of pom.xml: editing the pom refreshes the cache.
flink_libs_stamp () {
  printf 'flink %s pom-cksum %s\n' "$(flink_version)" "$(cksum <"$FLINK_POM" | cut -d' ' -f1,2)"
}

flink_libs_complete () {
  [ -f "$FLINK_LIBS/$FLINK_LIBS_MARKER" ] \
    && [ "$(cat "$FLINK_LIBS/$FLINK_LIBS_MARKER")" = "$(flink_libs_stamp)" ] \
    && compgen -G "$FLINK_LIBS/flink-table-planner-loader-*.jar" >/dev/null
}

# Fills $FLINK_LIBS from Maven Central unless it is complete (into a temporary sibling, moved in
# place once mvn succeeded; one resolver at a time per folder).
flink_resolve_libs () {
  local tmp stamp n
  flink_libs_dir
  flink_libs_complete && return 0
  mkdir -p "$(dirname "$FLINK_LIBS")"
  exec 8>"$FLINK_LIBS.lock"
  if command -v flock >/dev/null 2>&1; then flock -w 600 8 || flink_die "another process holds $FLINK_LIBS.lock"; fi
  if flink_libs_complete; then exec 8>&-; return 0; fi
  command -v mvn >/dev/null 2>&1 \
    || flink_die "mvn not found: it fetches the Flink jars from Maven Central (Debian: apt-get install maven), or point IOT_FLINK_LIBS at a complete jar folder"
  stamp=$(flink_libs_stamp)
  tmp="$FLINK_LIBS.tmp.$$"
  rm -rf "$tmp"
  flink_say "fetching the Flink jars ($stamp) from Maven Central into $FLINK_LIBS"
  if ! mvn -B -q -Dstyle.color=never -f "$FLINK_POM" "$FLINK_MVN_DEP_PLUGIN:copy-dependencies" \
      -DincludeScope=runtime -DoutputDirectory="$tmp" >"$tmp.log" 2>&1 </dev/null; then
    sed 's/\x1b\[[0-9;]*m//g' "$tmp.log" >&2
    rm -rf "$tmp" "$tmp.log"
    flink_die "mvn copy-dependencies failed (is Maven Central reachable? see the output above)"
  fi
  rm -f "$tmp.log"
  compgen -G "$tmp/flink-table-planner-loader-*.jar" >/dev/null || { rm -rf "$tmp"; flink_die "mvn copied no flink-table-planner-loader jar into $tmp"; }
  printf '%s\n' "$stamp" >"$tmp/$FLINK_LIBS_MARKER"
  rm -rf "$FLINK_LIBS"
  mv "$tmp" "$FLINK_LIBS"
  n=$(find "$FLINK_LIBS" -name '*.jar' | wc -l)
  flink_say "cached $((n)) jars ($(du -sh "$FLINK_LIBS" | cut -f1)) in $FLINK_LIBS"
  exec 8>&-
}

# A checksum of the launcher's sources and the script (names and contents).
flink_sources_stamp () {
  (cd "$FLINK_SRC" && find . -type f \( -name '*.java' -o -name '*.sql' \) | LC_ALL=C sort | while read -r f; do
    printf '%s %s\n' "$f" "$(cksum <"$f" | cut -d' ' -f1,2)"
  done; flink_libs_stamp) | cksum | cut -d' ' -f1
}

# Compiles the launcher and functions with javac against $FLINK_LIBS into a jar (job.sql inside);
# reused while the sources are unchanged. Sets FLINK_JOB_JAR.
flink_build_job () {
  local dir tmp
  flink_require_java
  flink_resolve_libs
  dir="${IOT_FLINK_JOB_DIR:-$(dirname "$FLINK_LIBS")/flink-job-$(flink_sources_stamp)}"
  FLINK_JOB_JAR="$dir/iot-flink-job.jar"
  [ -s "$FLINK_JOB_JAR" ] && return 0
  tmp="$dir.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp/classes"
  flink_say "compiling the Flink launcher into $FLINK_JOB_JAR"
  # shellcheck disable=SC2046   # one argument per source file
  "$FLINK_JAVAC" --release 17 -nowarn -encoding UTF-8 -cp "$FLINK_LIBS/*" -d "$tmp/classes" \
    $(find "$FLINK_SRC/java" -name '*.java') >&2 || { rm -rf "$tmp"; flink_die "javac failed"; }
  cp "$FLINK_SRC/resources/job.sql" "$tmp/classes/job.sql"
  "$FLINK_JAR" --create --file "$tmp/iot-flink-job.jar" -C "$tmp/classes" . >&2 || { rm -rf "$tmp"; flink_die "jar failed"; }
  rm -rf "$tmp/classes"
  mkdir -p "$(dirname "$dir")"
  rm -rf "$dir"
  mv "$tmp" "$dir"
}
