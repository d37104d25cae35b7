// The tfjs backend: a standalone, readable ES-module training program.
//   model.mjs  `spec` (the spec's settings as a JSON literal) and `buildModel(tf, { seed })`, one
//              layers-API statement per layer, a comment per block (code per op from ./ops.ts)
//   train.mjs  calls the runtime's `trainMain` with the command line (options of `mnistc train`)
// Both import the runtime from `options.runtimeImport` (default `mnistc/runtime`).
import { basename } from "node:path";
import type { Diagnostic } from "../../compiler/diagnostics.js";
import {
  type AnyNodeIR,
  GRAPH_INPUT,
  type ModelIR,
  type NodeIR,
  type OpKind,
  type TrainIR,
} from "../../compiler/ir.js";
import { opDef } from "../../compiler/ops.js";
import type { Layout } from "../../formats/tfjs-layout.js";
import { commentText, jsStr } from "../../util/literals.js";
import type { Backend, EmitOptions, EmitResult } from "../backend.js";
import { template } from "../templates.js";
import { jsonLiteral } from "./json-literal.js";
import {
  js,
  type LayerCode,
  type Option,
  type RuntimeExport,
  TFJS_OPS,
  type TfjsContext,
  type TfjsLayer,
} from "./ops.js";
import { DEFAULT_RUNTIME_IMPORT } from "./runtime-import.js";

/** The tfjs code of one node, from the backend's op table. */
export function layerCode<K extends OpKind>(node: NodeIR<K>): LayerCode {
  return (TFJS_OPS[node.kind] as (n: NodeIR<K>, ctx: TfjsContext) => LayerCode)(node, {});
}

const shapeText = (shape: number[]) => `[${shape.join(", ")}]`;

function describe(node: AnyNodeIR): string {
  return opDef(node.kind).describe(node.attrs, node.inShapes);
}

interface Block {
  comment: string;
  statements: string[];
}

const LINE_WIDTH = 100;
/** The indentation statements get in `buildModel`. */
const INDENT = "  ";

/**
 * `<before><factory>({ ... })<after>` on one line when it fits; otherwise one line per option
 * group (the plain options, then each initializer).
 */
function statement(before: string, layer: TfjsLayer, after: string): string {
  const entry = ([k, v]: Option) => (k === v ? k : `${k}: ${v}`);
  const options = layer.options.flat().map(entry).join(", ");
  const inline = `${before}${layer.factory}({ ${options} })${after}`;
  if (INDENT.length + inline.length <= LINE_WIDTH) return inline;
  const lines = layer.options
    .filter((g) => g.length > 0)
    .map((g) => `  ${g.map(entry).join(", ")},`);
  return [`${before}${layer.factory}({`, ...lines, `})${after}`].join("\n");
}

/** Names the emitted code itself uses, which a saved tensor must not shadow. */
const TAKEN = new Set(["x", "input", "tf", "seed", "model", "spec", "buildModel"]);
const RESERVED = new Set(
  "await break case catch class const continue debugger default delete do else enum export extends false finally for function if implements import in instanceof interface let new null package private protected public return static super switch this throw true try typeof var void while with yield".split(
    " ",
  ),
);

/** The variable a tensor that is read again later is kept in: its block's name, if free. */
function variableFor(node: AnyNodeIR): string {
  const base = (node.block ?? `layer_${node.name}`).replace(/[^A-Za-z0-9_$]/g, "_");
  return TAKEN.has(base) || RESERVED.has(base) ? `${base}_` : base;
}

/** A chain: every node reads only the one before it (the first reads the input). */
export function isChain(ir: ModelIR): boolean {
  return ir.nodes.every(
    (n, i) => n.inputs.length === 1 && n.inputs[0] === (ir.nodes[i - 1]?.name ?? GRAPH_INPUT),
  );
}

/**
 * The statements of each node: `model.add(...)` for a chain; for any other graph, the functional
 * API, `x = <layer>.apply(x)`, keeping in a variable each tensor an `add` reads again later.
 */
