// Evaluation, one implementation for every caller: `mnistc eval`, the ONNX training path's
// evaluation after each epoch (an ORT session of the spec's inference graph, `DigitModel`) and the
// tfjs path's (the tfjs model in inference mode). Each hands in its forward pass; the metrics (mean
// NLL of the true class, accuracy, per-class accuracy and the confusion matrix) are computed here
// from the log-probabilities. Pure: no tensors, no onnxruntime.
import { BatchAssembler, type Normalization } from "../data/batches.js";
import type { ImageSplit } from "../data/split.js";
import { argmax } from "../inference/probabilities.js";

/** Images per onnxruntime call: large enough to amortize the call, small enough for the cache. */
export const EVAL_BATCH = 500;

export interface ClassAccuracy {
  class: number;
  count: number;
  correct: number;
  /** A fraction; NaN-free: 0 for a class with no examples. */
  accuracy: number;
}

export interface EvalMetrics {
  count: number;
  correct: number;
  /** A fraction. */
  accuracy: number;
  /** Mean negative log-likelihood of the true class. */
  loss: number;
  perClass: ClassAccuracy[];
  /** confusion[true][predicted]. */
  confusion: number[][];
}

/** Accumulates metrics over batches of log-probabilities. */
export class MetricsAccumulator {
  private count = 0;
  private nll = 0;
  private readonly confusion: number[][];

  constructor(private readonly classes: number) {
    this.confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  }

  /** Adds a batch; returns the images in it predicted wrong: position and predicted digit. */
  add(logProbs: Float32Array, labels: Uint8Array): { at: number; predicted: number }[] {
    const k = this.classes;
    const wrong: { at: number; predicted: number }[] = [];
    for (let i = 0; i < labels.length; i++) {
      const label = labels[i] ?? 0;
      const best = argmax(logProbs, i * k, k);
      if (best !== label) wrong.push({ at: i, predicted: best });
      const row = this.confusion[label];
      if (row) row[best] = (row[best] ?? 0) + 1;
      this.nll -= logProbs[i * k + label] ?? 0;
      this.count++;
    }
    return wrong;
  }

  result(): EvalMetrics {
    const perClass = this.confusion.map((row, c) => {
      const count = row.reduce((a, b) => a + b, 0);
      const correct = row[c] ?? 0;
      return { class: c, count, correct, accuracy: count ? correct / count : 0 };
    });
    const correct = perClass.reduce((s, c) => s + c.correct, 0);
    return {
      count: this.count,
      correct,
      accuracy: this.count ? correct / this.count : 0,
      loss: this.count ? this.nll / this.count : 0,
      perClass,
      confusion: this.confusion.map((row) => [...row]),
    };
  }
}

/** What a training run records of an evaluation. */
export interface EvalResult {
  /** Mean NLL of the true class. */
  loss: number;
  /** A fraction. */
  accuracy: number;
}

/** Log-probabilities (n·classes, row-major) of `n` normalized NCHW images. */
export type Forward = (images: Float32Array, n: number) => Float32Array | Promise<Float32Array>;

/**
 * Loss and accuracy of `forward` over a whole split, normalized by `norm`, in batches of at most
 * `batchSize`.
 */
export async function evaluateSplit(
  split: ImageSplit,
  norm: Normalization,
  classes: number,
  batchSize: number,
  forward: Forward,
): Promise<EvalResult> {
  const batch = Math.max(1, Math.min(batchSize, split.count));
  const assembler = new BatchAssembler(split, batch, classes, norm);
  const metrics = new MetricsAccumulator(classes);
  for (let start = 0; start < split.count; start += batch) {
    const b = assembler.fill(start, Math.min(batch, split.count - start));
    metrics.add(await forward(b.images, b.size), b.labels);
  }
  const { loss, accuracy } = metrics.result();
  return { loss, accuracy };
}
