// Lowering rules of the backward primitives that have more than one good ONNX spelling: each rule
// is small and named, says when it applies (by shape and attributes), and is tested on its own
// (test/onnx-train-lowering.test.ts). The first rule of a list that applies is used; the last one
// of each list applies always. What the probe in shared/probes/onnx-training-step measured decides
// the order: a ConvTranspose is slow for the input gradient of a conv with more input than output
// channels (there a Conv of the padded dy with the flipped kernel wins), and a Conv with the batch as
// channels is slow for filter gradients (patch slices plus one batched MatMul win).
import type { OpAttrs } from "../../compiler/ir.js";
import {
  floatTensor,
  intAttr,
  intsAttr,
  stringAttr,
  tensorAttr,
} from "../../formats/onnx-proto.js";
import { convAttributes, firstApplying, shiftedSumFits } from "../onnx/lowering.js";
import type { StepGraph, Tensor } from "./step-graph.js";

export interface Rule<A> {
  name: string;
  applies(args: A): boolean;
  lower(g: StepGraph, args: A): Tensor;
}

/** The first rule that applies (the lists end in one that always does). */
export function pick<A>(rules: readonly Rule<A>[], args: A): Rule<A> {
  return firstApplying(rules, args, "onnx-train");
}

const isOne = (p: readonly number[]) => p.every((v) => v === 1);

// --- ∂L/∂x of a conv ---------------------------------------------------------------------------

export interface ConvInputGradArgs {
  dy: Tensor;
  weight: Tensor;
  attrs: OpAttrs["conv"];
  /** [B, Cin, H, W]. */
  inputShape: number[];
}

/** The forward's padding per side, left for a full correlation: k − 1 − p (stride 1). */
function fullPads(attrs: OpAttrs["conv"]): [number, number, number, number] {
  const [kh, kw] = attrs.kernel;
  const [top, left, bottom, right] = attrs.padding;
  return [kh - 1 - top, kw - 1 - left, kh - 1 - bottom, kw - 1 - right];
}

/**
 * `flipped-conv`: dx = Conv(pad(dy, k − 1 − p), W flipped in space, in/out swapped). For stride 1,
 * dilation 1, no groups, and more input than output channels.
 */
export const flippedConv: Rule<ConvInputGradArgs> = {
  name: "flipped-conv",
  applies: ({ attrs, inputShape }) =>
    attrs.groups === 1 &&
    isOne(attrs.stride) &&
    isOne(attrs.dilation) &&
    (inputShape[1] ?? 0) >= attrs.out &&
    fullPads(attrs).every((p) => p >= 0),
  lower(g, { dy, weight, attrs, inputShape }) {
    const [top, left, bottom, right] = fullPads(attrs);
    const padded = g.pad(dy, [0, 0, top, left, 0, 0, bottom, right]);
    const [, , kh = 0, kw = 0] = weight.shape;
    const flipped = g.slice(weight, [2, 3], [kh - 1, kw - 1], [kh, kw], [-1, -1]);
    const swapped = g.transpose(flipped, [1, 0, 2, 3]);
    return g.op("Conv", [padded, swapped], inputShape, [intsAttr("kernel_shape", [kh, kw])]);
  },
};

/** `conv-transpose`: ConvTranspose(dy, W) with the forward's strides, pads, dilations, groups. */
export const convTransposeInput: Rule<ConvInputGradArgs> = {
  name: "conv-transpose",
  applies: () => true,
  lower(g, { dy, weight, attrs, inputShape }) {
    const [, , ho = 0, wo = 0] = dy.shape;
    const [, , h = 0, w = 0] = inputShape;
    const [top, left, bottom, right] = attrs.padding;
    const [sh, sw] = attrs.stride;
    const [dh, dw] = attrs.dilation;
    const [kh, kw] = attrs.kernel;
    // Rows the forward's floor left unread come back as output_padding.
    const extraH = h - (sh * (ho - 1) + (kh - 1) * dh + 1 - top - bottom);
    const extraW = w - (sw * (wo - 1) + (kw - 1) * dw + 1 - left - right);
    return g.op("ConvTranspose", [dy, weight], inputShape, [
      intsAttr("kernel_shape", attrs.kernel),
      intsAttr("strides", attrs.stride),
      intsAttr("pads", attrs.padding),
      intsAttr("dilations", attrs.dilation),
      intAttr("group", attrs.groups),
      intsAttr("output_padding", [extraH, extraW]),
    ]);
  },
};

