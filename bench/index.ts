// Benchmarks: `npm run bench -- <name> [--readings N]`. Ratios within one run are what to compare:
// this machine is shared and noisy, absolute figures move between runs.
import { parseArgs } from 'node:util'
import { runDetect } from './detect.ts'
import { measureEmbedded, runEmbedded } from './embedded.ts'
import { runKafka } from './kafka.ts'
import { runQuality } from './quality.ts'

const { positionals, values } = parseArgs({
  args: process.argv.slice(2),
  allowPositionals: true,
  options: { readings: { type: 'string' }, sensors: { type: 'string' }, hours: { type: 'string' }, seed: { type: 'string' }, 'no-ml': { type: 'boolean' } }
})
const name = positionals[0] ?? 'embedded'
const benches: Record<string, () => Promise<void>> = {
  embedded: async () => { await runEmbedded({ readings: Number(values.readings ?? 500_000) }) },
  kafka: async () => { await runKafka({ readings: Number(values.readings ?? 500_000) }) },
  // Isolation Forest fit and scoring; --readings sets the rows scored (default 1,000,000)
  detect: async () => { await runDetect({ rows: Number(values.readings ?? 1_000_000) }) },
  quality: async () => { await runQuality({ sensors: Number(values.sensors ?? 25), hours: Number(values.hours ?? 24), seed: Number(values.seed ?? 42) }) },
  // internal: one measurement in a child process (so its peak RSS is its own)
  'embedded-run': async () => { await measureEmbedded(Number(values.readings ?? 500_000), values['no-ml'] !== true) }
}
const bench = benches[name]
if (bench === undefined) {
  process.stderr.write(`Unknown benchmark "${name}". Available: ${Object.keys(benches).join(', ')}\n`)
  process.exit(2)
}
await bench()
