// The committed models/step4.onnx (trained in docs/results/step4/) re-emitted from its own weights
// gives the same bytes: it is what the ONNX backend writes today for the seed's net (re-exported
// from its own initializers when the inference rewrites came, its weights unchanged).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { onnxBackend } from "../src/backends/onnx/index.js";
import { compileSpec } from "../src/compiler/index.js";
import type { WeightMap } from "../src/compiler/ir.js";
import { decodeModel, toNumber } from "../src/formats/onnx-proto.js";
import { packagePath } from "../src/paths.js";

test("models/step4.onnx re-emitted from its initializers is byte-identical", () => {
  const file = packagePath("models", "step4.onnx");
  const bytes = new Uint8Array(readFileSync(file));
  const model = decodeModel(bytes, file);
  const weights: WeightMap = new Map();
  for (const t of model.graph?.initializer ?? []) {
    const raw = t.rawData ?? new Uint8Array();
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const data = Float32Array.from({ length: raw.byteLength / 4 }, (_, i) =>
      view.getFloat32(4 * i, true),
    );
    weights.set(t.name ?? "", { shape: (t.dims ?? []).map(toNumber), data });
  }
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
