// The tfjs side of PyTorch's default initialization: `TorchUniform`, the initializer the emitted
// model.mjs gives each conv/dense weight and bias. The values themselves come from
// `src/compiler/init.ts` (pure, shared with the ONNX backend), drawn in PyTorch layout and
// transposed here into tfjs's.
//
// tfjs's varianceScaling(1/3, fanIn, uniform) gives the same weight bound, but not the bias bound
// (it takes fan_in from the bias's own shape), and its seeded draws are tied to tfjs's RNG.
import * as tf from "@tensorflow/tfjs";
import { torchUniformValues } from "../../compiler/init.js";
import { type Layout, torchToTfjsLayout, toTorchShape } from "../../formats/tfjs-layout.js";
import { sizeOf } from "../../util/shape.js";

// Re-exported for the runtime's own users (seeded dropout, `mnistc/runtime`).
export { paramSeed, torchInitWeights } from "../../compiler/init.js";

// tfjs does not export its `Initializer` base class, and `getInitializer` only accepts instances of
// it (anything else is read as a serialized config): reach it through a built-in initializer.
type InitializerBase = abstract new () => tf.serialization.Serializable & {
  apply(shape: number[], dtype?: tf.DataType): tf.Tensor;
};
const Initializer = Object.getPrototypeOf(tf.initializers.zeros().constructor) as InitializerBase;

export interface TorchUniformConfig {
  /** The model seed (the parameter's own seed is derived from it and `param`). */
  seed: number;
  /** PyTorch parameter name, e.g. `conv1.0.weight`. */
  param: string;
  fanIn: number;
  /** How the tfjs weight lays out the PyTorch tensor (the tfjs backend's op table says). */
  layout: Layout;
}

/**
 * tfjs initializer drawing PyTorch's default init for one parameter. Values are drawn in PyTorch
 * layout and transposed to tfjs's (conv kernels HWIO, dense kernels [in, out]), so they equal
 * `torchInitWeights` exactly. Registered, so a saved tfjs `model.json` reloads.
 */
export class TorchUniform extends Initializer {
  static className = "TorchUniform";
  readonly seed: number;
  readonly param: string;
  readonly fanIn: number;
  readonly layout: Layout;

  constructor(config: TorchUniformConfig) {
    super();
    this.seed = config.seed;
    this.param = config.param;
    this.fanIn = config.fanIn;
    this.layout = config.layout ?? "same";
  }

  override apply(shape: number[], dtype?: tf.DataType): tf.Tensor {
    const size = sizeOf(shape);
    const values = torchUniformValues(this.seed, this.param, size, this.fanIn);
    const torchShape = toTorchShape(shape, this.layout);
    const data = torchToTfjsLayout(values, torchShape, this.layout);
    return tf.tensor(data, shape, dtype ?? "float32");
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { seed: this.seed, param: this.param, fanIn: this.fanIn, layout: this.layout };
  }

  // The base class's static side is lost in the cast above; this is tfjs's default.
  static fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    return new cls(config);
  }
}
tf.serialization.registerClass(TorchUniform, "mnistc");

/** `kernelInitializer` / `biasInitializer` for one parameter of the emitted model. */
export function torchUniform(
  seed: number,
  param: string,
  fanIn: number,
  layout: Layout = "same",
): TorchUniform {
  return new TorchUniform({ seed, param, fanIn, layout });
}