export const CONV_INPUT_GRAD: readonly Rule<ConvInputGradArgs>[] = [
  flippedConv,
  convTransposeInput,
];

export function convInputGrad(g: StepGraph, args: ConvInputGradArgs): Tensor {
  return pick(CONV_INPUT_GRAD, args).lower(g, args);
}

// --- ∂L/∂W of a conv ---------------------------------------------------------------------------

export interface ConvFilterGradArgs {
  x: Tensor;
  dy: Tensor;
  attrs: OpAttrs["conv"];
  /** [Cout, Cin/groups, kh, kw]. */
  weightShape: number[];
}

/**
 * `patches-matmul`: each kernel tap's input patch is a strided slice of the padded input; stacked,
 * they make cols [B, g, P, Cin/g·kk], and dW = Σ_b dy [B, g, Cout/g, P] · cols, one batched
 * MatMul. Any stride, dilation, padding and groups. With one input channel per group (a first
 * layer, a depthwise conv), whose dy is much larger than its cols, a tap of ones joins the stack:
 * its column of the product is Σ dy per output channel (the bias gradient, `sum-beside-filter-grad`)
 * without another pass over dy.
 */
export const patchesMatmul: Rule<ConvFilterGradArgs> = {
  name: "patches-matmul",
  applies: () => true,
  lower(g, { x, dy, attrs, weightShape }) {
    const [b = 0, cin = 0] = x.shape;
    const [, cout = 0, ho = 0, wo = 0] = dy.shape;
    const [kh, kw] = attrs.kernel;
    const [sh, sw] = attrs.stride;
    const [dh, dw] = attrs.dilation;
    const [top, left, bottom, right] = attrs.padding;
    const groups = attrs.groups;
    const p = ho * wo;
    const padded = g.pad(x, [0, 0, top, left, 0, 0, bottom, right]);
    const taps: Tensor[] = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const patch =
          kh === 1 &&
          kw === 1 &&
          sh === 1 &&
          sw === 1 &&
          padded.shape[2] === ho &&
          padded.shape[3] === wo
            ? padded
            : g.slice(padded, [2, 3], [i * dh, j * dw], [ho, wo], [sh, sw]);
        // [B, Cin, 1, P]: the tap as its own axis, after the channel (weights are [.., i, kh·kw]).
        taps.push(g.reshape(patch, [b, cin, 1, p]));
      }
    }
    const withSum = cin === groups;
    if (withSum)
      taps.push(g.op("ConstantOfShape", [g.ints([b, cin, 1, p])], [b, cin, 1, p], [ONE]));
    const kk = kh * kw;
    const rows = (cin / groups) * kk + (withSum ? 1 : 0);
    const stacked =
      taps.length === 1
        ? (taps[0] as Tensor)
        : g.op("Concat", taps, [b, cin, taps.length, p], [intAttr("axis", 2)]);
    // [B, g, rows, P] → [B, g, P, rows]
    const cols = g.transpose(g.reshape(stacked, [b, groups, rows, p]), [0, 1, 3, 2]);
    const dyr = g.reshape(dy, [b, groups, cout / groups, p]);
    const perImage = g.op("MatMul", [dyr, cols], [b, groups, cout / groups, rows]);
    const summed = g.reduceSum(perImage, [0], false);
    if (!withSum) return g.reshape(summed, weightShape);
    // [g, Cout/g, kk + 1]: the last column is the sum.
    g.recordChannelSum(dy, g.reshape(g.slice(summed, [2], [kk], [1], [1]), [cout]));
    return g.reshape(g.slice(summed, [2], [0], [kk], [1]), weightShape);
  },
};

