// The replay's output: CSV rows as csv-stringify writes them by default (a field is quoted when it
// holds a comma, a quote or a line break, its quotes doubled; records end with \n), built as one
// string and handed to the sink in 64 KB pieces. csv-stringify's stream cost a tenth of a replay.
import { once } from 'node:events'
import { type Writable } from 'node:stream'

const NEEDS_QUOTES = /[",\r\n]/
const FLUSH_AT = 1 << 16

function field (text: string): string {
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text
}

export function csvLine (cells: readonly string[]): string {
  let line = ''
  for (let i = 0; i < cells.length; i++) line += (i === 0 ? '' : ',') + field(cells[i] as string)
  return line + '\n'
}

export class CsvOut {
  readonly #sink: Writable
  /** Standard output is never ended (the CLI exits once the last piece is handed over). */
  readonly #endSink: boolean
  #buffer: string

  constructor (sink: Writable, header: readonly string[], endSink: boolean) {
    this.#sink = sink
    this.#endSink = endSink
    this.#buffer = csvLine(header)
  }

  async write (cells: readonly string[]): Promise<void> {
    this.#buffer += csvLine(cells)
    if (this.#buffer.length >= FLUSH_AT) await this.#flush()
  }

  async #flush (): Promise<void> {
    const text = this.#buffer
    this.#buffer = ''
    if (!this.#sink.write(text)) await once(this.#sink, 'drain')
  }

  /** Writes what is left; a file is ended and closed. */
  async end (): Promise<void> {
    await this.#flush()
    if (!this.#endSink) return
    const finished = once(this.#sink, 'finish')
    this.#sink.end()
    await finished
  }
}
