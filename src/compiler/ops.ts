// The one op table: everything the compiler knows about an op lives in its entry here — attributes
// and their PyTorch defaults (as a JSON-schema fragment the spec schema is built from), the shape
// rule over the op's input shapes, the checks a shape cannot express, each parameter with its
// shape, trainability and PyTorch initialization, MACs and the receptive-field rule. Keyed by
// `OpKind` through a mapped type, so adding a kind to `OP_KINDS` without an entry here fails `tsc`.
// No other compiler file branches on an op's kind.

import { sizeOf } from "../util/shape.js";
import type { Code } from "./codes.js";
import type { Elementwise, GradBuilder, GradResult, GradValues } from "./grad-builder.js";
import type { NodeIR, OpAttrs, OpKind, Pads, Pair, ParamIR, Shape } from "./ir.js";

/** A JSON Schema object (draft-07), kept loose: it is data for ajv and for editors. */
export type JsonSchema = { [key: string]: unknown };

/** What a layer needs as input: an image [C, H, W], a vector [F], or any tensor. */
export type InputRank = "image" | "vector" | "any";

/** A sliding window over H and W (conv, pools): what the window-size check and tables read. */
export interface Window {
  /** What the window is called in messages. */
  what: "kernel" | "pool window";
  /** The extent the window covers: (k − 1)·dilation + 1. */
  kernel: Pair;
  stride: Pair;
  padding: Pads;
}

/** Receptive field per spatial axis [h, w], plus the size of the feature map it describes. */
export interface RfState {
  size: Pair;
  jump: Pair;
  /** Spatial size [H, W] of the last image-shaped tensor (kept through `flatten` for `linear`). */
  extent: Pair;
}

export type ParamRule = Omit<ParamIR, "name">;

/** A mistake the shape rule cannot express; the shapes pass locates it and names the layer. */
export interface OpProblem {
  code: Code;
  /** Says what is wrong, without the layer's name (the pass prefixes it). */
  message: string;
  /** Add a note at the layer that produced each input (a mismatch between inputs). */
  noteInputs?: boolean;
}

export interface OpDef<K extends OpKind> {
  /** One line for the schema (editors show it on hover). */
  description: string;
  /**
   * How a spec writes it: as a layer item (`- conv: {...}`), or as a block's key named like the op
   * (`- res1: { add: conv2, layers: [...] }`), which lowers to a node after the block's layers
   * that also reads the named earlier block's output.
   */
  spelling: "layer" | "block";
  /** A block op's operands, in order: the block's own output and the earlier block's. */
  operands?: readonly ["own", "earlier"] | readonly ["earlier", "own"];
  /** A block op's verb in messages: block `res1` adds block `c2`. */
  verb?: string;
  /** Attribute schemas, snake_case as written in YAML, each with its PyTorch default if any. */
  attributes: Record<string, JsonSchema>;
  required: readonly string[];
  /** The raw (schema-valid) YAML attributes with defaults applied, as IR attributes. */
  normalize(raw: Record<string, unknown>): OpAttrs[K];
  /** Short text for the `params` table's Type column, e.g. `conv 3x3 s2`. */
  describe(attrs: OpAttrs[K], inputs: Shape[]): string;
  /** How many tensors it reads. */
  arity: number;
  /** What every input must be. */
  rank: InputRank;
  /** The window this layer slides over H and W, if any (checked against the input's size). */
  window?(attrs: OpAttrs[K]): Window;
  /** A mistake in attributes or inputs that a shape cannot show; runs before `shape`. */
  check?(attrs: OpAttrs[K], inputs: Shape[]): OpProblem | undefined;
  /** Output shape; only called when ranks, window and `check` are fine. */
  shape(attrs: OpAttrs[K], inputs: Shape[]): Shape;
  params(attrs: OpAttrs[K], inputs: Shape[]): ParamRule[];
  /** Multiply-accumulates per sample (conv and linear; everything else counts 0, as torchinfo). */
  macs(attrs: OpAttrs[K], inputs: Shape[], output: Shape): number;
  /** The receptive field after this op, from its inputs' (in input order). */
  receptiveField(rfs: RfState[], attrs: OpAttrs[K], inputs: Shape[], output: Shape): RfState;
  /** It outputs log-probabilities: the head training's NLL loss needs last. */
  logProbabilities?: true;
  /** What the training forward keeps for `gradient`, beyond the inputs and the output. */
  saves?: readonly Saved[];
  /**
   * The random mask it draws at each training step, if any: keep each unit with probability
   * 1 − p, scaled by 1/(1 − p) (PyTorch's dropout). The runtime draws it from a stream seeded by
   * the node's name, so every backend sees the same masks.
   */
  randomMask?(attrs: OpAttrs[K]): { p: number };
  /** An elementwise op's function and derivative (its `gradient` is then dy·f′). */
  elementwise?: ElementwiseFn<K>;
  /**
   * The backward rule: gradients of the inputs (where wanted) and trainable parameters from
   * ∂L/∂output, in `GradBuilder` primitives (see autodiff.ts). Shapes are without the batch.
   */
  gradient<T>(
    b: GradBuilder<T>,
    attrs: OpAttrs[K],
    v: GradValues<T>,
    inputs: Shape[],
    output: Shape,
  ): GradResult<T>;
}

