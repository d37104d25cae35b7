// The training forward of each op kind, in ONNX: what the inference graph does (the onnx backend's
// own node, reused) except where training differs — batch norm normalizes with the batch's
// statistics and updates its running ones as PyTorch does, a dropout multiplies by its mask (an
// input: the runtime's seeded RNG draws it, as on tfjs), a max pool also returns its indices for
// the backward. Each entry returns what its op's `saves` lists.
import type { ForwardValues } from "../../compiler/grad-builder.js";
import type { NodeIR, OpKind, ParamIR } from "../../compiler/ir.js";
import { intAttr, intsAttr } from "../../formats/onnx-proto.js";
import type { OpTable } from "../backend.js";
import { onnxOps } from "../onnx/ops.js";
import type { OnnxGraph, Tensor } from "./graph.js";
import { convForward } from "./lowering.js";

export interface TrainForwardContext {
  g: OnnxGraph;
  inputs: Tensor[];
  params: Partial<Record<ParamIR["role"], Tensor>>;
  batch: number;
  /** The dropout mask input of a node (created on request). */
  mask(node: NodeIR, shape: number[]): Tensor;
  /** Records a buffer's value after the step (batch norm's running statistics). */
  update(param: string, value: Tensor): void;
}

type TrainForward = ForwardValues<Tensor>;

const first = (ctx: TrainForwardContext): Tensor => {
  const [x] = ctx.inputs;
  if (!x) throw new Error("onnx-train: a node without input");
  return x;
};

/** The inference nodes of the onnx backend, as the training forward (none: the identity). */
function inference<K extends OpKind>(node: NodeIR<K>, ctx: TrainForwardContext): TrainForward {
  const rule = onnxOps[node.kind] as (
    n: NodeIR<K>,
    c: Parameters<(typeof onnxOps)["relu"]>[1],
  ) => ReturnType<(typeof onnxOps)["relu"]>;
  const name = `${node.name}.out`;
  const protos = rule(node, {
    inputs: ctx.inputs.map((t) => t.name),
    input: first(ctx).name,
    output: name,
  });
  if (protos.length === 0) return { output: first(ctx), saved: {} };
  ctx.g.append(protos);
  return { output: { name, shape: [ctx.batch, ...node.outShape] }, saved: {} };
}

const param = (ctx: TrainForwardContext, role: ParamIR["role"]): Tensor => {
  const p = ctx.params[role];
  if (!p) throw new Error(`onnx-train: missing ${role}`);
  return p;
};

export const TRAIN_FORWARD: OpTable<TrainForward, TrainForwardContext> = {
  conv: (node, ctx) => ({
    output: convForward(ctx.g, {
      x: first(ctx),
      weight: param(ctx, "weight"),
      bias: ctx.params.bias,
      attrs: node.attrs,
      outputShape: [ctx.batch, ...node.outShape],
    }),
    saved: {},
  }),
  relu: inference,
  relu6: inference,
  leaky_relu: inference,
  sigmoid: inference,
  tanh: inference,
  silu: inference,
  gelu: inference,
  hardswish: inference,

  // x̂ = (x − μ)/σ over N, H, W (two passes: E[x²] − μ² cancels badly in float32); y = γ·x̂ + β.
  // Running statistics: (1 − m)·r + m·μ and (1 − m)·r + m·var·n/(n − 1), PyTorch's unbiased update.
  batchnorm(node, ctx) {
    const { g } = ctx;
    const x = first(ctx);
    const [, c = 0, h = 1, w = 1] = x.shape;
    const n = ctx.batch * h * w;
    const stat = [1, c, 1, 1];
    const mean = g.op("ReduceMean", [x], stat, [
      intsAttr("axes", [0, 2, 3]),
      intAttr("keepdims", 1),
    ]);
    const centred = g.sub(x, mean);
    const variance = g.op("ReduceMean", [g.mul(centred, centred)], stat, [
      intsAttr("axes", [0, 2, 3]),
      intAttr("keepdims", 1),
    ]);
    const invstd = g.op(
      "Reciprocal",
      [g.op("Sqrt", [g.add(variance, g.scalar(node.attrs.eps))], stat)],
      stat,
    );
    const invstdC = g.reshape(invstd, [c]);
    // γ·(x − μ)/σ + β in one pass; x̂ itself is never written.
    const y = g.affine(centred, g.mul(param(ctx, "weight"), invstdC), param(ctx, "bias"));
    const m = node.attrs.momentum;
    const running = (role: "running_mean" | "running_var", batchValue: Tensor, factor: number) => {
      const old = param(ctx, role);
      const next = g.add(g.scale(old, 1 - m), g.scale(g.reshape(batchValue, [c]), m * factor));
      ctx.update(`${node.name}.${role}`, next);
    };
    running("running_mean", mean, 1);
    running("running_var", variance, n / (n - 1));
    const output = g.reshape(y, [ctx.batch, ...node.outShape]);
    return { output, saved: { centred, invstd: invstdC } };
  },

  maxpool(node, ctx) {
    const { kernel, stride, padding } = node.attrs;
    const shape = [ctx.batch, ...node.outShape];
    const [output, indices] = ctx.g.node(
      "MaxPool",
      [first(ctx)],
      [shape, shape],
      [
        intsAttr("kernel_shape", kernel),
        intsAttr("strides", stride),
        intsAttr("pads", [...padding, ...padding]),
        intAttr("ceil_mode", 0),
      ],
      [`${node.name}.out`, `${node.name}.indices`],
    ) as [Tensor, Tensor];
    return { output, saved: { indices } };
  },

  avgpool: inference,
  gap: inference,

  // Dropout2d masks whole channels ([B, C, 1, 1]), Dropout every element ([B, F]).
  dropout(node, ctx) {
    const x = first(ctx);
    const shape = x.shape.length === 4 ? [ctx.batch, x.shape[1] ?? 0, 1, 1] : x.shape;
    const mask = ctx.mask(node, shape);
    return { output: ctx.g.mul(x, mask), saved: { mask } };
  },

  flatten: inference,
  linear: inference,
  log_softmax: inference,
  add: inference,
  mul: inference,
  concat: inference,
};
