// An ONNX graph under construction, with the shape of every value known (the training step is built
// for one batch size, so every shape is static and lowering rules can choose by it). It implements
// the autodiff pass's `GradBuilder` (as step-graph.ts's `StepGraph`): each primitive becomes a few
// ONNX nodes, the conv and pool gradients through the named lowering rules of lowering.ts.
import type { OpAttrs } from "../../compiler/ir.js";
import {
  type AttributeProto,
  FLOAT,
  floatAttr,
  floatTensor,
  int64Tensor,
  intAttr,
  intsAttr,
  type NodeProto,
  type TensorProto,
} from "../../formats/onnx-proto.js";
import { sizeOf } from "../../util/shape.js";
import {
  avgPoolGrad,
  channelDot,
  channelScale,
  channelSum,
  convFilterGrad,
  convInputGrad,
  maxPoolGrad,
} from "./lowering.js";
import type { StepGraph, Tensor } from "./step-graph.js";

export type { StepGraph, Tensor };

export class OnnxGraph implements StepGraph {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private readonly constants = new Map<string, Tensor>();
  /** Filter gradients computed, by input and dy (a dy is one conv's, so it fixes the geometry):
   * a channel-reduction rule may reuse one. */
  private readonly filterGrads = new Map<string, Tensor>();
  /** Per-channel sums computed beside a filter gradient, by the summed value's name. */
  private readonly channelSums = new Map<string, Tensor>();
  private count = 0;

  /** A fresh value name: `<hint>_<n>`. */
  private fresh(hint: string): string {
    this.count += 1;
    return `${hint}_${this.count}`;
  }

  /** Appends a node; its outputs get the given shapes (and names, or fresh ones). */
  node(
    opType: string,
    inputs: (Tensor | string)[],
    shapes: number[][],
    attribute: AttributeProto[] = [],
    names?: string[],
  ): Tensor[] {
    const outputs = shapes.map((shape, i) => ({
      name: names?.[i] ?? this.fresh(opType.toLowerCase()),
      shape,
    }));
    this.nodes.push({
      name: this.fresh(`n_${opType}`),
      opType,
      input: inputs.map((t) => (typeof t === "string" ? t : t.name)),
      output: outputs.map((t) => t.name),
      attribute,
    });
    return outputs;
  }

  /** Nodes built elsewhere (the inference graph's), whose output names are unique already. */
  append(nodes: NodeProto[]): void {
    this.nodes.push(...nodes);
  }

  /** One-output `node`. */
  op(
    opType: string,
    inputs: (Tensor | string)[],
    shape: number[],
    attribute: AttributeProto[] = [],
    name?: string,
  ): Tensor {
    return this.node(opType, inputs, [shape], attribute, name ? [name] : undefined)[0] as Tensor;
  }

  /** A float32 constant (deduplicated by value). */
  floats(values: ArrayLike<number>, shape: number[]): Tensor {
    const key = `f${shape.join("x")}:${Array.from(values).join(",")}`;
    const known = this.constants.get(key);
    if (known) return known;
    const name = this.fresh("const");
    this.initializers.push(floatTensor(name, shape, Float32Array.from(values)));
    const t = { name, shape };
    this.constants.set(key, t);
    return t;
  }

  scalar(value: number): Tensor {
    return this.floats([value], []);
  }

  /** An int64 constant: shapes, axes, slice bounds. */
  ints(values: number[]): Tensor {
    const key = `i:${values.join(",")}`;
    const known = this.constants.get(key);
    if (known) return known;
    const name = this.fresh("ints");
    this.initializers.push(int64Tensor(name, [values.length], values));
    const t = { name, shape: [values.length] };
    this.constants.set(key, t);
    return t;
  }

  // --- GradBuilder ---------------------------------------------------------------------------

  add(a: Tensor, b: Tensor): Tensor {
    return this.op("Add", [a, b], broadcast(a.shape, b.shape));
  }

  sub(a: Tensor, b: Tensor): Tensor {
    return this.op("Sub", [a, b], broadcast(a.shape, b.shape));
  }

  mul(a: Tensor, b: Tensor): Tensor {
    return this.op("Mul", [a, b], broadcast(a.shape, b.shape));
  }

  scale(a: Tensor, k: number): Tensor {
    return k === 1 ? a : this.mul(a, this.scalar(k));
  }

  offset(a: Tensor, k: number): Tensor {
    return k === 0 ? a : this.add(a, this.scalar(k));
  }

  exp(a: Tensor): Tensor {
    return this.op("Exp", [a], a.shape);
  }

