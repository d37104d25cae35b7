// Weights between mnistc and PyTorch: a safetensors file holds a state_dict, whose names and
// layouts are the IR's own (PyTorch's), so mapping is checking. Pure: parsed file in, weights or
// every mismatch out.
import type { ModelIR, WeightMap } from "../../compiler/ir.js";
import {
  encodeSafetensors,
  FLOAT_DTYPES,
  type SafetensorsFile,
  toFloat32,
} from "../../formats/safetensors.js";
import { torchCode } from "./index.js";

const fmt = (shape: number[]) => `[${shape.join(", ")}]`;
const sameShape = (a: number[], b: number[]) =>
  a.length === b.length && a.every((n, i) => n === b[i]);

/**
 * The spec's weights from a safetensors state_dict: every parameter present, of a floating-point
 * dtype (F32; F64, F16 and BF16 are converted) and of the spec's shape. Entries PyTorch keeps
 * that mnistc does not (BatchNorm2d's `num_batches_tracked`) are ignored; any other name is a
 * mismatch. Returns every mismatch, each naming its tensor.
 */
export function torchWeightsFromSafetensors(
  ir: ModelIR,
  file: SafetensorsFile,
): { weights: WeightMap } | { errors: string[] } {
  const byName = new Map(file.tensors.map((t) => [t.name, t]));
  const errors: string[] = [];
  const weights: WeightMap = new Map();
  const ignored = new Set<string>();
  for (const node of ir.nodes) {
    for (const extra of torchCode(node).untracked) ignored.add(`${node.name}.${extra}`);
    for (const param of node.params) {
      const entry = byName.get(param.name);
      if (!entry) {
        errors.push(`${param.name} ${fmt(param.shape)} is missing`);
      } else if (!FLOAT_DTYPES.includes(entry.dtype)) {
        errors.push(`${param.name} is ${entry.dtype}, not a floating-point tensor`);
      } else if (!sameShape(entry.shape, param.shape)) {
        errors.push(
          `${param.name} is ${fmt(param.shape)} in the spec but ${fmt(entry.shape)} in the file`,
        );
      } else {
        weights.set(param.name, { shape: [...param.shape], data: toFloat32(entry) });
      }
    }
  }
  const known = new Set(ir.nodes.flatMap((n) => n.params.map((p) => p.name)));
  for (const entry of file.tensors) {
    if (!known.has(entry.name) && !ignored.has(entry.name)) {
      errors.push(`${entry.name} ${fmt(entry.shape)} is not a parameter of the spec`);
    }
  }
  return errors.length > 0 ? { errors } : { weights };
}

/** The spec's weights as a safetensors file, in the spec's order, with mnistc's names. */
export function safetensorsFromWeights(ir: ModelIR, weights: WeightMap): Uint8Array {
  const tensors = ir.nodes.flatMap((node) =>
    node.params.map((param) => {
      const w = weights.get(param.name);
      if (!w) throw new Error(`pytorch backend: weight ${param.name} missing after checking`);
      return { name: param.name, shape: [...param.shape], data: w.data };
    }),
  );
  return encodeSafetensors(tensors, { format: "pt", "mnistc.spec": ir.name });
}
