// Benchmarks: `npm run bench -- <name> [--readings N]`. Ratios within one run are what to compare:
// this machine is shared and noisy, absolute figures move between runs.
import { parseArgs } from 'node:util'
import { measureEmbedded, runEmbedded } from './embedded.ts'
import { runKafka } from './kafka.ts'

const { positionals, values } = parseArgs({
  args: process.argv.slice(2),
  allowPositionals: true,
  options: { readings: { type: 'string' } }
})
const name = positionals[0] ?? 'embedded'
const benches: Record<string, () => Promise<void>> = {
  embedded: async () => { await runEmbedded({ readings: Number(values.readings ?? 500_000) }) },
  kafka: async () => { await runKafka({ readings: Number(values.readings ?? 500_000) }) },
  // internal: one measurement in a child process (so its peak RSS is its own)
  'embedded-run': async () => { await measureEmbedded(Number(values.readings ?? 500_000)) }
}
const bench = benches[name]
if (bench === undefined) {
  process.stderr.write(`Unknown benchmark "${name}". Available: ${Object.keys(benches).join(', ')}\n`)
  process.exit(2)
}
await bench()
