// The ONNX backend's seeded init repeats the training runtime's (which needs TensorFlow.js): the
// same seed must give the same initial network in both backends.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { seededInit } from "../src/backends/onnx/init.js";
import { compileSpec } from "../src/compiler/index.js";
import { packagePath } from "../src/paths.js";
import { torchInitWeights } from "../src/runtime/init.js";

test("seededInit equals the runtime's torchInitWeights for every parameter of step4", () => {
  const path = packagePath("specs", "step4.yaml");
  const { ir } = compileSpec(readFileSync(path, "utf8"), path);
  assert.ok(ir);
  for (const seed of [ir.train.seed, 12345]) {
    const ours = seededInit(ir, seed);
    const theirs = torchInitWeights(ir, seed);
    assert.deepEqual([...ours.keys()], [...theirs.keys()]);
    for (const [name, w] of ours) assert.deepEqual(w, theirs.get(name), `${name} (seed ${seed})`);
  }
});
