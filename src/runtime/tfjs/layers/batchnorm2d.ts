// PyTorch's nn.BatchNorm2d as a tfjs layer (NHWC: channels are the last axis).
//
// Training: normalise with the batch mean and the biased batch variance; update
//   running_mean = (1 - m)·running_mean + m·mean
//   running_var  = (1 - m)·running_var  + m·var·n/(n-1)      (unbiased, n values per channel)
// Inference: normalise with the running statistics. Weights `weight` (γ), `bias` (β),
// `running_mean`, `running_var`, as in PyTorch's state_dict.
//
// Why not tf.layers.batchNormalization: its momentum counts the other way, it keeps the biased
// variance, and on wasm its gradient is where a training step goes (tfjs tiles the statistics to the
// input's shape and reduces over non-inner axes: ~1.1 s of a 1.7 s step). Here every per-channel
// reduction is an average pooling over all pixels (XNNPACK, channels inner), every per-channel
// affine map one 1×1 depthwise convolution with bias, and the gradient is written by hand:
//   dx = γ·invstd·(dy − mean(dy) − x̂·mean(dy·x̂)),  dγ = Σ dy·x̂,  dβ = Σ dy.
import * as tf from "@tensorflow/tfjs";

export interface BatchNorm2dConfig {
  name?: string;
  /** Added to the variance before the square root (PyTorch's eps). Default 1e-5. */
  eps?: number;
  /** Weight of the new batch statistic in the running average (PyTorch's momentum). Default 0.1. */
  momentum?: number;
  /** Shape of one example, when this is a model's first layer. */
  inputShape?: tf.Shape;
  trainable?: boolean;
}

/** tfjs-layers' kwargs: `training` is set by fit/evaluate and by `apply(x, {training})`. */
type CallArgs = { training?: boolean } & Record<string, unknown>;

export class BatchNorm2d extends tf.layers.Layer {
  static className = "BatchNorm2d";

  readonly eps: number;
  readonly momentum: number;
  private gamma?: tf.LayerVariable;
  private beta?: tf.LayerVariable;
  private runningMean?: tf.LayerVariable;
  private runningVar?: tf.LayerVariable;

  constructor(config: BatchNorm2dConfig = {}) {
    super(config);
    this.eps = config.eps ?? 1e-5;
    this.momentum = config.momentum ?? 0.1;
    if (!(this.eps > 0)) throw new Error(`BatchNorm2d ${this.name}: eps must be > 0`);
    if (!(this.momentum >= 0 && this.momentum <= 1)) {
      throw new Error(`BatchNorm2d ${this.name}: momentum must be in [0, 1]`);
    }
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const channels = shape[shape.length - 1];
    if (typeof channels !== "number") {
      throw new Error(`BatchNorm2d ${this.name}: the channel axis (last) must have a known size`);
    }
    this.gamma = this.addWeight(
      "weight",
      [channels],
      "float32",
      tf.initializers.ones(),
      undefined,
      true,
    );
    this.beta = this.addWeight(
      "bias",
      [channels],
      "float32",
      tf.initializers.zeros(),
      undefined,
      true,
    );
    this.runningMean = this.addWeight(
      "running_mean",
      [channels],
      "float32",
      tf.initializers.zeros(),
      undefined,
      false,
    );
    this.runningVar = this.addWeight(
      "running_var",
      [channels],
      "float32",
      tf.initializers.ones(),
      undefined,
      false,
    );
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: CallArgs): tf.Tensor {
    const x = Array.isArray(inputs) ? (inputs[0] as tf.Tensor) : inputs;
    const gamma = (this.gamma as tf.LayerVariable).read();
    const beta = (this.beta as tf.LayerVariable).read();
    if (kwargs.training !== true) {
      return batchNormInference(
        x,
        (this.runningMean as tf.LayerVariable).read(),
        (this.runningVar as tf.LayerVariable).read(),
        gamma,
        beta,
        this.eps,
      );
    }
    const { y, mean, variance, count } = batchNormTraining(x, gamma, beta, this.eps);
    this.updateRunningStats(mean, variance, count);
    return y;
  }

  private updateRunningStats(mean: tf.Tensor1D, variance: tf.Tensor1D, count: number): void {
    const m = this.momentum;
    const runningMean = this.runningMean as tf.LayerVariable;
    const runningVar = this.runningVar as tf.LayerVariable;
    tf.tidy(() => {
      const unbiased = variance.mul(count / (count - 1));
      runningMean.write(
        runningMean
          .read()
          .mul(1 - m)
          .add(mean.mul(m)),
      );
      runningVar.write(
        runningVar
          .read()
          .mul(1 - m)
          .add(unbiased.mul(m)),
      );
    });
    mean.dispose();
    variance.dispose();
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), eps: this.eps, momentum: this.momentum };
  }
}

tf.serialization.registerClass(BatchNorm2d);

