// The committed models/step4.onnx (trained in docs/results/step4/) re-emitted from its own weights
// gives the same bytes: it is what the ONNX backend writes today for the seed's net (re-exported
// from its own initializers when the inference rewrites came, its weights unchanged).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { onnxBackend } from "../src/backends/onnx/index.js";
import { compileSpec } from "../src/compiler/index.js";
import { packagePath } from "../src/paths.js";
import { onnxWeights } from "./helpers/weights.js";

test("models/step4.onnx re-emitted from its initializers is byte-identical", () => {
  const file = packagePath("models", "step4.onnx");
  const bytes = new Uint8Array(readFileSync(file));
  const weights = onnxWeights(file);
  const path = packagePath("specs", "step4.yaml");
  const { ir } = compileSpec(readFileSync(path, "utf8"), "specs/step4.yaml");
  assert.ok(ir);
  const { files, diagnostics } = onnxBackend.emit(ir, { weights });
  assert.deepEqual(diagnostics, []);
  const again = files[0]?.contents;
  assert.ok(again instanceof Uint8Array);
  assert.equal(again.length, bytes.length);
  assert.ok(Buffer.from(again).equals(Buffer.from(bytes)), "same bytes");
});
