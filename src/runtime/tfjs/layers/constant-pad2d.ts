// PyTorch's padding of a max pool: never the maximum, as if the border were −∞ (tfjs's
// zeroPadding2d pads zeros, which would win over negative values). nn.ConstantPad2d's name, with
// `value: "-inf"` the only non-numeric value.
import * as tf from "@tensorflow/tfjs";

type Pair = [number, number];

export interface ConstantPad2dConfig {
  name: string;
  /** [[top, bottom], [left, right]], as tf.layers.zeroPadding2d takes it. */
  padding: [Pair, Pair];
  value: number | "-inf";
}

export class ConstantPad2d extends tf.layers.Layer {
  static className = "ConstantPad2d";

  readonly padding: [Pair, Pair];
  readonly value: number | "-inf";

  constructor(config: ConstantPad2dConfig) {
    super({ name: config.name });
    this.padding = config.padding;
    this.value = config.value;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const [b = null, h = null, w = null, c = null] = (
      Array.isArray(inputShape[0]) ? inputShape[0] : inputShape
    ) as (number | null)[];
    const [[top, bottom], [left, right]] = this.padding;
    return [b, h === null ? null : h + top + bottom, w === null ? null : w + left + right, c];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    const value = this.value === "-inf" ? Number.NEGATIVE_INFINITY : this.value;
    return tf.pad(x, [[0, 0], this.padding[0], this.padding[1], [0, 0]], value);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), padding: this.padding, value: this.value };
  }
}
tf.serialization.registerClass(ConstantPad2d, "mnistc");
