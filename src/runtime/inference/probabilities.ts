// From a model's log-probabilities to what users see: probabilities that sum to 1 and the winner.
// The one implementation `eval`, `predict` and `serve` share.

/** Probabilities from one row of log-probabilities, renormalized so they sum to exactly 1. */
export function toProbabilities(logProbs: ArrayLike<number>): number[] {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logProbs.length; i++) max = Math.max(max, logProbs[i] ?? max);
  const exps = Array.from(logProbs, (v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

/** Index of the largest of `length` values from `start` (the first on ties), relative to `start`. */
export function argmax(
  values: ArrayLike<number>,
  start = 0,
  length = values.length - start,
): number {
  let best = 0;
  for (let i = 1; i < length; i++) {
    if (
      (values[start + i] ?? Number.NEGATIVE_INFINITY) >
      (values[start + best] ?? Number.NEGATIVE_INFINITY)
    )
      best = i;
  }
  return best;
}
