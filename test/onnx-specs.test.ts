// Every shipped spec through the ONNX backend: golden dumps, determinism, ORT at batches 1/2/64.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import * as ort from "onnxruntime-node";
import { describeModel, formatDescription } from "../src/backends/onnx/dump.js";
import { onnxBackend } from "../src/backends/onnx/index.js";
import { compileSpec } from "../src/compiler/index.js";
import { torchInitWeights } from "../src/compiler/init.js";
import type { ModelIR } from "../src/compiler/ir.js";
import { decodeModel } from "../src/formats/onnx-proto.js";
import { packagePath } from "../src/paths.js";
import { Rng } from "../src/util/rng.js";
import { expectGolden } from "./helpers/golden.js";

const specDir = packagePath("specs");
const specs = readdirSync(specDir)
  .filter((f) => f.endsWith(".yaml"))
  .sort();

function compile(file: string): ModelIR {
  const path = join(specDir, file);
  const { ir, diagnostics } = compileSpec(readFileSync(path, "utf8"), path);
  assert.ok(ir, `${file}: ${diagnostics.map((d) => d.message).join("; ")}`);
  return ir;
}

function emit(ir: ModelIR): Uint8Array {
  const { files, diagnostics } = onnxBackend.emit(ir, {});
  assert.deepEqual(diagnostics, []);
  const bytes = files[0]?.contents;
  assert.ok(bytes instanceof Uint8Array);
  return bytes;
}

test("there are shipped specs", () => assert.ok(specs.length >= 4, specs.join(", ")));

for (const file of specs) {
  describe(`onnx: ${file}`, () => {
    const ir = compile(file);
    const bytes = emit(ir);

    test("golden dump (mnistc inspect)", () => {
      const description = describeModel(decodeModel(bytes, file));
      assert.equal(description.parameters.trainable, ir.totals.trainable);
      assert.equal(description.parameters.buffers, ir.totals.buffers);
      expectGolden(`onnx/${ir.name}.txt`, formatDescription(description));
    });

    test("byte-deterministic", () => {
      assert.deepEqual(emit(compile(file)), bytes);
    });

    test("trained weights are embedded as given", () => {
      const weights = torchInitWeights(ir, 99);
      const result = onnxBackend.emit(ir, { weights });
      const model = decodeModel(result.files[0]?.contents as Uint8Array, file);
      for (const t of model.graph?.initializer ?? []) {
        const raw = t.rawData ?? new Uint8Array();
        const copy = new Float32Array(Uint8Array.from(raw).buffer);
        assert.deepEqual(copy, weights.get(t.name ?? "")?.data, t.name ?? "");
      }
    });

    test("onnxruntime loads it; batches 1, 2, 64 give [N, classes] log-probabilities", async () => {
      const session = await ort.InferenceSession.create(bytes);
      const { channels: c, height: h, width: w } = ir.input;
      const rng = new Rng(11);
      const x = Float32Array.from({ length: 64 * c * h * w }, () => rng.uniform(-0.5, 2.8));
      let full: Float32Array | undefined;
      for (const n of [64, 1, 2]) {
        const input = new ort.Tensor("float32", x.subarray(0, n * c * h * w), [n, c, h, w]);
        const out = (await session.run({ input })).log_probs;
        assert.ok(out);
        assert.deepEqual(out.dims, [n, ir.classes]);
        const data = out.data as Float32Array;
        for (let i = 0; i < n; i++) {
          const row = data.subarray(i * ir.classes, (i + 1) * ir.classes);
          const total = row.reduce((s, v) => s + Math.exp(v), 0);
          assert.ok(Math.abs(total - 1) < 1e-5, `row ${i} sums to ${total}`);
        }
        full ??= data;
        for (let i = 0; i < n * ir.classes; i++) {
          assert.ok(Math.abs((data[i] ?? 0) - (full[i] ?? 0)) < 1e-5, `batch ${n} differs at ${i}`);
        }
      }
      await session.release();
    });
  });
}
