// Counting: each node's parameters (PyTorch state_dict names, trainable apart from buffers) and
// multiply-accumulates, and the model's totals. Runs after shapes are known.
import type { AnyNodeIR, TotalsIR } from "./ir.js";
import { opDef } from "./ops.js";

export function countParams(nodes: AnyNodeIR[]): TotalsIR {
  const totals: TotalsIR = { trainable: 0, buffers: 0, macs: 0 };
  for (const node of nodes) {
    const op = opDef(node.kind);
    node.params = op
      .params(node.attrs, node.inShape)
      .map((p) => ({ ...p, name: `${node.name}.${p.role}` }));
    node.macs = op.macs(node.attrs, node.inShape, node.outShape);
    for (const p of node.params) {
      const size = p.shape.reduce((a, b) => a * b, 1);
      if (p.trainable) totals.trainable += size;
      else totals.buffers += size;
    }
    totals.macs += node.macs;
  }
  return totals;
}

/** Number of values in a parameter list, trainable or not. */
export function paramCount(node: AnyNodeIR, trainable: boolean): number {
  return node.params
    .filter((p) => p.trainable === trainable)
    .reduce((sum, p) => sum + p.shape.reduce((a, b) => a * b, 1), 0);
}
