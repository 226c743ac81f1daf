// Test fixture: record batches as the broker stores and returns them, written by the client
// library's own encoder (an independent implementation of the format). Not shipped (the build
// leaves *.fixture.ts out).
import { createRecordsBatch } from '@platformatic/kafka'

export interface FixtureMessage { key?: Buffer, value?: Buffer, headers?: Map<Buffer, Buffer>, timestamp?: bigint }

export interface StoredBatchOptions {
  compression?: 'none' | 'gzip' | 'snappy' | 'lz4'
  producerId?: bigint
  transactional?: boolean
  /** A transaction marker (control batch). */
  control?: boolean
}

/** One stored batch of these messages at `baseOffset`. */
export function storedBatch (messages: readonly FixtureMessage[], baseOffset: number, opts: StoredBatchOptions = {}): Buffer {
  const b = createRecordsBatch(messages.map(m => ({ topic: 't', partition: 0, ...m })) as Parameters<typeof createRecordsBatch>[0], {
    compression: opts.compression ?? 'none',
    ...(opts.producerId === undefined ? {} : { producerId: opts.producerId }),
    ...(opts.transactional === true ? { transactionalId: 'tx' } : {})
  }).buffer
  b.writeBigInt64BE(BigInt(baseOffset), 0)
  if (opts.control === true) b.writeInt16BE(b.readInt16BE(21) | (1 << 5), 21)
  return b
}