  sigmoid(a: Tensor): Tensor {
    return this.op("Sigmoid", [a], a.shape);
  }

  tanh(a: Tensor): Tensor {
    return this.op("Tanh", [a], a.shape);
  }

  erf(a: Tensor): Tensor {
    return this.op("Erf", [a], a.shape);
  }

  /** Clip; an infinite bound is an absent input (an empty name). */
  clamp(a: Tensor, lo: number, hi: number): Tensor {
    const bound = (v: number) => (Number.isFinite(v) ? this.scalar(v) : "");
    const bounds = Number.isFinite(hi) ? [bound(lo), bound(hi)] : [bound(lo)];
    return this.op("Clip", [a, ...bounds], a.shape);
  }

  // Greater → Cast, then Mul by dy: a Where, or a Sign then Mul, took 1.5–2x as long on step4's
  // first layer (ReLU's backward).
  greater(a: Tensor, k: number): Tensor {
    return this.op("Cast", [this.op("Greater", [a, this.scalar(k)], a.shape)], a.shape, [
      intAttr("to", FLOAT),
    ]);
  }

  less(a: Tensor, k: number): Tensor {
    return this.op("Cast", [this.op("Less", [a, this.scalar(k)], a.shape)], a.shape, [
      intAttr("to", FLOAT),
    ]);
  }

  reshape(a: Tensor, shape: number[]): Tensor {
    if (sizeOf(shape) !== sizeOf(a.shape)) {
      throw new Error(`onnx-train: reshape [${a.shape}] to [${shape}]`);
    }
    return shape.join() === a.shape.join() ? a : this.op("Reshape", [a, this.ints(shape)], shape);
  }

  perChannel(a: Tensor): Tensor {
    return this.reshape(a, [1, sizeOf(a.shape), 1, 1]);
  }

  /** BatchNormalization's inference form with mean 0, variance 1 and ε 0 is exactly a·s + t. */
  affine(a: Tensor, scale: Tensor, shift: Tensor): Tensor {
    const c = a.shape[1] ?? 0;
    const zeros = this.floats(new Array(c).fill(0), [c]);
    const ones = this.floats(new Array(c).fill(1), [c]);
    const out = this.op("BatchNormalization", [a, scale, shift, zeros, ones], a.shape, [
      floatAttr("epsilon", 0),
    ]);
    return { ...out, affineOf: { base: a, scale, shift } };
  }

