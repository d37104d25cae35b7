// Reverse-mode autodiff over the graph IR: from the gradient of the loss with respect to the last
// node's output, each node's rule (the op table's `gradient`) gives the gradients of its inputs
// and parameters; where a tensor feeds several nodes (a residual skip), its gradients are summed.
//
// The pass and the rules are backend-neutral: they speak `GradBuilder<T>`, the handful of tensor
// primitives a backward pass needs, with `T` whatever the backend's tensors are (an ONNX value in
// the onnx-train backend, which also decides by shape how each primitive is lowered).
import { type AnyNodeIR, GRAPH_INPUT, type ModelIR, type OpAttrs, type ParamIR } from "./ir.js";
import { opDef } from "./ops.js";

/** Tensor primitives of a backward pass. Shapes are full (batch first); images are NCHW. */
export interface GradBuilder<T> {
  add(a: T, b: T): T;
  sub(a: T, b: T): T;
  mul(a: T, b: T): T;
  scale(a: T, k: number): T;
  exp(a: T): T;
  /** `dy` where `a` > 0, else 0 (one pass: ReLU's backward is a select, not a multiply). */
  wherePositive(dy: T, a: T): T;
  reshape(a: T, shape: number[]): T;
  /** a·scale + shift per channel of an NCHW tensor, `scale` and `shift` [C]: one pass. */
  affine(a: T, scale: T, shift: T): T;
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

/**
 * Gradients of every trainable parameter, from ∂L/∂(last output). `forward` holds each node's
 * training-forward values, `params` each parameter's tensor by name, `input` the model input.
 */
export function backward<T>(
  ir: ModelIR,
  b: GradBuilder<T>,
  input: T,
  forward: Map<string, ForwardValues<T>>,
  params: Map<string, T>,
  dLast: T,
  batch: number,
): Map<string, T> {
  const grads = new Map<string, T>();
  const last = ir.nodes.at(-1);
  if (!last) return grads;
  const dOut = new Map<string, T>([[last.name, dLast]]);
  const tensorOf = (name: string): T => {
    if (name === GRAPH_INPUT) return input;
    const v = forward.get(name);
    if (!v) throw new Error(`autodiff: no forward value for ${name}`);
    return v.output;
  };
  for (let i = ir.nodes.length - 1; i >= 0; i--) {
    const node = ir.nodes[i] as AnyNodeIR;
    const dy = dOut.get(node.name);
    const fwd = forward.get(node.name);
    if (!dy || !fwd) continue;
    const op = opDef(node.kind);
    const result = op.gradient(
      b,
      node.attrs,
      {
        inputs: node.inputs.map(tensorOf),
        output: fwd.output,
        dy,
        params: Object.fromEntries(node.params.map((p) => [p.role, params.get(p.name)])),
        saved: fwd.saved,
        wanted: node.inputs.map((name) => name !== GRAPH_INPUT),
        batch,
      },
      node.inShapes,
      node.outShape,
    );
    node.inputs.forEach((name, k) => {
      const d = result.inputs[k];
      if (!d || name === GRAPH_INPUT) return;
      const before = dOut.get(name);
      dOut.set(name, before ? b.add(before, d) : d);
    });
    for (const p of node.params) {
      const g = result.params[p.role];
      if (p.trainable && g) grads.set(p.name, g);
    }
  }
  return grads;
}
