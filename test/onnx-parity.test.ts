// Parity: for every shipped spec and a spec that uses every op, the tfjs program the tfjs backend emits and the ONNX graph this
// backend emits, given the same weights, give the same log-probabilities (within 1e-4) and the same
// digit on real MNIST images, at batches of 1, 2 and 64.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { after, describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import type * as tfNs from "@tensorflow/tfjs";
import * as ort from "onnxruntime-node";
import { onnxBackend } from "../src/backends/onnx/index.js";
import { tfjsBackend } from "../src/backends/tfjs/index.js";
import { runtimeImportFor } from "../src/backends/tfjs/runtime-import.js";
import { tfjsWeightsFromTorch } from "../src/backends/tfjs/weights.js";
import { compileSpec } from "../src/compiler/index.js";
import type { ModelIR, WeightMap } from "../src/compiler/ir.js";
import { packagePath } from "../src/paths.js";
import { loadMnist } from "../src/runtime/data/mnist.js";
import { initEngine } from "../src/runtime/tfjs/engine.js";
import { loadWeightsInto } from "../src/runtime/tfjs/trainer.js";
import { testWeights } from "./helpers/weights.js";

const TOLERANCE = 1e-4;
const specDir = packagePath("specs");
const specs = [
  ...readdirSync(specDir)
    .filter((f) => f.endsWith(".yaml"))
    .sort()
    .map((f) => join(specDir, f)),
  packagePath("test", "fixtures", "specs", "good", "every-op.yaml"),
];
const outDir = mkdtempSync(join(tmpdir(), "mnistc-parity-"));
after(() => rmSync(outDir, { recursive: true, force: true }));
const images = loadMnist({ trainLimit: 0, testLimit: 64 }).test;

function compile(path: string): ModelIR {
  const { ir } = compileSpec(readFileSync(path, "utf8"), path);
  assert.ok(ir, path);
  return ir;
}

/** MNIST test images normalized as the spec says (one channel: NCHW and NHWC are the same). */
function inputs(ir: ModelIR, n: number): Float32Array {
  const [mean = 0] = ir.data.mean ?? [];
  const [std = 1] = ir.data.std ?? [];
  return Float32Array.from(images.images.subarray(0, n * 784), (v) => (v / 255 - mean) / std);
}

async function tfjsModel(
  tf: typeof tfNs,
  ir: ModelIR,
  weights: WeightMap,
): Promise<tfNs.LayersModel> {
  const dir = join(outDir, ir.name);
  const { files, diagnostics } = tfjsBackend.emit(ir, { runtimeImport: runtimeImportFor(dir) });
  assert.deepEqual(
    diagnostics.filter((d) => d.severity === "error"),
    [],
  );
  mkdirSync(dir, { recursive: true });
  for (const f of files) writeFileSync(join(dir, f.path), f.contents);
  const module = (await import(pathToFileURL(join(dir, "model.mjs")).href)) as {
    buildModel(tf: typeof tfNs, options: { seed: number }): tfNs.LayersModel;
  };
  const model = module.buildModel(tf, { seed: ir.train.seed });
  const mapped = tfjsWeightsFromTorch(ir, weights);
  assert.ok(!("error" in mapped), "error" in mapped ? mapped.error : "");
  loadWeightsInto(tf, model, mapped.weights, ir.name);
  return model;
}

function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++)
    if ((row[i] ?? -Infinity) > (row[best] ?? -Infinity)) best = i;
  return best;
}

for (const file of specs) {
  describe(`parity tfjs vs ONNX: ${basename(file)}`, () => {
    test("same log-probabilities (1e-4) and digits at batches 1, 2, 64", async () => {
      const { tf, name: engine } = await initEngine();
      const ir = compile(file);
      const weights = testWeights(ir);
      const model = await tfjsModel(tf, ir, weights);
      const bytes = onnxBackend.emit(ir, { weights }).files[0]?.contents;
      assert.ok(bytes instanceof Uint8Array);
      const session = await ort.InferenceSession.create(bytes);
      const { channels: c, height: h, width: w } = ir.input;
      assert.equal(c, 1, "the test feeds one-channel MNIST images");
      const k = ir.classes;
      for (const n of [1, 2, 64]) {
        const x = inputs(ir, n);
        const onnxOut = (await session.run({ input: new ort.Tensor("float32", x, [n, c, h, w]) }))
          .log_probs;
        assert.ok(onnxOut);
        const ours = onnxOut.data as Float32Array;
        const theirs = tf.tidy(() =>
          (model.predict(tf.tensor(x, [n, h, w, c])) as tfNs.Tensor).dataSync(),
        ) as Float32Array;
        assert.equal(theirs.length, n * k);
        let worst = 0;
        for (let i = 0; i < n * k; i++)
          worst = Math.max(worst, Math.abs((ours[i] ?? 0) - (theirs[i] ?? 0)));
        assert.ok(worst <= TOLERANCE, `${ir.name} batch ${n} (${engine}): max |diff| ${worst}`);
        for (let i = 0; i < n; i++) {
          const a = ours.subarray(i * k, (i + 1) * k);
          const b = theirs.subarray(i * k, (i + 1) * k);
          // Only a clear winner must agree: two classes within the tolerance may swap.
          const sorted = [...a].sort((p, q) => q - p);
          if ((sorted[0] ?? 0) - (sorted[1] ?? 0) > 2 * TOLERANCE) {
            assert.equal(argmax(a), argmax(b), `${ir.name} batch ${n} image ${i}`);
          }
        }
      }
      await session.release();
      model.dispose();
    });
  });
}