/** Training-forward values a backward rule may read: batch norm's normalized input and 1/σ, a
 * max pool's argmax indices, a dropout's scaled mask. */
export type Saved = "centred" | "invstd" | "indices" | "mask";

/**
 * An elementwise op in `Elementwise` primitives: `f` is PyTorch's definition (what tests hold each
 * backend's own spelling to), `df` its derivative from the input x or the output y = f(x),
 * PyTorch's at the kinks too (its `*_backward` kernels).
 */
export interface ElementwiseFn<K extends OpKind> {
  f<T>(e: Elementwise<T>, x: T, attrs: OpAttrs[K]): T;
  df<T>(e: Elementwise<T>, x: T, y: T, attrs: OpAttrs[K]): T;
}

export type OpTableDef = { [K in OpKind]: OpDef<K> };

// --- attribute schemas -----------------------------------------------------------------------

/**
 * Block names become PyTorch module names (`conv1.0`): identifiers, as in `self.conv1 = ...`, and
 * not dunder names (`__proto__` is a hazard in every JavaScript object keyed by name).
 */
export const BLOCK_NAME = "^(?!__)[A-Za-z_][A-Za-z0-9_]*$";

const positiveInt = (description: string): JsonSchema => ({
  type: "integer",
  minimum: 1,
  description,
});
/** An int or an [h, w] pair, as PyTorch's `kernel_size` / `stride` / `padding`. */
const sizeOrPair = (min: 0 | 1, description: string): JsonSchema => ({
  anyOf: [
    { type: "integer", minimum: min },
    { type: "array", items: { type: "integer", minimum: min }, minItems: 2, maxItems: 2 },
  ],
  description,
});

function pair(value: unknown, fallback: Pair): Pair {
  if (typeof value === "number") return [value, value];
  if (Array.isArray(value) && typeof value[0] === "number" && typeof value[1] === "number") {
    return [value[0], value[1]];
  }
  return fallback;
}

const num = (value: unknown, fallback: number): number =>
  typeof value === "number" ? value : fallback;
const bool = (value: unknown, fallback: boolean): boolean =>
  typeof value === "boolean" ? value : fallback;

const hw = (p: readonly number[]): string => (p[0] === p[1] ? `${p[0]}` : `${p[0]}x${p[1]}`);
const square = (p: Pair): string => `${p[0]}x${p[1]}`;
const symmetric = (p: Pair): Pads => [p[0], p[1], p[0], p[1]];
const isOne = (p: Pair) => p[0] === 1 && p[1] === 1;
const first = (inputs: Shape[]): Shape => inputs[0] ?? [];
const channelsOf = (inputs: Shape[]): number => first(inputs)[0] ?? 0;

/** The window a dilated kernel covers: (k − 1)·d + 1 per axis. */
export function dilatedExtent(kernel: Pair, dilation: Pair): Pair {
  return [(kernel[0] - 1) * dilation[0] + 1, (kernel[1] - 1) * dilation[1] + 1];
}

/** PyTorch's `padding="same"`: d·(k − 1) in all, the odd pixel at the bottom/right. */
export function samePads(kernel: Pair, dilation: Pair): Pads {
  const total = dilatedExtent(kernel, dilation).map((e) => e - 1);
  const [th = 0, tw = 0] = total;
  return [Math.floor(th / 2), Math.floor(tw / 2), th - Math.floor(th / 2), tw - Math.floor(tw / 2)];
}

// --- shared rules ----------------------------------------------------------------------------

const need = <T>(value: T | undefined, what: string): T => {
  if (value === undefined) throw new Error(`autodiff: ${what} is missing`);
  return value;
};

const none = (): ParamRule[] => [];

/** LeakyReLU's slope at x: 1 for x > 0, else `negative`. */
const slopes = <T>(e: Elementwise<T>, x: T, negative: number): T =>
  e.offset(e.scale(e.greater(x, 0), 1 - negative), negative);

/** Φ(x) = (1 + erf(x/√2))/2. */
const normalCdf = <T>(e: Elementwise<T>, x: T): T =>
  e.scale(e.offset(e.erf(e.scale(x, Math.SQRT1_2)), 1), 0.5);
