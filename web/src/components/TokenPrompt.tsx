// Asks for the viewer (or admin) token when the server refuses a read for it: a server reached
// beyond loopback. The token is checked with POST /api/session (which also sets the live stream's
// cookie), kept by api.ts, and the page reloads with it.
import { useEffect, useState, type FormEvent, type JSX } from 'react'
import { onAuthRequired, signIn } from '../api.ts'
import './token-prompt.css'

export function TokenPrompt (): JSX.Element | null {
  const [open, setOpen] = useState(false)
  const [token, setToken] = useState('')
  const [remember, setRemember] = useState(false)
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | null>(null)
  useEffect(() => onAuthRequired(() => { setOpen(true) }), [])
  if (!open) return null

  const submit = (e: FormEvent): void => {
    e.preventDefault()
    setBusy(true)
    setError(null)
    signIn(token.trim(), remember).then(r => {
      if (r === 'ok') {
        window.location.reload()
        return
      }
      setBusy(false)
      setError(r === 'refused' ? 'This token is not accepted here.' : 'The server did not answer; try again.')
    }, () => { setBusy(false) })
  }

  return (
    <div className='token-backdrop' data-testid='token-prompt'>
      <form className='panel token-prompt' role='dialog' aria-modal='true' aria-labelledby='token-title' onSubmit={submit}>
        <h3 id='token-title'>This dashboard needs a token</h3>
        <p>The server asks for its viewer token (or the admin token) to show its data.</p>
        <input
          type='password' aria-label='Token' autoComplete='current-password' autoFocus spellCheck={false}
          value={token} onChange={e => { setToken(e.target.value) }}
        />
        <label><input type='checkbox' checked={remember} onChange={e => { setRemember(e.target.checked) }} /> Remember on this device</label>
        {error !== null && <div className='token-error' role='alert'>{error}</div>}
        <button className='primary' type='submit' disabled={busy || token.trim() === ''}>{busy ? 'Checking…' : 'Open'}</button>
      </form>
    </div>
  )
}
