import { test } from 'node:test'
import assert from 'node:assert/strict'
import { paceText, summaryLine } from './report.ts'

const stats = { devices: 5, connected: 5, connections: 5, published: 1500, messages: 1460, acknowledged: 1500, failed: 0, inFlight: 0, buffered: 0, waits: 0 }

test('summaryLine - published, acknowledged and failed (published, not acknowledged); what was not published and the waits when there were any', () => {
  assert.equal(summaryLine(stats), '5 simulated devices published 1,500 readings in 1,460 messages: 1,500 acknowledged, 0 failed.\n')
  assert.equal(summaryLine({ ...stats, devices: 1, published: 1, messages: 1, acknowledged: 0, buffered: 3, waits: 2 }),
    '1 simulated device published 1 reading in 1 message: 0 acknowledged, 1 failed. 3 readings made were not published (stopped first). ' +
    'The fleet waited for the broker\'s acknowledgements 2 times.\n')
})

test('paceText', () => {
  assert.deepEqual([paceText(1), paceText(60), paceText(Infinity)], ['real time', '60x real time', 'as fast as the broker takes it'])
})
