// Shape inference over the graph: each node's input and output shapes from the op table's rules,
// with the located errors a shape can have — a window larger than its input, an image op on a
// vector, `linear` without `flatten`, and whatever an op's own check finds (groups that do not
// divide the channels, an add of two shapes). Inference stops at the first such error: later
// shapes would be guesses.
import { type Code, error } from "./codes.js";
import type { Diagnostic, Note } from "./diagnostics.js";
import { type AnyNodeIR, GRAPH_INPUT, type InputIR, type Shape } from "./ir.js";
import { opDef } from "./ops.js";
import type { SourceMap } from "./parse.js";

export const describeNode = (n: AnyNodeIR): string => `layer ${n.name} (${n.kind})`;

export function showShape(shape: Shape): string {
  return shape.length === 3 ? `${shape[0]}x${shape[1]}x${shape[2]}` : `[${shape.join(", ")}]`;
}

/** Fill `inShapes`/`outShape` of every node; returns the shape errors (none: all shapes are set). */
export function inferShapes(nodes: AnyNodeIR[], input: InputIR, source: SourceMap): Diagnostic[] {
  const inputShape: Shape = [input.channels, input.height, input.width];
  const byName = new Map<string, AnyNodeIR>(nodes.map((n) => [n.name, n]));
  const shapeOf = (name: string): Shape => {
    if (name === GRAPH_INPUT) return inputShape;
    const producer = byName.get(name);
    if (!producer) throw new Error(`shapes: node input ${name} is no earlier node`);
    return producer.outShape;
  };
  /** Where a tensor comes from, as a note at its producer (or at `input:`). */
  const origin = (name: string, what: string): Note => {
    const producer = byName.get(name);
    return producer
      ? { message: `${what} comes from ${describeNode(producer)}`, span: producer.span }
      : { message: `${what} is the model input`, span: source.key([], "input") ?? source.top() };
  };

  for (const node of nodes) {
    const op = opDef(node.kind);
    const here = describeNode(node);
    const shapes = node.inputs.map(shapeOf);
    const fail = (code: Code, message: string, notes: Note[]) => [
      error(code, `${here}${message}`, node.span, notes),
    ];
    for (const [i, shape] of shapes.entries()) {
      const from = node.inputs[i] ?? GRAPH_INPUT;
      if (op.rank === "image" && shape.length !== 3) {
        return fail("E0204", ` needs an image [C, H, W], got the vector ${showShape(shape)}`, [
          origin(from, `the vector ${showShape(shape)}`),
        ]);
      }
      if (op.rank === "vector" && shape.length !== 1) {
        return fail(
          "E0203",
          ` needs a vector, got the image ${showShape(shape)}: put \`flatten\` (or \`gap\` then \`flatten\`) before it`,
          [origin(from, `the image ${showShape(shape)}`)],
        );
      }
    }
    const [shape = inputShape] = shapes;
    const from = node.inputs[0] ?? GRAPH_INPUT;
    const problem = op.check?.(node.attrs, shapes);
    if (problem) {
      const notes = problem.noteInputs
        ? node.inputs.map((name, i) => origin(name, `the ${showShape(shapes[i] ?? [])} input`))
        : [];
      const detail =
        problem.noteInputs && shapes.length > 1 ? ` ${shapes.map(showShape).join(" and ")}` : "";
      return fail(problem.code, `: ${problem.message}${detail}`, notes);
    }
    const window = op.window?.(node.attrs);
    if (window) {
      const size = [shape[1] ?? 0, shape[2] ?? 0];
      const [top, left, bottom, right] = window.padding;
      const padded = [(size[0] ?? 0) + top + bottom, (size[1] ?? 0) + left + right];
      if (padded.some((n, i) => n < (window.kernel[i] ?? 0))) {
        const pad = padded.join() !== size.join() ? ` (${padded.join("x")} with padding)` : "";
        return fail(
          "E0201",
          `: ${window.what} ${window.kernel.join("x")} is larger than its ${size.join("x")} input${pad}; the spatial size would collapse to ${op
            .shape(node.attrs, shapes)
            .slice(1)
            .map((n) => Math.max(0, n))
            .join("x")}`,
          [origin(from, `the ${size.join("x")} input`)],
        );
      }
    }
    node.inShapes = shapes;
    node.inShape = shape;
    node.outShape = op.shape(node.attrs, shapes);
  }
  return [];
}
