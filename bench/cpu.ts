// CPU time of processes, read from /proc (Linux): how many core-seconds each part of a run used.
import { readdirSync, readFileSync } from 'node:fs'

const TICKS_PER_SECOND = 100 // USER_HZ: 100 on every Linux architecture Node supports

/** utime + stime of one process (all its threads), in seconds; NaN if it is gone. */
export function processCpuSeconds (pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command (which may hold spaces) start after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12])) / TICKS_PER_SECOND
  } catch {
    return Number.NaN
  }
}

function processes (): Array<{ pid: number, comm: string, cmdline: string }> {
  const out: Array<{ pid: number, comm: string, cmdline: string }> = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      out.push({
        pid: Number(name),
        comm: readFileSync(`/proc/${name}/comm`, 'utf8').trim(),
        cmdline: readFileSync(`/proc/${name}/cmdline`, 'utf8').replaceAll('\0', ' ')
      })
    } catch { /* exited meanwhile */ }
  }
  return out
}

/** CPU seconds per group of processes at one moment: `groups` picks a group name for a process, or null. */
export type Groups = (p: { pid: number, comm: string, cmdline: string }) => string | null

export function cpuSnapshot (groups: Groups): Map<number, { group: string, seconds: number }> {
  const snap = new Map<number, { group: string, seconds: number }>()
  for (const p of processes()) {
    const group = groups(p)
    if (group === null) continue
    const seconds = processCpuSeconds(p.pid)
    if (!Number.isNaN(seconds)) snap.set(p.pid, { group, seconds })
  }
  return snap
}

/**
 * CPU seconds each group used between two snapshots. A process that started in between counts
 * from zero; one that exited in between is lost (PostgreSQL backends of our connections live
 * through a measurement; short-lived autovacuum workers may be missed).
 */
export function cpuBetween (before: Map<number, { group: string, seconds: number }>, after: Map<number, { group: string, seconds: number }>): Map<string, number> {
  const used = new Map<string, number>()
  for (const [pid, a] of after) {
    const b = before.get(pid)?.seconds ?? 0
    used.set(a.group, (used.get(a.group) ?? 0) + Math.max(0, a.seconds - b))
  }
  return used
}

/** Whole-machine busy and total core-seconds from /proc/stat. */
export function machineCpu (): { busy: number, total: number } {
  const v = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number)
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = v
  return { busy: (user + nice + system + irq + softirq + steal) / TICKS_PER_SECOND, total: (user + nice + system + idle + iowait + irq + softirq + steal) / TICKS_PER_SECOND }
}

/** The PostgreSQL server's processes and the Kafka broker's JVM. */
export const isPostgres = (p: { comm: string }): boolean => p.comm === 'postgres' || p.comm.startsWith('postgres:')
export const isBroker = (p: { comm: string, cmdline: string }): boolean => p.comm === 'java' && p.cmdline.includes('kafka.Kafka')

/**
 * Runs `measure` and returns its result with the CPU each group and the machine used meanwhile.
 * Processes are sampled every 100 ms, so one that exits meanwhile counts up to its last sample.
 */
export async function withCpu<T> (groups: Groups, measure: () => Promise<T>): Promise<{ value: T, cpu: Map<string, number>, machine: number }> {
  const before = cpuSnapshot(groups)
  const m0 = machineCpu()
  const latest = new Map(before)
  const sample = (): void => { for (const [pid, s] of cpuSnapshot(groups)) latest.set(pid, s) }
  const timer = setInterval(sample, 100)
  try {
    const value = await measure()
    sample()
    return { value, cpu: cpuBetween(before, latest), machine: machineCpu().busy - m0.busy }
  } finally {
    clearInterval(timer)
  }
}

/** The servers' processes: PostgreSQL and the Kafka broker. */
export const serverParts: Groups = p => isPostgres(p) ? 'PostgreSQL' : isBroker(p) ? 'Kafka broker' : null

/** Prints each run's CPU per 100,000 readings by part (largest first) and the whole machine's; runs with no parts measured are left out. */
export function printCpuPer100k (title: string, rows: ReadonlyArray<{ label: string, readings: number, cpu: ReadonlyMap<string, number>, machine: number }>): void {
  process.stdout.write(`\n${title}\n`)
  for (const r of rows) {
    if (r.cpu.size === 0) continue
    const per = (s: number): string => (s * 100_000 / r.readings).toFixed(2)
    const parts = [...r.cpu].sort((a, b) => b[1] - a[1]).map(([k, s]) => `${k} ${per(s)}`).join(', ')
    process.stdout.write(`  ${r.label}: ${parts}; whole machine ${per(r.machine)}\n`)
  }
}
