"""Writes the scikit-learn fixtures of src/anomaly/isolation-forest (its parity tests read them).

scikit-learn is not a dependency of the project: run this in a throwaway virtualenv.

    python3 -m venv /tmp/skl
    /tmp/skl/bin/pip install scikit-learn==1.9.1 numpy==2.4.6 scipy==1.17.1
    /tmp/skl/bin/python scripts/sklearn-fixtures.py

Last run with Python 3.11.7, scikit-learn 1.9.1, numpy 2.4.6, scipy 1.17.1 (each fixture records
the versions it was written with). Deterministic: the same versions write the same files.

It writes into src/anomaly/isolation-forest/fixtures/:

- datasets.json: the data sets (row-major, values rounded to 4 decimals then cast to float32 by
  both sides; written as the shortest decimal that reads back as that float32):
  "project" (1000 rows x 7 features shaped like the pipeline's: value, hour sin, hour cos, rate of
  change, rolling mean/std/range of the last 10 readings, 30 injected spikes), "blob" (2-D Gaussian
  blob with a few far outliers) and "dups" (duplicate rows, a constant feature, a few outliers).
- sklearn-scoring.json: exact scoring. sklearn forests fitted on those data, exported in our
  IsolationForestModel format (sklearn's node arrays), with sklearn's score_samples,
  decision_function and predict on the training rows plus probe rows (values exactly at, just
  below and just above split thresholds, NaN, +-inf, far outside the data). The TS test loads the
  model with fromJSON and must reproduce them.
- sklearn-training.json: training parity. Per data set, sklearn's scores and flags for
  random_state=42 (contamination 0.05), and sklearn's own seed-to-seed band over seeds 0..19:
  Spearman rho of the scores vs seed 42, overlap of the flagged sets vs seed 42, offset_ (and
  offset_'s range over seeds 0..199, see OFFSET_SEEDS).
"""

import json
import math
import os
import platform
import sys

import numpy as np
import scipy
import sklearn
from scipy.stats import spearmanr
from sklearn.ensemble import IsolationForest
from sklearn.ensemble._iforest import _average_path_length

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'src', 'anomaly', 'isolation-forest', 'fixtures')
VERSIONS = {
    'python': platform.python_version(),
    'sklearn': sklearn.__version__,
    'numpy': np.__version__,
    'scipy': scipy.__version__,
}
GENERATED_BY = 'scripts/sklearn-fixtures.py (see its docstring for the install and run commands)'
BAND_SEEDS = list(range(20))
# offset_ is checked two-sided, and the [min, max] of 20 seeds is too narrow a band for that: a forest
# drawn from exactly sklearn's distribution falls outside it with probability 2/21. Its range over
# 200 seeds (2/201) is what the TS test checks each of its seeds against.
OFFSET_SEEDS = list(range(200))


def f32(a):
    """Rounds to 4 decimals and casts to float32, as both sides will read the data."""
    return np.round(np.asarray(a, dtype=np.float64), 4).astype(np.float32)


def f32_json(x):
    """The shortest decimal that reads back (double, then float32) as the float32 value x."""
    if math.isnan(x):
        return None
    if math.isinf(x):
        return 'Infinity' if x > 0 else '-Infinity'
    return float(np.format_float_positional(np.float32(x), unique=True, trim='-'))


def rows_json(X):
    return [f32_json(v) for v in np.asarray(X, dtype=np.float32).ravel()]


def project_data(rng):
    """1000 readings every 5 minutes (about 3.5 days) of a temperature-like sensor, 30 spikes, and
    the pipeline's 7 features of each reading."""
    n = 1000
    t_min = np.arange(n) * 5.0
    hour = (t_min / 60.0 + 6.0) % 24.0
    noise = np.zeros(n)
    for i in range(1, n):
        noise[i] = 0.8 * noise[i - 1] + rng.normal(0, 0.25)
    value = 21.0 + 4.0 * np.sin(2 * np.pi * (hour - 9.0) / 24.0) + noise
    spikes = rng.choice(np.arange(10, n), size=30, replace=False)
    value[spikes] += rng.choice([-1.0, 1.0], size=30) * rng.uniform(6.0, 15.0, size=30)
    feats = np.zeros((n, 7))
    for i in range(n):
        w = value[max(0, i - 9):i + 1]
        feats[i] = [
            value[i],
            np.sin(2 * np.pi * hour[i] / 24.0),
            np.cos(2 * np.pi * hour[i] / 24.0),
            0.0 if i == 0 else (value[i] - value[i - 1]) / 5.0,  # per minute
            w.mean(),
            w.std(),
            w.max() - w.min(),
        ]
    return f32(feats), sorted(int(i) for i in spikes)


