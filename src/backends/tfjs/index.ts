// The tfjs backend: a standalone, readable ES-module training program.
//   model.mjs  `spec` (the spec's settings as a JSON literal) and `buildModel(tf, { seed })`, one
//              layers-API statement per layer, a comment per block (code per op from ./ops.ts)
//   train.mjs  calls the runtime's `trainMain` with the command line (options of `mnistc train`)
// Both import the runtime from `options.runtimeImport` (default `mnistc/runtime`).
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import Handlebars from "handlebars";
import type { Diagnostic } from "../../compiler/diagnostics.js";
import type { AnyNodeIR, ModelIR, NodeIR, OpKind } from "../../compiler/ir.js";
import { OPS } from "../../compiler/ops.js";
import { packagePath } from "../../paths.js";
import type { Backend, EmitOptions, EmitResult } from "../backend.js";
import { jsonLiteral } from "./json-literal.js";
import { js, type LayerCode, type RuntimeExport, TFJS_OPS } from "./ops.js";
import { DEFAULT_RUNTIME_IMPORT } from "./runtime-import.js";

type Template = (context: object) => string;
const templates = new Map<string, Template>();

/** Templates are read once, from the package (`src/` holds them whether code runs from `dist/`). */
function template(name: string): Template {
  let compiled = templates.get(name);
  if (!compiled) {
    const text = readFileSync(packagePath("src", "backends", "tfjs", "templates", name), "utf8");
    // Code, not HTML: no escaping; and a field the template names but the context lacks throws.
    compiled = Handlebars.compile(text, { noEscape: true, strict: true });
    templates.set(name, compiled);
  }
  return compiled;
}

function layerCode<K extends OpKind>(node: NodeIR<K>): LayerCode {
  return (TFJS_OPS[node.kind] as (n: NodeIR<K>, ctx: Record<string, never>) => LayerCode)(node, {});
}

const shapeText = (shape: number[]) => `[${shape.join(", ")}]`;

function describe(node: AnyNodeIR): string {
  const def = OPS[node.kind] as { describe(attrs: unknown, input: number[]): string };
  return def.describe(node.attrs, node.inShape);
}

interface Block {
  comment: string;
  statements: string[];
}

/** Consecutive nodes of one spec block share a comment; a layer outside any block has its own. */
function blocks(ir: ModelIR): { blocks: Block[]; uses: Set<RuntimeExport> } {
  const groups: AnyNodeIR[][] = [];
  for (const node of ir.nodes) {
    const last = groups.at(-1);
    if (last && node.block !== undefined && last[0]?.block === node.block) last.push(node);
    else groups.push([node]);
  }
  const uses = new Set<RuntimeExport>();
  const out = groups.map((nodes) => {
    const first = nodes[0] as AnyNodeIR;
    const lastNode = nodes.at(-1) as AnyNodeIR;
    const title = first.block ?? first.name;
    const kinds = nodes.map(describe).join(", ");
    const statements = nodes.flatMap((node) => {
      const code = layerCode(node);
      for (const u of code.uses) uses.add(u);
      return code.statements;
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

/** What `spec` holds: the settings training needs, and the parameters in PyTorch naming. */
export function embeddedSpec(ir: ModelIR) {
  return {
    name: ir.name,
    input: ir.input,
    classes: ir.classes,
    train: ir.train,
    data: ir.data,
    params: ir.nodes.flatMap((n) => n.params.map((p) => p.name)),
  };
}

export function emitTfjs(ir: ModelIR, runtimeImport: string): EmitResult {
  const { blocks: body, uses } = blocks(ir);
  const common = { name: ir.name, source: basename(ir.file), runtimeImport };
  const model = template("model.mjs.hbs")({
    ...common,
    nameJson: js(ir.name),
    inputShape: [ir.input.height, ir.input.width, ir.input.channels].join(", "),
    trainable: ir.totals.trainable,
    buffers: ir.totals.buffers,
    imports: [...uses].sort().join(", "),
    specJson: jsonLiteral(embeddedSpec(ir)),
    blocks: body,
  });
  const train = template("train.mjs.hbs")(common);
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
