// The inference graph's lowering rules that span more than one ONNX node, each small, named and
// tested on its own (test/onnx-lowering.test.ts), like the training step's in onnx-train/lowering.ts:
// - `fold-batchnorm-into-conv`: a batch norm whose only reader is (through ops that are the identity
//   at inference) a conv without padding becomes part of that conv's weights: the conv sees
//   a·x + c per input channel, so W' = W·a and b' = b + Σ W·c. The graph keeps PyTorch's
//   initializers; the folding is a few nodes on them that onnxruntime computes once, at load.
// - conv lowering by shape: `shifted-sum` when Cout·kh·kw < Cin (the seed's 128 → 4 conv: one 1x1
//   conv to Cout·kh·kw channels, then the taps' shifted slices summed), else ORT's `conv`.
import type { AnyNodeIR, ModelIR, NodeIR, OpAttrs, ParamIR } from "../../compiler/ir.js";
import {
  type AttributeProto,
  floatTensor,
  int64Tensor,
  intAttr,
  intsAttr,
  type NodeProto,
  tensorAttr,
} from "../../formats/onnx-proto.js";
import type { OpTable } from "../backend.js";

/** How an op takes part in the inference rewrites. */
export interface InferenceRole {
  /** Computes nothing at inference (dropout): a fold may look through it. */
  identity?: boolean;
  /**
   * A per-channel affine map y = a·x + c at inference (eval-mode batch norm) that may be folded
   * forward: emits the nodes computing a and c, each of shape [C].
   */
  channelAffine?(run: NodeRun, node: AnyNodeIR): ChannelAffine;
  /** Can take a per-input-channel affine map into its weights. */
  absorbsInputAffine?(node: AnyNodeIR): boolean;
}

/** The tensors of a per-channel affine map y = a·x + c, each of shape [C]. */
export interface ChannelAffine {
  scale: string;
  shift: string;
}

const isZero = (values: readonly number[]) => values.every((v) => v === 0);

/** The ops that take part in the rewrites; every other op is none of these (opt-in, so a new op
 * needs no entry here). */
export const INFERENCE_ROLES: Partial<OpTable<InferenceRole, void>> = {
  // Exact only without padding: padded zeros would have to become c, not 0. Groups are left to
  // ORT (a depthwise conv's weights would need regrouping first).
  conv: () => ({
    absorbsInputAffine: (node) =>
      isZero((node as NodeIR<"conv">).attrs.padding) && (node as NodeIR<"conv">).attrs.groups === 1,
  }),
  // a = γ/√(var + ε), c = β − mean·a.
  batchnorm: () => ({
    channelAffine(run, node) {
      const bn = node as NodeIR<"batchnorm">;
      const p = (r: ParamIR["role"]) => paramName(bn, r);
      const a = run.op("Div", [
        p("weight"),
        run.op("Sqrt", [run.op("Add", [p("running_var"), run.float(bn.attrs.eps)])]),
      ]);
      return { scale: a, shift: run.op("Sub", [p("bias"), run.op("Mul", [p("running_mean"), a])]) };
    },
  }),
  dropout: () => ({ identity: true }),
};

/** The initializer of `node`'s parameter of role `r` (parameters keep their IR names). */
export function paramName(node: Pick<NodeIR, "name" | "params">, r: ParamIR["role"]): string {
  const found = node.params.find((q) => q.role === r);
  if (!found) throw new Error(`onnx backend: node ${node.name} has no ${r} parameter`);
  return found.name;
}

export const role = (node: AnyNodeIR): InferenceRole =>
  (INFERENCE_ROLES[node.kind] as ((n: AnyNodeIR, c: undefined) => InferenceRole) | undefined)?.(
    node,
    undefined,
  ) ?? {};

/**
 * `fold-batchnorm-into-conv`: conv node name → the channel-affine node (a batch norm) folded into
 * it. An affine node folds
 * when its output, through identity-at-inference nodes, is read by exactly one node, a conv that
 * absorbs an input affine, and by nothing else (not the graph output, not a residual add).
 */
export function foldBatchNorms(ir: ModelIR): Map<string, AnyNodeIR> {
  const readers = new Map<string, AnyNodeIR[]>();
  for (const node of ir.nodes) {
    for (const input of node.inputs) readers.set(input, [...(readers.get(input) ?? []), node]);
  }
  const last = ir.nodes.at(-1)?.name;
  const folds = new Map<string, AnyNodeIR>();
  for (const node of ir.nodes) {
    if (!role(node).channelAffine) continue;
    let at: AnyNodeIR = node;
    for (;;) {
      const next = readers.get(at.name) ?? [];
      if (at.name === last || next.length !== 1) break;
      const [reader] = next as [AnyNodeIR];
      if (role(reader).identity) {
        at = reader;
        continue;
      }
      if (role(reader).absorbsInputAffine?.(reader)) {
        folds.set(reader.name, node);
      }
      break;
    }
  }
  return folds;
}

/** Builds a run of nodes for one IR node: fresh tensor names under its name, int64 constants. */
export class NodeRun {
  readonly nodes: NodeProto[] = [];
  private count = 0;

  constructor(private readonly prefix: string) {}

  /** A node; the one writing the IR node's `output` is named as the IR node. */
  op(opType: string, input: string[], attribute: NodeProto["attribute"] = [], output?: string) {
    const tensor = output ?? `${this.prefix}/${opType.toLowerCase()}${this.count++}`;
    const name = output === undefined ? tensor : this.prefix;
    this.nodes.push({ name, opType, input, output: [tensor], attribute });
    return tensor;
  }

