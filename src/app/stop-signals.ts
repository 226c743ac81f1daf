// SIGINT and SIGTERM, as a process that stores what it accepted before it exits hears them.
// Under `npm start` one Ctrl-C arrives twice within milliseconds (from the terminal to every process
// of the group, and relayed by npm), and systemd or Docker may signal the whole group too: a repeat
// within RELAY_MS is the same request. A signal after that means "exit now".

/** Signals this close to the first are copies of it. */
export const RELAY_MS = 2000

export class StopSignals {
  /** Resolves with the name of the first signal. */
  readonly requested: Promise<string>
  /** Resolves with the name of a later signal (not a copy of the first): exit without waiting. */
  readonly forced: Promise<string>
  #first = 0
  readonly #now: () => number
  readonly #handler: (signal: NodeJS.Signals) => void

  constructor (now: () => number = Date.now) {
    this.#now = now
    let request = (_: string): void => {}
    let force = (_: string): void => {}
    this.requested = new Promise(resolve => { request = resolve })
    this.forced = new Promise(resolve => { force = resolve })
    this.#handler = (signal) => {
      const t = this.#now()
      if (this.#first === 0) {
        this.#first = t
        request(signal)
      } else if (t - this.#first >= RELAY_MS) {
        force(signal)
      }
    }
    process.on('SIGINT', this.#handler)
    process.on('SIGTERM', this.#handler)
  }

  /** Whether a stop was asked for. */
  get received (): boolean {
    return this.#first !== 0
  }

  /** Stops listening (the process's default handlers return). */
  close (): void {
    process.off('SIGINT', this.#handler)
    process.off('SIGTERM', this.#handler)
  }
}
