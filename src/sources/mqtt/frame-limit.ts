import { Duplex } from 'node:stream'
import { type Socket } from 'node:net'

/**
 * Follows MQTT packet boundaries in a byte stream without parsing packets: each packet is one byte
 * of type and flags, its Remaining Length (a variable-length integer of 1-4 bytes, 7 bits each,
 * least significant first, high bit = more bytes follow) and that many bytes of body. It reports a
 * packet whose body is larger than the limit as soon as its length is read, before the body has
 * arrived: aedes' parser would otherwise buffer a packet of up to 256 MB whole before anyone sees it.
 */
export class MqttFrameScanner {
  readonly #maxBodyBytes: number
  #state: 'type' | 'length' | 'body' = 'type'
  #length = 0
  #multiplier = 1
  #lengthBytes = 0
  #bodyLeft = 0

  constructor (maxBodyBytes: number) {
    this.#maxBodyBytes = maxBodyBytes
  }

  /**
   * Consumes the next bytes of the stream. Returns null while every packet is within the limit,
   * else the body length of the first packet over it (Infinity for a malformed length of more than
   * four bytes). After a non-null answer the stream must be dropped.
   */
  scan (chunk: Buffer): number | null {
    let i = 0
    while (i < chunk.length) {
      if (this.#state === 'type') {
        i++
        this.#state = 'length'
        this.#length = 0
        this.#multiplier = 1
        this.#lengthBytes = 0
      } else if (this.#state === 'length') {
        const byte = chunk[i++]!
        this.#length += (byte & 0x7f) * this.#multiplier
        this.#multiplier *= 128
        this.#lengthBytes++
        if ((byte & 0x80) !== 0) {
          if (this.#lengthBytes === 4) return Infinity
          continue
        }
        if (this.#length > this.#maxBodyBytes) return this.#length
        this.#bodyLeft = this.#length
        this.#state = this.#bodyLeft > 0 ? 'body' : 'type'
      } else {
        const skip = Math.min(this.#bodyLeft, chunk.length - i)
        i += skip
        this.#bodyLeft -= skip
        if (this.#bodyLeft === 0) this.#state = 'type'
      }
    }
    return null
  }
}

/**
 * A socket as aedes sees it, with the packet size limit in between: reads pass through a
 * MqttFrameScanner and an oversize packet ends the connection (MQTT 3.1.1 has no way to refuse a
 * single packet); writes go straight to the socket with its back-pressure.
 */
export class FrameLimitedConnection extends Duplex {
  readonly #socket: Socket

  constructor (socket: Socket, maxBodyBytes: number, onOversize: (bodyBytes: number) => void) {
    super({ allowHalfOpen: false })
    this.#socket = socket
    const scanner = new MqttFrameScanner(maxBodyBytes)
    socket.on('data', (chunk: Buffer) => {
      if (this.destroyed) return
      const oversize = scanner.scan(chunk)
      if (oversize !== null) {
        onOversize(oversize)
        // At once: the rest of that packet is not worth reading.
        socket.destroy()
        this.destroy()
        return
      }
      if (!this.push(chunk)) socket.pause()
    })
    socket.on('end', () => this.push(null))
    socket.on('error', (err) => this.destroy(err))
    socket.on('close', () => this.destroy())
  }

  override _read (): void {
    this.#socket.resume()
  }

  override _write (chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    if (this.#socket.write(chunk)) done()
    else this.#socket.once('drain', () => done())
  }

  override _final (done: (error?: Error | null) => void): void {
    this.#socket.end()
    done()
  }

  override _destroy (error: Error | null, done: (error?: Error | null) => void): void {
    const socket = this.#socket
    if (error === null && !socket.destroyed) {
      // aedes destroys a connection right after writing to it (a CONNACK refusal, the PUBACKs
      // before a shutdown): end it instead so what was written still reaches the peer, and
      // destroy it if the peer does not close its side soon.
      socket.end()
      const timer = setTimeout(() => { socket.destroy() }, 2000)
      timer.unref()
      socket.once('close', () => { clearTimeout(timer) })
    } else {
      socket.destroy()
    }
    done(error)
  }
}
