// ML anomaly detection: how the Isolation Forest compares with the rules and, where the simulator
// labels readings, how right each detector is; score distribution, recent ML flags, the
// device-level (multivariate) detector's scores per device, models.
import type { JSX } from 'react'
import type { ModelJson, QualityJson, ScoresJson } from '../../../src/api/contract.ts'
import { api, type SharedQuery } from '../api.ts'
import { useFetch } from '../hooks.ts'
import type { LiveData } from '../store.ts'
import { Kpi, KpiRow } from '../components/Kpi.tsx'
import { Empty, Panel } from '../components/Panel.tsx'
import { DataTable, type Column } from '../components/DataTable.tsx'
import { ReadingsTable } from '../components/ReadingsTable.tsx'
import { ScoreHistogram } from '../charts/ScoreHistogram.tsx'
import { DeviceScores } from './DeviceScores.tsx'
import { fmtInt, fmtPct, fmtRatio, fmtTime, typeLabel } from '../format.ts'

const DETECTORS: { id: keyof QualityJson['detectors'], label: string, what: string }[] = [
  { id: 'rule', label: 'rules', what: 'fixed normal range per sensor type' },
  { id: 'zscore', label: 'z-score', what: 'distance from the sensor\'s rolling baseline' },
  { id: 'ml', label: 'Isolation Forest (ML)', what: 'model trained per sensor type' },
  { id: 'stuck', label: 'stuck', what: 'flat far longer than the sensor usually is' },
  { id: 'drift', label: 'drift', what: 'CUSUM against a slow reference' },
  { id: 'combined', label: 'combined verdict', what: 'what the dashboard calls an anomaly' }
]

/** Cohen's kappa: agreement beyond what chance would give (the raw agreement is inflated by the many "neither"). */
export function kappa (m: QualityJson['ruleVsMl']): number | null {
  const n = m.scored
  if (n === 0) return null
  const po = (m.both + m.neither) / n
  const ruleYes = (m.both + m.ruleOnly) / n
  const mlYes = (m.both + m.mlOnly) / n
  const pe = ruleYes * mlYes + (1 - ruleYes) * (1 - mlYes)
  return pe === 1 ? null : (po - pe) / (1 - pe)
}

function ConfusionMatrix ({ m }: { m: QualityJson['ruleVsMl'] }): JSX.Element {
  const cell = (n: number, kind: 'agree' | 'disagree'): JSX.Element => (
    <td className={`cm ${kind}`}>
      <span className='cm-n'>{fmtInt(n)}</span>
      <span className='cm-p'>{fmtPct(m.scored > 0 ? n / m.scored : null)}</span>
    </td>
  )
  return (
    <table className='confusion' data-testid='table-confusion' data-rows={2}>
      <thead>
        <tr><th /><th>ML: anomaly</th><th>ML: normal</th></tr>
      </thead>
      <tbody>
        <tr><th>rules: anomaly</th>{cell(m.both, 'agree')}{cell(m.ruleOnly, 'disagree')}</tr>
        <tr><th>rules: normal</th>{cell(m.mlOnly, 'disagree')}{cell(m.neither, 'agree')}</tr>
      </tbody>
    </table>
  )
}

