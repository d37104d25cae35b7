// The one op table: everything the compiler knows about a layer kind lives in its entry here —
// attributes and their PyTorch defaults (as a JSON-schema fragment the spec schema is built from),
// the shape rule, the parameter rule, MACs and the receptive-field rule. Keyed by `OpKind` through
// a mapped type, so adding a kind to `OP_KINDS` without an entry here fails `tsc`.
import type { OpAttrs, OpKind, Pair, ParamIR, Shape } from "./ir.js";

/** A JSON Schema object (draft-07), kept loose: it is data for ajv and for editors. */
export type JsonSchema = { [key: string]: unknown };

/** What a layer needs as input: an image [C, H, W], a vector [F], or any tensor. */
export type InputRank = "image" | "vector" | "any";

/** A sliding window over H and W (conv, pools): what the kernel-size check and the RF rule read. */
export interface Window {
  kernel: Pair;
  stride: Pair;
  padding: Pair;
}

/** Receptive field per spatial axis [h, w], plus the size of the feature map it describes. */
export interface RfState {
  size: Pair;
  jump: Pair;
  /** Spatial size [H, W] of the last image-shaped tensor (kept through `flatten` for `linear`). */
  extent: Pair;
}

export type ParamRule = Omit<ParamIR, "name">;

export interface OpDef<K extends OpKind> {
  /** One line for the schema (editors show it on hover). */
  description: string;
  /** Attribute schemas, snake_case as written in YAML, each with its PyTorch default if any. */
  attributes: Record<string, JsonSchema>;
  required: readonly string[];
  /** The raw (schema-valid) YAML attributes with defaults applied, as IR attributes. */
  normalize(raw: Record<string, unknown>): OpAttrs[K];
  /** Short text for the `params` table's Type column, e.g. `conv 3x3 s2`. */
  describe(attrs: OpAttrs[K], input: Shape): string;
  rank: InputRank;
  /** The window this layer slides over H and W, if any (checked against the input's size). */
  window?(attrs: OpAttrs[K]): Window;
  /** Output shape; only called when the rank fits and any window fits the (padded) input. */
  shape(attrs: OpAttrs[K], input: Shape): Shape;
  params(attrs: OpAttrs[K], input: Shape): ParamRule[];
  /** Multiply-accumulates per sample (conv and linear; everything else counts 0, as torchinfo). */
  macs(attrs: OpAttrs[K], input: Shape, output: Shape): number;
  receptiveField(rf: RfState, attrs: OpAttrs[K], input: Shape, output: Shape): RfState;
}

export type OpTableDef = { [K in OpKind]: OpDef<K> };

// --- attribute schemas -----------------------------------------------------------------------

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

const hw = (p: Pair): string => (p[0] === p[1] ? `${p[0]}` : `${p[0]}x${p[1]}`);
const square = (p: Pair): string => `${p[0]}x${p[1]}`;

// --- shared rules ----------------------------------------------------------------------------

const none = (): ParamRule[] => [];
const zero = (): number => 0;
const same = (_attrs: unknown, input: Shape): Shape => [...input];
const unchanged = (rf: RfState): RfState => rf;

/** PyTorch's output size for a sliding window, floor mode: ⌊(n + 2p − k) / s⌋ + 1. */
export function windowOutput(n: number, k: number, s: number, p: number): number {
  return Math.floor((n + 2 * p - k) / s) + 1;
}

function slideShape(channels: number, input: Shape, w: Window): Shape {
  const [, h = 0, wd = 0] = input;
  return [
    channels,
    windowOutput(h, w.kernel[0], w.stride[0], w.padding[0]),
    windowOutput(wd, w.kernel[1], w.stride[1], w.padding[1]),
  ];
}

/** r_out = r_in + (k − 1)·j_in, j_out = j_in·s, per axis. */
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

/** maxpool and avgpool have the same attributes (`OpAttrs`) and rules but for the reduction. */
function pool<K extends "maxpool" | "avgpool">(name: K, description: string): OpDef<K> {
  const def: OpDef<"maxpool"> = {
    description,
    attributes: {
      kernel: sizeOrPair(1, "window size (int or [h, w])"),
      stride: sizeOrPair(1, "step (int or [h, w]); default: the kernel size"),
    },
    required: ["kernel"],
    normalize: (raw) => {
      const kernel = pair(raw.kernel, [1, 1]);
      return { kernel, stride: pair(raw.stride, kernel) };
    },
    describe: (a) =>
      `${name} ${hw(a.kernel)}${a.stride.join() === a.kernel.join() ? "" : ` s${hw(a.stride)}`}`,
    rank: "image",
    window: (a) => ({ kernel: a.kernel, stride: a.stride, padding: [0, 0] }),
    shape: (a, input) =>
      slideShape(input[0] ?? 0, input, { kernel: a.kernel, stride: a.stride, padding: [0, 0] }),
    params: none,
    macs: zero,
    receptiveField: (rf, a, _input, output) => slide(rf, a.kernel, a.stride, output),
  };
  // Sound: OpAttrs["maxpool"] and OpAttrs["avgpool"] are the same type.
  return def as unknown as OpDef<K>;
}

// --- the table -------------------------------------------------------------------------------

