// The flags a command reads itself (replay, simulate, flink take theirs out of argv before
// loadConfig reads the shared ones).

export interface OwnFlags {
  /** Valued flags given, by name without the dashes. */
  values: Map<string, string>
  /** Switches given, by name without the dashes. */
  switches: Set<string>
  /** Everything else, in order, for loadConfig (from `--` on, all of it). */
  rest: string[]
}

/**
 * Takes a command's own flags out of argv: `--name value` and `--name=value` for `valued`, bare
 * `--name` for `switches`. A valued flag without its value, or given twice, is an error made by
 * `fail` (the command's usage error).
 */
export function takeOwnFlags (argv: readonly string[], valued: readonly string[], switches: readonly string[], fail: (message: string) => Error): OwnFlags {
  const out: OwnFlags = { values: new Map(), switches: new Set(), rest: [] }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--') {
      out.rest.push(...argv.slice(i))
      break
    }
    if (arg.startsWith('--') && switches.includes(arg.slice(2))) {
      out.switches.add(arg.slice(2))
      continue
    }
    const eq = arg.indexOf('=')
    const name = arg.startsWith('--') ? arg.slice(2, eq === -1 ? undefined : eq) : ''
    if (!valued.includes(name)) {
      out.rest.push(arg)
      continue
    }
    let value: string | undefined = eq === -1 ? undefined : arg.slice(eq + 1)
    if (value === undefined) {
      value = argv[++i]
      if (value === undefined) throw fail(`--${name} needs a value`)
    }
    if (out.values.has(name)) throw fail(`--${name} given twice`)
    out.values.set(name, value)
  }
  return out
}
