// Batch assembly: seeded shuffling per epoch, optional augmentation, normalization, one-hot targets.
// Pure typed-array loops into buffers reused across batches (no per-pixel allocation).
import type { AugmentIR } from "../../compiler/ir.js";
import type { Rng } from "../../util/rng.js";
import { affineImage, augments, drawAffine } from "./augment.js";
import type { MnistSplit } from "./mnist.js";

export interface Normalization {
  /** x' = (x/255 - mean) / std (one channel). */
  mean: number;
  std: number;
}

export interface TargetOptions {
  /** ε of label smoothing: targets (1-ε)·one-hot + ε/classes (training batches only). */
  labelSmoothing?: number;
}

export interface Batch {
  /** Number of examples in this batch (the last one of an epoch may be short). */
  size: number;
  /** size·rows·cols normalized pixels (NHWC with one channel equals NCHW). */
  images: Float32Array;
  /** size·classes targets: one-hot, or smoothed one-hot with label smoothing. */
  targets: Float32Array;
  /** A distilling run's: the teachers' mean softmax(z/T), size·classes (`train/distill.ts`). */
  teacher?: Float32Array;
  labels: Uint8Array;
}

/** The order of one epoch: a Fisher–Yates permutation of 0..count-1 drawn from `rng`. */
export function epochOrder(count: number, rng: Rng): Uint32Array {
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  return rng.shuffle(order);
}

export function batchCount(count: number, batchSize: number): number {
  return Math.ceil(count / batchSize);
}

export class BatchAssembler {
  private readonly pixels: number;
  private readonly images: Float32Array;
  private readonly targets: Float32Array;
  private readonly labels: Uint8Array;
  /** Normalized value of each byte, so the common (unrotated) path is one lookup per pixel. */
  private readonly lookup = new Float32Array(256);
  private readonly scale: number;
  private readonly shift: number;
  /** Target values of the true class and of every other. */
  private readonly on: number;
  private readonly off: number;

  constructor(
    private readonly split: MnistSplit,
    private readonly maxBatch: number,
    private readonly classes: number,
    norm: Normalization,
    targets: TargetOptions = {},
  ) {
    const eps = targets.labelSmoothing ?? 0;
    this.off = eps / classes;
    this.on = 1 - eps + this.off;
    this.pixels = split.rows * split.cols;
    this.images = new Float32Array(maxBatch * this.pixels);
    this.targets = new Float32Array(maxBatch * classes);
    this.labels = new Uint8Array(maxBatch);
    this.scale = 1 / (255 * norm.std);
    this.shift = -norm.mean / norm.std;
    for (let v = 0; v < 256; v++) this.lookup[v] = v * this.scale + this.shift;
  }

  /**
   * Fills the batch of examples `order[start .. start+size)` (or `start ..` when `order` is
   * omitted). With an `augment` recipe that changes images, each gets a transform drawn from `rng`.
   * The returned arrays are views into reused buffers: valid until the next call.
   */
  fill(start: number, size: number, order?: Uint32Array, augment?: AugmentIR, rng?: Rng): Batch {
    if (size > this.maxBatch) throw new Error(`batch of ${size} > ${this.maxBatch}`);
    const { split, pixels, images, targets, labels, lookup, classes } = this;
    const transform = augment !== undefined && augments(augment) ? augment : undefined;
    targets.fill(this.off, 0, size * classes);
    for (let b = 0; b < size; b++) {
      const index = order ? (order[start + b] as number) : start + b;
      const label = split.labels[index] as number;
      labels[b] = label;
      targets[b * classes + label] = this.on;
      const src = index * pixels;
      const dst = b * pixels;
      if (transform && rng) {
        const t = drawAffine(transform, split.rows, split.cols, rng);
        affineImage(split.images, src, split.rows, split.cols, t, images, dst);
        for (let i = dst; i < dst + pixels; i++)
          images[i] = (images[i] as number) * this.scale + this.shift;
      } else {
        for (let i = 0; i < pixels; i++)
          images[dst + i] = lookup[split.images[src + i] as number] as number;
      }
    }
    return {
      size,
      images: images.subarray(0, size * pixels),
      targets: targets.subarray(0, size * classes),
      labels: labels.subarray(0, size),
    };
  }
}
