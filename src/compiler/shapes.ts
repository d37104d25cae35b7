// Shape inference: each node's input and output shape from the op table's rules, with the located
// errors a shape can have — a window larger than its input, an image op on a vector, `linear`
// without `flatten`. Inference stops at the first such error: later shapes would be guesses.
import { error } from "./codes.js";
import type { Diagnostic, Note } from "./diagnostics.js";
import type { AnyNodeIR, InputIR, Shape } from "./ir.js";
import { opDef } from "./ops.js";
import type { SourceMap } from "./parse.js";

export const describeNode = (n: AnyNodeIR): string => `layer ${n.name} (${n.kind})`;

export function showShape(shape: Shape): string {
  return shape.length === 3 ? `${shape[0]}x${shape[1]}x${shape[2]}` : `[${shape.join(", ")}]`;
}

/** Fill `inShape`/`outShape` of every node; returns the shape errors (none: all shapes are set). */
export function inferShapes(nodes: AnyNodeIR[], input: InputIR, source: SourceMap): Diagnostic[] {
  let shape: Shape = [input.channels, input.height, input.width];
  let producer: AnyNodeIR | undefined;
  const origin = (what: string): Note =>
    producer
      ? { message: `${what} comes from ${describeNode(producer)}`, span: producer.span }
      : { message: `${what} is the model input`, span: source.key([], "input") ?? source.top() };

  for (const node of nodes) {
    const op = opDef(node.kind);
    const here = describeNode(node);
    if (op.rank === "image" && shape.length !== 3) {
      return [
        error(
          "E0204",
          `${here} needs an image [C, H, W], got the vector ${showShape(shape)}`,
          node.span,
          [origin(`the vector ${showShape(shape)}`)],
        ),
      ];
    }
    if (op.rank === "vector" && shape.length !== 1) {
      return [
        error(
          "E0203",
          `${here} needs a vector, got the image ${showShape(shape)}: put \`flatten\` (or \`gap\` then \`flatten\`) before it`,
          node.span,
          [origin(`the image ${showShape(shape)}`)],
        ),
      ];
    }
    const window = op.window?.(node.attrs);
    if (window) {
      const size = [shape[1] ?? 0, shape[2] ?? 0];
      const padded = size.map((n, i) => n + 2 * (window.padding[i] ?? 0));
      if (padded.some((n, i) => n < (window.kernel[i] ?? 0))) {
        const pad = window.padding.some((p) => p > 0) ? ` (${padded.join("x")} with padding)` : "";
        const what = node.kind === "conv" ? "kernel" : "pool window";
        return [
          error(
            "E0201",
            `${here}: ${what} ${window.kernel.join("x")} is larger than its ${size.join("x")} input${pad}; the spatial size would collapse to ${op
              .shape(node.attrs, shape)
              .slice(1)
              .map((n) => Math.max(0, n))
              .join("x")}`,
            node.span,
            [origin(`the ${size.join("x")} input`)],
          ),
        ];
      }
    }
    node.inShape = shape;
    node.outShape = op.shape(node.attrs, shape);
    shape = node.outShape;
    producer = node;
  }
  return [];
}