  ints(values: number[]): string {
    return this.op("Constant", [], [tensorAttr("value", int64Tensor("", [values.length], values))]);
  }

  float(value: number): string {
    return this.op(
      "Constant",
      [],
      [tensorAttr("value", floatTensor("", [], Float32Array.of(value)))],
    );
  }
}

export interface ConvTensors {
  weight: string;
  bias: string | undefined;
}

/** W' = W·a, b' = b + Σ W·c for the channel-affine node `affine` (a batch norm) before `conv`. */
export function foldIntoConv(
  run: NodeRun,
  conv: NodeIR<"conv">,
  affine: AnyNodeIR,
  { weight, bias }: ConvTensors,
): ConvTensors {
  const map = role(affine).channelAffine;
  if (!map) throw new Error(`onnx backend: ${affine.name} is not a channel-affine map`);
  const { scale: a, shift: c } = map(run, affine);
  const cin = conv.inShape[0] ?? 0;
  const perInput = run.ints([1, cin, 1, 1]);
  const scaled = run.op("Mul", [weight, run.op("Reshape", [a, perInput])]);
  const shift = run.op(
    "ReduceSum",
    [run.op("Mul", [weight, run.op("Reshape", [c, perInput])]), run.ints([1, 2, 3])],
    [intAttr("keepdims", 0)],
  );
  return { weight: scaled, bias: bias ? run.op("Add", [bias, shift]) : shift };
}

export interface ConvLoweringArgs extends ConvTensors {
  node: NodeIR<"conv">;
  x: string;
  output: string;
}

export interface ConvRule {
  name: string;
  applies(node: NodeIR<"conv">): boolean;
  lower(run: NodeRun, args: ConvLoweringArgs): void;
}

const isOne = (p: readonly number[]) => p.every((v) => v === 1);

/**
 * Where the shifted-sum form of a conv pays (this graph's and the training step's rule): more input
 * channels than Cout·kh·kw, stride 1, dilation 1, no groups, a kernel larger than 1x1.
 */
export function shiftedSumFits(attrs: OpAttrs["conv"], inChannels: number): boolean {
  const kk = attrs.kernel[0] * attrs.kernel[1];
  return (
    attrs.groups === 1 &&
    isOne(attrs.stride) &&
    isOne(attrs.dilation) &&
    kk > 1 &&
    attrs.out * kk < inChannels
  );
}

/** ORT's Conv attributes of a conv; ONNX pads are [top, left, bottom, right], as the IR keeps them. */
export function convAttributes(attrs: OpAttrs["conv"]): AttributeProto[] {
  return [
    intsAttr("kernel_shape", attrs.kernel),
    intsAttr("strides", attrs.stride),
    intsAttr("pads", attrs.padding),
    intsAttr("dilations", attrs.dilation),
    intAttr("group", attrs.groups),
  ];
}

/** The first of `rules` that applies to `args` (rule lists end in one that always does). */
export function firstApplying<A, R extends { applies(args: A): boolean }>(
  rules: readonly R[],
  args: A,
  who: string,
): R {
  const rule = rules.find((r) => r.applies(args));
  if (!rule) throw new Error(`${who}: no lowering rule applies`);
  return rule;
}

export const shiftedSum: ConvRule = {
  name: "shifted-sum",
  applies: ({ attrs, inShape }) => shiftedSumFits(attrs, inShape[0] ?? 0),
  lower(run, { node, x, weight, bias, output }) {
    const [cin = 0, h = 0, w = 0] = node.inShape;
    const [cout = 0, ho = 0, wo = 0] = node.outShape;
    const [kh, kw] = node.attrs.kernel;
    const [top, left, bottom, right] = node.attrs.padding;
    const kk = kh * kw;
    const padded = isZero(node.attrs.padding)
      ? x
      : run.op("Pad", [x, run.ints([0, 0, top, left, 0, 0, bottom, right])]);
    const [hp, wp] = [h + top + bottom, w + left + right];
    // [Cout, Cin, kh, kw] → [(Cout, kh, kw), Cin, 1, 1]: one 1x1 conv computes every tap.
    const w1 = run.op("Reshape", [
      run.op("Transpose", [weight], [intsAttr("perm", [0, 2, 3, 1])]),
      run.ints([cout * kk, cin, 1, 1]),
    ]);
    const z = run.op("Conv", [padded, w1], [intsAttr("kernel_shape", [1, 1])]);
    // 0 keeps the batch axis as it is (the graph's batch is dynamic).
    const z5 = run.op("Reshape", [z, run.ints([0, cout, kk, hp, wp])]);
    const axes = run.ints([2, 3, 4]);
    const taps: string[] = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const t = i * kw + j;
        taps.push(
          run.op("Slice", [z5, run.ints([t, i, j]), run.ints([t + 1, i + ho, j + wo]), axes]),
        );
      }
    }
    if (bias) taps.push(run.op("Reshape", [bias, run.ints([1, cout, 1, 1, 1])]));
    const sum = run.op("Sum", taps);
    run.op("Reshape", [sum, run.ints([0, cout, ho, wo])], [], output);
  },
};

export const plainConv: ConvRule = {
  name: "conv",
  applies: () => true,
  lower(run, { node, x, weight, bias, output }) {
    run.op("Conv", bias ? [x, weight, bias] : [x, weight], convAttributes(node.attrs), output);
  },
};

/** The first rule that applies (the list ends in one that always does). */
export const CONV_RULES: readonly ConvRule[] = [shiftedSum, plainConv];

export function pickConvRule(node: NodeIR<"conv">): ConvRule {
  return firstApplying(CONV_RULES, node, "onnx backend");
}
