// Batch assembly: seeded shuffling per epoch, optional augmentation, per-channel normalization,
// one-hot targets. Images stay NCHW (a tfjs consumer transposes). Pure typed-array loops into
// buffers reused across batches (no per-pixel allocation).
import type { AugmentIR } from "../../compiler/ir.js";
import type { Rng } from "../../util/rng.js";
import { augmentImage, augments } from "./augment.js";
import { type ImageSplit, imageBytes } from "./split.js";

export interface Normalization {
  /** Per channel: x' = (x/255 - mean[c]) / std[c]. */
  mean: readonly number[];
  std: readonly number[];
}

export interface TargetOptions {
  /** ε of label smoothing: targets (1-ε)·one-hot + ε/classes (training batches only). */
  labelSmoothing?: number;
}

export interface Batch {
  /** Number of examples in this batch (the last one of an epoch may be short). */
  size: number;
  /** size·channels·rows·cols normalized pixels, NCHW. */
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
  private readonly plane: number;
  private readonly images: Float32Array;
  private readonly targets: Float32Array;
  private readonly labels: Uint8Array;
  /** Normalized value of each byte per channel, so the plain path is one lookup per pixel. */
  private readonly lookup: Float32Array[];
  private readonly scale: number[];
  private readonly shift: number[];
  /** One augmented image in the source's 0..255 range. */
  private readonly scratch: Float32Array;
  /** Target values of the true class and of every other. */
  private readonly on: number;
  private readonly off: number;

  constructor(
    private readonly split: ImageSplit,
    private readonly maxBatch: number,
    private readonly classes: number,
    norm: Normalization,
    targets: TargetOptions = {},
  ) {
    if (norm.mean.length !== split.channels || norm.std.length !== split.channels) {
      throw new Error(
        `normalization of ${norm.mean.length}/${norm.std.length} channels for ${split.channels}-channel images`,
      );
    }
    const eps = targets.labelSmoothing ?? 0;
    this.off = eps / classes;
    this.on = 1 - eps + this.off;
    this.plane = split.rows * split.cols;
    this.pixels = imageBytes(split);
    this.images = new Float32Array(maxBatch * this.pixels);
    this.targets = new Float32Array(maxBatch * classes);
    this.labels = new Uint8Array(maxBatch);
    this.scratch = new Float32Array(this.pixels);
    this.scale = norm.std.map((s) => 1 / (255 * s));
    this.shift = norm.mean.map((m, c) => -m / (norm.std[c] as number));
    this.lookup = this.scale.map((scale, c) => {
      const table = new Float32Array(256);
      for (let v = 0; v < 256; v++) table[v] = v * scale + (this.shift[c] as number);
      return table;
    });
  }

  /**
   * Fills the batch of examples `order[start .. start+size)` (or `start ..` when `order` is
   * omitted). With an `augment` recipe that changes images, each gets a transform drawn from `rng`.
   * The returned arrays are views into reused buffers: valid until the next call.
   */
  fill(start: number, size: number, order?: Uint32Array, augment?: AugmentIR, rng?: Rng): Batch {
    if (size > this.maxBatch) throw new Error(`batch of ${size} > ${this.maxBatch}`);
    const { split, pixels, plane, images, targets, labels, lookup, classes, scratch } = this;
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
        augmentImage(split, index, transform, rng, scratch);
        for (let c = 0; c < split.channels; c++) {
          const scale = this.scale[c] as number;
          const shift = this.shift[c] as number;
          for (let i = c * plane; i < (c + 1) * plane; i++)
            images[dst + i] = (scratch[i] as number) * scale + shift;
        }
      } else {
        for (let c = 0; c < split.channels; c++) {
          const table = lookup[c] as Float32Array;
          for (let i = c * plane; i < (c + 1) * plane; i++)
            images[dst + i] = table[split.images[src + i] as number] as number;
        }
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
