import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { onnxBackend } from "../src/backends/onnx/index.js";
import type { ModelIR, WeightMap } from "../src/compiler/ir.js";
import { UserError } from "../src/errors.js";
import { DigitModel } from "../src/runtime/inference/onnx-model.js";
import { foreignModel, linearIR, tinyForward, tinyIR, tinyWeights } from "./onnx-helpers.js";

const dir = mkdtempSync(join(tmpdir(), "mnistc-onnx-model-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, bytes: Uint8Array | string) => {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
};

function emit(ir: ModelIR, weights?: WeightMap): Uint8Array {
  const contents = onnxBackend.emit(ir, weights ? { weights } : {}).files[0]?.contents;
  assert.ok(contents instanceof Uint8Array);
  return contents;
}

const tinyFile = file("tiny.onnx", emit(tinyIR(), tinyWeights()));
const models: DigitModel[] = [];
after(async () => {
  for (const m of models) await m.release();
});
async function load(path: string) {
  const m = await DigitModel.load(path);
  models.push(m);
  return m;
}

describe("DigitModel", () => {
  test("info comes from the graph and mnistc's metadata", async () => {
    const m = await load(tinyFile);
    assert.deepEqual(m.info, {
      name: "tiny",
      file: tinyFile,
      inputShape: [1, 3, 3],
      classes: 3,
      mean: [0.5],
      std: [0.25],
      params: 41,
      weights: "trained",
      dataset: "mnist",
      // The IR names no classes and mnist's ten do not fit its three: the class numbers.
      classNames: ["0", "1", "2"],
      // 1x3x3 is not MNIST's shape, but the model says it is an mnist model.
      preprocess: "digit",
    });
  });

  test("normalize: x' = (x/255 - mean) / std", async () => {
    const m = await load(tinyFile);
    const out = m.normalize(Uint8Array.from([0, 255, 51, 0, 0, 0, 0, 0, 0]), 1);
    assert.deepEqual(
      Array.from(out.subarray(0, 3), (v) => Math.round(v * 1e5) / 1e5),
      [-2, 2, -1.2],
    );
  });

  test("predictBatch: log-probabilities of the right size; concurrent calls agree", async () => {
    const m = await load(tinyFile);
    const x = Float32Array.from({ length: 5 * 9 }, (_, i) => (i % 7) - 3);
    const expected = tinyForward(tinyWeights(), x, 5);
    const results = await Promise.all([1, 2, 3, 4].map(() => m.predictBatch(x, 5)));
    for (const r of results) {
      assert.equal(r.length, 15);
      for (const [i, v] of r.entries()) assert.ok(Math.abs(v - (expected[i] ?? 0)) < 1e-5);
    }
    await assert.rejects(m.predictBatch(x, 4), /45 values is not 4 images of 9/);
  });

  test("a graph with a fixed batch of 1 still takes any number of images", async () => {
    const m = await load(file("batch1.onnx", foreignModel([1, 1, 2, 2], [1, 4])));
    const x = Float32Array.from([0, 0, 0, 0, 1, 2, 3, 4, 5, 5, 5, 5]);
    const out = await m.predictBatch(x, 3);
    // LogSoftmax of each image's 4 values (the model flattens 1x2x2).
    const expected = Array.from(x, (v, i) => {
      const row = x.subarray(i - (i % 4), i - (i % 4) + 4);
      return v - Math.log(row.reduce((s, r) => s + Math.exp(r), 0));
    });
    for (const [i, v] of out.entries()) assert.ok(Math.abs(v - (expected[i] ?? 0)) < 1e-5, `${i}`);
  });

  test("a model mnistc did not write: graph name, mean 0, std 1", async () => {
    const m = await load(file("foreign.onnx", foreignModel(["N", 1, 2, 2], ["N", 4])));
    assert.equal(m.info.name, "foreign");
    assert.deepEqual([m.info.mean, m.info.std, m.info.classes], [[0], [1], 4]);
    assert.equal(m.info.weights, undefined);
  });

  const errors: [string, () => string, RegExp][] = [
    ["missing file", () => join(dir, "nope.onnx"), /nope\.onnx: no such file/],
    ["a directory", () => dir, /is a directory, not an ONNX file/],
    [
      "a text file",
      () => file("text.onnx", "hello, I am not a model\n"),
      /text\.onnx is not an ONNX model/,
    ],
    ["an empty file", () => file("empty.onnx", ""), /empty\.onnx is not an ONNX model/],
    [
      "a vector input",
      () => file("vector.onnx", foreignModel(["N", 10], ["N", 10])),
      /vector\.onnx: not an image model: expected one float32 input \[N, C, H, W\] with known C, H, W; got float32 \[N, 10\]/,
    ],
    [
      "an unknown channel count",
      () => file("symbolic.onnx", foreignModel(["N", "C", 28, 28], ["N", "K"])),
      /symbolic\.onnx: not an image model: .* got float32 \[N, C, 28, 28\]/,
    ],
    [
      "an image output",
      () => file("noclasses.onnx", foreignModel(["N", 1, 2, 2], ["N", 1, 2, 2], false)),
      /noclasses\.onnx: expected an output \[N, classes\]; got \[N, 1, 2, 2\]/,
    ],
  ];
  for (const [name, path, pattern] of errors) {
    test(`error: ${name}`, async () => {
      await assert.rejects(DigitModel.load(path()), (err: unknown) => {
        assert.ok(err instanceof UserError, `not a UserError: ${err}`);
        assert.match(err.message, pattern);
        return true;
      });
    });
  }

  test("an MNIST-sized model reads 1x28x28", async () => {
    const m = await load(file("linear.onnx", emit(linearIR())));
    assert.deepEqual(m.info.inputShape, [1, 28, 28]);
    assert.equal(m.info.classes, 10);
  });
});
