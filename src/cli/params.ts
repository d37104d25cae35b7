// `mnistc params [SPEC...] [--max N] [--batch-size N] [--depth N] [--json]`: per-layer shapes,
// parameters (with each one's share), MACs and receptive field in a torchsummary-style table (or one
// JSON object per spec), torchinfo's total/trainable/non-trainable lines, torchsummary's memory
// estimate for a batch, and the budget verdict. Exit 1 when any spec is over its budget or does not
// compile.
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
import { type BlockTotal, blockTotals, memoryEstimate, paramPercent } from "../compiler/summary.js";
import { packagePath } from "../paths.js";
import { readSpecText } from "./spec.js";

export interface ParamsOptions extends TableOptions {
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
/** torchinfo's Param % column: two decimals, `--` for a row without parameters. */
const percent = (params: number, total: number): string =>
  params === 0 ? "--" : `${paramPercent(params, total).toFixed(2)}%`;
/** torchsummary prints its sizes with `%0.2f`. */
const mb = (x: number): string => x.toFixed(2);

interface Row {
  layer: string;
  type: string;
  shape: string;
  params: string;
  percent: string;
  macs: string;
  rf: string;
}

const HEADER: Row = {
  layer: "Layer",
  type: "Type",
  shape: "Output Shape",
  params: "Params",
  percent: "Param %",
  macs: "MACs",
  rf: "RF",
};

function layerRow(node: AnyNodeIR, total: number): Row {
  const params = paramCount(node, true);
  return {
    layer: node.name,
    type: opDef(node.kind).describe(node.attrs, node.inShapes),
    shape: batchShape(node.outShape),
    params: n(params),
    percent: percent(params, total),
    macs: n(node.macs),
    rf: `${node.rf.size}/${node.rf.jump}`,
  };
}

/** A top-level item at --depth 1: a block as one row with its subtotals, a lone layer as itself. */
function blockRow(item: BlockTotal, total: number): Row {
  const only = item.layers[0];
  if (!item.block && only) return layerRow(only, total);
  return {
    layer: item.name,
    type: `${item.layers.length} layer${item.layers.length === 1 ? "" : "s"}`,
    shape: batchShape(item.outputShape),
    params: n(item.params),
    percent: percent(item.params, total),
    macs: n(item.macs),
    rf: `${item.rf.size}/${item.rf.jump}`,
  };
}

/** The title, the header and the rows (input first) between rules; and the rule width. */
function framed(ir: ModelIR, rows: Row[]): { head: string[]; width: number } {
  const { lines, width } = layout([inputRow(ir), ...rows]);
  const rule = "=".repeat(width);
  const head = [`${ir.name} (${ir.file})`, "-".repeat(width), lines[0] ?? "", rule];
  return { head: [...head, ...lines.slice(1), rule], width };
}

/** The rows as aligned lines, the header line first; and the rule width. */
function layout(rows: Row[]): { lines: string[]; width: number } {
  const all = [HEADER, ...rows];
  const w = (k: keyof Row) => Math.max(...all.map((r) => r[k].length));
  const widths = Object.fromEntries(
    (Object.keys(HEADER) as (keyof Row)[]).map((k) => [k, w(k)]),
  ) as Record<keyof Row, number>;
  const line = (r: Row) =>
    [
      r.layer.padEnd(widths.layer),
      r.type.padEnd(widths.type),
      r.shape.padEnd(widths.shape),
      r.params.padStart(widths.params),
      r.percent.padStart(widths.percent),
      r.macs.padStart(widths.macs),
      r.rf.padStart(widths.rf),
    ].join("   ");
  const lines = all.map(line);
  return { lines, width: Math.max(...lines.map((l) => l.length)) };
}

function inputRow(ir: Pick<ModelIR, "input">): Row {
  const { channels, height, width } = ir.input;
  return {
    layer: "input",
    type: "",
    shape: batchShape([channels, height, width]),
    params: "0",
    percent: "--",
    macs: "0",
    rf: "1/1",
  };
}

export interface TableOptions {
  /** Images per batch for the memory estimate (default: the spec's train.batch_size). */
  batchSize?: number;
  /** 1: one row per top-level item (blocks with their subtotals); 2 or more (default): every layer. */
  depth?: number;
}

/** The table for one compiled spec, ending with the budget verdict. */
export function renderTable(
  ir: ModelIR,
  verdict: BudgetVerdict,
  options: TableOptions = {},
): string {
  const total = ir.totals.trainable;
  const body =
    (options.depth ?? Number.POSITIVE_INFINITY) <= 1
      ? blockTotals(ir.nodes).map((b) => blockRow(b, total))
      : ir.nodes.map((node) => layerRow(node, total));
  const { head, width } = framed(ir, body);
  const memory = memoryEstimate(ir, options.batchSize ?? ir.train.batchSize);
  const batchFrom =
    options.batchSize === undefined ? "the spec's train.batch_size" : "--batch-size";
  return [
    ...head,
    `Total params: ${n(total)}`,
    `Trainable params: ${n(total)}`,
    // A spec cannot freeze a layer: every parameter trains.
    "Non-trainable params: 0",
    `Buffer values: ${n(ir.totals.buffers)} (batch-norm running mean and variance: buffers, not params)`,
    `MACs per image: ${n(ir.totals.macs)}`,
    "-".repeat(width),
    `Input size (MB): ${mb(memory.inputMB)}`,
    `Forward/backward pass size (MB): ${mb(memory.forwardBackwardMB)}`,
    `Params size (MB): ${mb(memory.paramsMB)}`,
    `Estimated Total Size (MB): ${mb(memory.totalMB)}`,
    "-".repeat(width),
    "MACs: multiply-accumulates of conv and linear layers only (torchinfo's Mult-Adds); others count 0.",
    "RF: receptive field size/jump in input pixels (gap and linear see their whole feature map).",
    `Sizes: torchsummary's estimate for a batch of ${memory.batchSize} (${batchFrom}), float32, MB = 2^20 bytes.`,
    verdictLine(verdict),
    "",
  ].join("\n");
}

/** The JSON object for one compiled spec (printed one per line: JSON Lines). */
export function paramsJson(ir: ModelIR, verdict: BudgetVerdict, batchSize?: number): object {
  const total = ir.totals.trainable;
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
      paramPercent: paramPercent(paramCount(node, true), total),
      buffers: paramCount(node, false),
      macs: node.macs,
      rf: node.rf,
      parameters: node.params.map((p) => ({
        name: p.name,
        shape: p.shape,
        trainable: p.trainable,
      })),
    })),
    blocks: blockTotals(ir.nodes).map((b) => ({
      name: b.name,
      block: b.block,
      layers: b.layers.map((l) => l.name),
      outputShape: b.outputShape,
      params: b.params,
      paramPercent: paramPercent(b.params, total),
      buffers: b.buffers,
      macs: b.macs,
      rf: b.rf,
    })),
    totals: {
      total,
      trainable: total,
      nonTrainable: 0,
      buffers: ir.totals.buffers,
      macs: ir.totals.macs,
    },
    memory: {
      formula: "torchsummary",
      ...memoryEstimate(ir, batchSize ?? ir.train.batchSize),
    },
    budget: {
      limit: verdict.limit ?? null,
      source: verdict.source ?? null,
      trainable: verdict.trainable,
      ok: verdict.ok,
      spare: verdict.spare ?? null,
    },
  };
}