/** Per-channel mean over every axis but the last, as [C]. Average pooling keeps channels inner. */
export function channelMean(x: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => {
    const channels = x.shape[x.rank - 1] as number;
    const perImage = x.rank >= 3 ? x.size / (channels * (x.shape[0] as number)) : 1;
    const images = x.size / (channels * perImage);
    // Two short accumulations (pixels of an image, then images) rather than one long one keep
    // float32 rounding small.
    const pooled = tf.avgPool(
      x.reshape([images, perImage, 1, channels]) as tf.Tensor4D,
      [perImage, 1],
      1,
      "valid",
    );
    if (images === 1) return pooled.reshape([channels]) as tf.Tensor1D;
    return tf
      .avgPool(pooled.reshape([1, images, 1, channels]) as tf.Tensor4D, [images, 1], 1, "valid")
      .reshape([channels]) as tf.Tensor1D;
  });
}

/** x·scale + shift per channel, in one pass: a 1×1 depthwise convolution with bias. */
export function channelAffine(x: tf.Tensor, scale: tf.Tensor1D, shift: tf.Tensor1D): tf.Tensor {
  return tf.tidy(() => {
    const channels = x.shape[x.rank - 1] as number;
    const x4 = (x.rank === 4 ? x : x.reshape([1, 1, x.size / channels, channels])) as tf.Tensor4D;
    const y = tf.fused.depthwiseConv2d({
      x: x4,
      filter: scale.reshape([1, 1, channels, 1]) as tf.Tensor4D,
      strides: 1,
      pad: "valid",
      bias: shift,
    });
    return x.rank === 4 ? y : y.reshape(x.shape);
  });
}

export function batchNormInference(
  x: tf.Tensor,
  runningMean: tf.Tensor,
  runningVar: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  eps: number,
): tf.Tensor {
  return tf.tidy(() => {
    const scale = gamma.mul(runningVar.add(eps).rsqrt()) as tf.Tensor1D;
    const shift = beta.sub(runningMean.mul(scale)) as tf.Tensor1D;
    return channelAffine(x, scale, shift);
  });
}

export interface BatchNormTrainingResult {
  y: tf.Tensor;
  /** Batch mean and biased batch variance per channel; the caller disposes them. */
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
  /** Values per channel (n in the unbiased n/(n-1)). */
  count: number;
}

/** Batch-statistics normalisation with a hand-written gradient for x, γ and β. */
export function batchNormTraining(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  eps: number,
): BatchNormTrainingResult {
  const channels = x.shape[x.rank - 1] as number;
  const count = x.size / channels;
  if (count < 2) {
    throw new Error(
      `BatchNorm2d: expected more than 1 value per channel when training, got input shape [${x.shape}]`,
    );
  }
  let mean: tf.Tensor1D | undefined;
  let variance: tf.Tensor1D | undefined;
  const forward = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xIn, g, b, save] = args as [tf.Tensor, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
    const batchMean = channelMean(xIn);
    const batchVar = channelMean(tf.squaredDifference(xIn, batchMean));
    const invStd = batchVar.add(eps).rsqrt() as tf.Tensor1D;
    const scale = g.mul(invStd) as tf.Tensor1D;
    const y = channelAffine(xIn, scale, b.sub(batchMean.mul(scale)) as tf.Tensor1D);
    // Kept past customGrad's tidy for the running statistics; disposed by the caller.
    mean = tf.keep(batchMean);
    variance = tf.keep(batchVar);
    save([xIn, g, batchMean, invStd]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [xs, gs, mu, inv] = saved as [tf.Tensor, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D];
        return batchNormGrad(dy as tf.Tensor, xs, gs, mu, inv, count);
      },
    };
  });
  const y = forward(x, gamma, beta);
  return { y, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D, count };
}

/**
 * Gradients of y = γ·(x − μ)·invstd + β with μ and invstd the batch statistics, written with
 * per-channel means only (no tiling, no reduction over non-inner axes):
 *   mean(dy·x̂) = invstd·(mean(dy·x) − μ·mean(dy))
 *   dx = a·dy + b·x + c,  a = γ·invstd,  b = −a·invstd·mean(dy·x̂),  c = −a·mean(dy) − b·μ
 */
function batchNormGrad(
  dy: tf.Tensor,
  x: tf.Tensor,
  gamma: tf.Tensor1D,
  mean: tf.Tensor1D,
  invStd: tf.Tensor1D,
  count: number,
): [tf.Tensor, tf.Tensor1D, tf.Tensor1D] {
  return tf.tidy(() => {
    const meanDy = channelMean(dy);
    const meanDyXhat = channelMean(dy.mul(x)).sub(mean.mul(meanDy)).mul(invStd) as tf.Tensor1D;
    const a = gamma.mul(invStd) as tf.Tensor1D;
    const b = a.mul(invStd).mul(meanDyXhat).neg() as tf.Tensor1D;
    const c = a.mul(meanDy).neg().sub(b.mul(mean)) as tf.Tensor1D;
    const dx = channelAffine(x, b, c).add(dy.mul(a));
    const dGamma = meanDyXhat.mul(count) as tf.Tensor1D;
    const dBeta = meanDy.mul(count) as tf.Tensor1D;
    return [dx, dGamma, dBeta];
  });
}