  /**
   * The nodes that `outputs` depend on, in order, and the initializers they read: what a rule
   * made unnecessary (an affine folded into the next conv) is left out.
   */
  live(outputs: string[]): { nodes: NodeProto[]; initializers: TensorProto[] } {
    const needed = new Set(outputs);
    const kept: NodeProto[] = [];
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const node = this.nodes[i] as NodeProto;
      if (!(node.output ?? []).some((o) => needed.has(o))) continue;
      kept.push(node);
      for (const input of node.input ?? []) needed.add(input);
    }
    return {
      nodes: kept.reverse(),
      initializers: this.initializers.filter((t) => needed.has(t.name ?? "")),
    };
  }

  /** Σ over `axes`; ReduceSum over N, H, W of NCHW keeps float32's accuracy (a long single-axis
   * reduction of 86k values does not, see design.md). */
  reduceSum(a: Tensor, axes: number[], keepdims: boolean): Tensor {
    const shape = keepdims
      ? a.shape.map((d, i) => (axes.includes(i) ? 1 : d))
      : a.shape.filter((_, i) => !axes.includes(i));
    return this.op("ReduceSum", [a, this.ints(axes)], shape, [
      intAttr("keepdims", keepdims ? 1 : 0),
    ]);
  }

  sumPerChannel(a: Tensor): Tensor {
    return channelSum(this, { a, known: this.channelSums.get(a.name) });
  }

  recordChannelSum(a: Tensor, sum: Tensor): void {
    this.channelSums.set(a.name, sum);
  }

  scaleChannels(a: Tensor, k: Tensor): Tensor {
    return channelScale(this, { a, k, read: this.reads(a) });
  }

  /** Whether a node of the graph reads `a`. */
  reads(a: Tensor): boolean {
    return this.nodes.some((n) => (n.input ?? []).includes(a.name));
  }

  dotPerChannel(a: Tensor, b: Tensor): Tensor {
    const dy = a.convInputGradOf?.dy;
    return channelDot(this, { a, b, filterGrad: dy && this.knownFilterGrad(b, dy) });
  }

  sumBatch(a: Tensor): Tensor {
    return this.reduceSum(a, [0], false);
  }

  sumRows(a: Tensor): Tensor {
    return this.reduceSum(a, [1], true);
  }

  sumTo(a: Tensor, shape: number[]): Tensor {
    const axes = a.shape.flatMap((d, i) => (shape[i] === 1 && d !== 1 ? [i] : []));
    return axes.length === 0 ? a : this.reduceSum(a, axes, true);
  }

  sliceChannels(a: Tensor, start: number, count: number): Tensor {
    return this.slice(a, [1], [start], [count], [1]);
  }

  spreadSpatial(a: Tensor, shape: number[]): Tensor {
    const [, , h = 1, w = 1] = shape;
    return this.op("Expand", [this.scale(a, 1 / (h * w)), this.ints(shape)], shape);
  }

  matmul(a: Tensor, b: Tensor, transA: boolean, transB: boolean): Tensor {
    const [m = 0] = transA ? [a.shape[1]] : a.shape;
    const n = transB ? b.shape[0] : b.shape[1];
    return this.op(
      "Gemm",
      [a, b],
      [m, n ?? 0],
      [intAttr("transA", transA ? 1 : 0), intAttr("transB", transB ? 1 : 0)],
    );
  }

  convInputGrad(dy: Tensor, weight: Tensor, attrs: OpAttrs["conv"], inputShape: number[]): Tensor {
    return {
      ...convInputGrad(this, { dy, weight, attrs, inputShape }),
      convInputGradOf: { dy, weight, attrs },
    };
  }

  convFilterGrad(x: Tensor, dy: Tensor, attrs: OpAttrs["conv"], weightShape: number[]): Tensor {
    const key = `${x.name}|${dy.name}`;
    const known = this.filterGrads.get(key);
    if (known) return known;
    const dw = convFilterGrad(this, { x, dy, attrs, weightShape });
    this.filterGrads.set(key, dw);
    return dw;
  }

  /** The filter gradient of `x` and `dy` if one was computed (as `convFilterGrad` gave it). */
  knownFilterGrad(x: Tensor, dy: Tensor): Tensor | undefined {
    return this.filterGrads.get(`${x.name}|${dy.name}`);
  }

  maxPoolGrad(dy: Tensor, indices: Tensor, inputShape: number[]): Tensor {
    return maxPoolGrad(this, { dy, indices, inputShape });
  }

  avgPoolGrad(dy: Tensor, attrs: OpAttrs["avgpool"], inputShape: number[]): Tensor {
    return avgPoolGrad(this, { dy, attrs, inputShape });
  }

  // --- helpers lowering rules share -----------------------------------------------------------

  transpose(a: Tensor, perm: number[]): Tensor {
    return this.op(
      "Transpose",
      [a],
      perm.map((p) => a.shape[p] ?? 0),
      [intsAttr("perm", perm)],
    );
  }

  /** Slice along `axes` from `starts` in steps, `counts` elements each. */
  slice(a: Tensor, axes: number[], starts: number[], counts: number[], steps: number[]): Tensor {
    // An end is exclusive; stepping backwards past index 0 needs an end below any index (−2⁶²).
    const ends = starts.map((s, i) => {
      const step = steps[i] ?? 1;
      const last = s + ((counts[i] ?? 1) - 1) * step;
      return step > 0 ? last + 1 : last - 1 < 0 ? -(2 ** 62) : last - 1;
    });
    const shape = a.shape.map((d, i) => {
      const k = axes.indexOf(i);
      return k < 0 ? d : (counts[k] ?? d);
    });
    return this.op(
      "Slice",
      [a, this.ints(starts), this.ints(ends), this.ints(axes), this.ints(steps)],
      shape,
    );
  }

  pad(a: Tensor, pads: number[]): Tensor {
    if (pads.every((p) => p === 0)) return a;
    const rank = a.shape.length;
    const shape = a.shape.map((d, i) => d + (pads[i] ?? 0) + (pads[i + rank] ?? 0));
    return this.op("Pad", [a, this.ints(pads)], shape);
  }

  epsilonAttr(eps: number): AttributeProto {
    return floatAttr("epsilon", eps);
  }
}

/** NumPy broadcasting of two shapes. */
export function broadcast(a: number[], b: number[]): number[] {
  const rank = Math.max(a.length, b.length);
  return Array.from({ length: rank }, (_, i) => {
    const x = a[a.length - rank + i] ?? 1;
    const y = b[b.length - rank + i] ?? 1;
    return x === 1 ? y : x;
  });
}
