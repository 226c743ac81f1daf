// Isolation Forest computing what scikit-learn's IsolationForest computes (scores, offset,
// predictions), trained from our seeded Random, with sklearn's node arrays as its JSON model.
export { IsolationForest, type IsolationForestOptions } from './forest.ts'
export { averagePathLength, float32SplitBound, linearPercentile } from './math.ts'
export { decodeModel, encodeModel, type IsolationForestModel, type IsolationTreeModel, type ParsedModel } from './model.ts'
