// The package's entry points load what their users need and no more.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import { packagePath } from "../src/paths.js";

/** The CommonJS modules (onnxruntime-node is one) an ESM entry loads, in a fresh process. */
function loadedBy(entry: string): string[] {
  const url = pathToFileURL(packagePath("dist", "src", "runtime", entry)).href;
  const script = `import(${JSON.stringify(url)}).then(async () => {
    const { createRequire } = await import("node:module");
    console.log(JSON.stringify(Object.keys(createRequire(import.meta.url).cache)));
  });`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as string[];
}

test("mnistc/runtime (what train.mjs imports) does not load onnxruntime-node", () => {
  assert.ok(!loadedBy("index.js").some((m) => m.includes("onnxruntime-node")));
});

test("mnistc/inference does", () => {
  assert.ok(loadedBy("inference/index.js").some((m) => m.includes("onnxruntime-node")));
});
