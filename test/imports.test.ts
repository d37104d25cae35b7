// Imports point one way (docs/architecture.md): no module of src/ reaches itself through its
// imports, type-only ones included (a type circle is still two modules that cannot be read apart).
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";
import type { RuntimeExport } from "../src/backends/tfjs/ops.js";
import { packagePath } from "../src/paths.js";
import * as runtime from "../src/runtime/index.js";

/** Every .ts file under `dir`. */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? sources(join(dir, e.name))
      : e.name.endsWith(".ts")
        ? [join(dir, e.name)]
        : [],
  );
}

/** The relative modules a file imports or re-exports, as .ts paths. */
function imports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+"(\.[^"]+)"/gms)].map((m) =>
    resolve(dirname(file), (m[1] as string).replace(/\.js$/, ".ts")),
  );
}

/** The import circles of a graph, each once, as the path from a module back to it. */
function circles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, "open");
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === "open") found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, "done");
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return found;
}

test("the circle finder finds a circle of two and one of three, and none in a chain", () => {
  const graph = (edges: string) =>
    new Map(edges.split(" ").map((e) => [e[0] as string, e.slice(1).split("")]));
  assert.deepEqual(circles(graph("ab ba")), [["a", "b", "a"]]);
  assert.deepEqual(circles(graph("ab bc ca d")), [["a", "b", "c", "a"]]);
  assert.deepEqual(circles(graph("ab bc c")), []);
});

test("no import circle in src/, type-only imports included", () => {
  const root = packagePath("src");
  const files = sources(root);
  const graph = new Map(files.map((f) => [f, imports(f)]));
  assert.ok(graph.size > 50, `${graph.size} modules`);
  // The parser sees the imports it should: ops.ts reads its rule types from grad-builder.ts.
  const ops = graph.get(join(root, "compiler", "ops.ts")) ?? [];
  assert.ok(ops.includes(join(root, "compiler", "grad-builder.ts")));
  const named = circles(graph).map((c) => c.map((f) => relative(root, f)).join(" → "));
  assert.deepEqual(named, []);
});

// The stages, lowest first: a module may import its own stage and those below it (the sweep file
// is read by the compiler's parser, so it sits beside formats). The backends and
// the runtime are siblings: neither reads the other (the emitted programs meet the runtime by name).
const STAGES: Record<string, number> = {
  util: 0,
  "errors.ts": 0,
  "paths.ts": 0,
  compiler: 1,
  formats: 2,
  sweep: 2,
  backends: 3,
  runtime: 3,
  cli: 4,
  "cli.ts": 4,
  "index.ts": 4,
};

test("imports point one way: util, compiler, formats, then the backends and the runtime, then the CLI", () => {
  const root = packagePath("src");
  const stageOf = (file: string) => relative(root, file).split("/")[0] as string;
  const wrong: string[] = [];
  for (const file of sources(root)) {
    const from = stageOf(file);
    for (const target of imports(file)) {
      const to = stageOf(target);
      const [a, b] = [STAGES[from], STAGES[to]];
      assert.ok(a !== undefined && b !== undefined, `${from} or ${to} has no stage`);
      if (from !== to && (b > a || (b === a && a === STAGES.backends))) {
        wrong.push(`${relative(root, file)} → ${relative(root, target)}`);
      }
    }
  }
  assert.deepEqual(wrong, []);
});

// The tfjs backend names what an emitted program imports from `mnistc/runtime`; tsc fails here
// when the runtime stops exporting one of those names.
const exported: { [K in RuntimeExport]: unknown } = runtime;

test("every name an emitted tfjs program imports from the runtime is exported by it", () => {
  for (const [name, value] of Object.entries(exported)) assert.ok(value, name);
});
