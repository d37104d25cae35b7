// The ONNX backend's op table: the ONNX nodes (inference form, opset 13) of each IR node: one for
// most, none for ops that are the identity at inference (dropout), a few for a conv that
// `lowering.ts` rewrites (a batch norm folded in, the shifted-sum form). Parameters are referenced
// by their IR names, which are also the initializer names, so weights need no renaming between
// PyTorch and ONNX.
import type { AnyNodeIR, NodeIR, Pair, ParamIR } from "../../compiler/ir.js";
import { floatAttr, intAttr, intsAttr, type NodeProto } from "../../formats/onnx-proto.js";
import type { OpTable } from "../backend.js";
import { foldIntoConv, NodeRun, paramName, pickConvRule, plainConv } from "./lowering.js";

export interface OnnxOpContext {
  /** The tensors this node reads, one per IR input. */
  inputs: string[];
  /** The first of them: what single-input ops read. */
  input: string;
  /** The tensor this node must write. */
  output: string;
  /** A channel-affine node (a batch norm) folded into this conv (`fold-batchnorm-into-conv`), its
   * own node omitted. */
  foldedInput?: AnyNodeIR;
  /** One plain node per op, no lowering rule (`EmitOptions.rewrites: false`). */
  plain?: boolean;
}

function optionalParamName(node: NodeIR, role: ParamIR["role"]): string[] {
  return node.params.some((p) => p.role === role) ? [paramName(node, role)] : [];
}

function onnxNode(
  node: NodeIR,
  opType: string,
  inputs: string[],
  ctx: OnnxOpContext,
  attribute: NodeProto["attribute"] = [],
): NodeProto[] {
  return [{ name: node.name, opType, input: inputs, output: [ctx.output], attribute }];
}

/** Floor-mode pooling (PyTorch's default ceil_mode=False), padded the same on both sides. */
function poolAttrs(kernel: Pair, stride: Pair, padding: Pair) {
  return [
    intsAttr("kernel_shape", kernel),
    intsAttr("strides", stride),
    intsAttr("pads", [...padding, ...padding]),
    intAttr("ceil_mode", 0),
  ];
}

export const onnxOps: OpTable<NodeProto[], OnnxOpContext> = {
  conv: (node, ctx) => {
    const run = new NodeRun(node.name);
    const given = { weight: paramName(node, "weight"), bias: optionalParamName(node, "bias")[0] };
    const tensors = ctx.foldedInput ? foldIntoConv(run, node, ctx.foldedInput, given) : given;
    (ctx.plain ? plainConv : pickConvRule(node)).lower(run, {
      node,
      x: ctx.input,
      output: ctx.output,
      ...tensors,
    });
    return run.nodes;
  },
  relu: (node, ctx) => onnxNode(node, "Relu", [ctx.input], ctx),
  // Opset 13's Clip takes its bounds as inputs.
  relu6: (node, ctx) => {
    const run = new NodeRun(node.name);
    run.op("Clip", [ctx.input, run.float(0), run.float(6)], [], ctx.output);
    return run.nodes;
  },
  leaky_relu: (node, ctx) =>
    onnxNode(node, "LeakyRelu", [ctx.input], ctx, [floatAttr("alpha", node.attrs.negativeSlope)]),
  sigmoid: (node, ctx) => onnxNode(node, "Sigmoid", [ctx.input], ctx),
  tanh: (node, ctx) => onnxNode(node, "Tanh", [ctx.input], ctx),
  // No Swish before opset 24: x·Sigmoid(x).
  silu: (node, ctx) => {
    const run = new NodeRun(node.name);
    run.op("Mul", [ctx.input, run.op("Sigmoid", [ctx.input])], [], ctx.output);
    return run.nodes;
  },
  // No Gelu before opset 20: x·(1 + Erf(x/√2))/2, as PyTorch computes the exact form.
  gelu: (node, ctx) => {
    const run = new NodeRun(node.name);
    const erf = run.op("Erf", [run.op("Mul", [ctx.input, run.float(Math.SQRT1_2)])]);
    const cdf = run.op("Mul", [run.op("Add", [erf, run.float(1)]), run.float(0.5)]);
    run.op("Mul", [ctx.input, cdf], [], ctx.output);
    return run.nodes;
  },
  // No HardSwish before opset 14: x·HardSigmoid(x) with PyTorch's slope 1/6 and offset 1/2.
  hardswish: (node, ctx) => {
    const run = new NodeRun(node.name);
    const gate = run.op(
      "HardSigmoid",
      [ctx.input],
      [floatAttr("alpha", 1 / 6), floatAttr("beta", 0.5)],
    );
    run.op("Mul", [ctx.input, gate], [], ctx.output);
    return run.nodes;
  },
  // Eval form: running statistics. ONNX's `momentum` attribute only matters in training mode
  // (and counts the other way from PyTorch's), so it is not written.
  batchnorm: (node, ctx) =>
    onnxNode(
      node,
      "BatchNormalization",
      [
        ctx.input,
        paramName(node, "weight"),
        paramName(node, "bias"),
        paramName(node, "running_mean"),
        paramName(node, "running_var"),
      ],
      ctx,
      [floatAttr("epsilon", node.attrs.eps)],
    ),
  // MaxPool's padding never wins, as PyTorch's −∞ padding.
  maxpool: (node, ctx) => {
    const { kernel, stride, padding } = node.attrs;
    return onnxNode(node, "MaxPool", [ctx.input], ctx, poolAttrs(kernel, stride, padding));
  },
  // PyTorch's AvgPool2d counts padded zeros (count_include_pad=True); ONNX's default does not.
  avgpool: (node, ctx) => {
    const { kernel, stride, padding } = node.attrs;
    const counted = padding[0] > 0 || padding[1] > 0 ? [intAttr("count_include_pad", 1)] : [];
    return onnxNode(node, "AveragePool", [ctx.input], ctx, [
      ...poolAttrs(kernel, stride, padding),
      ...counted,
    ]);
  },
  gap: (node, ctx) => onnxNode(node, "GlobalAveragePool", [ctx.input], ctx),
  // Identity at inference (nn.Dropout / nn.Dropout2d in eval mode): no node at all.
  dropout: () => [],
  flatten: (node, ctx) => onnxNode(node, "Flatten", [ctx.input], ctx, [intAttr("axis", 1)]),
  // nn.Linear: y = x·Wᵀ + b with W [out, in], which is Gemm with transB=1.
  linear: (node, ctx) => {
    if (node.inShape.length !== 1) {
      throw new Error(
        `onnx backend: linear ${node.name} needs a vector input, got [${node.inShape}]`,
      );
    }
    return onnxNode(
      node,
      "Gemm",
      [ctx.input, paramName(node, "weight"), ...optionalParamName(node, "bias")],
      ctx,
      [intAttr("transB", 1)],
    );
  },
  log_softmax: (node, ctx) => onnxNode(node, "LogSoftmax", [ctx.input], ctx, [intAttr("axis", 1)]),
  add: (node, ctx) => onnxNode(node, "Add", ctx.inputs, ctx),
  // NumPy broadcasting, as PyTorch's: a [B, C, 1, 1] gate scales each channel.
  mul: (node, ctx) => onnxNode(node, "Mul", ctx.inputs, ctx),
  concat: (node, ctx) => onnxNode(node, "Concat", ctx.inputs, ctx, [intAttr("axis", 1)]),
};