function blocks(ir: ModelIR): { blocks: Block[]; uses: Set<RuntimeExport> } {
  const chain = isChain(ir);
  const readLater = new Set(
    ir.nodes.flatMap((n, i) =>
      n.inputs.filter((name) => name !== (ir.nodes[i - 1]?.name ?? GRAPH_INPUT)),
    ),
  );
  const variables = new Map<string, string>([[GRAPH_INPUT, "input"]]);
  const groups: AnyNodeIR[][] = [];
  for (const node of ir.nodes) {
    const last = groups.at(-1);
    if (last && node.block !== undefined && last[0]?.block === node.block) last.push(node);
    else groups.push([node]);
  }
  const uses = new Set<RuntimeExport>();
  const statementsOf = (node: AnyNodeIR, previous: string): string[] => {
    const code = layerCode(node);
    for (const u of code.uses) uses.add(u);
    const lines = code.layers.map((layer, i) => {
      if (chain) return statement("model.add(", layer, ");");
      const read =
        i > 0 || node.inputs.length === 1
          ? "x"
          : `[${node.inputs.map((name) => (name === previous ? "x" : variables.get(name))).join(", ")}]`;
      return statement("x = ", layer, `.apply(${read});`);
    });
    if (!chain && readLater.has(node.name)) {
      const variable = variableFor(node);
      variables.set(node.name, variable);
      lines.push(`const ${variable} = x;`);
    }
    return lines;
  };
  let previous: string = GRAPH_INPUT;
  const out = groups.map((nodes) => {
    const first = nodes[0] as AnyNodeIR;
    const lastNode = nodes.at(-1) as AnyNodeIR;
    const title = first.block ?? first.name;
    const kinds = nodes.map(describe).join(", ");
    const statements = nodes.flatMap((node) => {
      const lines = statementsOf(node, previous);
      previous = node.name;
      return lines;
    });
    return {
      comment: `${title}: ${kinds}; ${shapeText(first.inShape)} -> ${shapeText(lastNode.outShape)}`,
      statements: statements.map((s) => indent(s, "  ")),
    };
  });
  return { blocks: out, uses };
}

const indent = (text: string, by: string) =>
  text
    .split("\n")
    .map((line) => by + line)
    .join("\n");

/** The recipe as the program needs it: where the spec wrote it stays with the compiler. */
function withoutSpans(train: TrainIR): TrainIR {
  if (!train.distill) return train;
  const { teachers, weight, temperature } = train.distill;
  return { ...train, distill: { teachers, weight, temperature } };
}

/**
 * Where each PyTorch parameter lives in the tfjs model: `[tfjs weight name, layout]` by state_dict
 * name, in the model's order (the op table's weights).
 */
export function tfjsWeightTable(ir: ModelIR): Record<string, [string, Layout]> {
  return Object.fromEntries(
    ir.nodes.flatMap((node) => {
      const { weights } = layerCode(node);
      return node.params.map((param): [string, [string, Layout]] => {
        const weight = weights.find((w) => w.role === param.role);
        if (!weight) throw new Error(`tfjs backend: no tfjs weight for ${param.name}`);
        return [param.name, [weight.name, weight.layout]];
      });
    }),
  );
}

/**
 * What `spec` holds: the settings training needs, the parameters in PyTorch naming, and where
 * each is in the tfjs model (how the runtime converts tfjs's weights to and from checkpoints,
 * which hold PyTorch's names and layouts). `mnistc train --backend onnx` trains from it too.
 */
export function embeddedSpec(ir: ModelIR) {
  return {
    name: ir.name,
    input: ir.input,
    classes: ir.classes,
    train: withoutSpans(ir.train),
    data: ir.data,
    params: ir.nodes.flatMap((n) => n.params.map((p) => p.name)),
    tfjsWeights: tfjsWeightTable(ir),
  };
}

export function emitTfjs(ir: ModelIR, runtimeImport: string): EmitResult {
  const { blocks: body, uses } = blocks(ir);
  // Comments get comment-safe text, code gets literals: a file name may hold any character.
  const common = {
    name: commentText(ir.name),
    source: commentText(basename(ir.file)),
    runtimeImport: jsStr(runtimeImport),
  };
  const model = template(
    "tfjs",
    "model.mjs.hbs",
  )({
    ...common,
    nameJson: js(ir.name),
    inputShape: [ir.input.height, ir.input.width, ir.input.channels].join(", "),
    trainable: ir.totals.trainable,
    buffers: ir.totals.buffers,
    imports: [...uses].sort().join(", "),
    specJson: jsonLiteral(embeddedSpec(ir)),
    blocks: body,
    chain: isChain(ir),
  });
  const train = template("tfjs", "train.mjs.hbs")(common);
  return {
    files: [
      { path: "model.mjs", contents: model },
      { path: "train.mjs", contents: train },
    ],
    diagnostics: [],
  };
}

export const tfjsBackend: Backend = {
  name: "tfjs",
  description: "TensorFlow.js training program (model.mjs + train.mjs)",
  output: "dir",
  emit(ir: ModelIR, options: EmitOptions): EmitResult {
    if (options.weights) return { files: [], diagnostics: [weightsNotSupported(ir)] };
    return emitTfjs(ir, options.runtimeImport ?? DEFAULT_RUNTIME_IMPORT);
  },
};

function weightsNotSupported(ir: ModelIR): Diagnostic {
  return {
    code: "E0901",
    severity: "error",
    message: "the tfjs backend does not embed weights: its program initializes and trains its own",
    span: { file: ir.file, line: 1, col: 1, endLine: 1, endCol: 1 },
    notes: [],
  };
}
