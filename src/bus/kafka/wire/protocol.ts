// Kafka protocol helpers shared by our Fetch and Produce paths.
import { type Consumer, protocolErrorsCodesById } from '@platformatic/kafka'
import { IotError } from '../../../domain/index.ts'

/** The name of a Kafka error code (OFFSET_OUT_OF_RANGE, …). */
export function errorName (code: number): string {
  return (protocolErrorsCodesById as Record<number, string | undefined>)[code] ?? `error ${code}`
}

/** Something that knows the broker's API versions (any of the library's clients). */
export type ApiLister = Pick<Consumer<string, string, string, string>, 'listApis'>

/** The highest version of an API both the broker and we speak, within [min, max]. */
export async function pickVersion (client: ApiLister, api: { key: number, name: string, min: number, max: number, kafka: string }): Promise<number> {
  const info = (await client.listApis()).find(a => a.apiKey === api.key)
  const version = Math.min(api.max, info?.maxVersion ?? -1)
  if (info === undefined || version < Math.max(api.min, info.minVersion)) {
    throw new IotError('IOT_ERR_BUS', `the Kafka broker serves ${api.name} v${info?.minVersion ?? '?'}-v${info?.maxVersion ?? '?'}; iot-monitor needs one of v${api.min}-v${api.max} (Kafka ${api.kafka} or later)`)
  }
  return version
}
