// The tensor primitives a backward pass is written in, and what a node's gradient rule reads and
// returns. A leaf module: the op table (ops.ts) writes its rules against these types and the
// autodiff pass (autodiff.ts) runs them, so neither imports the other for its types.
import type { OpAttrs, ParamIR } from "./ir.js";

/**
 * Elementwise math on tensors (the second operand of a binary op broadcasts, NumPy-style): what an
 * elementwise op's function and derivative are written in (`OpDef.elementwise`), so a new
 * activation needs no primitive of its own. Comparisons give 1 or 0 in the tensor's type.
 */
export interface Elementwise<T> {
  add(a: T, b: T): T;
  sub(a: T, b: T): T;
  mul(a: T, b: T): T;
  /** a·k. */
  scale(a: T, k: number): T;
  /** a + k. */
  offset(a: T, k: number): T;
  exp(a: T): T;
  sigmoid(a: T): T;
  tanh(a: T): T;
  erf(a: T): T;
  /** min(max(a, lo), hi); a bound may be ±Infinity. */
  clamp(a: T, lo: number, hi: number): T;
  /** 1 where a > k, else 0. */
  greater(a: T, k: number): T;
  /** 1 where a < k, else 0. */
  less(a: T, k: number): T;
}

/** Tensor primitives of a backward pass. Shapes are full (batch first); images are NCHW. */
export interface GradBuilder<T> extends Elementwise<T> {
  reshape(a: T, shape: number[]): T;
  /** a·scale + shift per channel of an NCHW tensor, `scale` and `shift` [C]: one pass. */
  affine(a: T, scale: T, shift: T): T;
  /** a·k per channel of an NCHW tensor, `k` [C]. */
  scaleChannels(a: T, k: T): T;
  /** A [C] vector as [1, C, 1, 1], to broadcast over an NCHW tensor. */
  perChannel(a: T): T;
  /** Σ over batch and space of an NCHW tensor: [C]. */
  sumPerChannel(a: T): T;
  /** Σ over batch and space of a·b, two NCHW tensors of one shape: [C]. */
  dotPerChannel(a: T, b: T): T;
  /** Σ over the batch of [B, F]: [F]. */
  sumBatch(a: T): T;
  /** Σ over the classes of [B, K], kept as [B, 1]. */
  sumRows(a: T): T;
  /** Σ of `a` over the axes where `shape` is 1 and `a` is not (the adjoint of broadcasting). */
  sumTo(a: T, shape: number[]): T;
  /** Channels [start, start + count) of a tensor, along axis 1. */
  sliceChannels(a: T, start: number, count: number): T;
  /** [B, C, 1, 1] spread evenly over [B, C, H, W] (each value divided by H·W). */
  spreadSpatial(a: T, shape: number[]): T;
  /** a·b of 2-D tensors, each optionally transposed. */
  matmul(a: T, b: T, transA: boolean, transB: boolean): T;
  /** ∂L/∂x of a conv from ∂L/∂y and its weight. */
  convInputGrad(dy: T, weight: T, attrs: OpAttrs["conv"], inputShape: number[]): T;
  /** ∂L/∂W of a conv from its input and ∂L/∂y. */
  convFilterGrad(x: T, dy: T, attrs: OpAttrs["conv"], weightShape: number[]): T;
  /** ∂L/∂x of a max pool: ∂L/∂y routed to the element each window took (its saved indices). */
  maxPoolGrad(dy: T, indices: T, inputShape: number[]): T;
  /** ∂L/∂x of an average pool (zero padding counted, as PyTorch's count_include_pad). */
  avgPoolGrad(dy: T, attrs: OpAttrs["avgpool"], inputShape: number[]): T;
}

/** What a node's gradient rule reads. Shapes of `inputs` are the node's `inShapes` with the batch. */
export interface GradValues<T> {
  inputs: T[];
  output: T;
  /** ∂L/∂output. */
  dy: T;
  params: Partial<Record<ParamIR["role"], T>>;
  /** What the training forward kept for the backward (the op's `saves`). */
  saved: Record<string, T>;
  /** Which inputs need a gradient (the model input does not). */
  wanted: boolean[];
  batch: number;
}

export interface GradResult<T> {
  /** One per input; undefined where not wanted. */
  inputs: (T | undefined)[];
  params: Partial<Record<ParamIR["role"], T>>;
}

/** What the training forward of one node produced (by the backend's forward table). */
export interface ForwardValues<T> {
  output: T;
  saved: Record<string, T>;
}