def blob_data(rng):
    inliers = rng.normal(0, 1, size=(300, 2))
    angles = rng.uniform(0, 2 * np.pi, size=12)
    radius = rng.uniform(4.5, 7.0, size=12)
    outliers = np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)
    return f32(np.concatenate([inliers, outliers]))


def dups_data(rng):
    """150 rows x 4 features: feature 2 constant, values on a coarse grid so many rows repeat,
    5 outliers."""
    a = rng.integers(0, 4, size=(145, 2)).astype(np.float64)
    b = rng.integers(0, 3, size=(145, 1)).astype(np.float64) * 0.5
    X = np.concatenate([a, np.full((145, 1), 7.0), b], axis=1)
    out = np.array([[9.0, 0.0, 7.0, 0.5], [0.0, 11.0, 7.0, 1.0], [8.0, 8.0, 7.0, 0.0], [1.0, 2.0, 7.0, 6.0], [3.0, 3.0, 7.0, -4.0]])
    return f32(np.concatenate([X, out]))


def node_depths(tree):
    left, right = tree.children_left, tree.children_right
    depth = np.zeros(tree.node_count, dtype=np.int64)
    stack = [0]
    while stack:
        i = stack.pop()
        if left[i] != -1:
            for c in (left[i], right[i]):
                depth[c] = depth[i] + 1
                stack.append(c)
    return depth


def export_model(forest, n_features):
    """Our IsolationForestModel: sklearn's node arrays. Checks that nodeSamples = n_node_samples
    and our path-length rule, (depth + 1) + c(nodeSamples) - 1 at the leaves, are exactly what
    this sklearn version uses."""
    trees = []
    for est, plen, apl in zip(forest.estimators_, forest._decision_path_lengths, forest._average_path_length_per_tree):
        t = est.tree_
        depth = node_depths(t)
        leaves = t.children_left == -1
        assert t.n_node_samples[0] == forest.max_samples_, 'the root holds the whole subsample'
        assert np.array_equal(plen, depth + 1), 'compute_node_depths() is depth + 1'
        ours = (depth + 1) + _average_path_length(t.n_node_samples) - 1.0
        theirs = plen + apl - 1.0
        assert np.array_equal(ours[leaves], theirs[leaves]), 'path lengths from n_node_samples'
        internal = ~leaves
        assert np.array_equal(t.n_node_samples[internal], t.n_node_samples[t.children_left[internal]] + t.n_node_samples[t.children_right[internal]])
        trees.append({
            'left': t.children_left.tolist(),
            'right': t.children_right.tolist(),
            'feature': t.feature.tolist(),
            'threshold': [float(x) for x in t.threshold],
            'nodeSamples': t.n_node_samples.tolist(),
        })
    assert len(forest.estimators_features_[0]) == n_features
    return {
        'version': 1,
        'nFeatures': n_features,
        'maxSamples': int(forest.max_samples_),
        'offset': float(forest.offset_),
        'trees': trees,
    }


def probe_rows(forest, X, rng, count):
    """Rows that test the float32 split rule and NaN / infinity handling: training rows with one
    feature set exactly at a split threshold (a float64 that float32-rounds to either side), at
    the float32 just below / above it, and rows with NaN, +-inf and values far outside."""
    rows = []
    n, d = X.shape
    for _ in range(count):
        est = forest.estimators_[rng.integers(len(forest.estimators_))].tree_
        internal = np.flatnonzero(est.children_left != -1)
        node = internal[rng.integers(len(internal))]
        f, thr = est.feature[node], est.threshold[node]
        base = X[rng.integers(n)].astype(np.float64)
        t32 = np.float32(thr)
        for v in (thr, float(t32), float(np.nextafter(t32, np.float32(-np.inf))), float(np.nextafter(t32, np.float32(np.inf))), float(np.nextafter(thr, np.inf)), float(np.nextafter(thr, -np.inf))):
            r = base.copy()
            r[f] = v
            rows.append(r)
    for f in range(d):
        for v in (np.nan, np.inf, -np.inf, 1e6, -1e6, 1e39):
            r = X[rng.integers(n)].astype(np.float64)
            r[f] = v
            rows.append(r)
    r = np.full(d, np.nan)
    rows.append(r)
    return np.array(rows)


def raw_json(v):
    """Probe values are float64 on purpose (the TS side must float32 them like sklearn): full repr."""
    if math.isnan(v):
        return None
    if math.isinf(v):
        return 'Infinity' if v > 0 else '-Infinity'
    return float(v)