const zero = (): number => 0;
const same = (_attrs: unknown, inputs: Shape[]): Shape => [...first(inputs)];
const unchanged = (rfs: RfState[]): RfState => rfs[0] as RfState;

/** PyTorch's output size for a sliding window, floor mode: ⌊(n + p₀ + p₁ − k) / s⌋ + 1. */
export function windowOutput(n: number, k: number, s: number, before: number, after = before) {
  return Math.floor((n + before + after - k) / s) + 1;
}

function slideShape(channels: number, input: Shape, w: Window): Shape {
  const [, h = 0, wd = 0] = input;
  const [top, left, bottom, right] = w.padding;
  return [
    channels,
    windowOutput(h, w.kernel[0], w.stride[0], top, bottom),
    windowOutput(wd, w.kernel[1], w.stride[1], left, right),
  ];
}

/** r_out = r_in + (k − 1)·j_in, j_out = j_in·s, per axis (k: the window's extent). */
function slide(rf: RfState, kernel: Pair, stride: Pair, output: Shape): RfState {
  return {
    size: [rf.size[0] + (kernel[0] - 1) * rf.jump[0], rf.size[1] + (kernel[1] - 1) * rf.jump[1]],
    jump: [rf.jump[0] * stride[0], rf.jump[1] * stride[1]],
    extent: [output[1] ?? 1, output[2] ?? 1],
  };
}

/** A layer that sees its whole feature map (gap; linear after flatten): a kernel of that size. */
function whole(rf: RfState): RfState {
  return slide(rf, rf.extent, rf.extent, [0, 1, 1]);
}

/** PyTorch's default init of a conv or linear layer: weight and bias share the weight's fan-in. */
function weightAndBias(weight: number[], fanIn: number, bias: boolean, out: number): ParamRule[] {
  const init = { type: "uniform", fanIn } as const;
  return [
    { role: "weight", shape: weight, trainable: true, init },
    ...(bias ? [{ role: "bias" as const, shape: [out], trainable: true, init }] : []),
  ];
}

const convWindow = (a: OpAttrs["conv"]): Window => ({
  what: "kernel",
  kernel: dilatedExtent(a.kernel, a.dilation),
  stride: a.stride,
  padding: a.padding,
});

const poolWindow = (a: OpAttrs["maxpool"]): Window => ({
  what: "pool window",
  kernel: a.kernel,
  stride: a.stride,
  padding: symmetric(a.padding),
});

/** maxpool and avgpool have the same attributes (`OpAttrs`) and rules but for the reduction. */
function pool<K extends "maxpool" | "avgpool">(
  name: K,
  description: string,
  gradient: OpDef<"maxpool">["gradient"],
  saves: readonly Saved[] = [],
): OpDef<K> {
  const def: OpDef<"maxpool"> = {
    description,
    spelling: "layer",
    attributes: {
      kernel: sizeOrPair(1, "window size (int or [h, w])"),
      stride: sizeOrPair(1, "step (int or [h, w]); default: the kernel size"),
      padding: sizeOrPair(
        0,
        name === "maxpool"
          ? "padding on each side (int or [h, w]), never the maximum; default 0"
          : "zero padding on each side (int or [h, w]), counted in the average; default 0",
      ),
    },
    required: ["kernel"],
    normalize: (raw) => {
      const kernel = pair(raw.kernel, [1, 1]);
      return { kernel, stride: pair(raw.stride, kernel), padding: pair(raw.padding, [0, 0]) };
    },
    describe: (a) =>
      [
        `${name} ${hw(a.kernel)}`,
        a.stride.join() === a.kernel.join() ? "" : ` s${hw(a.stride)}`,
        a.padding.join() === "0,0" ? "" : ` p${hw(a.padding)}`,
      ].join(""),
    arity: 1,
    rank: "image",
    window: poolWindow,
    // PyTorch refuses padding over half the window (a window of padding only).
    check: (a) =>
      a.padding.some((p, i) => 2 * p > (a.kernel[i] ?? 0))
        ? {
            code: "E0210",
            message: `padding ${hw(a.padding)} is more than half the ${square(a.kernel)} window (PyTorch allows at most half)`,
          }
        : undefined,
    shape: (a, inputs) => slideShape(channelsOf(inputs), first(inputs), poolWindow(a)),
    params: none,
    macs: zero,
    receptiveField: (rfs, a, _inputs, output) =>
      slide(rfs[0] as RfState, a.kernel, a.stride, output),
    saves,
    gradient,
  };
  // Sound: OpAttrs["maxpool"] and OpAttrs["avgpool"] are the same type.
  return def as unknown as OpDef<K>;
}