/**
 * The table of a spec with errors, up to its first broken layer (`stopsAt`): rows only, since
 * totals would be wrong.
 */
export function renderPartial(ir: ModelIR, stopsAt: string | undefined): string {
  const total = ir.totals.trainable;
  const { head } = framed(
    ir,
    ir.nodes.map((node) => layerRow(node, total)),
  );
  return [
    ...head,
    stopsAt
      ? `stops before ${stopsAt}: the spec has errors (below); Param % is of the layers shown`
      : "the spec has errors (below)",
    "",
  ].join("\n");
}

export async function params(specs: string[], options: ParamsOptions = {}): Promise<number> {
  const files = specs.length > 0 ? specs : defaultSpecs();
  if (files.length === 0) {
    process.stderr.write("mnistc params: no specs given and no specs/*.yaml found\n");
    return 1;
  }
  let failed = false;
  let first = true;
  /** Tables one after another, a blank line between two. */
  const table = (text: string) => {
    process.stdout.write(first ? text : `\n${text}`);
    first = false;
  };
  for (const file of files) {
    const { ir, diagnostics, partial } = checkSpec(await readSpecText(file), file, options.max);
    if (!ir) {
      failed = true;
      // The table up to the first broken layer, then the errors.
      if (partial && !options.json) table(renderPartial(partial.ir, partial.stopsAt));
    } else {
      const verdict = budgetVerdict(ir, options.max);
      if (!verdict.ok) failed = true;
      if (options.json) {
        process.stdout.write(`${JSON.stringify(paramsJson(ir, verdict, options.batchSize))}\n`);
      } else table(renderTable(ir, verdict, options));
    }
    if (diagnostics.length > 0) process.stderr.write(`${formatDiagnostics(diagnostics)}\n`);
  }
  return failed ? 1 : 0;
}