/** ConstantOfShape's fill: a float32 1. */
const ONE = tensorAttr("value", floatTensor("one", [1], Float32Array.of(1)));

/**
 * `shifted-dy-matmul`: for more input than output channels (the seed's 128 → 4 conv), slice the
 * small side: dy placed at each tap's offset on the padded input's grid makes T [B, Cout·kk, Hp·Wp],
 * and dW = Σ_b x [B, Cin, Hp·Wp] · Tᵀ (the probe: 11 ms where a Conv with the batch as channels took
 * 115). Stride 1, dilation 1, no groups.
 */
export const shiftedDyMatmul: Rule<ConvFilterGradArgs> = {
  name: "shifted-dy-matmul",
  applies: ({ x, attrs }) =>
    attrs.groups === 1 &&
    isOne(attrs.stride) &&
    isOne(attrs.dilation) &&
    (x.shape[1] ?? 0) > attrs.out * attrs.kernel[0] * attrs.kernel[1],
  lower(g, { x, dy, attrs, weightShape }) {
    const [b = 0, cin = 0] = x.shape;
    const [, cout = 0, ho = 0, wo = 0] = dy.shape;
    const [kh, kw] = attrs.kernel;
    const [top, left, bottom, right] = attrs.padding;
    const padded = g.pad(x, [0, 0, top, left, 0, 0, bottom, right]);
    const [, , hp = 0, wp = 0] = padded.shape;
    const q = hp * wp;
    const taps: Tensor[] = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const placed = g.pad(dy, [0, 0, i, j, 0, 0, hp - ho - i, wp - wo - j]);
        taps.push(g.reshape(placed, [b, cout, 1, q]));
      }
    }
    const kk = kh * kw;
    const stacked = g.op("Concat", taps, [b, cout, kk, q], [intAttr("axis", 2)]);
    const t = g.transpose(g.reshape(stacked, [b, cout * kk, q]), [0, 2, 1]);
    const perImage = g.op("MatMul", [g.reshape(padded, [b, cin, q]), t], [b, cin, cout * kk]);
    const summed = g.reshape(g.reduceSum(perImage, [0], false), [cin, cout, kh, kw]);
    return g.reshape(g.transpose(summed, [1, 0, 2, 3]), weightShape);
  },
};

/** No padding and no groups: every tap reads only real input, each input channel on its own. */
const foldable = (x: Tensor, attrs: OpAttrs["conv"]) =>
  x.affineOf !== undefined && attrs.groups === 1 && attrs.padding.every((p) => p === 0);

/**
 * `fold-affine-input` (filter gradient): the input is base·s + t per channel (batch norm's output,
 * never written): dW = s·(base ⋆ dy) + t·Σ dy, since without padding every tap of every output
 * position reads the input. The rest of the list computes base ⋆ dy.
 */
export const foldAffineFilterGrad: Rule<ConvFilterGradArgs> = {
  name: "fold-affine-input",
  applies: ({ x, attrs }) => foldable(x, attrs),
  lower(g, args) {
    const { base, scale, shift } = args.x.affineOf as NonNullable<Tensor["affineOf"]>;
    const onBase = g.convFilterGrad(base, args.dy, args.attrs, args.weightShape);
    const [cout = 0] = args.weightShape;
    const dySum = g.reshape(g.sumPerChannel(args.dy), [cout, 1, 1, 1]);
    return g.add(g.mul(onBase, g.perChannel(scale)), g.mul(dySum, g.perChannel(shift)));
  },
};

export const CONV_FILTER_GRAD: readonly Rule<ConvFilterGradArgs>[] = [
  foldAffineFilterGrad,
  shiftedDyMatmul,
  patchesMatmul,
];

export function convFilterGrad(g: StepGraph, args: ConvFilterGradArgs): Tensor {
  return pick(CONV_FILTER_GRAD, args).lower(g, args);
}

