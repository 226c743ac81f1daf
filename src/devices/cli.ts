// `iot-monitor devices …`: add, list, rotate, revoke. The command line's own flags (--name,
// --location) are taken out here; the rest (the database flags) is read by loadConfig like every
// command's, so --database-url, DATABASE_URL, --data-dir and --config work the same.
import { IotError } from '../domain/index.ts'
import { type Queryable, type StoredDevice, listDevices } from '../storage/index.ts'
import { deviceStatus, validateDeviceId, validateLabel } from './device.ts'
import { addDevice, revokeDevice, rotateDeviceToken } from './manage.ts'
import { defaultRegistryOptions } from './registry.ts'

const ttlSeconds = defaultRegistryOptions.ttlMs / 1000

export const devicesUsage = `Usage: iot-monitor devices <action> [flags]

Actions:
  add <id> --name NAME --location LOCATION
                 add a device and print its token (once: only a digest is stored)
  list           the devices: id, name, location, created, last seen, status, revoked
  rotate <id>    print a new token; the old one stops working
  revoke <id>    refuse the device's token from now on (final; the id stays taken)

A device id is 1-64 of A-Z a-z 0-9 . _ -; a measurement M it sends is stored as sensor "<id>.M".
Name and location: 1-128 characters. Running processes see a rotation or revocation made here
within ${ttlSeconds} s (they cache accepted tokens that long).

The database is the one the other commands use: --database-url URL [DATABASE_URL], else the
embedded PGlite in --data-dir DIR [IOT_DATA_DIR] (default ./data); --config FILE. The schema is
migrated first.

Exit codes: 0 done, 1 failure, 2 usage error, 3 no such device, 4 the id is taken, 5 the device is revoked.
`

export type DevicesCommand =
  | { action: 'add', id: string, name: string, location: string }
  | { action: 'list' }
  | { action: 'rotate', id: string }
  | { action: 'revoke', id: string }

export interface DeviceFlags {
  name?: string
  location?: string
}

const usageError = (message: string): IotError => new IotError('IOT_ERR_CONFIG', `devices: ${message} (iot-monitor devices --help)`)

/** Takes --name and --location (`--name V` or `--name=V`) out of the arguments; the rest goes to loadConfig. */
export function takeDeviceFlags (argv: readonly string[]): { flags: DeviceFlags, rest: string[] } {
  const flags: DeviceFlags = {}
  const rest: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--') {
      rest.push(...argv.slice(i))
      break
    }
    const m = /^--(name|location)(?:=(.*))?$/s.exec(arg)
    if (m === null) {
      rest.push(arg)
      continue
    }
    const flag = m[1] as keyof DeviceFlags
    let value = m[2]
    if (value === undefined) {
      value = argv[++i]
      if (value === undefined) throw usageError(`--${flag} needs a value`)
    }
    if (flags[flag] !== undefined) throw usageError(`--${flag} given twice`)
    flags[flag] = value
  }
  return { flags, rest }
}

/** The action from the positionals after `devices` and the flags taken out; IOT_ERR_CONFIG when they do not fit. */
export function parseDevicesCommand (args: readonly string[], flags: DeviceFlags): DevicesCommand {
  const [action, ...operands] = args
  const asUsage = <T>(check: () => T): T => {
    try {
      return check()
    } catch (err) {
      throw err instanceof IotError ? usageError(err.message) : err
    }
  }
  const id = (): string => {
    if (operands.length !== 1) throw usageError(`${action} takes one device id, got ${operands.length}`)
    return asUsage(() => validateDeviceId(operands[0]!))
  }
  const noFlags = (): void => {
    const given = Object.keys(flags)
    if (given.length > 0) throw usageError(`--${given[0]} is only for add`)
  }
  switch (action) {
    case 'add': {
      const deviceId = id()
      if (flags.name === undefined || flags.location === undefined) throw usageError('add needs --name and --location')
      const name = asUsage(() => validateLabel(flags.name!, 'name'))
      const location = asUsage(() => validateLabel(flags.location!, 'location'))
      return { action, id: deviceId, name, location }
    }
    case 'list':
      noFlags()
      if (operands.length > 0) throw usageError(`list takes no arguments, got "${operands[0]}"`)
      return { action }
    case 'rotate':
    case 'revoke':
      noFlags()
      return { action, id: id() }
    case undefined:
      throw usageError('expected an action: add, list, rotate or revoke')
    default:
      throw usageError(`unknown action "${action}"; expected add, list, rotate or revoke`)
  }
}

/** A time to the second in UTC, or "-". */
const time = (ms: number | null): string => ms === null ? '-' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')

/** The devices as a table with a header, columns padded to their widest cell. */
export function formatDeviceTable (devices: readonly StoredDevice[], now: number): string {
  if (devices.length === 0) return 'No devices. Add one: iot-monitor devices add <id> --name NAME --location LOCATION\n'
  const rows = [
    ['ID', 'NAME', 'LOCATION', 'CREATED', 'LAST SEEN', 'STATUS', 'REVOKED'],
    ...devices.map(d => [d.id, d.name, d.location, time(d.createdAt), time(d.lastSeenAt), deviceStatus(d, now), time(d.revokedAt)])
  ]
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map(r => r[c]!.length)))
  return rows.map(r => r.map((cell, c) => c === r.length - 1 ? cell : cell.padEnd(widths[c]!)).join('  ')).join('\n') + '\n'
}

/** Runs an action and returns what to print on stdout (a token alone on the last line). */
export async function runDevicesCommand (db: Queryable, cmd: DevicesCommand, now: number): Promise<string> {
  switch (cmd.action) {
    case 'add': {
      const { device, token } = await addDevice(db, cmd, now)
      return `Added device ${device.id} (name ${JSON.stringify(device.name)}, location ${JSON.stringify(device.location)}).\n` +
        'Its token follows; it is shown only this once (only a digest is stored): configure the device with it now.\n' +
        `${token}\n`
    }
    case 'list':
      return formatDeviceTable(await listDevices(db), now)
    case 'rotate': {
      const { device, token } = await rotateDeviceToken(db, cmd.id, now)
      return `New token for device ${device.id}; the old one is refused from now on (by running processes within ${ttlSeconds} s).\n` +
        'It is shown only this once:\n' +
        `${token}\n`
    }
    case 'revoke': {
      const { device, changed } = await revokeDevice(db, cmd.id, now)
      return changed
        ? `Revoked device ${device.id}: its token is refused from now on (by running processes within ${ttlSeconds} s).\n`
        : `Device ${device.id} was revoked already, at ${time(device.revokedAt)}.\n`
    }
  }
}
