// Weights for parity tests: PyTorch's seeded init, made harder to match.
import { readFileSync } from "node:fs";
import { torchInitWeights } from "../../src/compiler/init.js";
import type { ModelIR, WeightMap } from "../../src/compiler/ir.js";
import { decodeModel, floatValues, toNumber } from "../../src/formats/onnx-proto.js";
import { Rng } from "../../src/util/rng.js";

/**
 * Seeded init made harder to match: conv/linear weights doubled (PyTorch's default shrinks
 * activations layer by layer, which would leave near-uniform outputs that hide mistakes; doubled,
 * the logits spread over several units and depend on the image), and BN statistics and affine
 * parameters moved off 0/1 so BN really acts.
 */
export function testWeights(ir: ModelIR): WeightMap {
  const weights = torchInitWeights(ir, 2024);
  const rng = new Rng(77);
  for (const node of ir.nodes) {
    for (const p of node.params) {
      const w = weights.get(p.name);
      if (!w) continue;
      if (p.init.type === "fill") {
        const positive = p.init.value > 0;
        w.data = Float32Array.from(w.data, () =>
          positive ? rng.uniform(0.5, 2) : rng.uniform(-0.5, 0.5),
        );
      } else if (p.role === "weight") {
        w.data = w.data.map((v) => v * 2);
      }
    }
  }
  return weights;
}

/** The initializers of an ONNX file (mnistc writes exactly the parameters) as a weight map. */
export function onnxWeights(file: string): WeightMap {
  const model = decodeModel(new Uint8Array(readFileSync(file)), file);
  const weights: WeightMap = new Map();
  for (const t of model.graph?.initializer ?? []) {
    weights.set(t.name ?? "", { shape: (t.dims ?? []).map(toNumber), data: floatValues(t) });
  }
  return weights;
}
