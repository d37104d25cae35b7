import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ort from "onnxruntime-node";
import { describeModel, formatDescription } from "../src/backends/onnx/dump.js";
import { onnxBackend } from "../src/backends/onnx/index.js";
import { torchInitWeights } from "../src/compiler/init.js";
import type { ModelIR, WeightMap } from "../src/compiler/ir.js";
import { readMetadata } from "../src/formats/onnx-metadata.js";
import { decodeModel, floatValues, type ModelProto } from "../src/formats/onnx-proto.js";
import { Rng } from "../src/util/rng.js";
import { expectGolden } from "./helpers/golden.js";
import { linearIR, tinyForward, tinyIR, tinyWeights } from "./onnx-helpers.js";

function emitBytes(ir: ModelIR, weights?: WeightMap): Uint8Array {
  const { files, diagnostics } = onnxBackend.emit(ir, weights ? { weights } : {});
  assert.deepEqual(diagnostics, []);
  const [file] = files;
  assert.ok(file && file.path === "" && file.contents instanceof Uint8Array);
  return file.contents;
}

async function run(bytes: Uint8Array, x: Float32Array, dims: number[]) {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const out = (await session.run({ input: new ort.Tensor("float32", x, dims) })).log_probs;
    assert.ok(out);
    return { dims: [...out.dims], data: out.data as Float32Array };
  } finally {
    await session.release();
  }
}

function randomImages(n: number, size: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n * size }, () => rng.uniform(-2, 2));
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number) {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs((actual[i] ?? 0) - (expected[i] ?? 0));
    assert.ok(d <= tol, `index ${i}: ${actual[i]} vs ${expected[i]} (|diff| ${d} > ${tol})`);
  }
}

describe("onnx backend: numbers", () => {
  test("the tiny net on two hand-checked images", async () => {
    // Image 1 is 1..9. Conv channel 0 sums each 2x2 window: 12 16 24 28; BN (mean 1, var 4,
    // gamma 2) makes that ≈ 11 15 23 27. Channel 1 (top-left − bottom-right + 0.5 = −3.5, BN
    // bias −1) is cut by ReLU. Linear rows pick feature 0, feature 1 (+1), features 4..7 (−1):
    // logits 11, 16, −1.
    // Image 2 is a single 1 in the middle. Channel 0: 1 everywhere → BN 0. Channel 1: −0.5 0.5
    // 0.5 1.5 → BN −1.5 −0.5 −0.5 0.5 → ReLU 0 0 0 0.5. Logits 0, 1, 0.5 − 1.
    const k0 = 2 / Math.sqrt(4 + 1e-5);
    const k1 = 1 / Math.sqrt(1 + 1e-5);
    const logits = [
      [11 * k0, 15 * k0 + 1, -1],
      [0, 1, 1.5 * k1 - 1 - 1],
    ];
    const expected = logits.flatMap((row) => {
      const lse = Math.log(row.reduce((s, l) => s + Math.exp(l), 0));
      return row.map((l) => l - lse);
    });
    const x = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
    const out = await run(emitBytes(tinyIR(), tinyWeights()), x, [2, 1, 3, 3]);
    assert.deepEqual(out.dims, [2, 3]);
    assertClose(out.data, expected, 1e-5);
  });

  test("ORT equals a plain JS forward pass for random weights and 64 random images", async () => {
    const weights = torchInitWeights(tinyIR(), 123);
    // Non-trivial BN statistics, so BN is really exercised.
    weights.set("conv1.1.running_mean", { shape: [2], data: Float32Array.from([0.1, -0.2]) });
    weights.set("conv1.1.running_var", { shape: [2], data: Float32Array.from([0.5, 2]) });
    const x = randomImages(64, 9, 5);
    const out = await run(emitBytes(tinyIR(), weights), x, [64, 1, 3, 3]);
    assertClose(out.data, tinyForward(weights, x, 64), 1e-5);
  });

  for (const ir of [tinyIR(), linearIR()]) {
    test(`${ir.name}: batches of 1, 2 and 64 give [N, ${ir.classes}] rows of log-probabilities`, async () => {
      const bytes = emitBytes(ir);
      const { channels: c, height: h, width: w } = ir.input;
      const x = randomImages(64, c * h * w, 9);
      const full = await run(bytes, x, [64, c, h, w]);
      for (const n of [1, 2, 64]) {
        const out = n === 64 ? full : await run(bytes, x.subarray(0, n * c * h * w), [n, c, h, w]);
        assert.deepEqual(out.dims, [n, ir.classes]);
        for (let i = 0; i < n; i++) {
          const row = Array.from(out.data.subarray(i * ir.classes, (i + 1) * ir.classes));
          assert.ok(
            row.every((v) => v <= 1e-6),
            `row ${i} has a positive log-probability`,
          );
          const total = row.reduce((s, v) => s + Math.exp(v), 0);
          assert.ok(Math.abs(total - 1) < 1e-5, `row ${i} sums to ${total}`);
        }
        // A batch changes nothing about each image's answer.
        assertClose(out.data, full.data.subarray(0, n * ir.classes), 1e-6);
      }
    });
  }
});

