package io.iotmonitor.flink;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TimeZone;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.TableResult;
import org.apache.flink.table.api.bridge.java.StreamTableEnvironment;

/**
 * Runs a Flink SQL script: in a local MiniCluster when started with `java` (what `iot-monitor flink`
 * does), or on a cluster when submitted with `flink run -c io.iotmonitor.flink.IotFlinkJob`.
 *
 * <pre>
 *   IotFlinkJob [--sql FILE] [--set NAME=VALUE]... [--no-restore]
 * </pre>
 *
 * <ul>
 *   <li>The script (default: job.sql inside the jar) holds statements ending with ';' at a line end;
 *       lines starting with '--' are comments. {@code ${NAME}} is replaced by the value given with
 *       --set, else by the environment variable IOT_FLINK_NAME (secrets such as a password in
 *       JDBC_URL stay off the command line); every placeholder must have a value.</li>
 *   <li>{@code SET 'key' = 'value';} statements become the job's configuration (checkpointing,
 *       parallelism, time zone, ...), applied before anything runs.</li>
 *   <li>Restart: when 'execution.checkpointing.dir' is a local folder holding a completed checkpoint
 *       (retained: the script asks for RETAIN_ON_CANCELLATION), the newest one is restored (window
 *       state and Kafka offsets), unless --no-restore. On a cluster, restore with `flink run -s`.</li>
 * </ul>
 */
public final class IotFlinkJob {
  private static final Pattern SET = Pattern.compile("(?is)^SET\\s+'([^']+)'\\s*=\\s*'([^']*)'$");
  private static final Pattern PLACEHOLDER = Pattern.compile("\\$\\{([A-Za-z0-9_]+)}");

  private IotFlinkJob() {}

  public static void main(String[] args) throws Exception {
    // Window bounds are TIMESTAMP(3) in UTC; the JDBC driver writes them in the JVM's zone.
    TimeZone.setDefault(TimeZone.getTimeZone("UTC"));
    String sqlFile = null;
    boolean restore = true;
    Map<String, String> vars = new LinkedHashMap<>();
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--sql" -> sqlFile = need(args, ++i, "--sql");
        case "--set" -> {
          String kv = need(args, ++i, "--set");
          int eq = kv.indexOf('=');
          if (eq < 1) throw usage("--set takes NAME=VALUE, got '" + kv + "'");
          vars.put(kv.substring(0, eq), kv.substring(eq + 1));
        }
        case "--no-restore" -> restore = false;
        default -> throw usage("unknown argument '" + args[i] + "'");
      }
    }
    // Comments go first: they may mention ${...} themselves.
    String script = substitute(String.join(";\n", split(sqlFile == null ? bundledScript() : Files.readString(Path.of(sqlFile)))) + ";", vars);

    Configuration conf = new Configuration();
    List<String> statements = new ArrayList<>();
    for (String s : split(script)) {
      Matcher m = SET.matcher(s);
      if (m.matches()) conf.setString(m.group(1), m.group(2));
      else statements.add(s);
    }
    if (restore) {
      String dir = conf.getString("execution.checkpointing.dir", conf.getString("state.checkpoints.dir", null));
      latestCheckpoint(dir).ifPresent(p -> {
        say("restoring from checkpoint " + p.toUri());
        conf.setString("execution.savepoint.path", p.toUri().toString());
      });
    }

    StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
    StreamTableEnvironment tEnv = StreamTableEnvironment.create(env,
        EnvironmentSettings.newInstance().inStreamingMode().withConfiguration(conf).build());
    TableResult last = null;
    for (String s : statements) last = tEnv.executeSql(s);
    if (last == null) throw usage("the script has no statement to run");
    Optional<JobClient> job = last.getJobClient();
    if (job.isEmpty()) {
      say("the last statement started no job");
      return;
    }
    say("job " + job.get().getJobID() + " running");
    last.await();
    say("job " + job.get().getJobID() + " finished");
  }

  private static String need(String[] args, int i, String flag) {
    if (i >= args.length) throw usage(flag + " needs a value");
    return args[i];
  }

  private static IllegalArgumentException usage(String message) {
    return new IllegalArgumentException("iot-flink: " + message
        + " (usage: IotFlinkJob [--sql FILE] [--set NAME=VALUE]... [--no-restore])");
  }

  static void say(String line) {
    System.out.println("iot-flink: " + line);
    System.out.flush();
  }

  private static String bundledScript() throws IOException {
    try (InputStream in = IotFlinkJob.class.getResourceAsStream("/job.sql")) {
      if (in == null) throw usage("no --sql given and no job.sql in the jar");
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
  }

  static String substitute(String script, Map<String, String> vars) {
    Matcher m = PLACEHOLDER.matcher(script);
    StringBuilder out = new StringBuilder();
    List<String> missing = new ArrayList<>();
    while (m.find()) {
      String v = vars.get(m.group(1));
      if (v == null) v = System.getenv("IOT_FLINK_" + m.group(1));
      if (v == null) {
        missing.add(m.group(1));
        v = m.group();
      }
      m.appendReplacement(out, Matcher.quoteReplacement(v));
    }
    m.appendTail(out);
    if (!missing.isEmpty()) throw usage("no value for " + String.join(", ", missing) + " (give --set NAME=VALUE or IOT_FLINK_NAME)");
    return out.toString();
  }

  /** Statements end with ';' at a line end; whole-line '--' comments are dropped. */
  static List<String> split(String script) {
    List<String> out = new ArrayList<>();
    StringBuilder cur = new StringBuilder();
    for (String line : script.split("\\r?\\n")) {
      if (line.trim().startsWith("--")) continue;
      cur.append(line).append('\n');
      if (line.stripTrailing().endsWith(";")) {
        String s = cur.toString().trim();
        out.add(s.substring(0, s.length() - 1).trim());
        cur.setLength(0);
      }
    }
    if (!cur.toString().isBlank()) out.add(cur.toString().trim());
    return out;
  }

  /** The newest completed checkpoint (a chk-N folder with _metadata) under dir/<job id>/. */
  static Optional<Path> latestCheckpoint(String dir) throws IOException {
    if (dir == null || dir.isBlank()) return Optional.empty();
    Path root = dir.startsWith("file:") ? Paths.get(java.net.URI.create(dir.startsWith("file:///") ? dir : "file://" + dir.substring(5))) : Path.of(dir);
    if (!Files.isDirectory(root)) return Optional.empty();
    try (Stream<Path> jobs = Files.list(root)) {
      return jobs.filter(Files::isDirectory)
          .flatMap(j -> {
            try {
              return Files.list(j).filter(c -> c.getFileName().toString().startsWith("chk-") && Files.exists(c.resolve("_metadata"))).toList().stream();
            } catch (IOException e) {
              return Stream.empty();
            }
          })
          .max(Comparator.comparingLong(c -> c.resolve("_metadata").toFile().lastModified()));
    }
  }
}
