// The mapping between the tfjs model's weights (NHWC world: conv kernels HWIO, dense kernels
// [in, out], named `<layer>/<weight>`) and the IR's PyTorch parameters (conv weights OIHW, linear
// weights [out, in], named `<module>.<role>`). Pure: arrays in, arrays out.
import type { ModelIR, ParamIR, WeightMap } from "../../compiler/ir.js";
import {
  type Layout,
  tfjsToTorchLayout,
  torchToTfjsLayout,
  toTfjsShape,
  toTorchShape,
} from "../../formats/tfjs-layout.js";
import { sizeOf } from "../../util/shape.js";
import { tfjsWeightTable } from "./index.js";

export type { Layout };

export interface NamedArray {
  shape: number[];
  data: Float32Array;
}

/** Weights keyed by tfjs weight name (`conv1.0/kernel`), in tfjs layout. */
export type TfjsWeightMap = Map<string, NamedArray>;

/** How one PyTorch parameter is stored in the tfjs model. */
export interface TfjsParam {
  param: ParamIR;
  /** `conv1.0/kernel`, `conv1.2/running_mean`. */
  tfjsName: string;
  /** The shape tfjs stores, e.g. HWIO for a conv weight. */
  tfjsShape: number[];
  layout: Layout;
}

/** Every parameter of the model with its tfjs name, shape and layout (the op table's), in order. */
export function tfjsParams(ir: ModelIR): TfjsParam[] {
  const table = tfjsWeightTable(ir);
  return ir.nodes.flatMap((node) =>
    node.params.map((param) => {
      const [tfjsName, layout] = table[param.name] as [string, Layout];
      return { param, tfjsName, tfjsShape: toTfjsShape(param.shape, layout), layout };
    }),
  );
}

const sameShape = (a: number[], b: number[]) =>
  a.length === b.length && a.every((n, i) => n === b[i]);
const fmt = (shape: number[]) => `[${shape.join(",")}]`;

/**
 * A layer weight (`layer/weight`, exactly one slash); optimizer slots such as `conv1.0/kernel/m`
 * and other bookkeeping a checkpoint may carry are not part of the model.
 */
const isLayerWeight = (name: string) => name.split("/").length === 2;

/**
 * A tfjs checkpoint's arrays as PyTorch weights for `ir`. The error names the first parameter that
 * is missing or has another shape (both shapes in PyTorch layout), or a layer weight the spec
 * does not have.
 */
export function torchWeightsFromTfjs(
  ir: ModelIR,
  arrays: Map<string, NamedArray>,
): { weights: WeightMap } | { error: string } {
  const weights: WeightMap = new Map();
  const expected = tfjsParams(ir);
  for (const { param, tfjsName, tfjsShape, layout } of expected) {
    const found = arrays.get(tfjsName);
    if (!found) {
      return {
        error: `checkpoint does not fit spec: ${param.name} ${fmt(param.shape)} is missing from the checkpoint (no ${tfjsName})`,
      };
    }
    if (!sameShape(found.shape, tfjsShape)) {
      const theirs = toTorchShape(found.shape, layout);
      return {
        error: `checkpoint does not fit spec: ${param.name} is ${fmt(param.shape)} in the spec but ${fmt(theirs)} in the checkpoint`,
      };
    }
    if (found.data.length !== sizeOf(tfjsShape)) {
      return {
        error: `checkpoint is damaged: ${tfjsName} has ${found.data.length} values for ${fmt(found.shape)}`,
      };
    }
    weights.set(param.name, {
      shape: [...param.shape],
      data: tfjsToTorchLayout(found.data, param.shape, layout),
    });
  }
  const known = new Set(expected.map((p) => p.tfjsName));
  for (const name of arrays.keys()) {
    if (isLayerWeight(name) && !known.has(name)) {
      return {
        error: `checkpoint does not fit spec: the checkpoint has ${name}, which the spec does not have`,
      };
    }
  }
  return { weights };
}

/** PyTorch weights for `ir` as tfjs arrays (the inverse of `torchWeightsFromTfjs`). */
export function tfjsWeightsFromTorch(
  ir: ModelIR,
  weights: WeightMap,
): { weights: TfjsWeightMap } | { error: string } {
  const out: TfjsWeightMap = new Map();
  const expected = tfjsParams(ir);
  for (const { param, tfjsName, tfjsShape, layout } of expected) {
    const found = weights.get(param.name);
    if (!found) {
      return {
        error: `weights do not fit spec: ${param.name} ${fmt(param.shape)} is missing from the weights`,
      };
    }
    if (!sameShape(found.shape, param.shape)) {
      return {
        error: `weights do not fit spec: ${param.name} is ${fmt(param.shape)} in the spec but ${fmt(found.shape)} in the weights`,
      };
    }
    if (found.data.length !== sizeOf(param.shape)) {
      return {
        error: `weights are damaged: ${param.name} has ${found.data.length} values for ${fmt(param.shape)}`,
      };
    }
    out.set(tfjsName, {
      shape: tfjsShape,
      data: torchToTfjsLayout(found.data, param.shape, layout),
    });
  }
  const known = new Set(expected.map((p) => p.param.name));
  for (const name of weights.keys()) {
    if (!known.has(name)) {
      return { error: `weights do not fit spec: ${name} is not a parameter of the spec` };
    }
  }
  return { weights: out };
}