describe("onnx backend: the graph", () => {
  const ir = tinyIR();
  const model: ModelProto = decodeModel(emitBytes(ir, tinyWeights()), "tiny.onnx");
  const graph = model.graph ?? {};

  test("IR version 8, opset 13, producer mnistc", () => {
    assert.equal(Number(model.irVersion), 8);
    assert.deepEqual(
      model.opsetImport.map((o) => [o.domain, Number(o.version)]),
      [["", 13]],
    );
    assert.equal(model.producerName, "mnistc");
  });

  test("nodes: IR names, dropout omitted, no squeeze, output log_probs", () => {
    assert.deepEqual(
      graph.node?.map((n) => [n.name, n.opType]),
      [
        ["conv1.0", "Conv"],
        ["conv1.1", "BatchNormalization"],
        ["conv1.2", "Relu"],
        ["1", "Flatten"],
        ["3", "Gemm"],
        ["4", "LogSoftmax"],
      ],
    );
    assert.deepEqual(graph.node?.at(-1)?.output, ["log_probs"]);
    assert.deepEqual(
      graph.input?.map((v) => v.name),
      ["input"],
    );
    assert.deepEqual(
      graph.output?.map((v) => v.name),
      ["log_probs"],
    );
  });

  test("initializers: the IR's parameter names and shapes, float32 little-endian raw data", () => {
    const weights = tinyWeights();
    const params = ir.nodes.flatMap((n) => n.params);
    assert.deepEqual(
      graph.initializer?.map((t) => t.name),
      params.map((p) => p.name),
    );
    for (const t of graph.initializer ?? []) {
      const w = weights.get(t.name ?? "");
      assert.ok(w && t.rawData);
      assert.deepEqual(t.dims?.map(Number), w.shape);
      assert.equal(t.dataType, 1);
      assert.deepEqual(Array.from(floatValues(t)), Array.from(w.data));
    }
  });

  test("metadata: spec, normalization, classes, input shape, parameter counts", () => {
    assert.deepEqual(readMetadata(model), {
      spec: "tiny",
      dataset: "mnist",
      preprocess: "digit",
      mean: [0.5],
      std: [0.25],
      classes: 3,
      trainableParams: 41,
      weights: "trained",
    });
    const props = Object.fromEntries(model.metadataProps.map((p) => [p.key, p.value]));
    assert.equal(props["mnistc.input_shape"], "[1,3,3]");
    assert.equal(props["mnistc.params.buffers"], "4");
  });

  test("golden text dump", () => {
    expectGolden("onnx/tiny.txt", formatDescription(describeModel(model)));
  });
});

describe("onnx backend: determinism and weights", () => {
  test("the same IR and weights give the same bytes", () => {
    assert.deepEqual(emitBytes(tinyIR(), tinyWeights()), emitBytes(tinyIR(), tinyWeights()));
    assert.deepEqual(emitBytes(linearIR()), emitBytes(linearIR()));
  });

  test("without weights: seeded PyTorch init (bounds 1/√fan_in, BN 1 0 0 1), seed changes it", () => {
    const w = torchInitWeights(tinyIR(3));
    const bound = (fanIn: number) => 1 / Math.sqrt(fanIn);
    const within = (name: string, b: number) => {
      const data = w.get(name)?.data ?? new Float32Array();
      assert.ok(data.length > 0 && data.every((v) => Math.abs(v) <= b), name);
      assert.ok(new Set(data).size === data.length, `${name} values are distinct draws`);
    };
    within("conv1.0.weight", bound(4));
    within("conv1.0.bias", bound(4));
    within("3.weight", bound(8));
    within("3.bias", bound(8));
    assert.deepEqual(Array.from(w.get("conv1.1.weight")?.data ?? []), [1, 1]);
    assert.deepEqual(Array.from(w.get("conv1.1.bias")?.data ?? []), [0, 0]);
    assert.deepEqual(Array.from(w.get("conv1.1.running_mean")?.data ?? []), [0, 0]);
    assert.deepEqual(Array.from(w.get("conv1.1.running_var")?.data ?? []), [1, 1]);
    assert.notDeepEqual(emitBytes(tinyIR(3)), emitBytes(tinyIR(4)));
    const meta = readMetadata(decodeModel(emitBytes(tinyIR(3)), "x"));
    assert.equal(meta.weights, "seeded-init seed=3");
  });

  test("weights that do not fit the IR are diagnostics naming the weight and both shapes", () => {
    const missing = tinyWeights();
    missing.delete("3.bias");
    const wrong = tinyWeights();
    wrong.set("3.weight", { shape: [8, 3], data: new Float32Array(24) });
    const cases: [WeightMap, string, string][] = [
      [missing, "E0801", "layer 3 (linear): weight 3.bias is missing"],
      [
        wrong,
        "E0802",
        "layer 3 (linear): weight 3.weight has shape [8, 3] but the spec needs [3, 8]",
      ],
    ];
    for (const [weights, code, message] of cases) {
      const { files, diagnostics } = onnxBackend.emit(tinyIR(), { weights });
      assert.deepEqual(files, []);
      assert.deepEqual(
        diagnostics.map((d) => [d.code, d.severity, d.message]),
        [[code, "error", message]],
      );
    }
  });
});