export const OPS: OpTableDef = {
  conv: {
    description: "nn.Conv2d: zero-padded 2-D convolution; input channels are inferred",
    attributes: {
      out: positiveInt("output channels"),
      kernel: sizeOrPair(1, "kernel size (int or [h, w])"),
      stride: sizeOrPair(1, "stride (int or [h, w]); default 1"),
      padding: sizeOrPair(0, "zero padding on each side (int or [h, w]); default 0"),
      bias: { type: "boolean", description: "learn a bias; default true" },
    },
    required: ["out", "kernel"],
    normalize: (raw) => ({
      out: num(raw.out, 1),
      kernel: pair(raw.kernel, [1, 1]),
      stride: pair(raw.stride, [1, 1]),
      padding: pair(raw.padding, [0, 0]),
      bias: bool(raw.bias, true),
    }),
    describe: (a) =>
      [
        `conv ${square(a.kernel)}`,
        a.stride.join() === "1,1" ? "" : ` s${hw(a.stride)}`,
        a.padding.join() === "0,0" ? "" : ` p${hw(a.padding)}`,
        a.bias ? "" : " nobias",
      ].join(""),
    rank: "image",
    window: (a) => ({ kernel: a.kernel, stride: a.stride, padding: a.padding }),
    shape: (a, input) => slideShape(a.out, input, a),
    params: (a, input) => [
      { role: "weight", shape: [a.out, input[0] ?? 0, ...a.kernel], trainable: true },
      ...(a.bias ? [{ role: "bias" as const, shape: [a.out], trainable: true }] : []),
    ],
    macs: (a, input, output) =>
      (output[0] ?? 0) *
      (output[1] ?? 0) *
      (output[2] ?? 0) *
      (input[0] ?? 0) *
      a.kernel[0] *
      a.kernel[1],
    receptiveField: (rf, a, _input, output) => slide(rf, a.kernel, a.stride, output),
  },

  relu: {
    description: "nn.ReLU",
    attributes: {},
    required: [],
    normalize: () => ({}),
    describe: () => "relu",
    rank: "any",
    shape: same,
    params: none,
    macs: zero,
    receptiveField: unchanged,
  },

  batchnorm: {
    description: "nn.BatchNorm2d: batch statistics in training, running statistics in eval",
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
    rank: "image",
    shape: same,
    params: (_a, input) => {
      const c = [input[0] ?? 0];
      return [
        { role: "weight", shape: c, trainable: true },
        { role: "bias", shape: c, trainable: true },
        { role: "running_mean", shape: c, trainable: false },
        { role: "running_var", shape: c, trainable: false },
      ];
    },
    macs: zero,
    receptiveField: unchanged,
  },

  maxpool: pool("maxpool", "nn.MaxPool2d: floor mode, no padding"),
  avgpool: pool("avgpool", "nn.AvgPool2d: floor mode, no padding"),

  gap: {
    description: "nn.AdaptiveAvgPool2d(1): global average pool to [C, 1, 1]",
    attributes: {},
    required: [],
    normalize: () => ({}),
    describe: () => "gap",
    rank: "image",
    shape: (_a, input) => [input[0] ?? 0, 1, 1],
    params: none,
    macs: zero,
    receptiveField: (rf) => whole(rf),
  },

  dropout: {
    description: "nn.Dropout2d on [C, H, W] (whole channels), nn.Dropout on vectors",
    attributes: {
      p: { type: "number", minimum: 0, maximum: 1, description: "drop probability; default 0.5" },
    },
    required: [],
    normalize: (raw) => ({ p: num(raw.p, 0.5) }),
    describe: (a) => `dropout ${a.p}`,
    rank: "any",
    shape: same,
    params: none,
    macs: zero,
    receptiveField: unchanged,
  },

  flatten: {
    description: "nn.Flatten: [C, H, W] to [C·H·W], PyTorch (channel-major) order",
    attributes: {},
    required: [],
    normalize: () => ({}),
    describe: () => "flatten",
    rank: "any",
    shape: (_a, input) => [input.reduce((a, b) => a * b, 1)],
    params: none,
    macs: zero,
    receptiveField: unchanged,
  },

  linear: {
    description: "nn.Linear on a vector (put `flatten` before it)",
    attributes: {
      out: positiveInt("output features"),
      bias: { type: "boolean", description: "learn a bias; default true" },
    },
    required: ["out"],
    normalize: (raw) => ({ out: num(raw.out, 1), bias: bool(raw.bias, true) }),
    describe: (a) => (a.bias ? "linear" : "linear nobias"),
    rank: "vector",
    shape: (a) => [a.out],
    params: (a, input) => [
      { role: "weight", shape: [a.out, input[0] ?? 0], trainable: true },
      ...(a.bias ? [{ role: "bias" as const, shape: [a.out], trainable: true }] : []),
    ],
    macs: (a, input) => (input[0] ?? 0) * a.out,
    // Every output sees every position of the feature map that was flattened: like gap.
    receptiveField: (rf) => whole(rf),
  },

  log_softmax: {
    description: "F.log_softmax over classes (dim 1); the last layer, as training uses NLL loss",
    attributes: {},
    required: [],
    normalize: () => ({}),
    describe: () => "log_softmax",
    rank: "any",
    shape: same,
    params: none,
    macs: zero,
    receptiveField: unchanged,
  },
};

/** Ops that can be written as a bare name (`- relu`): those without required attributes. */
export function isBare(kind: OpKind): boolean {
  return OPS[kind].required.length === 0;
}

/** The table entry for a kind, typed loosely for generic passes over any node. */
export function opDef(kind: OpKind): OpDef<OpKind> {
  return OPS[kind] as unknown as OpDef<OpKind>;
}