// --- per-channel reductions of a conv's input gradient ---------------------------------------------
// Batch norm's backward sums ∂L/∂y and ∂L/∂y·(x − μ) over batch and space. When ∂L/∂y is the
// input gradient of the conv that reads y, both sums follow from tensors the size of the conv's
// weight (adjoint identities), instead of passes over the layer's widest activations.

/** Where a sum of convᵀ(dy, W) may use W: no padding (each tap reads every output), no groups. */
const throughConv = (a: Tensor) => {
  const of = a.convInputGradOf;
  return of && of.attrs.groups === 1 && of.attrs.padding.every((p) => p === 0) ? of : undefined;
};

export interface ChannelSumArgs {
  /** [B, C, H, W]. */
  a: Tensor;
  /** Σ a per channel, if a filter gradient computed it beside (`patches-matmul`). */
  known?: Tensor;
}

/** `sum-beside-filter-grad`: the sum a filter gradient of `a` computed already. */
export const sumBesideFilterGrad: Rule<ChannelSumArgs> = {
  name: "sum-beside-filter-grad",
  applies: ({ known }) => known !== undefined,
  lower: (_g, { known }) => known as Tensor,
};

/** `sum-through-conv`: Σ convᵀ(dy, W) per input channel c = Σ_o (Σ_k W[o, c, k]) · Σ dy[o]. */
export const sumThroughConv: Rule<ChannelSumArgs> = {
  name: "sum-through-conv",
  applies: ({ a }) => throughConv(a) !== undefined,
  lower(g, { a }) {
    const { dy, weight } = throughConv(a) as NonNullable<Tensor["convInputGradOf"]>;
    const [cout = 0] = weight.shape;
    const dySum = g.reshape(g.sumPerChannel(dy), [cout, 1, 1, 1]);
    return g.reduceSum(g.mul(weight, dySum), [0, 2, 3], false);
  },
};

/** `reduce-sum`: ReduceSum over N, H, W. */
export const reduceSumPerChannel: Rule<ChannelSumArgs> = {
  name: "reduce-sum",
  applies: () => true,
  lower: (g, { a }) => g.reduceSum(a, [0, 2, 3], false),
};

export const CHANNEL_SUM: readonly Rule<ChannelSumArgs>[] = [
  sumBesideFilterGrad,
  sumThroughConv,
  reduceSumPerChannel,
];

export function channelSum(g: StepGraph, args: ChannelSumArgs): Tensor {
  return pick(CHANNEL_SUM, args).lower(g, args);
}

export interface ChannelDotArgs {
  /** [B, C, H, W]. */
  a: Tensor;
  /** Of a's shape. */
  b: Tensor;
  /** b ⋆ dy, if the graph computed it already, where a = convᵀ(dy, W). */
  filterGrad?: Tensor;
}

/**
 * `dot-through-filter-grad`: Σ convᵀ(dy, W)·b per input channel c = Σ_{o,k} W[o, c, k] · (b ⋆ dy)
 * [o, c, k], when that filter gradient b ⋆ dy was computed already (the conv reads batch norm's
 * output through `fold-affine-input`, whose base is b).
 */
export const dotThroughFilterGrad: Rule<ChannelDotArgs> = {
  name: "dot-through-filter-grad",
  applies: ({ a, filterGrad }) => throughConv(a) !== undefined && filterGrad !== undefined,
  lower(g, { a, filterGrad }) {
    const { weight } = throughConv(a) as NonNullable<Tensor["convInputGradOf"]>;
    return g.reduceSum(g.mul(weight, filterGrad as Tensor), [0, 2, 3], false);
  },
};

/** `mul-reduce-sum`: Mul, then ReduceSum over N, H, W. */
export const mulReduceSum: Rule<ChannelDotArgs> = {
  name: "mul-reduce-sum",
  applies: () => true,
  lower: (g, { a, b }) => g.reduceSum(g.mul(a, b), [0, 2, 3], false),
};

export const CHANNEL_DOT: readonly Rule<ChannelDotArgs>[] = [dotThroughFilterGrad, mulReduceSum];