def scoring_case(name, data_name, X, contamination, n_estimators, seed, rng, n_probes):
    forest = IsolationForest(n_estimators=n_estimators, contamination=contamination, random_state=seed).fit(X)
    probes = probe_rows(forest, X, rng, n_probes)
    # sklearn casts to float32 itself; the probes' float64 values exercise that cast.
    P = probes.astype(np.float64)
    with np.errstate(over='ignore'):
        scores_train = forest.score_samples(X)
        scores_probe = forest.score_samples(P)
        dec_train = forest.decision_function(X)
        dec_probe = forest.decision_function(P)
    return {
        'name': name,
        'dataset': data_name,
        'params': {'n_estimators': n_estimators, 'contamination': contamination, 'random_state': seed, 'max_samples': 'auto'},
        'model': export_model(forest, X.shape[1]),
        'probes': [raw_json(v) for v in P.ravel()],
        'scoreSamples': [float(s) for s in scores_train],
        'decisionFunction': [float(s) for s in dec_train],
        'predict': forest.predict(X).tolist(),
        'probeScoreSamples': [float(s) for s in scores_probe],
        'probeDecisionFunction': [float(s) for s in dec_probe],
        'probePredict': forest.predict(P).tolist(),
    }


def training_case(name, X):
    def fit(seed):
        f = IsolationForest(contamination=0.05, random_state=seed).fit(X)
        return f.score_samples(X), f.predict(X), float(f.offset_)
    ref_scores, ref_pred, ref_offset = fit(42)
    ref_flagged = set(np.flatnonzero(ref_pred == -1).tolist())
    rhos, overlaps, offsets = [], [], []
    for s in BAND_SEEDS:
        scores, pred, offset = fit(s)
        rhos.append(float(spearmanr(ref_scores, scores).statistic))
        overlaps.append(len(ref_flagged & set(np.flatnonzero(pred == -1).tolist())))
        offsets.append(offset)
    offsets200 = offsets + [IsolationForest(contamination=0.05, random_state=s).fit(X).offset_ for s in OFFSET_SEEDS[len(BAND_SEEDS):]]
    return {
        'dataset': name,
        'contamination': 0.05,
        'reference': {
            'random_state': 42,
            'offset': ref_offset,
            'scoreSamples': [float(s) for s in ref_scores],
            'flagged': sorted(ref_flagged),
        },
        'band': {
            'seeds': BAND_SEEDS,
            'spearman': {'min': min(rhos), 'median': float(np.median(rhos)), 'values': rhos},
            'overlap': {'min': min(overlaps), 'median': float(np.median(overlaps)), 'values': overlaps},
            'offset': {'min': min(offsets), 'max': max(offsets), 'values': offsets},
            'offset200': {
                'seeds': f'{OFFSET_SEEDS[0]}..{OFFSET_SEEDS[-1]}',
                'min': float(min(offsets200)),
                'max': float(max(offsets200)),
                'mean': float(np.mean(offsets200)),
                'sd': float(np.std(offsets200)),
            },
        },
    }


def write(name, obj):
    path = os.path.join(OUT, name)
    with open(path, 'w') as fh:
        json.dump(obj, fh, separators=(',', ':'), allow_nan=False)
        fh.write('\n')
    print(f'wrote {os.path.relpath(path)} ({os.path.getsize(path) // 1024} KiB)')


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20260101)
    project, spikes = project_data(rng)
    blob = blob_data(rng)
    dups = dups_data(rng)
    data = {'project': project, 'blob': blob, 'dups': dups}
    meta = {'generatedBy': GENERATED_BY, 'versions': VERSIONS}
    write('datasets.json', {
        **meta,
        'datasets': {
            k: {'nFeatures': int(X.shape[1]), 'nRows': int(X.shape[0]), 'data': rows_json(X), **({'spikes': spikes} if k == 'project' else {})}
            for k, X in data.items()
        },
    })
    prng = np.random.default_rng(7)
    write('sklearn-scoring.json', {
        **meta,
        'note': 'sklearn forests exported as IsolationForestModel; probes are float64 rows (null = NaN) scored after sklearn\'s float32 cast',
        'cases': [
            # 20 trees keep the file small (sklearn's node arrays take ~30 KB per 10 trees of 256
            # samples); scoring adds tree by tree, so this proves the scorer as well as 100 would.
            scoring_case('project, contamination 0.05', 'project', project, 0.05, 20, 42, prng, 25),
            scoring_case('dups, contamination auto', 'dups', dups, 'auto', 20, 42, prng, 10),
            scoring_case('dups, contamination 0.05', 'dups', dups, 0.05, 20, 3, prng, 10),
        ],
    })
    write('sklearn-training.json', {**meta, 'cases': [training_case(k, X) for k, X in data.items()]})


if __name__ == '__main__':
    sys.exit(main())
