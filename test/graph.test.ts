// `mnistc graph`: the SVG of every shipped spec (and of every-op, for gates and concats) as golden
// files, drawn the same on every run; the picture shows what the spec says; the PNG of the README.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { PNG } from "pngjs";
import { budgetVerdict, compileSpec, verdictLine } from "../src/compiler/index.js";
import type { ModelIR } from "../src/compiler/ir.js";
import { packagePath, packageRoot } from "../src/paths.js";
import { graphSvg, layoutGraph, renderGraphSvg } from "../src/runtime/render/graph.js";
import { svgToPng } from "../src/runtime/render/png.js";
import { expectGolden } from "./helpers/golden.js";

const EVERY_OP = "test/fixtures/specs/good/every-op.yaml";
/** The picture the README shows. */
const README_GRAPH = { spec: "specs/sepres.yaml", png: "docs/graph-sepres.png" };

function load(file: string): ModelIR {
  const { ir } = compileSpec(readFileSync(packagePath(file), "utf8"), file);
  assert.ok(ir, file);
  return ir;
}

const budgetLine = (ir: ModelIR) => verdictLine(budgetVerdict(ir));

const specs = readdirSync(packagePath("specs"))
  .filter((f) => f.endsWith(".yaml"))
  .sort()
  .map((f) => `specs/${f}`);

for (const file of [...specs, EVERY_OP]) {
  test(`graph SVG of ${file}`, async () => {
    const ir = load(file);
    expectGolden(`graph/${ir.name}.svg`, await renderGraphSvg(ir, budgetLine(ir)));
  });
}

test("the layout is the same on every run", async () => {
  const ir = load(EVERY_OP);
  const first = JSON.stringify(await layoutGraph(ir, budgetLine(ir)));
  assert.equal(JSON.stringify(await layoutGraph(ir, budgetLine(ir))), first);
});

test("the picture shows the spec: every layer, its blocks, and skip, gate and concat edges", async () => {
  const ir = load(EVERY_OP);
  const layout = await layoutGraph(ir, budgetLine(ir));
  assert.deepEqual(
    layout.nodes.map((n) => n.id),
    ["input", ...ir.nodes.map((n) => n.name)],
  );
  assert.deepEqual(
    layout.blocks.map((b) => b.name),
    ["stem", "grouped", "res", "se", "dense", "dil", "pools", "head"],
  );
  const special = layout.edges
    .filter((e) => e.kind !== "flow")
    .map((e) => `${e.from} -${e.kind}-> ${e.to}`);
  assert.deepEqual(special, [
    "stem.2 -skip-> res.add",
    "res.add -gate-> se.mul",
    "se.mul -concat-> dense.concat",
  ]);
  assert.equal(
    layout.edges.length,
    ir.nodes.reduce((s, n) => s + n.inputs.length, 0),
  );
  const conv = layout.nodes.find((n) => n.id === "grouped.0");
  assert.deepEqual(conv?.lines, ["grouped.0  conv 3x3 same g2 nobias", "[8, 14, 14] · 288 params"]);
  assert.equal(layout.blocks.find((b) => b.name === "stem")?.label, "stem · 96 params");
  assert.equal(
    layout.title[1],
    "budget: none set — 2,422 trainable parameters (set `budget:` or --max)",
  );
  // Every layer sits inside its block's box, every edge starts and ends on its boxes.
  const box = new Map(layout.nodes.map((n) => [n.id, n]));
  for (const n of layout.nodes) {
    const b = layout.blocks.find((b) => b.name === n.block);
    if (!b) continue;
    assert.ok(n.x >= b.x && n.y >= b.y, `${n.id} inside ${b.name}`);
    assert.ok(n.x + n.width <= b.x + b.width && n.y + n.height <= b.y + b.height, n.id);
  }
  for (const e of layout.edges) {
    const [from, to] = [box.get(e.from), box.get(e.to)];
    const [start, end] = [e.points[0], e.points.at(-1)];
    assert.ok(from && to && start && end, `${e.from} -> ${e.to}`);
    assert.ok(Math.abs(start.y - (from.y + from.height)) < 1, `${e.from} -> ${e.to} leaves below`);
    assert.ok(Math.abs(end.y - to.y) < 1, `${e.from} -> ${e.to} arrives on top`);
  }
  const svg = graphSvg(layout);
  for (const kind of ["skip", "gate", "concat"])
    assert.match(svg, new RegExp(`class="edge ${kind}"`));
});

