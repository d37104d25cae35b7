// Receptive field: how many input pixels each output of a layer sees (size) and how far apart two
// neighbouring outputs are in input pixels (jump): r_out = r_in + (k − 1)·j_in, j_out = j_in·s.
// Padding does not change either; a dilated kernel counts its whole extent. `gap` and `linear` see
// their whole feature map (a kernel of its size); where paths join (`add`), the longest path
// decides. Per axis; for a non-square kernel or input the IR keeps the larger axis.
import { type AnyNodeIR, GRAPH_INPUT, type InputIR } from "./ir.js";
import { opDef, type RfState } from "./ops.js";

export function receptiveFields(nodes: AnyNodeIR[], input: InputIR): void {
  const states = new Map<string, RfState>([
    [GRAPH_INPUT, { size: [1, 1], jump: [1, 1], extent: [input.height, input.width] }],
  ]);
  for (const node of nodes) {
    const inputs = node.inputs.map((name) => {
      const rf = states.get(name);
      if (!rf) throw new Error(`receptive field: node input ${name} is no earlier node`);
      return rf;
    });
    const rf = opDef(node.kind).receptiveField(inputs, node.attrs, node.inShapes, node.outShape);
    states.set(node.name, rf);
    node.rf = { size: Math.max(...rf.size), jump: Math.max(...rf.jump) };
  }
}
