#!/usr/bin/env node
// Runs the compiled CLI (dist/, made by `npm run build`; `npm start` builds it when the sources changed).
import { existsSync } from 'node:fs'

const cli = new URL('../dist/cli.js', import.meta.url)
if (!existsSync(cli)) {
  process.stderr.write('iot-monitor is not built: run `npm run build` (or `npm start`, which builds it first).\n')
  process.exit(1)
}
// Stack traces name the TypeScript sources (dist/ carries source maps).
process.setSourceMapsEnabled(true)
await import(cli.href)
