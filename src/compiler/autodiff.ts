// Reverse-mode autodiff over the graph IR: from the gradient of the loss with respect to the last
// node's output, each node's rule (the op table's `gradient`) gives the gradients of its inputs
// and parameters; where a tensor feeds several nodes (a residual skip), its gradients are summed.
//
// The pass and the rules are backend-neutral: they speak `GradBuilder<T>` (grad-builder.ts), the
// handful of tensor primitives a backward pass needs, with `T` whatever the backend's tensors are
// (an ONNX value in the onnx-train backend, which also decides by shape how each primitive is
// lowered).
import type { ForwardValues, GradBuilder } from "./grad-builder.js";
import { type AnyNodeIR, GRAPH_INPUT, type ModelIR } from "./ir.js";
import { opDef } from "./ops.js";

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
