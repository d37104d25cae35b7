// PyTorch's default initialization, seeded by the project's RNG: what an untrained model starts at
// in every backend. Which rule a parameter follows is the op table's (`ParamIR.init`): nn.Conv2d
// and nn.Linear draw their weight from kaiming_uniform_(a=√5), whose bound gain·√(3/fan_in) with
// gain = √(2/(1+5)) is exactly 1/√fan_in, and their bias from U(−1/√fan_in, 1/√fan_in) with the
// weight's fan_in ((Cin/groups)·kh·kw, or in_features); BatchNorm2d fills 1, 0, 0, 1.
//
// Values are drawn in PyTorch layout from a seed derived from (model seed, parameter name), so the
// same seed gives the same initial network whatever the layer order or a backend's layout. Pure
// (no TensorFlow.js): the ONNX backend uses it directly, the tfjs runtime's `TorchUniform`
// initializer transposes its draws into tfjs's layout.

import { Rng } from "../util/rng.js";
import { sizeOf } from "../util/shape.js";
import type { ModelIR, WeightMap } from "./ir.js";

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

/**
 * The whole model's initial weights in PyTorch layout, by default from the spec's `train.seed`
 * (the seed `train` starts from): what `buildModel(tf, { seed })` starts at. Each parameter's rule
 * comes from the op table (`ParamIR.init`).
 */
export function torchInitWeights(ir: ModelIR, seed = ir.train.seed): WeightMap {
  const weights: WeightMap = new Map();
  for (const node of ir.nodes) {
    for (const param of node.params) {
      const size = sizeOf(param.shape);
      const data =
        param.init.type === "fill"
          ? new Float32Array(size).fill(param.init.value)
          : torchUniformValues(seed, param.name, size, param.init.fanIn);
      weights.set(param.name, { shape: [...param.shape], data });
    }
  }
  return weights;
}
