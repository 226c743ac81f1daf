import type { SeriesJson } from '../../../src/api/contract.ts'
import type { LineSeries } from '../charts/TimeSeriesChart.tsx'

export interface TypeGroup { sensorType: string, unit: string, series: LineSeries[] }

/** The series of /api/series grouped by sensor type, types in alphabetical order. */
export function groupByType (s: SeriesJson | null): TypeGroup[] {
  const groups = new Map<string, TypeGroup>()
  for (const x of s?.series ?? []) {
    let g = groups.get(x.sensor_type)
    if (g === undefined) {
      g = { sensorType: x.sensor_type, unit: x.unit, series: [] }
      groups.set(x.sensor_type, g)
    }
    g.series.push({ name: x.name, points: x.points })
  }
  for (const g of groups.values()) g.series.sort((a, b) => a.name.localeCompare(b.name))
  return [...groups.values()].sort((a, b) => a.sensorType.localeCompare(b.sensorType))
}
