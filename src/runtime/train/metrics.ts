// What a training run records: one entry per epoch, plus what ran it. Written as `metrics.json`
// after every epoch, and kept in the checkpoint so a resumed run continues the same record.
// Accuracies are fractions in [0, 1]; losses are mean NLL per example.
import type { DatasetName, PreprocessProfile } from "../../compiler/datasets.js";

export interface EpochMetrics {
  /** 1-based. */
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  /** On the test set; absent in a run with a validation split (`--val`), which never reads it. */
  testLoss?: number;
  testAccuracy?: number;
  /** On the validation split (`--val N`: the last N training images, not trained on). */
  valLoss?: number;
  valAccuracy?: number;
  /** The learning rate at the epoch's last batch. */
  lr: number;
  /** Wall-clock seconds for the epoch (training and evaluation). */
  seconds: number;
  /** Of those, the seconds inside the training steps (forward, backward, update); the rest is
   * batch assembly and augmentation, the held-out pass and the epoch's outputs. Absent in records
   * written before it was kept. */
  stepSeconds?: number;
}

/** The options a run actually used (after spec defaults and overrides). */
export interface RunOptions {
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
  trainLimit?: number;
  testLimit?: number;
  /** The size of the validation split held out from the end of the training images. */
  val?: number;
  /** A distilling run's teacher models, as resolved paths (the spec's, or `--teacher`). */
  teachers?: string[];
  data: string;
  out: string;
  resume: boolean;
}

export interface RunMetrics {
  spec: string;
  /**
   * What ran the steps: the TensorFlow.js engine on the tfjs backend (`wasm`, `cpu`, `tensorflow`),
   * `onnxruntime` on the ONNX one (runs before the ONNX path left tfjs record tfjs's engine).
   */
  engine: string;
  /** What took the training steps: `tfjs`, or `onnx` (the compiled step on onnxruntime). */
  backend: string;
  options: RunOptions;
  trainExamples: number;
  /** 0 in a run with a validation split. */
  testExamples: number;
  valExamples?: number;
  /** What the run trained on (absent in runs from before datasets beyond MNIST: mnist). */
  dataset?: DatasetRecord;
  epochs: EpochMetrics[];
}

/** The dataset of a run, resolved: what `model.onnx`'s metadata records. */
export interface DatasetRecord {
  name: DatasetName;
  dir: string;
  classNames: string[];
  mean: number[];
  std: number[];
  preprocess: PreprocessProfile;
}

/** Running sums over the batches of an epoch. */
export class RunningMetrics {
  private lossSum = 0;
  private correct = 0;
  private seen = 0;
  private batches = 0;

  /** `meanLoss` is the batch's mean NLL, as PyTorch's `loss.item()`. */
  add(meanLoss: number, correct: number, size: number): void {
    this.lossSum += meanLoss;
    this.correct += correct;
    this.seen += size;
    this.batches++;
  }

  /** The seed's train loss: the mean over batches of the batch mean. */
  get loss(): number {
    return this.batches === 0 ? 0 : this.lossSum / this.batches;
  }

  get accuracy(): number {
    return this.seen === 0 ? 0 : this.correct / this.seen;
  }

  get examples(): number {
    return this.seen;
  }
}

export function formatPercent(fraction: number): string {
  return `${(fraction * 100).toFixed(2)}%`;
}

/** Which held-out split an epoch was evaluated on, and its figures. */
export function heldOut(m: EpochMetrics): {
  split: "val" | "test";
  loss: number;
  accuracy: number;
} {
  if (m.valLoss !== undefined && m.valAccuracy !== undefined) {
    return { split: "val", loss: m.valLoss, accuracy: m.valAccuracy };
  }
  if (m.testLoss !== undefined && m.testAccuracy !== undefined) {
    return { split: "test", loss: m.testLoss, accuracy: m.testAccuracy };
  }
  throw new Error(`epoch ${m.epoch} has neither test nor validation figures`);
}

export function formatEpochSummary(m: EpochMetrics, epochs: number): string {
  const held = heldOut(m);
  return (
    `epoch ${m.epoch}/${epochs}  train loss ${m.trainLoss.toFixed(4)} acc ${formatPercent(m.trainAccuracy)}` +
    `  ${held.split} loss ${held.loss.toFixed(4)} acc ${formatPercent(held.accuracy)}` +
    `  lr ${formatLr(m.lr)}  ${m.seconds.toFixed(1)}s`
  );
}

export function formatLr(lr: number): string {
  return Number(lr.toPrecision(4)).toString();
}
