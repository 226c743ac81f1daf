import { test } from 'node:test'
import assert from 'node:assert/strict'
import { RELAY_MS, StopSignals } from './stop-signals.ts'

const settled = async <T>(p: Promise<T>): Promise<T | 'pending'> => await Promise.race([p, new Promise<'pending'>(resolve => setImmediate(() => { resolve('pending') }))])

test('StopSignals - the first signal asks to stop; a copy within the relay time is the same request; a later one forces', async () => {
  let now = 1000
  const s = new StopSignals(() => now)
  try {
    assert.equal(s.received, false)
    process.emit('SIGTERM', 'SIGTERM')
    assert.equal(await settled(s.requested), 'SIGTERM')
    assert.equal(s.received, true)
    // npm relays the terminal's Ctrl-C: the same press arrives again at once.
    now += 5
    process.emit('SIGINT', 'SIGINT')
    now += RELAY_MS - 10
    process.emit('SIGTERM', 'SIGTERM')
    assert.equal(await settled(s.forced), 'pending', 'one Ctrl-C is never taken as two')
    now += 10
    process.emit('SIGINT', 'SIGINT')
    assert.equal(await settled(s.forced), 'SIGINT')
  } finally {
    s.close()
  }
  assert.equal(process.listenerCount('SIGINT'), 0, 'close removes its handlers')
})
