// An ONNX model emitted without weights starts where `train` starts: PyTorch's default init drawn
// from the spec's `train.seed`, under the parameter names, in PyTorch layout. (That the tfjs model
// starts at the same `torchInitWeights` is checked in test/tfjs-backend-run.test.ts.)
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { onnxBackend } from "../src/backends/onnx/index.js";
import { compileSpec } from "../src/compiler/index.js";
import { torchInitWeights } from "../src/compiler/init.js";
import { readMetadata } from "../src/formats/onnx-metadata.js";
import { decodeModel } from "../src/formats/onnx-proto.js";
import { packagePath } from "../src/paths.js";

test("step4 emitted without weights: its initializers are torchInitWeights at the spec's seed", () => {
  const path = packagePath("specs", "step4.yaml");
  const { ir } = compileSpec(readFileSync(path, "utf8"), path);
  assert.ok(ir);
  const { files, diagnostics } = onnxBackend.emit(ir, {});
  assert.deepEqual(diagnostics, []);
  const bytes = files[0]?.contents;
  assert.ok(bytes instanceof Uint8Array);
  const model = decodeModel(bytes, "step4.onnx");
  assert.equal(readMetadata(model).weights, `seeded-init seed=${ir.train.seed}`);
  const emitted = new Map(
    (model.graph?.initializer ?? []).map((t) => [
      t.name ?? "",
      {
        shape: (t.dims ?? []).map(Number),
        data: new Float32Array(Uint8Array.from(t.rawData ?? []).buffer),
      },
    ]),
  );
  assert.deepEqual(emitted, torchInitWeights(ir, ir.train.seed));
});
