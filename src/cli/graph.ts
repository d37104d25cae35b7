// `mnistc graph SPEC [-o net.svg|net.png] [--json]`: a picture of the net as written (blocks,
// layers with shapes and parameters, skip / gate / concat edges, the budget line). The format
// follows the output's extension; --json prints the laid-out graph instead of (or beside) it.
import { extname } from "node:path";
import { budgetVerdict, verdictLine } from "../compiler/index.js";
import { UserError } from "../errors.js";
import { graphSvg, layoutGraph } from "../runtime/render/graph.js";
import { writeFileAtomic } from "../util/files.js";
import { loadSpec } from "./spec.js";

export interface GraphOptions {
  out?: string;
  json?: boolean;
}

export async function graph(spec: string, options: GraphOptions = {}): Promise<number> {
  const format = options.out === undefined ? undefined : extname(options.out).toLowerCase();
  if (format !== undefined && format !== ".svg" && format !== ".png") {
    throw new UserError(`${options.out}: the picture is written as .svg or .png`);
  }
  const ir = await loadSpec(spec);
  if (!ir) return 1;
  const layout = await layoutGraph(ir, verdictLine(budgetVerdict(ir)));
  const out = options.out ?? (options.json ? undefined : `${ir.name}.svg`);
  if (out !== undefined) {
    const svg = graphSvg(layout);
    // resvg (and vega beside it) is loaded only for a PNG.
    const png = format === ".png";
    writeFileAtomic(out, png ? (await import("../runtime/render/png.js")).svgToPng(svg) : svg);
  }
  if (options.json) process.stdout.write(`${JSON.stringify(layout)}\n`);
  else process.stdout.write(`wrote ${out}\n`);
  return 0;
}
