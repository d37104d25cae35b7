// Seeded PyTorch-default initialization, for a model emitted without trained weights.
// nn.Conv2d / nn.Linear: kaiming_uniform_(a=√5) gives weight ~ U(−1/√fan_in, 1/√fan_in), and the
// bias uses the same bound. nn.BatchNorm2d: weight 1, bias 0, running_mean 0, running_var 1.
//
// The draws are the training runtime's (`src/runtime/init.ts`, `torchInitWeights`): one `Rng` per
// parameter, seeded from (ir.train.seed, parameter name), values in PyTorch row-major order. They
// are repeated here because that module loads TensorFlow.js and an emitter must stay light and
// pure; test/onnx-init.test.ts checks that both give the same numbers.
import type { AnyNodeIR, ModelIR, WeightMap } from "../../compiler/ir.js";
import { Rng } from "../../util/rng.js";

/** FNV-1a of the parameter name mixed with the model seed (as the runtime's `paramSeed`). */
function paramSeed(seed: number, name: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    hash = Math.imul(hash ^ name.charCodeAt(i), 0x01000193) >>> 0;
  }
  return (hash ^ Math.imul(seed >>> 0, 0x9e3779b1)) >>> 0;
}

/** fan_in of a conv (in_channels·kh·kw) or linear (in_features) node. */
function fanIn(node: AnyNodeIR): number {
  if (node.kind === "conv") {
    return (node.inShape[0] ?? 0) * node.attrs.kernel[0] * node.attrs.kernel[1];
  }
  return node.inShape[0] ?? 0;
}

export function seededInit(ir: ModelIR, seed = ir.train.seed): WeightMap {
  const weights: WeightMap = new Map();
  for (const node of ir.nodes) {
    for (const param of node.params) {
      const size = param.shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(size);
      if (node.kind === "batchnorm") {
        if (param.role === "weight" || param.role === "running_var") data.fill(1);
      } else {
        const n = fanIn(node);
        const bound = n > 0 ? 1 / Math.sqrt(n) : 0;
        const rng = new Rng(paramSeed(seed, param.name));
        for (let i = 0; i < size; i++) data[i] = rng.uniform(-bound, bound);
      }
      weights.set(param.name, { shape: [...param.shape], data });
    }
  }
  return weights;
}
