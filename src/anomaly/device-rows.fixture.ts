// Rows of a test device and a runner that scores them, for the device model's and forest's tests.
import { createRandom } from '../domain/index.ts'
import { type DeviceForest, type DeviceScore } from './device-forest.ts'

/** Event time of the first row; rows are 1 s apart. */
export const T0 = Date.UTC(2026, 2, 1)

/**
 * A device of three correlated measurements at 1 Hz: a (a slow cycle with noise), b = 2a, c = a/2,
 * each with noise of its own. `breakB(i)`: b takes the opposite sign at row i, staying within its
 * usual range (only its relation to a and c is broken).
 */
export function deviceRows (rows: number, seed: number, breakB: (i: number) => boolean = () => false): number[][] {
  const rnd = createRandom(seed)
  const out: number[][] = []
  for (let i = 0; i < rows; i++) {
    const a = Math.sin(2 * Math.PI * i / 200) + 0.1 * rnd.normal()
    const b = 2 * a + 0.1 * rnd.normal()
    const c = 0.5 * a + 0.05 * rnd.normal()
    out.push([a, breakB(i) ? -b : b, c])
  }
  return out
}

/** Scores the rows in order (row i at T0 + i s): each row's score, the rows alarmed on, and how many rows passed the threshold on their own. */
export function scoreRows (forest: DeviceForest, rows: number[][]): { alarms: number[], passed: number, scores: DeviceScore[] } {
  const alarms: number[] = []
  const scores: DeviceScore[] = []
  let passed = 0
  rows.forEach((row, i) => {
    const score = forest.score(row, T0 + i * 1000)
    scores.push(score)
    if (score.anomaly) alarms.push(i)
    if (score.rowScore !== null && score.rowScore >= 0.5) passed++
  })
  return { alarms, passed, scores }
}