export function MlTab ({ query, live, records }: { query: SharedQuery | null, live: LiveData, records: number }): JSX.Element {
  const quality = useFetch(`quality:${query?.sensor_type}:${query?.key}`, async s => await api.quality(query ?? {}, s), query !== null, `quality:${query?.sensor_type}:${query?.scope}`)
  const scores = useFetch(`scores:${query?.key}:${records}`, async s => await api.scores(query ?? {}, Math.max(100, records), s), query !== null, `scores:${query?.scope}:${records}`)
  const models = useFetch(`models:${query?.key}`, async s => await api.models(50, s), query !== null, `models:${query?.scope}`)
  const q = quality.data
  const m = q?.ruleVsMl ?? null
  const k = m === null ? null : kappa(m)

  const scoreRows = q === null || q.labelled === 0 ? [] : DETECTORS.map(d => ({ ...d, s: q.detectors[d.id].overall }))
  const kinds = q === null ? [] : Object.keys(q.labels).filter(x => x !== 'normal').sort()
  const scoreCols: Column<{ id: string, label: string, what: string, s: ScoresJson }>[] = [
    { key: 'd', header: 'detector', render: r => <span title={r.what}>{r.label}</span> },
    { key: 'p', header: 'precision', align: 'right', title: 'Of the readings it flags, the share labelled anomalous', render: r => <span className='mono'>{fmtRatio(r.s.precision)}</span> },
    { key: 'r', header: 'recall', align: 'right', title: 'Of the labelled anomalies, the share it flags', render: r => <span className='mono'>{fmtRatio(r.s.recall)}</span> },
    { key: 'f', header: 'F1', align: 'right', render: r => <span className='mono strong'>{fmtRatio(r.s.f1)}</span> },
    { key: 'tp', header: 'true +', align: 'right', render: r => <span className='mono'>{fmtInt(r.s.tp)}</span> },
    { key: 'fp', header: 'false +', align: 'right', render: r => <span className='mono'>{fmtInt(r.s.fp)}</span> },
    { key: 'fn', header: 'missed', align: 'right', render: r => <span className='mono'>{fmtInt(r.s.fn)}</span> },
    ...kinds.map(kind => ({
      key: `kind-${kind}`,
      header: `recall: ${kind}`,
      align: 'right' as const,
      title: `Share of the ${kind} anomalies this detector flags`,
      render: (r: { id: string }) => {
        const s = q?.detectors[r.id as keyof QualityJson['detectors']].byKind[kind]
        return <span className='mono' title={s === undefined ? '' : `${s.tp} of ${s.tp + s.fn}`}>{fmtRatio(s?.recall ?? null)}</span>
      }
    }))
  ]

  const modelCols: Column<ModelJson>[] = [
    { key: 'v', header: 'version', render: x => <span className='mono'>{x.version}</span> },
    { key: 'k', header: 'sensor type', render: x => typeLabel(x.key) },
    { key: 's', header: 'sequence', align: 'right', render: x => <span className='mono'>{x.sequence}</span> },
    { key: 't', header: 'trained at (event time, UTC)', render: x => <span className='mono'>{fmtTime(x.trained_at)}</span> },
    { key: 'n', header: 'samples', align: 'right', render: x => <span className='mono'>{fmtInt(x.samples)}</span> },
    { key: 'c', header: 'stored at (UTC)', render: x => <span className='mono'>{fmtTime(x.created_at)}</span> }
  ]

  return (
    <div className='tab'>
      <KpiRow>
        <Kpi label='Scored readings' value={fmtInt(m?.scored)} sub='by a model, all stored readings' testId='kpi-ml-scored' />
        <Kpi label='ML anomalies' value={fmtInt(m === null ? null : m.both + m.mlOnly)} sub={m !== null && m.scored > 0 ? fmtPct((m.both + m.mlOnly) / m.scored) : undefined} testId='kpi-ml-anomalies' />
        <Kpi label='Rule anomalies' value={fmtInt(m === null ? null : m.both + m.ruleOnly)} sub={m !== null && m.scored > 0 ? fmtPct((m.both + m.ruleOnly) / m.scored) : undefined} testId='kpi-rule-anomalies' />
        <Kpi
          label='Rule / ML agreement'
          value={fmtPct(m?.agreement)}
          sub={k === null ? 'Cohen\'s κ —' : `Cohen's κ ${k.toFixed(2)} (beyond chance)`}
          testId='kpi-agreement'
        />
      </KpiRow>
      {quality.error !== null && <div className='notice' role='status'>Detection quality unavailable: {quality.error}</div>}

      <div className='grid two'>
        <Panel title='Rules vs Isolation Forest' caption='readings scored by both, all stored readings'>
          {m === null ? <Empty>{quality.loading ? 'Loading…' : 'No scored readings yet'}</Empty> : <ConfusionMatrix m={m} />}
          {m !== null && (
            <p className='note'>
              Agreement counts the many readings both call normal; κ measures agreement beyond chance.
              {q !== null && q.labelled > 0 && ' The table below checks each detector against the simulator\'s labels.'}
            </p>
          )}
        </Panel>
        <Panel title='Anomaly score distribution' caption={scores.data === null ? undefined : `newest ${fmtInt(scores.data.readings)} scored readings`} error={scores.error}>
          <ScoreHistogram data={scores.data} testId='chart-score-histogram' />
        </Panel>
      </div>

      <Panel
        title='Detector quality against ground truth'
        caption={q === null ? undefined : q.labelled > 0 ? `${fmtInt(q.labelled)} labelled readings, ${fmtInt(q.anomalies)} labelled anomalous (${fmtPct(q.anomalies / q.labelled)})` : 'no labelled readings'}
      >
        {q !== null && q.labelled > 0
          ? <DataTable rows={scoreRows} columns={scoreCols} rowKey={r => r.id} testId='table-detector-scores' empty='—' />
          : <Empty>{quality.loading ? 'Loading…' : 'Precision and recall need labelled readings (the simulator labels its anomalies; real sensors do not).'}</Empty>}
      </Panel>

      <Panel title='Recent ML anomalies' caption={`flagged by the Isolation Forest, newest ${fmtInt(live.mlAnomalies.rows.length)}, live`} error={live.mlAnomalies.error}>
        <ReadingsTable
          rows={live.mlAnomalies.rows}
          testId='table-ml-anomalies'
          extra={['ml_score', 'explanation']}
          empty={live.mlAnomalies.loaded ? 'No ML anomalies yet' : 'Loading…'}
        />
      </Panel>

      <DeviceScores query={query} records={records} />

      <Panel title='Models' caption='newest first' error={models.error}>
        <DataTable rows={models.data ?? []} columns={modelCols} rowKey={x => x.version} testId='table-models' empty={models.loading ? 'Loading…' : 'No model trained yet'} />
      </Panel>
    </div>
  )
}
