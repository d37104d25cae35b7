// One training step, as the seed's PyTorch loop takes it: forward in training mode, mean NLL on the
// log-softmax output, backward, optimizer update: the tfjs backend's `trainStep`, which
// `npm run bench:train` times too. And what every backend's stepper is to the training loop.
import type * as tfNs from "@tensorflow/tfjs";
import type { DistillIR, InputIR, WeightMap } from "../../compiler/ir.js";
import type { Batch, Normalization } from "../data/batches.js";
import type { ImageSplit } from "../data/split.js";
import type { EvalResult } from "../eval/evaluate.js";
import type { NamedParam, Optimizer, StepHyper } from "./optim.js";
import type { TrainSpec } from "./spec.js";
import type { ModelState } from "./state.js";

type Tf = typeof tfNs;
type Tensor = tfNs.Tensor;

/** The run's trainable parameters in model order, under their stable (unsuffixed) names. */
export function namedParams(model: tfNs.LayersModel): NamedParam[] {
  return model.trainableWeights.map((w) => ({
    name: w.originalName,
    variable: w.read() as tfNs.Variable,
  }));
}

/**
 * A batch of NCHW images as the NHWC tensor tfjs's layers take: the same bytes for one channel,
 * a transpose for more.
 */
export function nhwcImages(
  tf: Tf,
  images: Float32Array,
  [n, c, h, w]: [number, number, number, number],
): tfNs.Tensor4D {
  if (c === 1) return tf.tensor4d(images, [n, h, w, 1]);
  return tf.tidy(() => tf.transpose(tf.tensor4d(images, [n, c, h, w]), [0, 2, 3, 1]));
}

/** Mean NLL of log-probabilities `logp` [B, C] against one-hot targets [B, C]. */
export function nllLoss(tf: Tf, logp: Tensor, oneHot: Tensor): tfNs.Scalar {
  return tf.div(tf.neg(tf.sum(tf.mul(logp, oneHot))), logp.shape[0] as number) as tfNs.Scalar;
}

/**
 * The distilling loss: (1-w)·NLL + w·T²·KL(p̄_T ‖ softmax(logp/T)), batch mean. 0·log 0 is 0:
 * a teacher probability that underflowed adds nothing.
 */
export function distillLoss(
  tf: Tf,
  logp: Tensor,
  targets: Tensor,
  teacher: Tensor,
  { weight, temperature }: Pick<DistillIR, "weight" | "temperature">,
): tfNs.Scalar {
  const student = tf.logSoftmax(tf.div(logp, temperature));
  const kl = tf.sum(tf.mul(teacher, tf.sub(tf.log(tf.maximum(teacher, 1e-30)), student)));
  const soft = tf.mul(tf.div(kl, logp.shape[0] as number), weight * temperature * temperature);
  return tf.add(tf.mul(nllLoss(tf, logp, targets), 1 - weight), soft) as tfNs.Scalar;
}

export function countCorrect(tf: Tf, logp: Tensor, oneHot: Tensor): Tensor {
  return tf.sum(tf.cast(tf.equal(tf.argMax(logp, 1), tf.argMax(oneHot, 1)), "int32"));
}

/** One step: forward in training mode, mean NLL, backward, optimizer update; loss and hits. */
export function trainStep(
  tf: Tf,
  model: tfNs.LayersModel,
  params: NamedParam[],
  optimizer: Optimizer,
  batch: Batch,
  input: InputIR,
  hyper: StepHyper,
  distill?: DistillIR,
): { loss: number; correct: number } {
  const classes = batch.targets.length / batch.size;
  if (distill && !batch.teacher)
    throw new Error("trainStep: a distilling step needs batch.teacher");
  let correctT: Tensor | undefined;
  const lossT = tf.tidy(() => {
    const x = nhwcImages(tf, batch.images, [batch.size, input.channels, input.height, input.width]);
    const y = tf.tensor2d(batch.targets, [batch.size, classes]);
    const { value, grads } = tf.variableGrads(
      () => {
        const logp = model.apply(x, { training: true }) as Tensor;
        // Kept out of the gradient's tidy: the accuracy needs the same forward pass.
        correctT = tf.keep(countCorrect(tf, logp, y));
        if (!distill || !batch.teacher) return nllLoss(tf, logp, y);
        const teacher = tf.tensor2d(batch.teacher, [batch.size, classes]);
        return distillLoss(tf, logp, y, teacher, distill);
      },
      params.map((p) => p.variable),
    );
    optimizer.step(
      params,
      params.map((p) => grads[p.variable.name] as Tensor),
      hyper,
    );
    return value;
  });
  const loss = (lossT.dataSync() as Float32Array)[0] as number;
  lossT.dispose();
  const kept = correctT as Tensor | undefined;
  const correct = kept ? ((kept.dataSync() as Int32Array)[0] as number) : 0;
  kept?.dispose();
  return { loss, correct };
}

export interface StepResult {
  loss: number;
  correct: number;
}

/**
 * What takes the training steps of a run, on one backend: the tfjs model (`runtime/tfjs/trainer.ts`)
 * or the compiled ONNX step (`runtime/onnx-train/stepper.ts`). It starts from a backend-neutral
 * `ModelState` (or its seeded initialization), and hands one back for each checkpoint.
 */
export interface Stepper {
  /** What ran, for the log and metrics.json: `tfjs`, `onnx (onnxruntime 2 threads)`. */
  readonly backend: string;
  /** Trainable parameters (weights and biases, not buffers), counted as PyTorch counts them. */
  readonly trainable: number;
  step(batch: Batch, hyper: StepHyper): Promise<StepResult>;
  /** The weights, buffers, optimizer slots and dropout streams as they stand: PyTorch's names. */
  state(): Promise<ModelState>;
  /**
   * Loss and accuracy over a split in inference mode, with the model's weights or `weights` (the
   * averaged ones of `train.ema`; a stepper that cannot evaluate other weights says so by
   * `evaluatesOthers` false).
   */
  evaluate(split: ImageSplit, norm: Normalization, weights?: WeightMap): Promise<EvalResult>;
  /** Whether `evaluate` takes other weights (train.ema needs it). */
  readonly evaluatesOthers?: boolean;
  dispose(): void;
}

export interface StepperStart {
  spec: TrainSpec;
  /** The run's seed: of the initial weights and of the dropout streams. */
  seed: number;
  batchSize: number;
  /** Where to start (a checkpoint's state); absent: the seeded PyTorch initialization. */
  state?: ModelState;
  /** Where `state` came from, for errors (a checkpoint folder). */
  source?: string;
}

/** Builds a run's stepper when training starts (after a resume is read). */
export type StepperFactory = (start: StepperStart) => Promise<Stepper>;
