// Dropout drawn from the project's seeded RNG. tfjs's own dropout either draws from Math.random (no
// seed: runs are not repeatable) or, given a seed, draws the same mask on every call. Each layer here
// keeps its own stream, seeded from (model seed, layer name), so the same seed repeats a run: the
// runtime's `DropoutStream`, which the ONNX training step draws its masks from too.
//   Dropout2d: PyTorch nn.Dropout2d on [B, H, W, C]: whole channels, one mask value per (sample, C).
//   Dropout:   PyTorch nn.Dropout: every element.
// Kept values are scaled by 1/(1-p); in inference both are the identity.
import * as tf from "@tensorflow/tfjs";
import type { RngState } from "../../../util/rng.js";
import { sizeOf } from "../../../util/shape.js";
import { DropoutStream } from "../../train/dropout-stream.js";

export interface DropoutConfig {
  name: string;
  /** Probability of zeroing, PyTorch's `p`. */
  rate: number;
  /** The model seed; the layer's stream is derived from it and the layer name. */
  seed: number;
}

abstract class SeededDropout extends tf.layers.Layer {
  readonly rate: number;
  readonly seed: number;
  private readonly stream: DropoutStream;

  constructor(config: DropoutConfig) {
    super({ name: config.name });
    this.rate = config.rate;
    this.seed = config.seed;
    this.stream = new DropoutStream(config.seed, config.name, config.rate);
  }

  /** The stream's position, which a checkpoint keeps so a resumed run draws the same masks. */
  rngState(): RngState {
    return this.stream.state();
  }

  setRngState(state: RngState): void {
    this.stream.setState(state);
  }

  /** The shape of the mask, broadcast over the input. */
  protected abstract maskShape(input: number[]): number[];

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }): tf.Tensor {
    const x = Array.isArray(inputs) ? (inputs[0] as tf.Tensor) : inputs;
    if (!kwargs.training || !this.stream.draws) return x;
    const shape = this.maskShape(x.shape);
    const mask = this.drawMask(sizeOf(shape));
    return tf.tidy(() => tf.mul(x, tf.tensor(mask, shape)));
  }

  /** The next `count` mask values from the layer's stream: 1/(1 − p) kept, 0 dropped. */
  drawMask(count: number): Float32Array {
    return this.stream.drawMask(count);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), rate: this.rate, seed: this.seed };
  }
}

export class Dropout2d extends SeededDropout {
  static className = "Dropout2d";

  protected maskShape(input: number[]): number[] {
    const [batch = 1, , , channels = 1] = input;
    return [batch, 1, 1, channels];
  }
}
tf.serialization.registerClass(Dropout2d, "mnistc");

export class Dropout extends SeededDropout {
  static className = "TorchDropout";

  protected maskShape(input: number[]): number[] {
    return [...input];
  }
}
tf.serialization.registerClass(Dropout, "mnistc");
