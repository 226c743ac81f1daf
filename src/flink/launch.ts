// Builds the Flink job (deploy/flink/build.sh: jars from Maven Central, cached outside the
// repository; the launcher compiled with javac) and runs it: one JVM holding a local MiniCluster.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { type Logger } from 'pino'
import { IotError } from '../domain/index.ts'
import { type FlinkJobOptions, jdbcUrl, scriptVariables } from './options.ts'

/** The repository root (src/flink/ and dist/flink/ both sit two levels below it). */
const root = fileURLToPath(new URL('../../', import.meta.url))
export const flinkDeployDir = `${root}deploy/flink`

/** The launcher's main class. */
export const FLINK_MAIN_CLASS = 'io.iotmonitor.flink.IotFlinkJob'

/**
 * Java 17 opens Flink needs (the JDK 17 part of Flink's own env.java.opts.all): without them,
 * InaccessibleObjectException.
 */
export const JAVA17_OPENS = [
  '--add-exports=java.base/sun.net.util=ALL-UNNAMED',
  '--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED',
  '--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED',
  ...['java.lang', 'java.net', 'java.io', 'java.nio', 'sun.nio.ch', 'java.lang.reflect', 'java.text', 'java.time', 'java.util',
    'java.util.concurrent', 'java.util.concurrent.atomic', 'java.util.concurrent.locks'].map(p => `--add-opens=java.base/${p}=ALL-UNNAMED`)
]

/**
 * Runs deploy/flink/build.sh (fetching the jars on first use, compiling the launcher when its
 * sources changed) and returns the class path it prints.
 */
export function buildFlinkJob (log?: Logger): string {
  const script = `${flinkDeployDir}/build.sh`
  if (!existsSync(script)) throw new IotError('IOT_ERR_CONFIG', `flink: ${script} is missing (the Flink job is built from a checkout of the repository)`)
  const started = Date.now()
  const r = spawnSync('bash', [script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 900_000 })
  if (r.error !== undefined) throw new IotError('IOT_ERR_CONFIG', `flink: cannot run ${script}: ${r.error.message}`, { cause: r.error })
  if (r.status !== 0) throw new IotError('IOT_ERR_CONFIG', `flink: building the job failed (exit ${r.status}):\n${r.stderr.trim()}`)
  const cp = r.stdout.trim().split('\n').pop() ?? ''
  if (cp === '') throw new IotError('IOT_ERR_CONFIG', `flink: ${script} printed no class path`)
  log?.info({ ms: Date.now() - started, stderr: r.stderr.trim() === '' ? undefined : r.stderr.trim() }, 'flink job built')
  return cp
}

export interface JavaCommand {
  command: string
  args: string[]
  /** Added to the environment: IOT_FLINK_JDBC_URL (it may hold a password, so not in args). */
  env: Record<string, string>
}

/** The java command that runs the job in a MiniCluster with `classpath` (from buildFlinkJob). */
export function flinkCommand (o: FlinkJobOptions, classpath: string): JavaCommand {
  const java = process.env.JAVA_HOME !== undefined && process.env.JAVA_HOME !== '' ? `${process.env.JAVA_HOME}/bin/java` : 'java'
  const sets = Object.entries(scriptVariables(o)).flatMap(([k, v]) => ['--set', `${k}=${v}`])
  return {
    command: java,
    args: [
      `-Xms${o.heap}`, `-Xmx${o.heap}`, '-XX:+UseG1GC', '-Djava.awt.headless=true', '-Duser.timezone=UTC',
      `-Dlog4j2.configurationFile=${flinkDeployDir}/log4j2.properties`,
      ...JAVA17_OPENS,
      '-cp', classpath, FLINK_MAIN_CLASS,
      ...sets,
      ...(o.restore ? [] : ['--no-restore'])
    ],
    env: { IOT_FLINK_JDBC_URL: jdbcUrl(o.databaseUrl) }
  }
}

/** Starts the job's JVM; its stdout and stderr are piped when `pipe`, else inherited. */
export function spawnFlinkJob (cmd: JavaCommand, pipe: boolean): ChildProcess {
  return spawn(cmd.command, cmd.args, {
    env: { ...process.env, ...cmd.env },
    stdio: pipe ? ['ignore', 'pipe', 'pipe'] : ['ignore', 'inherit', 'inherit']
  })
}

/** A shell line for people: the command with its arguments quoted (the JDBC URL left as a variable). */
export function formatCommand (cmd: JavaCommand): string {
  const q = (s: string): string => /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`
  return `IOT_FLINK_JDBC_URL=… ${[cmd.command, ...cmd.args].map(q).join(' ')}`
}