test("the title carries the budget line", async () => {
  const ir = load("specs/step4.yaml");
  const svg = await renderGraphSvg(ir, budgetLine(ir));
  assert.match(svg, /budget: 16,478 \/ 16,500 trainable parameters — OK \(22 to spare\)/);
});

test(`${README_GRAPH.png} is the PNG of ${README_GRAPH.spec} as drawn now`, async () => {
  const ir = load(README_GRAPH.spec);
  const png = svgToPng(await renderGraphSvg(ir, budgetLine(ir)));
  const file = packagePath(README_GRAPH.png);
  if (process.env.UPDATE_GOLDEN === "1" && process.env.CI !== "true") writeFileSync(file, png);
  assert.ok(existsSync(file), `${file} is missing: run with UPDATE_GOLDEN=1`);
  // By the pixels, not the bytes: another CPU's rasterizer may round an edge differently, while a
  // layout or text that changed moves thousands of pixels.
  const [now, committed] = [PNG.sync.read(Buffer.from(png)), PNG.sync.read(readFileSync(file))];
  assert.deepEqual(
    [committed.width, committed.height],
    [now.width, now.height],
    `${file} is stale`,
  );
  let differ = 0;
  for (let i = 0; i < now.data.length; i++) {
    if (Math.abs((now.data[i] as number) - (committed.data[i] as number)) > 48) differ++;
  }
  assert.ok(
    differ < now.data.length * 0.001,
    `${file} is stale (${differ} values differ): UPDATE_GOLDEN=1`,
  );
});

function cli(args: string[], cwd: string) {
  const run = spawnSync(process.execPath, [packagePath("dist", "src", "cli.js"), ...args], {
    cwd,
    encoding: "utf8",
  });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

test("mnistc graph writes SVG or PNG by the extension, --json prints the layout", () => {
  const dir = mkdtempSync(join(tmpdir(), "mnistc-graph-"));
  try {
    const svg = cli(["graph", "step4", "-o", "net.svg"], dir);
    assert.equal(svg.code, 0, svg.stderr);
    assert.equal(svg.stdout, "wrote net.svg\n");
    assert.match(readFileSync(join(dir, "net.svg"), "utf8"), /^<svg /);
    const png = cli(["graph", "step4", "-o", "net.png"], dir);
    assert.equal(png.code, 0, png.stderr);
    assert.equal(PNG.sync.read(readFileSync(join(dir, "net.png"))).width > 0, true);
    const json = cli(["graph", "step4", "--json"], dir);
    assert.equal(json.code, 0, json.stderr);
    const layout = JSON.parse(json.stdout) as { name: string; nodes: unknown[] };
    assert.equal(layout.name, "step4");
    assert.equal(layout.nodes.length, 23);
    const bad = cli(["graph", "step4", "-o", "net.pdf"], dir);
    assert.deepEqual(
      [bad.code, bad.stderr],
      [1, "mnistc: error: net.pdf: the picture is written as .svg or .png\n"],
    );
    const broken = cli(
      ["graph", join(packageRoot, "test/fixtures/specs/bad/unknown-layer.yaml")],
      dir,
    );
    assert.equal(broken.code, 1);
    assert.match(broken.stderr, /error E0101/);
    assert.equal(existsSync(join(dir, "unknown-layer.svg")), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
