// `mnistc params [SPEC...] [--max N] [--json]`: per-layer shapes, parameters, MACs and receptive
// field (a torchsummary-style table, or one JSON object per spec), and the budget verdict.
// Exit 1 when any spec is over its budget or does not compile.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import {
  type BudgetVerdict,
  budgetVerdict,
  checkSpec,
  formatDiagnostics,
  verdictLine,
} from "../compiler/index.js";
import type { AnyNodeIR, ModelIR } from "../compiler/ir.js";
import { opDef } from "../compiler/ops.js";
import { paramCount } from "../compiler/params.js";
import { packagePath } from "../paths.js";
import { readSpecText } from "./spec.js";

export interface ParamsOptions {
  max?: number;
  json?: boolean;
}

/**
 * Specs to use without arguments: `specs/*.yaml` of the current directory (a project's own specs),
 * else the package's shipped ones.
 */
export function defaultSpecs(cwd = process.cwd()): string[] {
  const list = (dir: string) =>
    existsSync(dir)
      ? readdirSync(dir)
          .filter((f) => /\.ya?ml$/.test(f))
          .sort()
      : [];
  const local = list(join(cwd, "specs"));
  if (local.length > 0) return local.map((f) => join("specs", f));
  return list(packagePath("specs")).map((f) => packagePath("specs", f));
}

const n = (x: number): string => x.toLocaleString("en-US");
const batchShape = (shape: number[]): string => `[-1, ${shape.join(", ")}]`;

interface Row {
  layer: string;
  type: string;
  shape: string;
  params: string;
  macs: string;
  rf: string;
}

function row(node: AnyNodeIR): Row {
  return {
    layer: node.name,
    type: opDef(node.kind).describe(node.attrs, node.inShapes),
    shape: batchShape(node.outShape),
    params: n(paramCount(node, true)),
    macs: n(node.macs),
    rf: `${node.rf.size}/${node.rf.jump}`,
  };
}

/** The table for one compiled spec, ending with the budget verdict. */
export function renderTable(ir: ModelIR, verdict: BudgetVerdict): string {
  const { channels, height, width } = ir.input;
  const header: Row = {
    layer: "Layer",
    type: "Type",
    shape: "Output Shape",
    params: "Params",
    macs: "MACs",
    rf: "RF",
  };
  const input: Row = {
    layer: "input",
    type: "",
    shape: batchShape([channels, height, width]),
    params: "0",
    macs: "0",
    rf: "1/1",
  };
  const rows = [header, input, ...ir.nodes.map(row)];
  const width_ = (k: keyof Row) => Math.max(...rows.map((r) => r[k].length));
  const w = {
    layer: width_("layer"),
    type: width_("type"),
    shape: width_("shape"),
    params: width_("params"),
    macs: width_("macs"),
    rf: width_("rf"),
  };
  const line = (r: Row) =>
    [
      r.layer.padEnd(w.layer),
      r.type.padEnd(w.type),
      r.shape.padEnd(w.shape),
      r.params.padStart(w.params),
      r.macs.padStart(w.macs),
      r.rf.padStart(w.rf),
    ].join("   ");
  const total = line(header).length;
  return [
    `${ir.name} (${ir.file})`,
    "-".repeat(total),
    line(header),
    "=".repeat(total),
    ...rows.slice(1).map(line),
    "=".repeat(total),
    `Trainable params: ${n(ir.totals.trainable)}`,
    `Buffer values: ${n(ir.totals.buffers)} (batch-norm running mean and variance, not trained)`,
    `MACs per image: ${n(ir.totals.macs)}`,
    "-".repeat(total),
    "MACs: multiply-accumulates of conv and linear layers only (torchinfo's Mult-Adds); others count 0.",
    "RF: receptive field size/jump in input pixels (gap and linear see their whole feature map).",
    verdictLine(verdict),
    "",
  ].join("\n");
}

/** The JSON object for one compiled spec (printed one per line: JSON Lines). */
export function paramsJson(ir: ModelIR, verdict: BudgetVerdict): object {
  return {
    name: ir.name,
    file: ir.file,
    input: [ir.input.channels, ir.input.height, ir.input.width],
    classes: ir.classes,
    layers: ir.nodes.map((node) => ({
      name: node.name,
      type: node.kind,
      block: node.block ?? null,
      inputShape: node.inShape,
      outputShape: node.outShape,
      params: paramCount(node, true),
      buffers: paramCount(node, false),
      macs: node.macs,
      rf: node.rf,
      parameters: node.params.map((p) => ({
        name: p.name,
        shape: p.shape,
        trainable: p.trainable,
      })),
    })),
    totals: ir.totals,
    budget: {
      limit: verdict.limit ?? null,
      source: verdict.source ?? null,
      trainable: verdict.trainable,
      ok: verdict.ok,
      spare: verdict.spare ?? null,
    },
  };
}

export async function params(specs: string[], options: ParamsOptions = {}): Promise<number> {
  const files = specs.length > 0 ? specs : defaultSpecs();
  if (files.length === 0) {
    process.stderr.write("mnistc params: no specs given and no specs/*.yaml found\n");
    return 1;
  }
  let failed = false;
  const tables: string[] = [];
  for (const file of files) {
    const { ir, diagnostics } = checkSpec(await readSpecText(file), file, options.max);
    if (diagnostics.length > 0) process.stderr.write(`${formatDiagnostics(diagnostics)}\n`);
    if (!ir) {
      failed = true;
      continue;
    }
    const verdict = budgetVerdict(ir, options.max);
    if (!verdict.ok) failed = true;
    if (options.json) process.stdout.write(`${JSON.stringify(paramsJson(ir, verdict))}\n`);
    else tables.push(renderTable(ir, verdict));
  }
  if (!options.json) process.stdout.write(tables.join("\n"));
  return failed ? 1 : 0;
}
