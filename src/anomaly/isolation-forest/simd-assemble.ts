// Assembling the SIMD kernels with wabt (a dev dependency): used by scripts/gen-forest-wasm.ts and
// by the test that keeps simd-wasm.generated.ts in step with simd-kernel.ts. Not loaded at runtime.
import { createRequire } from 'node:module'
import { MAX_FEATURES, kernelWat } from './simd-kernel.ts'

interface Wabt { parseWat(name: string, text: string, features: { simd: boolean }): { toBinary(o: object): { buffer: Uint8Array }, destroy(): void } }

/** The kernel for d = 1..MAX_FEATURES, index d - 1. */
export async function assembleKernels (): Promise<Uint8Array[]> {
  // wabt ships CommonJS without types: its factory resolves to the assembler.
  const wabt = await (createRequire(import.meta.url)('wabt') as () => Promise<Wabt>)()
  const out: Uint8Array[] = []
  for (let d = 1; d <= MAX_FEATURES; d++) {
    const mod = wabt.parseWat(`forest-d${d}.wat`, kernelWat(d), { simd: true })
    out.push(new Uint8Array(mod.toBinary({}).buffer))
    mod.destroy()
  }
  return out
}