export function channelDot(g: StepGraph, args: ChannelDotArgs): Tensor {
  return pick(CHANNEL_DOT, args).lower(g, args);
}

export interface ChannelScaleArgs {
  /** [B, C, H, W]. */
  a: Tensor;
  /** [C]. */
  k: Tensor;
  /** Whether a node of the graph reads `a` already (then it is written anyway). */
  read: boolean;
}

/**
 * `scale-into-conv`: convᵀ(dy, W)·k per input channel c = convᵀ(dy, W·k[c]): batch norm's γ/σ goes
 * into the weight of the conv input gradient that is its ∂L/∂y, which is then written scaled, once
 * (the unscaled one is never computed when nothing else reads it). No groups.
 */
export const scaleIntoConv: Rule<ChannelScaleArgs> = {
  name: "scale-into-conv",
  applies: ({ a, read }) => !read && a.convInputGradOf?.attrs.groups === 1,
  lower(g, { a, k }) {
    const { dy, weight, attrs } = a.convInputGradOf as NonNullable<Tensor["convInputGradOf"]>;
    return g.convInputGrad(dy, g.mul(weight, g.perChannel(k)), attrs, a.shape);
  },
};

/** `mul-per-channel`: Mul by k as [1, C, 1, 1]. */
export const mulPerChannel: Rule<ChannelScaleArgs> = {
  name: "mul-per-channel",
  applies: () => true,
  lower: (g, { a, k }) => g.mul(a, g.perChannel(k)),
};

export const CHANNEL_SCALE: readonly Rule<ChannelScaleArgs>[] = [scaleIntoConv, mulPerChannel];

export function channelScale(g: StepGraph, args: ChannelScaleArgs): Tensor {
  return pick(CHANNEL_SCALE, args).lower(g, args);
}

// --- pools ---------------------------------------------------------------------------------------

export interface MaxPoolGradArgs {
  dy: Tensor;
  /** MaxPool's `Indices`: each output's element, flattened over the whole (unpadded) input. */
  indices: Tensor;
  inputShape: number[];
}

/**
 * dy scattered (added) to where each window took its maximum. The pool's indices, not an equality
 * mask: after batch norm, ReLU's zeros tie, and a mask would credit every tied element.
 */
export function maxPoolGrad(g: StepGraph, { dy, indices, inputShape }: MaxPoolGradArgs): Tensor {
  const total = inputShape.reduce((a, b) => a * b, 1);
  const zeros = g.op("ConstantOfShape", [g.ints([total])], [total]);
  const flat = (t: Tensor) => g.reshape(t, [t.shape.reduce((a, b) => a * b, 1)]);
  const scattered = g.op(
    "ScatterElements",
    [zeros, flat(indices), flat(dy)],
    [total],
    [
      intAttr("axis", 0),
      // Overlapping windows (stride < kernel) may take the same element twice.
      stringAttr("reduction", "add"),
    ],
  );
  return g.reshape(scattered, inputShape);
}

export interface AvgPoolGradArgs {
  dy: Tensor;
  attrs: OpAttrs["avgpool"];
  inputShape: number[];
}

/** dy/(kh·kw) spread over each window: a depthwise ConvTranspose with a constant kernel. */
export function avgPoolGrad(g: StepGraph, { dy, attrs, inputShape }: AvgPoolGradArgs): Tensor {
  const [, c = 0, h = 0, w = 0] = inputShape;
  const [, , ho = 0, wo = 0] = dy.shape;
  const [kh, kw] = attrs.kernel;
  const [sh, sw] = attrs.stride;
  const [ph, pw] = attrs.padding;
  const kernel = g.floats(new Array(c * kh * kw).fill(1 / (kh * kw)), [c, 1, kh, kw]);
  return g.op("ConvTranspose", [dy, kernel], inputShape, [
    intsAttr("kernel_shape", attrs.kernel),
    intsAttr("strides", attrs.stride),
    intsAttr("pads", [ph, pw, ph, pw]),
    intAttr("group", c),
    intsAttr("output_padding", [
      h - (sh * (ho - 1) + kh - 2 * ph),
      w - (sw * (wo - 1) + kw - 2 * pw),
    ]),
  ]);
}

