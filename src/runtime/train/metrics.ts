// What a training run records: one entry per epoch, plus what ran it. Written as `metrics.json`
// after every epoch, and kept in the checkpoint so a resumed run continues the same record.
// Accuracies are fractions in [0, 1]; losses are mean NLL per example.

export interface EpochMetrics {
  /** 1-based. */
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  testLoss: number;
  testAccuracy: number;
  /** The learning rate at the epoch's last batch. */
  lr: number;
  /** Wall-clock seconds for the epoch (training and evaluation). */
  seconds: number;
}

/** The options a run actually used (after spec defaults and overrides). */
export interface RunOptions {
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
  trainLimit?: number;
  testLimit?: number;
  data: string;
  out: string;
  resume: boolean;
}

export interface RunMetrics {
  spec: string;
  /** The TensorFlow.js engine (the model, and the steps on the tfjs backend). */
  engine: string;
  /** What took the training steps: `tfjs`, or `onnx` (the compiled step on onnxruntime). */
  backend: string;
  options: RunOptions;
  trainExamples: number;
  testExamples: number;
  epochs: EpochMetrics[];
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

export function formatEpochSummary(m: EpochMetrics, epochs: number): string {
  return (
    `epoch ${m.epoch}/${epochs}  train loss ${m.trainLoss.toFixed(4)} acc ${formatPercent(m.trainAccuracy)}` +
    `  test loss ${m.testLoss.toFixed(4)} acc ${formatPercent(m.testAccuracy)}` +
    `  lr ${formatLr(m.lr)}  ${m.seconds.toFixed(1)}s`
  );
}

export function formatLr(lr: number): string {
  return Number(lr.toPrecision(4)).toString();
}
