// Counting: each node's parameters (PyTorch state_dict names, trainable apart from buffers, each
// with its PyTorch initialization) and multiply-accumulates, and the model's totals. Runs after
// shapes are known.

import { sizeOf } from "../util/shape.js";
import type { AnyNodeIR, TotalsIR } from "./ir.js";
import { opDef } from "./ops.js";

/** Number of values in a tensor of this shape. */

export function countParams(nodes: AnyNodeIR[]): TotalsIR {
  const totals: TotalsIR = { trainable: 0, buffers: 0, macs: 0 };
  for (const node of nodes) {
    const op = opDef(node.kind);
    node.params = op
      .params(node.attrs, node.inShapes)
      .map((p) => ({ ...p, name: `${node.name}.${p.role}` }));
    node.macs = op.macs(node.attrs, node.inShapes, node.outShape);
    for (const p of node.params) {
      if (p.trainable) totals.trainable += sizeOf(p.shape);
      else totals.buffers += sizeOf(p.shape);
    }
    totals.macs += node.macs;
  }
  return totals;
}

/** Number of values in a parameter list, trainable or not. */
export function paramCount(node: AnyNodeIR, trainable: boolean): number {
  return node.params
    .filter((p) => p.trainable === trainable)
    .reduce((sum, p) => sum + sizeOf(p.shape), 0);
}
