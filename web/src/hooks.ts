import { useCallback, useEffect, useRef, useState } from 'react'
import { errorText } from './api.ts'

export interface Fetched<T> {
  /** The last successful answer (kept while a newer request is in flight). */
  data: T | null
  /** The last request's error, null after a success. */
  error: string | null
  loading: boolean
}

/**
 * Runs `load` whenever `key` changes. Keeps the previous data while reloading so charts do not
 * flash empty on every refresh.
 *
 * `scope` is the part of the key that changes what is asked (the filter), the rest being a refresh
 * revision: a new scope aborts the request in flight, a mere refresh waits for it and then runs
 * once, so a query slower than the refresh interval is never starved by its own refreshes.
 */
export function useFetch<T> (key: string, load: (signal: AbortSignal) => Promise<T>, enabled = true, scope: string = key): Fetched<T> {
  const [state, setState] = useState<Fetched<T>>({ data: null, error: null, loading: enabled })
  const loadRef = useRef(load)
  loadRef.current = load
  const scopeRef = useRef(scope)
  scopeRef.current = scope
  const inflight = useRef<{ scope: string, ctl: AbortController } | null>(null)
  const queued = useRef(false)

  const start = useCallback(function run (): void {
    const ctl = new AbortController()
    const mine = { scope: scopeRef.current, ctl }
    inflight.current = mine
    setState(s => s.loading ? s : { ...s, loading: true })
    const current = (): boolean => inflight.current === mine && !ctl.signal.aborted
    loadRef.current(ctl.signal).then(
      data => { if (current()) setState({ data, error: null, loading: false }) },
      (err: unknown) => { if (current()) setState(s => ({ data: s.data, error: errorText(err), loading: false })) }
    ).finally(() => {
      if (inflight.current !== mine) return
      inflight.current = null
      if (queued.current) {
        queued.current = false
        run()
      }
    })
  }, [])

  useEffect(() => {
    if (!enabled) return
    const cur = inflight.current
    if (cur !== null && cur.scope === scope) {
      queued.current = true
      return
    }
    cur?.ctl.abort()
    queued.current = false
    start()
    // scope is a part of key.
  }, [key, enabled, start])

  useEffect(() => () => {
    inflight.current?.ctl.abort()
    inflight.current = null
    queued.current = false
  }, [])

  return state
}
