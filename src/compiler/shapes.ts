// Shape inference over the graph: each node's input and output shapes from the op table's rules,
// with the located errors a shape can have — a window larger than its input, an image op on a
// vector, `linear` without `flatten`, and whatever an op's own check finds (groups that do not
// divide the channels, an add of two shapes). Every node whose inputs are known is checked, so
// one error does not hide the others; what reads an unknown shape is left unchecked, and said so.
import { type Code, error } from "./codes.js";
import type { Diagnostic, Note } from "./diagnostics.js";
import { type AnyNodeIR, GRAPH_INPUT, type InputIR, type Shape } from "./ir.js";
import { opDef } from "./ops.js";
import type { SourceMap } from "./parse.js";

export const describeNode = (n: AnyNodeIR): string => `layer ${n.name} (${n.kind})`;

export function showShape(shape: Shape): string {
  return shape.length === 3 ? `${shape[0]}x${shape[1]}x${shape[2]}` : `[${shape.join(", ")}]`;
}

export interface ShapeResult {
  diagnostics: Diagnostic[];
  /** Nodes whose shapes stay unknown: they read an unknown shape, or their own could not be had. */
  unknown: Set<string>;
  /** Nodes with a shape error of their own. */
  failed: Set<string>;
}

/** The note on an error whose node's output shape is unknown, when later layers read it. */
export const SKIPPED = "shapes after it are not checked: its output shape is unknown";

/**
 * Fill `inShapes`/`outShape` of every node whose inputs are known, with the shape errors. Without
 * an input shape, or past a node in `unknown` (a layer that could not be lowered), shapes are
 * unknown and nothing is checked there. An error in an op's own check (an add of two shapes,
 * groups that do not divide) keeps the shape the op's rule gives, said in a note; a window too
 * large or a layer of the wrong rank has none, and what reads it stays unknown.
 */
export function inferShapes(
  nodes: AnyNodeIR[],
  input: InputIR | undefined,
  source: SourceMap,
  unknownNames: ReadonlyMap<string, unknown> = new Map(),
): ShapeResult {
  const inputShape: Shape | undefined = input && [input.channels, input.height, input.width];
  const byName = new Map<string, AnyNodeIR>(nodes.map((n) => [n.name, n]));
  const unknown = new Set<string>();
  const failed = new Set<string>();
  const diagnostics: Diagnostic[] = [];
  const shapeOf = (name: string): Shape | undefined => {
    if (name === GRAPH_INPUT) return inputShape;
    if (unknownNames.has(name) || unknown.has(name)) return undefined;
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

  /** Whether the node got its shapes. */
  const visit = (node: AnyNodeIR, index: number): boolean => {
    const later = index < nodes.length - 1;
    const op = opDef(node.kind);
    const here = describeNode(node);
    const known = node.inputs.map(shapeOf);
    if (known.some((s) => s === undefined)) {
      unknown.add(node.name);
      return false;
    }
    const shapes = known as Shape[];
    const stop = (code: Code, message: string, notes: Note[]) => {
      diagnostics.push(
        error(
          code,
          `${here}${message}`,
          node.span,
          later ? [...notes, { message: SKIPPED, span: node.span }] : notes,
        ),
      );
      unknown.add(node.name);
      failed.add(node.name);
      return false;
    };
    for (const [i, shape] of shapes.entries()) {
      const from = node.inputs[i] ?? GRAPH_INPUT;
      if (op.rank === "image" && shape.length !== 3) {
        return stop("E0204", ` needs an image [C, H, W], got the vector ${showShape(shape)}`, [
          origin(from, `the vector ${showShape(shape)}`),
        ]);
      }
      if (op.rank === "vector" && shape.length !== 1) {
        return stop(
          "E0203",
          ` needs a vector, got the image ${showShape(shape)}: put \`flatten\` (or \`gap\` then \`flatten\`) before it`,
          [origin(from, `the image ${showShape(shape)}`)],
        );
      }
    }
    const [shape = [] as Shape] = shapes;
    const from = node.inputs[0] ?? GRAPH_INPUT;
    const problem = op.check?.(node.attrs, shapes);
    if (problem) {
      const notes = problem.noteInputs
        ? node.inputs.map((name, i) => origin(name, `the ${showShape(shapes[i] ?? [])} input`))
        : [];
      const detail =
        problem.noteInputs && shapes.length > 1 ? ` ${shapes.map(showShape).join(" and ")}` : "";
      const out = op.shape(node.attrs, shapes);
      if (!out.every((d) => Number.isInteger(d) && d > 0)) {
        return stop(problem.code, `: ${problem.message}${detail}`, notes);
      }
      // What the op's rule gives is still a shape: later layers are checked against it.
      const taken = {
        message: `shapes after it are checked with its output taken as ${showShape(out)}`,
        span: node.span,
      };
      diagnostics.push(
        error(
          problem.code,
          `${here}: ${problem.message}${detail}`,
          node.span,
          later ? [...notes, taken] : notes,
        ),
      );
      failed.add(node.name);
      node.inShapes = shapes;
      node.inShape = shape;
      node.outShape = out;
      return true;
    }
    const window = op.window?.(node.attrs);
    if (window) {
      const size = [shape[1] ?? 0, shape[2] ?? 0];
      const [top, left, bottom, right] = window.padding;
      const padded = [(size[0] ?? 0) + top + bottom, (size[1] ?? 0) + left + right];
      if (padded.some((n, i) => n < (window.kernel[i] ?? 0))) {
        const pad = padded.join() !== size.join() ? ` (${padded.join("x")} with padding)` : "";
        return stop(
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
    return true;
  };
  for (const [index, node] of nodes.entries()) visit(node, index);
  return { diagnostics, unknown, failed };
}
