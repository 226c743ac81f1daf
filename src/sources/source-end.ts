/**
 * The end of a live source, for its `done()`: settled once, by the stop (resolved) or by a failure
 * that ends it (rejected, e.g. a broker that cannot listen). Awaiting it is optional: an unawaited
 * rejection does not end the process as an unhandled one.
 */
export class SourceEnd {
  readonly promise: Promise<void>
  #settle: (error?: unknown) => void = () => {}

  constructor () {
    this.promise = new Promise<void>((resolve, reject) => {
      this.#settle = (error?: unknown) => { if (error === undefined) resolve(); else reject(error) }
    })
    this.promise.catch(() => {})
  }

  /** Ends the source: cleanly without an error, failed with one. Later calls change nothing. */
  end (error?: unknown): void {
    this.#settle(error)
  }
}
