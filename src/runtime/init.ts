// PyTorch's default initialization, seeded by the project's RNG. nn.Conv2d and nn.Linear draw their
// weight from kaiming_uniform_(a=√5), whose bound gain·√(3/fan_in) with gain = √(2/(1+5)) is
// exactly 1/√fan_in, and their bias from U(−1/√fan_in, 1/√fan_in) with the weight's fan_in
// (Cin·kh·kw, or in_features). BatchNorm2d starts at weight 1, bias 0, mean 0, var 1.
//
// tfjs's varianceScaling(1/3, fanIn, uniform) gives the same weight bound, but not the bias bound
// (it takes fan_in from the bias's own shape), and its seeded draws are tied to tfjs's RNG. So values
// are drawn here, in PyTorch layout, from a seed derived from (model seed, parameter name): the same
// seed gives the same initial network in every backend, whatever the layer order or layout.
import * as tf from "@tensorflow/tfjs";
import { type Layout, torchToTfjsLayout } from "../backends/tfjs/weights.js";
import type { ModelIR, WeightMap } from "../compiler/ir.js";
import { Rng } from "../util/rng.js";

/** PyTorch's bound for both weight and bias: 1/√fan_in (0 when fan_in is 0, as PyTorch). */
export function torchInitBound(fanIn: number): number {
  return fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
}

/** The seed of one parameter's draws: FNV-1a of its name mixed with the model seed. */
export function paramSeed(seed: number, name: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    hash = Math.imul(hash ^ name.charCodeAt(i), 0x01000193) >>> 0;
  }
  return (hash ^ Math.imul(seed >>> 0, 0x9e3779b1)) >>> 0;
}

/** `size` values from U(−1/√fan_in, 1/√fan_in), in PyTorch (row-major) order. */
export function torchUniformValues(
  seed: number,
  name: string,
  size: number,
  fanIn: number,
): Float32Array {
  const bound = torchInitBound(fanIn);
  const rng = new Rng(paramSeed(seed, name));
  const values = new Float32Array(size);
  for (let i = 0; i < size; i++) values[i] = rng.uniform(-bound, bound);
  return values;
}

/** The whole model's initial weights in PyTorch layout: what `buildModel(tf, { seed })` starts at. */
export function torchInitWeights(ir: ModelIR, seed: number): WeightMap {
  const weights: WeightMap = new Map();
  for (const node of ir.nodes) {
    const fanIn = node.kind === "conv" || node.kind === "linear" ? fanInOf(node.inShape, node) : 0;
    for (const param of node.params) {
      const size = param.shape.reduce((a, b) => a * b, 1);
      let data: Float32Array;
      if (node.kind === "batchnorm") {
        const one = param.role === "weight" || param.role === "running_var";
        data = new Float32Array(size).fill(one ? 1 : 0);
      } else {
        data = torchUniformValues(seed, param.name, size, fanIn);
      }
      weights.set(param.name, { shape: [...param.shape], data });
    }
  }
  return weights;
}

function fanInOf(inShape: number[], node: ModelIR["nodes"][number]): number {
  if (node.kind === "conv") {
    const [kh, kw] = node.attrs.kernel;
    return (inShape[0] ?? 0) * kh * kw;
  }
  return inShape[0] ?? 0;
}

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
}

/**
 * tfjs initializer drawing PyTorch's default init for one parameter. Values are drawn in PyTorch
 * layout and transposed to tfjs's (conv kernels HWIO, dense kernels [in, out]), so they equal
 * `torchInitWeights` exactly. Registered, so checkpoints' `model.json` reload.
 */
export class TorchUniform extends Initializer {
  static className = "TorchUniform";
  readonly seed: number;
  readonly param: string;
  readonly fanIn: number;

  constructor(config: TorchUniformConfig) {
    super();
    this.seed = config.seed;
    this.param = config.param;
    this.fanIn = config.fanIn;
  }

  override apply(shape: number[], dtype?: tf.DataType): tf.Tensor {
    const size = shape.reduce((a, b) => a * b, 1);
    const values = torchUniformValues(this.seed, this.param, size, this.fanIn);
    const { layout, torchShape } = torchLayoutOf(shape);
    return tf.tensor(torchToTfjsLayout(values, torchShape, layout), shape, dtype ?? "float32");
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { seed: this.seed, param: this.param, fanIn: this.fanIn };
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

/** A tfjs weight shape's PyTorch layout: rank 4 is a conv kernel, rank 2 a dense kernel. */
function torchLayoutOf(shape: number[]): { layout: Layout; torchShape: number[] } {
  const [a = 0, b = 0, c = 0, d = 0] = shape;
  if (shape.length === 4) return { layout: "oihw", torchShape: [d, c, a, b] };
  if (shape.length === 2) return { layout: "oi", torchShape: [b, a] };
  return { layout: "same", torchShape: [...shape] };
}

/** `kernelInitializer` / `biasInitializer` for one parameter of the emitted model. */
export function torchUniform(seed: number, param: string, fanIn: number): TorchUniform {
  return new TorchUniform({ seed, param, fanIn });
}
