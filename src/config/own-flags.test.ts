import { test } from 'node:test'
import assert from 'node:assert/strict'
import { takeOwnFlags } from './own-flags.ts'

const fail = (m: string): Error => new Error(`cmd: ${m}`)

test('takeOwnFlags - valued flags as two words or with =, switches, the rest in order; after -- all is the rest', () => {
  const got = takeOwnFlags(['--a', '1', '--kafka-brokers', 'k:9092', '--b=x=y', '--on', '--b2', '--', '--a', '2'], ['a', 'b'], ['on'], fail)
  assert.deepEqual([...got.values], [['a', '1'], ['b', 'x=y']])
  assert.deepEqual([...got.switches], ['on'])
  assert.deepEqual(got.rest, ['--kafka-brokers', 'k:9092', '--b2', '--', '--a', '2'])
  assert.deepEqual(takeOwnFlags(['--a='], ['a'], [], fail).values.get('a'), '')
})

test('takeOwnFlags - a valued flag without its value, or twice, is the command\'s error', () => {
  assert.throws(() => takeOwnFlags(['--a'], ['a'], [], fail), { message: 'cmd: --a needs a value' })
  assert.throws(() => takeOwnFlags(['--a', '1', '--a=2'], ['a'], [], fail), { message: 'cmd: --a given twice' })
})