/**
 * An activation: one input of any rank, its shape, no parameters, no MACs (as torchinfo counts),
 * the receptive field unchanged, and the backward dx = dy·f′(x) from its `elementwise` rule.
 */
function activation<K extends OpKind>(
  description: string,
  fn: ElementwiseFn<K>,
  form: Pick<OpDef<K>, "attributes" | "normalize" | "describe">,
): OpDef<K> {
  return {
    description,
    spelling: "layer",
    required: [],
    ...form,
    arity: 1,
    rank: "any",
    shape: same,
    params: none,
    macs: zero,
    receptiveField: unchanged,
    elementwise: fn,
    gradient: (b, a, v) => {
      const [x = v.dy] = v.inputs;
      return {
        inputs: [v.wanted[0] ? b.mul(v.dy, fn.df(b, x, v.output, a)) : undefined],
        params: {},
      };
    },
  };
}

/**
 * A block combinator: two operands, no parameters or MACs, and the longer of the two paths
 * deciding what an output sees. Its one attribute is the earlier block, under the op's own name.
 */
function combinator<K extends "add" | "mul" | "concat">(
  kind: K,
  rule: Pick<OpDef<K>, "description" | "check" | "shape" | "gradient"> & {
    verb: string;
    /** What the attribute names, for the schema. */
    earlier: string;
    operands: NonNullable<OpDef<K>["operands"]>;
  },
): OpDef<K> {
  const { earlier, ...rest } = rule;
  return {
    ...rest,
    spelling: "block",
    attributes: { [kind]: { type: "string", pattern: BLOCK_NAME, description: earlier } },
    required: [],
    normalize: (raw) =>
      ({ from: typeof raw[kind] === "string" ? raw[kind] : "" }) as unknown as OpAttrs[K],
    describe: (a) => `${kind} ${(a as OpAttrs["add"]).from}`,
    arity: 2,
    rank: "any",
    params: none,
    macs: zero,
    receptiveField: (rfs, _a, _inputs, output) => {
      const extent: Pair = [output[1] ?? 1, output[2] ?? 1];
      // A broadcast [C, 1, 1] gate has no grid of its own: the jump is the full-size operand's.
      const grid = rfs.filter((r) => r.extent[0] === extent[0] && r.extent[1] === extent[1]);
      const max = (list: RfState[], f: (rf: RfState) => number) => Math.max(...list.map(f));
      const jumps = grid.length > 0 ? grid : rfs;
      return {
        size: [max(rfs, (r) => r.size[0]), max(rfs, (r) => r.size[1])],
        jump: [max(jumps, (r) => r.jump[0]), max(jumps, (r) => r.jump[1])],
        extent,
      };
    },
  };
}

/** The form of an activation without attributes: written bare (`- silu`), described by its name. */
const bare = <K extends OpKind>(kind: K) =>
  ({ attributes: {}, normalize: () => ({}), describe: () => kind }) as unknown as Pick<
    OpDef<K>,
    "attributes" | "normalize" | "describe"
  >;

// --- the table -------------------------------------------------------------------------------

