// What the training step's lowering rules build with: a value of the graph (`Tensor`) and the
// graph's interface (`StepGraph`: the backward's primitives and the node-level helpers). graph.ts's
// OnnxGraph implements it and lowering.ts's rules are written against it, so the two modules do
// not import each other.
import type { GradBuilder } from "../../compiler/grad-builder.js";
import type { OpAttrs } from "../../compiler/ir.js";
import type { AttributeProto } from "../../formats/onnx-proto.js";

/** A value of the graph: its name and its full, static shape. */
export interface Tensor {
  name: string;
  shape: number[];
  /**
   * Set when the value is a per-channel affine of another, base·scale + shift (batch norm's
   * output): a lowering rule may read the base and fold scale and shift into its own weights,
   * and the affine's node is then dropped if nothing else reads it.
   */
  affineOf?: { base: Tensor; scale: Tensor; shift: Tensor };
  /** Set when the value is a conv's input gradient, convᵀ(dy, W): reductions of it may be
   * computed from dy and W instead (lowering.ts, the channel-reduction rules). */
  convInputGradOf?: { dy: Tensor; weight: Tensor; attrs: OpAttrs["conv"] };
}

/** An ONNX graph under construction (graph.ts's OnnxGraph), as its lowering rules see it. */
export interface StepGraph extends GradBuilder<Tensor> {
  /** Appends a node; its outputs get the given shapes (and names, or fresh ones). */
  node(
    opType: string,
    inputs: (Tensor | string)[],
    shapes: number[][],
    attribute?: AttributeProto[],
    names?: string[],
  ): Tensor[];
  /** One-output `node`. */
  op(
    opType: string,
    inputs: (Tensor | string)[],
    shape: number[],
    attribute?: AttributeProto[],
    name?: string,
  ): Tensor;
  /** A float32 constant. */
  floats(values: ArrayLike<number>, shape: number[]): Tensor;
  scalar(value: number): Tensor;
  /** An int64 constant: shapes, axes, slice bounds. */
  ints(values: number[]): Tensor;
  /** Σ over `axes`. */
  reduceSum(a: Tensor, axes: number[], keepdims: boolean): Tensor;
  transpose(a: Tensor, perm: number[]): Tensor;
  /** Slice along `axes` from `starts` in steps, `counts` elements each. */
  slice(a: Tensor, axes: number[], starts: number[], counts: number[], steps: number[]): Tensor;
  /** Zero padding, ONNX's `pads` order (all begins, then all ends). */
  pad(a: Tensor, pads: number[]): Tensor;
  /** The filter gradient of `x` and `dy` if one was computed (as `convFilterGrad` gave it). */
  knownFilterGrad(x: Tensor, dy: Tensor): Tensor | undefined;
  /** Keeps Σ a per channel, computed beside something else, for `sumPerChannel(a)`. */
  recordChannelSum(a: Tensor, sum: Tensor): void;
}