// --- the forward of a conv ---------------------------------------------------------------------

export interface ConvForwardArgs {
  x: Tensor;
  weight: Tensor;
  bias: Tensor | undefined;
  attrs: OpAttrs["conv"];
  /** [B, Cout, Ho, Wo]. */
  outputShape: number[];
}

/**
 * `shifted-sum`: when Cout·kk < Cin (the seed's 128 → 4 conv), one 1x1 conv (a MatMul) to Cout·kk
 * channels, then the kk taps' shifted slices summed: ORT's Conv spends 40 ms of a 400 ms step on
 * that layer otherwise. Stride 1, dilation 1, no groups.
 */
export const shiftedSum: Rule<ConvForwardArgs> = {
  name: "shifted-sum",
  applies: ({ x, attrs }) => shiftedSumFits(attrs, x.shape[1] ?? 0),
  lower(g, { x, weight, bias, attrs, outputShape }) {
    const [b = 0, cin = 0] = x.shape;
    const [, cout = 0, ho = 0, wo = 0] = outputShape;
    const [kh, kw] = attrs.kernel;
    const [top, left, bottom, right] = attrs.padding;
    const padded = g.pad(x, [0, 0, top, left, 0, 0, bottom, right]);
    const [, , hp = 0, wp = 0] = padded.shape;
    const kk = kh * kw;
    // [Cout, Cin, kh, kw] → [(Cout, kh, kw), Cin, 1, 1]
    const w1 = g.reshape(g.transpose(weight, [0, 2, 3, 1]), [cout * kk, cin, 1, 1]);
    const z = g.op(
      "Conv",
      [padded, w1],
      [b, cout * kk, hp, wp],
      [intsAttr("kernel_shape", [1, 1])],
    );
    const z5 = g.reshape(z, [b, cout, kk, hp, wp]);
    const parts: Tensor[] = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const tap = i * kw + j;
        const slice = g.slice(z5, [2, 3, 4], [tap, i, j], [1, ho, wo], [1, 1, 1]);
        parts.push(slice);
      }
    }
    if (bias) parts.push(g.reshape(bias, [1, cout, 1, 1, 1]));
    const sum = g.op("Sum", parts, [b, cout, 1, ho, wo]);
    return g.reshape(sum, outputShape);
  },
};

/** `conv`: ORT's Conv, as the inference graph writes it. */
export const plainConv: Rule<ConvForwardArgs> = {
  name: "conv",
  applies: () => true,
  lower(g, { x, weight, bias, attrs, outputShape }) {
    return g.op("Conv", bias ? [x, weight, bias] : [x, weight], outputShape, convAttributes(attrs));
  },
};

/**
 * `fold-affine-input` (forward): conv(base·s + t) = conv with W·s of base, plus Σ W·t in the bias
 * (no padding, so the shift reaches every tap): batch norm's output is never written. The rest of
 * the list lowers the folded conv.
 */
export const foldAffineForward: Rule<ConvForwardArgs> = {
  name: "fold-affine-input",
  applies: ({ x, attrs }) => foldable(x, attrs),
  lower(g, args) {
    const { base, scale, shift } = args.x.affineOf as NonNullable<Tensor["affineOf"]>;
    const { weight, bias } = args;
    // [Cout]: Σ over input channels and taps of W·t.
    const shifted = g.reduceSum(g.mul(weight, g.perChannel(shift)), [1, 2, 3], false);
    return convForward(g, {
      ...args,
      x: base,
      weight: g.mul(weight, g.perChannel(scale)),
      bias: bias ? g.add(bias, shifted) : shifted,
    });
  },
};

export const CONV_FORWARD: readonly Rule<ConvForwardArgs>[] = [
  foldAffineForward,
  shiftedSum,
  plainConv,
];

export function convForward(g: StepGraph, args: ConvForwardArgs): Tensor {
  return pick(CONV_FORWARD, args).lower(g, args);
}
