import { type DetectionCount } from '../domain/index.ts'

export const detectorNames = ['rule', 'zscore', 'ml', 'stuck', 'drift', 'combined'] as const
export type DetectorName = (typeof detectorNames)[number]

/** Confusion counts and the usual measures (null where the denominator is 0). */
export interface Scores {
  tp: number
  fp: number
  fn: number
  precision: number | null
  recall: number | null
  f1: number | null
}

export interface DetectorQuality {
  /** Every labelled anomaly against every labelled normal reading. */
  overall: Scores
  /**
   * Per anomaly kind: recall over the readings of that kind; precision counts as false positives
   * the flagged readings labelled normal (readings of other kinds count for neither).
   */
  byKind: Record<string, Scores>
}

export interface RuleVsMl {
  /** Labelled or not, readings the Isolation Forest scored (a model existed). */
  scored: number
  both: number
  ruleOnly: number
  mlOnly: number
  neither: number
  /** (both + neither) / scored. */
  agreement: number | null
}

export interface DetectionQuality {
  /** Readings with a ground-truth label (from the simulator); the measures cover only these. */
  labelled: number
  anomalies: number
  /** Labelled readings per kind (`normal` included). */
  labels: Record<string, number>
  detectors: Record<DetectorName, DetectorQuality>
  ruleVsMl: RuleVsMl
}

function flagged (c: DetectionCount, d: DetectorName): boolean {
  switch (d) {
    case 'rule': return c.ruleAnomaly
    case 'zscore': return c.zAnomaly
    case 'ml': return c.mlState === 1 // no model yet: not flagged
    case 'stuck': return c.stuckAnomaly
    case 'drift': return c.driftAnomaly
    case 'combined': return c.combinedAnomaly
  }
}

export function scores (tp: number, fp: number, fn: number): Scores {
  const precision = tp + fp === 0 ? null : tp / (tp + fp)
  const recall = tp + fn === 0 ? null : tp / (tp + fn)
  const f1 = precision === null || recall === null || precision + recall === 0 ? null : 2 * precision * recall / (precision + recall)
  return { tp, fp, fn, precision, recall, f1 }
}

/**
 * Precision, recall and F1 of each detector, overall and per anomaly kind, and the rule-vs-ML
 * confusion matrix, from the detection counts. Unlabelled readings count only in `ruleVsMl`.
 */
export function detectionQuality (counts: Iterable<DetectionCount>): DetectionQuality {
  const labels: Record<string, number> = {}
  const hits: Record<DetectorName, Record<string, number>> = { rule: {}, zscore: {}, ml: {}, stuck: {}, drift: {}, combined: {} }
  const rvm = { scored: 0, both: 0, ruleOnly: 0, mlOnly: 0, neither: 0 }
  for (const c of counts) {
    if (c.mlState !== -1) {
      rvm.scored += c.readings
      const ml = c.mlState === 1
      if (c.ruleAnomaly && ml) rvm.both += c.readings
      else if (c.ruleAnomaly) rvm.ruleOnly += c.readings
      else if (ml) rvm.mlOnly += c.readings
      else rvm.neither += c.readings
    }
    if (c.label === 'unlabelled') continue
    labels[c.label] = (labels[c.label] ?? 0) + c.readings
    for (const d of detectorNames) {
      if (flagged(c, d)) hits[d][c.label] = (hits[d][c.label] ?? 0) + c.readings
    }
  }
  const kinds = Object.keys(labels).filter(k => k !== 'normal').sort()
  const normal = labels.normal ?? 0
  const anomalies = kinds.reduce((n, k) => n + (labels[k] ?? 0), 0)
  const detectors = {} as Record<DetectorName, DetectorQuality>
  for (const d of detectorNames) {
    const h = hits[d]
    const fp = h.normal ?? 0
    const byKind: Record<string, Scores> = {}
    let tp = 0
    for (const k of kinds) {
      const t = h[k] ?? 0
      tp += t
      byKind[k] = scores(t, fp, (labels[k] ?? 0) - t)
    }
    detectors[d] = { overall: scores(tp, fp, anomalies - tp), byKind }
  }
  return {
    labelled: normal + anomalies,
    anomalies,
    labels,
    detectors,
    ruleVsMl: { ...rvm, agreement: rvm.scored === 0 ? null : (rvm.both + rvm.neither) / rvm.scored }
  }
}

const pct = (x: number | null): string => x === null ? '-' : (100 * x).toFixed(1)

/** A plain-text table of a quality report (precision / recall / F1 in %), for the CLI and benchmarks. */
export function formatQuality (q: DetectionQuality, title = 'Detection quality'): string {
  if (q.labelled === 0) return `${title}: no labelled readings (ground truth comes from the simulator).`
  const kinds = Object.keys(q.labels).filter(k => k !== 'normal').sort()
  const cols = ['all', ...kinds]
  const lines = [`${title} over ${q.labelled} labelled readings (${q.anomalies} anomalous; ${kinds.map(k => `${k} ${q.labels[k] ?? 0}`).join(', ')}).`,
    'Precision / recall / F1 in %; per kind, false positives are the flagged normal readings.',
    ['detector', ...cols].map((c, i) => i === 0 ? c.padEnd(10) : c.padStart(20)).join('')]
  for (const d of detectorNames) {
    const dq = q.detectors[d]
    const cells = cols.map(c => {
      const s = c === 'all' ? dq.overall : dq.byKind[c]
      return s === undefined ? '-' : `${pct(s.precision)}/${pct(s.recall)}/${pct(s.f1)}`
    })
    lines.push(d.padEnd(10) + cells.map(c => c.padStart(20)).join(''))
  }
  const r = q.ruleVsMl
  lines.push(`Rule vs ML over ${r.scored} scored readings: both ${r.both}, rule only ${r.ruleOnly}, ML only ${r.mlOnly}, neither ${r.neither}; agreement ${pct(r.agreement)}%.`)
  return lines.join('\n')
}