export const OPS: OpTableDef = {
  conv: {
    description:
      "nn.Conv2d: zero-padded 2-D convolution, optionally grouped or dilated; input channels are inferred",
    spelling: "layer",
    attributes: {
      out: positiveInt("output channels"),
      kernel: sizeOrPair(1, "kernel size (int or [h, w], e.g. [3, 1])"),
      stride: sizeOrPair(1, "stride (int or [h, w]); default 1"),
      padding: {
        anyOf: [
          { type: "integer", minimum: 0 },
          { type: "array", items: { type: "integer", minimum: 0 }, minItems: 2, maxItems: 2 },
          { const: "same" },
        ],
        description:
          "zero padding on each side (int or [h, w]), or `same` (stride 1: output size = input size); default 0",
      },
      dilation: sizeOrPair(1, "spacing between kernel taps (int or [h, w]); default 1"),
      groups: positiveInt(
        "channel groups; input and output channels must divide by it (groups = input channels: depthwise); default 1",
      ),
      bias: { type: "boolean", description: "learn a bias; default true" },
    },
    required: ["out", "kernel"],
    normalize: (raw) => {
      const kernel = pair(raw.kernel, [1, 1]);
      const dilation = pair(raw.dilation, [1, 1]);
      const isSame = raw.padding === "same";
      return {
        out: num(raw.out, 1),
        kernel,
        stride: pair(raw.stride, [1, 1]),
        padding: isSame ? samePads(kernel, dilation) : symmetric(pair(raw.padding, [0, 0])),
        same: isSame,
        dilation,
        groups: num(raw.groups, 1),
        bias: bool(raw.bias, true),
      };
    },
    describe: (a, inputs) => {
      const [top, left, bottom, right] = a.padding;
      const pads = a.same
        ? " same"
        : top === 0 && left === 0
          ? ""
          : ` p${top === bottom && left === right ? hw([top, left]) : a.padding.join(",")}`;
      const groups =
        a.groups === 1 ? "" : a.groups === channelsOf(inputs) ? " dw" : ` g${a.groups}`;
      return [
        `conv ${square(a.kernel)}`,
        isOne(a.stride) ? "" : ` s${hw(a.stride)}`,
        pads,
        isOne(a.dilation) ? "" : ` d${hw(a.dilation)}`,
        groups,
        a.bias ? "" : " nobias",
      ].join("");
    },
    arity: 1,
    rank: "image",
    window: convWindow,
    check: (a, inputs) => {
      const channels = channelsOf(inputs);
      if (a.same && !isOne(a.stride)) {
        return {
          code: "E0209",
          message: `padding: same needs stride 1 (PyTorch's rule), got stride ${hw(a.stride)}`,
        };
      }
      if (channels % a.groups !== 0 || a.out % a.groups !== 0) {
        return {
          code: "E0208",
          message: `groups ${a.groups} must divide both the ${channels} input and the ${a.out} output channels`,
          noteInputs: channels % a.groups !== 0,
        };
      }
      return undefined;
    },
    shape: (a, inputs) => slideShape(a.out, first(inputs), convWindow(a)),
    params: (a, inputs) => {
      const perGroup = channelsOf(inputs) / a.groups;
      const fanIn = perGroup * a.kernel[0] * a.kernel[1];
      return weightAndBias([a.out, perGroup, ...a.kernel], fanIn, a.bias, a.out);
    },
    macs: (a, inputs, output) =>
      sizeOf(output) * (channelsOf(inputs) / a.groups) * a.kernel[0] * a.kernel[1],
    receptiveField: (rfs, a, _inputs, output) =>
      slide(rfs[0] as RfState, dilatedExtent(a.kernel, a.dilation), a.stride, output),
    // dx = conv_transpose(dy, W); dW = Σ_b x ⋆ dy; db = Σ_{b,h,w} dy.
    gradient: (b, a, v, inputs) => {
      const [x = v.dy] = v.inputs;
      const w = need(v.params.weight, "conv weight");
      const weightShape = [a.out, channelsOf(inputs) / a.groups, ...a.kernel];
      return {
        inputs: [
          v.wanted[0] ? b.convInputGrad(v.dy, w, a, [v.batch, ...first(inputs)]) : undefined,
        ],
        params: {
          weight: b.convFilterGrad(x, v.dy, a, weightShape),
          ...(a.bias ? { bias: b.sumPerChannel(v.dy) } : {}),
        },
      };
    },
  },

  relu: activation(
    "nn.ReLU",
    {
      f: (e, x) => e.clamp(x, 0, Number.POSITIVE_INFINITY),
      // A select on y > 0, not a multiply by a step function of x: the same at x = 0 (PyTorch's 0).
      df: (e, _x, y) => e.greater(y, 0),
    },
    bare("relu"),
  ),

  relu6: activation(
    "nn.ReLU6: min(max(x, 0), 6)",
    {
      f: (e, x) => e.clamp(x, 0, 6),
      // hardtanh_backward: 1 strictly inside (0, 6), 0 at both kinks.
      df: (e, _x, y) => e.mul(e.greater(y, 0), e.less(y, 6)),
    },
    bare("relu6"),
  ),

  leaky_relu: activation(
    "nn.LeakyReLU: x for x > 0, else negative_slope·x",
    {
      f: (e, x, a) => e.mul(x, slopes(e, x, a.negativeSlope)),
      df: (e, x, _y, a) => slopes(e, x, a.negativeSlope),
    },
    {
      attributes: {
        negative_slope: { type: "number", description: "the slope for x ≤ 0; default 0.01" },
      },
      normalize: (raw) => ({ negativeSlope: num(raw.negative_slope, 0.01) }),
      describe: (a) => `leaky_relu ${a.negativeSlope}`,
    },
  ),

  sigmoid: activation(
    "nn.Sigmoid: 1/(1 + e^−x)",
    { f: (e, x) => e.sigmoid(x), df: (e, _x, y) => e.mul(y, e.offset(e.scale(y, -1), 1)) },
    bare("sigmoid"),
  ),

  tanh: activation(
    "nn.Tanh",
    { f: (e, x) => e.tanh(x), df: (e, _x, y) => e.offset(e.scale(e.mul(y, y), -1), 1) },
    bare("tanh"),
  ),

  silu: activation(
    "nn.SiLU: x·sigmoid(x)",
    {
      f: (e, x) => e.mul(x, e.sigmoid(x)),
      // σ·(1 + x·(1 − σ)), as silu_backward.
      df: (e, x) => {
        const s = e.sigmoid(x);
        return e.mul(s, e.offset(e.mul(x, e.offset(e.scale(s, -1), 1)), 1));
      },
    },
    bare("silu"),
  ),

  gelu: activation(
    "nn.GELU: x·Φ(x), Φ the normal CDF (exact, by erf)",
    {
      f: (e, x) => e.mul(x, normalCdf(e, x)),
      // Φ(x) + x·φ(x), φ(x) = e^(−x²/2)/√(2π).
      df: (e, x) =>
        e.add(
          normalCdf(e, x),
          e.mul(x, e.scale(e.exp(e.scale(e.mul(x, x), -0.5)), 1 / Math.sqrt(2 * Math.PI))),
        ),
    },
    bare("gelu"),
  ),

  hardswish: activation(
    "nn.Hardswish: x·relu6(x + 3)/6",
    {
      f: (e, x) => e.scale(e.mul(x, e.clamp(e.offset(x, 3), 0, 6)), 1 / 6),
      // hardswish_backward: 0 below −3, x/3 + 1/2 on [−3, 3] (both ends included), 1 above 3.
      df: (e, x) => {
        const above = e.greater(x, 3);
        const inside = e.offset(e.scale(e.add(e.less(x, -3), above), -1), 1);
        return e.add(above, e.mul(inside, e.offset(e.scale(x, 1 / 3), 0.5)));
      },
    },
    bare("hardswish"),
  ),

  batchnorm: {
    description: "nn.BatchNorm2d: batch statistics in training, running statistics in eval",
    spelling: "layer",
    attributes: {
      eps: { type: "number", exclusiveMinimum: 0, description: "default 1e-5" },
      momentum: {
        type: "number",
        minimum: 0,
        maximum: 1,
        description: "running-statistics update factor, PyTorch's convention; default 0.1",
      },
    },
    required: [],
    normalize: (raw) => ({ eps: num(raw.eps, 1e-5), momentum: num(raw.momentum, 0.1) }),
    describe: () => "batchnorm",
    arity: 1,
    rank: "image",
    shape: same,
    // nn.BatchNorm2d starts at weight 1, bias 0, running mean 0, running var 1.
    params: (_a, inputs) => {
      const c = [channelsOf(inputs)];
      const fill = (value: number) => ({ type: "fill", value }) as const;
      return [
        { role: "weight", shape: c, trainable: true, init: fill(1) },
        { role: "bias", shape: c, trainable: true, init: fill(0) },
        { role: "running_mean", shape: c, trainable: false, init: fill(0) },
        { role: "running_var", shape: c, trainable: false, init: fill(1) },
      ];
    },
    macs: zero,
    receptiveField: unchanged,
    // Batch statistics, n = B·H·W, x̂ = (x − μ)/σ: dβ = Σ dy; dγ = Σ dy·x̂;
    // dx = γ/σ · (dy − dβ/n − x̂·dγ/n). The forward keeps x − μ, not x̂ (a pass fewer over the
    // layer's activations), so 1/σ goes into the per-channel factors here.
    saves: ["centred", "invstd"],
    gradient: (b, _a, v, inputs) => {
      const [, h = 1, w = 1] = first(inputs);
      const n = v.batch * h * w;
      const centred = need(v.saved.centred, "batch norm x − μ");
      const invstd = need(v.saved.invstd, "batch norm 1/σ");
      const gamma = need(v.params.weight, "batch norm weight");
      const dbeta = b.sumPerChannel(v.dy);
      const dgamma = b.mul(b.dotPerChannel(v.dy, centred), invstd);
      const k = b.mul(gamma, invstd);
      // γ/σ·(−x̂·dγ/n − dβ/n) in one pass over x − μ; γ/σ·dy apart, so that a backend may fold
      // γ/σ into whatever computed dy (a conv's input gradient: into its weight).
      const correction = b.affine(
        centred,
        b.mul(b.scale(b.mul(dgamma, invstd), -1 / n), k),
        b.mul(b.scale(dbeta, -1 / n), k),
      );
      return {
        inputs: [v.wanted[0] ? b.add(b.scaleChannels(v.dy, k), correction) : undefined],
        params: { weight: dgamma, bias: dbeta },
      };
    },
  },

  maxpool: pool(
    "maxpool",
    "nn.MaxPool2d: floor mode",
    (b, _a, v, inputs) => ({
      inputs: [
        v.wanted[0]
          ? b.maxPoolGrad(v.dy, need(v.saved.indices, "max pool indices"), [
              v.batch,
              ...first(inputs),
            ])
          : undefined,
      ],
      params: {},
    }),
    ["indices"],
  ),
  avgpool: pool("avgpool", "nn.AvgPool2d: floor mode, count_include_pad", (b, a, v, inputs) => ({
    inputs: [v.wanted[0] ? b.avgPoolGrad(v.dy, a, [v.batch, ...first(inputs)]) : undefined],
    params: {},
  })),

  gap: {
    description: "nn.AdaptiveAvgPool2d(1): global average pool to [C, 1, 1]",
    spelling: "layer",
    attributes: {},
    required: [],
    normalize: () => ({}),
    describe: () => "gap",
    arity: 1,
    rank: "image",
    shape: (_a, inputs) => [channelsOf(inputs), 1, 1],
    params: none,
    macs: zero,
    receptiveField: (rfs) => whole(rfs[0] as RfState),
    gradient: (b, _a, v, inputs) => ({
      inputs: [v.wanted[0] ? b.spreadSpatial(v.dy, [v.batch, ...first(inputs)]) : undefined],
      params: {},
    }),
  },

  dropout: {
    description: "nn.Dropout2d on [C, H, W] (whole channels), nn.Dropout on vectors",
    spelling: "layer",
    attributes: {
      p: { type: "number", minimum: 0, maximum: 1, description: "drop probability; default 0.5" },
    },
    required: [],
    normalize: (raw) => ({ p: num(raw.p, 0.5) }),
    describe: (a) => `dropout ${a.p}`,
    arity: 1,
    rank: "any",
    shape: same,
    params: none,
    macs: zero,
    receptiveField: unchanged,
    randomMask: (a) => ({ p: a.p }),
    // y = x·mask (the mask already scaled by 1/(1 − p)), so dx = dy·mask.
    saves: ["mask"],
    gradient: (b, _a, v) => ({
      inputs: [v.wanted[0] ? b.mul(v.dy, need(v.saved.mask, "dropout mask")) : undefined],
      params: {},
    }),
  },

  flatten: {
    description: "nn.Flatten: [C, H, W] to [C·H·W], PyTorch (channel-major) order",
    spelling: "layer",
    attributes: {},
    required: [],
    normalize: () => ({}),
    describe: () => "flatten",
    arity: 1,
    rank: "any",
    shape: (_a, inputs) => [sizeOf(first(inputs))],
    params: none,
    macs: zero,
    receptiveField: unchanged,
    gradient: (b, _a, v, inputs) => ({
      inputs: [v.wanted[0] ? b.reshape(v.dy, [v.batch, ...first(inputs)]) : undefined],
      params: {},
    }),
  },

  linear: {
    description: "nn.Linear on a vector (put `flatten` before it)",
    spelling: "layer",
    attributes: {
      out: positiveInt("output features"),
      bias: { type: "boolean", description: "learn a bias; default true" },
    },
    required: ["out"],
    normalize: (raw) => ({ out: num(raw.out, 1), bias: bool(raw.bias, true) }),
    describe: (a) => (a.bias ? "linear" : "linear nobias"),
    arity: 1,
    rank: "vector",
    shape: (a) => [a.out],
    params: (a, inputs) => {
      const features = channelsOf(inputs);
      return weightAndBias([a.out, features], features, a.bias, a.out);
    },
    macs: (a, inputs) => channelsOf(inputs) * a.out,
    // Every output sees every position of the feature map that was flattened: like gap.
    receptiveField: (rfs) => whole(rfs[0] as RfState),
    // y = x·Wᵀ + b: dx = dy·W; dW = dyᵀ·x; db = Σ_b dy.
    gradient: (b, a, v) => {
      const [x = v.dy] = v.inputs;
      const w = need(v.params.weight, "linear weight");
      return {
        inputs: [v.wanted[0] ? b.matmul(v.dy, w, false, false) : undefined],
        params: {
          weight: b.matmul(v.dy, x, true, false),
          ...(a.bias ? { bias: b.sumBatch(v.dy) } : {}),
        },
      };
    },
  },

  log_softmax: {
    description: "F.log_softmax over classes (dim 1); the last layer, as training uses NLL loss",
    spelling: "layer",
    attributes: {},
    required: [],
    normalize: () => ({}),
    describe: () => "log_softmax",
    arity: 1,
    rank: "any",
    shape: same,
    params: none,
    macs: zero,
    receptiveField: unchanged,
    logProbabilities: true,
    // y = x − log Σ exp x: dx = dy − exp(y)·Σ dy.
    gradient: (b, _a, v) => ({
      inputs: [v.wanted[0] ? b.sub(v.dy, b.mul(b.exp(v.output), b.sumRows(v.dy))) : undefined],
      params: {},
    }),
  },

  add: combinator("add", {
    description:
      "a residual connection: the block's output plus the output of an earlier block (`x + y`, same shapes)",
    verb: "adds",
    earlier: "an earlier block whose output is added to this block's output (shapes must match)",
    operands: ["own", "earlier"],
    check: (_a, inputs) => {
      const [x = [], y = []] = inputs;
      return x.length === y.length && x.every((d, i) => d === y[i])
        ? undefined
        : { code: "E0207", message: "adds tensors of different shapes", noteInputs: true };
    },
    shape: same,
    gradient: (_b, _a, v) => ({
      inputs: v.wanted.map((wanted) => (wanted ? v.dy : undefined)),
      params: {},
    }),
  }),

  mul: combinator("mul", {
    description:
      "a gate: the block's output times the output of an earlier block, broadcasting as PyTorch does (`x * y`; a [C, 1, 1] gate scales each channel: squeeze-excitation)",
    verb: "multiplies by",
    earlier:
      "an earlier block whose output this block's output multiplies (each size equal, or 1 in one of the two)",
    operands: ["own", "earlier"],
    check: (_a, inputs) => {
      const [x = [], y = []] = inputs;
      return x.length === y.length && x.every((d, i) => d === y[i] || d === 1 || y[i] === 1)
        ? undefined
        : {
            code: "E0211",
            message:
              "multiplies tensors whose shapes do not broadcast (each size equal, or 1 in one of them):",
            noteInputs: true,
          };
    },
    shape: (_a, inputs) => {
      const [x = [], y = []] = inputs;
      return x.map((d, i) => Math.max(d, y[i] ?? 1));
    },
    // y = a·b: each operand's gradient is dy times the other, summed over the axes it was
    // broadcast along (a [C, 1, 1] gate: over H and W).
    gradient: (b, _a, v, inputs) => {
      const [x = v.dy, y = v.dy] = v.inputs;
      const full = (i: number) => [v.batch, ...(inputs[i] ?? [])];
      return {
        inputs: [
          v.wanted[0] ? b.sumTo(b.mul(v.dy, y), full(0)) : undefined,
          v.wanted[1] ? b.sumTo(b.mul(v.dy, x), full(1)) : undefined,
        ],
        params: {},
      };
    },
  }),

  concat: combinator("concat", {
    description:
      "a dense connection: the output of an earlier block, then this block's output, along channels (`torch.cat([y, x], dim=1)`, same spatial size)",
    verb: "concatenates",
    earlier: "an earlier block whose output channels come before this block's (same spatial size)",
    operands: ["earlier", "own"],
    check: (_a, inputs) => {
      const [x = [], y = []] = inputs;
      if (x.length !== y.length) {
        return {
          code: "E0212",
          message: "concatenates an image and a vector:",
          noteInputs: true,
        };
      }
      return x.every((d, i) => i === 0 || d === y[i])
        ? undefined
        : {
            code: "E0212",
            message: "concatenates maps of different spatial sizes:",
            noteInputs: true,
          };
    },
    shape: (_a, inputs) => {
      const [x = [], y = []] = inputs;
      return [(x[0] ?? 0) + (y[0] ?? 0), ...x.slice(1)];
    },
    // Each operand's channels of dy.
    gradient: (b, _a, v, inputs) => {
      const [c0 = 0] = inputs[0] ?? [];
      const [c1 = 0] = inputs[1] ?? [];
      return {
        inputs: [
          v.wanted[0] ? b.sliceChannels(v.dy, 0, c0) : undefined,
          v.wanted[1] ? b.sliceChannels(v.dy, c0, c1) : undefined,
        ],
        params: {},
      };
    },
  }),
};

/** Ops a spec writes as layer items (`- relu`, `- conv: {...}`). */
export const LAYER_KINDS: readonly OpKind[] = (Object.keys(OPS) as OpKind[]).filter(
  (kind) => OPS[kind].spelling === "layer",
);

/** Ops a spec writes as a block's key (`- res1: { add: conv2, layers: [...] }`). */
export const BLOCK_KINDS: readonly OpKind[] = (Object.keys(OPS) as OpKind[]).filter(
  (kind) => OPS[kind].spelling === "block",
);

/** Ops that can be written as a bare name (`- relu`): those without required attributes. */
export function isBare(kind: OpKind): boolean {
  return OPS[kind].spelling === "layer" && OPS[kind].required.length === 0;
}

/** The table entry for a kind, typed loosely for generic passes over any node. */
export function opDef(kind: OpKind): OpDef<OpKind> {
  return OPS[kind] as unknown as OpDef<OpKind>;
}

/** The random mask a node draws in training (`OpDef.randomMask`), named by the node. */
export function randomMaskOf(node: NodeIR): { name: string; p: number } | undefined {
  const mask = opDef(node.kind).randomMask?.(node.attrs);
  return mask && { name: node.name, p: mask.p };
}
