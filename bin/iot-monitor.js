#!/usr/bin/env node
// Runs the compiled CLI (dist/, made by `npm run build`; `npm start` builds it when the sources changed).
import { existsSync } from 'node:fs'

const cli = new URL('../dist/cli.js', import.meta.url)
if (!existsSync(cli)) {
  process.stderr.write('iot-monitor is not built: run `npm run build` (or `npm start`, which builds it first).\n')
  process.exit(1)
}
// `replay` allocates a short-lived row object or three per input row: with V8's default young
// generation (Node 24 lets it grow to 3 × 64 MB) its peak RSS passed 300 MB; 16 MB semi-spaces
// hold it near 200 MB for about 5 % more CPU. The flag only works at start, so replay runs in a
// child with it (bench/replay.ts measures with the same flag: REPLAY_NODE_FLAGS).
const REPLAY_NODE_FLAGS = ['--max-semi-space-size=16']
if (process.argv[2] === 'replay' && !process.execArgv.some(a => a.startsWith('--max-semi-space-size'))) {
  const { spawnSync } = await import('node:child_process')
  const { fileURLToPath } = await import('node:url')
  const r = spawnSync(process.execPath, [...process.execArgv, ...REPLAY_NODE_FLAGS, fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' })
  process.exit(r.status ?? (r.signal === null ? 1 : 128))
}
// Stack traces name the TypeScript sources (dist/ carries source maps).
process.setSourceMapsEnabled(true)
await import(cli.href)
