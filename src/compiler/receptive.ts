// Receptive field: how many input pixels each output of a layer sees (size) and how far apart two
// neighbouring outputs are in input pixels (jump): r_out = r_in + (k − 1)·j_in, j_out = j_in·s.
// Padding does not change either. `gap` and `linear` see their whole feature map (a kernel of its
// size). Per axis; for a non-square kernel or input the IR keeps the larger axis.
import type { AnyNodeIR, InputIR } from "./ir.js";
import { opDef, type RfState } from "./ops.js";

export function receptiveFields(nodes: AnyNodeIR[], input: InputIR): void {
  let rf: RfState = { size: [1, 1], jump: [1, 1], extent: [input.height, input.width] };
  for (const node of nodes) {
    rf = opDef(node.kind).receptiveField(rf, node.attrs, node.inShape, node.outShape);
    node.rf = { size: Math.max(...rf.size), jump: Math.max(...rf.jump) };
  }
}
