// The stated range of every number a training run takes from its spec (`train:`) or its command
// line, checked before any work: the schema holds the spec's fields to them and the option
// parsers the flags. Beyond them a number is absurd, not merely large: a batch of 1e20 overflows
// a typed array, 100,000 onnxruntime threads never start, and a seed past 32 bits is cut by the
// RNG (so the run's checkpoint would record a seed it did not use). Pure, no imports: the
// training runtime (what emitted programs import) reads it too.

export interface Range {
  min: number;
  max: number;
}

export const RANGES = {
  /** A run of MNIST's 60,000 images takes seconds per epoch at best: 10,000 is days. */
  epochs: { min: 1, max: 10_000 },
  /** One batch of 28x28 float32 images at the maximum is 205 MB before any activation. */
  batchSize: { min: 1, max: 65_536 },
  /** The RNG (sfc32 through splitmix32) and the checkpoint keep 32 bits. */
  seed: { min: 0, max: 2 ** 32 - 1 },
  /** --train-limit, --test-limit, --val: counts of images (any data set is far smaller). */
  images: { min: 1, max: 2 ** 31 - 1 },
  /** onnxruntime's threads (--threads): each is an OS thread with its own stack. */
  threads: { min: 1, max: 256 },
} as const satisfies Record<string, Range>;

/** `1-65,536`, as the messages and the README state a range. */
export const rangeText = (r: Range): string =>
  `${r.min.toLocaleString("en-US")}-${r.max.toLocaleString("en-US")}`;
