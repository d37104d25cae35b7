// The graph rewrites `mnistc quantize` makes before calibration so onnxruntime stays in its fast
// int8 kernels (src/backends/onnx/quantize.ts), each on small compiled specs: `taps-by-conv` (the
// shifted-sum lowering's slices and Sum as one 0/1-kernel conv) and `pad-channels` (zero channels
// for MlasConvSym). Each must leave the float model's outputs as they were (within 1e-4), and the
// quantized result must pass the ONNX checker (python3-onnx, skipped without it) and run.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import * as ort from "onnxruntime-node";
import { onnxBackend } from "../src/backends/onnx/index.js";
import {
  activationNames,
  computedConstants,
  foldConvBatchNorms,
  INPUT_CHANNEL_ALIGN,
  MIN_OUTPUT_CHANNELS,
  padChannels,
  quantizeModel,
  quantTargets,
  type Range,
  sumTapsByConv,
  type TensorValue,
  withExtraOutputs,
} from "../src/backends/onnx/quantize.js";
import { compileSpec } from "../src/compiler/index.js";
import { decodeModel, encodeModel, type ModelProto } from "../src/formats/onnx-proto.js";
import { Rng } from "../src/util/rng.js";
import { testWeights } from "./helpers/weights.js";
import { noOnnxChecker, onnxCheckerProblem } from "./onnx-helpers.js";

const dir = mkdtempSync(join(tmpdir(), "mnistc-quantize-rules-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The checker's verdict on `model`, written to the test folder as NAME.onnx. */
function checkerProblem(model: ModelProto, name: string): string | undefined {
  const file = join(dir, `${name}.onnx`);
  writeFileSync(file, encodeModel(model));
  return onnxCheckerProblem(file);
}

const HEAD = `  - conv: { out: 10, kernel: 1 }\n  - gap\n  - flatten\n  - log_softmax\n`;

/** The inference graph of a spec (28x28, one channel), with weights whose batch norms act. */
function graphOf(layers: string): ModelProto {
  const text = `name: t\ninput: { channels: 1, height: 28, width: 28 }\nclasses: 10\nlayers:\n${layers}`;
  const { ir, diagnostics } = compileSpec(text, "t.yaml");
  assert.ok(ir, diagnostics.map((d) => d.message).join("; "));
  const bytes = onnxBackend.emit(ir, { weights: testWeights(ir) }).files[0]?.contents;
  assert.ok(bytes instanceof Uint8Array);
  return decodeModel(bytes, "t.onnx");
}

const N = 3;
const rng = new Rng(11);
const X = Float32Array.from({ length: N * 784 }, () => rng.uniform(-0.5, 2.5));

async function run(model: ModelProto, x = X): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(encodeModel(model));
  const out = await s.run({ input: new ort.Tensor("float32", x, [x.length / 784, 1, 28, 28]) });
  await s.release();
  return out.log_probs?.data as Float32Array;
}

async function assertSameOutputs(a: ModelProto, b: ModelProto, tolerance = 1e-4) {
  const [ya, yb] = [await run(a), await run(b)];
  let worst = 0;
  ya.forEach((v, i) => {
    worst = Math.max(worst, Math.abs(v - (yb[i] ?? Number.NaN)));
  });
  assert.ok(worst < tolerance, `max |difference| ${worst}`);
}

const ops = (m: ModelProto) => (m.graph?.node ?? []).map((n) => n.opType ?? "");

/** The QDQ model of `model`, calibrated (min-max) on X as `mnistc quantize` calibrates. */
async function quantized(model: ModelProto): Promise<ModelProto> {
  const targets = quantTargets(model);
  const names = activationNames(targets);
  const constants = computedConstants(model, targets);
  const s = await ort.InferenceSession.create(
    encodeModel(withExtraOutputs(model, [...names, ...constants])),
  );
  const out = await s.run({ input: new ort.Tensor("float32", X, [N, 1, 28, 28]) });
  await s.release();
  const ranges = new Map<string, Range>();
  const values = new Map<string, TensorValue>();
  for (const name of names) {
    const data = out[name]?.data as Float32Array;
    ranges.set(name, { min: Math.min(...data), max: Math.max(...data) });
  }
  for (const name of constants) {
    const t = out[name] as ort.Tensor;
    values.set(name, { dims: t.dims.map(Number), data: Float32Array.from(t.data as Float32Array) });
  }
  return quantizeModel(model, { targets, ranges, constants: values });
}

describe("taps-by-conv: the shifted sum's slices and Sum as one 0/1-kernel conv", () => {
  const CASES: [string, string, [number, number]][] = [
    [
      "with bias and padding (32 -> 2, 3x3)",
      `  - conv: { out: 32, kernel: 3 }\n  - relu\n  - conv: { out: 2, kernel: 3, padding: [1, 0] }\n  - conv: { out: 8, kernel: 3 }\n${HEAD}`,
      [3, 3],
    ],
    [
      "without bias, after a folded batch norm (40 -> 4, 3x3)",
      `  - conv: { out: 40, kernel: 3 }\n  - relu\n  - batchnorm\n  - conv: { out: 4, kernel: 3, bias: false }\n${HEAD}`,
      [3, 3],
    ],
    [
      "a 2x3 kernel (32 -> 3)",
      `  - conv: { out: 32, kernel: 3 }\n  - relu\n  - conv: { out: 3, kernel: [2, 3] }\n${HEAD}`,
      [2, 3],
    ],
  ];
  for (const [name, layers, kernel] of CASES) {
    test(`${name}: no Slice or Sum left, the same outputs`, async () => {
      const model = graphOf(layers);
      assert.ok(ops(model).includes("Sum"), "the lowering wrote a shifted sum");
      const { model: rewritten, merged } = sumTapsByConv(model);
      assert.equal(merged.length, 1);
      assert.deepEqual(merged[0]?.kernel, kernel);
      assert.ok(!ops(rewritten).some((o) => o === "Slice" || o === "Sum"), ops(rewritten).join());
      await assertSameOutputs(model, rewritten);
    });
  }

  test("a graph without a shifted sum is left as it is", () => {
    const model = graphOf(`  - conv: { out: 8, kernel: 3 }\n  - relu\n${HEAD}`);
    const { model: same, merged } = sumTapsByConv(model);
    assert.deepEqual(merged, []);
    assert.deepEqual(ops(same), ops(model));
  });

  const model = graphOf(CASES[0]?.[1] ?? "");
  const q = quantized(sumTapsByConv(model).model);
  test("quantized: runs within 0.5 of the float log-probabilities, no Slice or Sum", async () => {
    assert.ok(!ops(await q).some((o) => o === "Slice" || o === "Sum"));
    await assertSameOutputs(model, await q, 0.5);
  });
  test("quantized: the ONNX checker passes it", { skip: noOnnxChecker }, async () => {
    assert.equal(checkerProblem(await q, "taps") ?? null, null);
  });
});

describe("pad-channels: zero channels for onnxruntime's fast int8 conv", () => {
  const layers = `  - conv: { out: 40, kernel: 3 }\n  - relu\n  - conv: { out: 4, kernel: 3 }\n  - relu\n  - maxpool: { kernel: 2 }\n  - conv: { out: 8, kernel: 3 }\n${HEAD}`;

  test("the image conv's input to a multiple of 4; convs under 16 outputs read by a conv to 16", async () => {
    const model = sumTapsByConv(graphOf(layers)).model;
    const { model: padded, padded: what } = padChannels(model);
    assert.deepEqual(what, [
      { node: "0", inputs: [1, INPUT_CHANNEL_ALIGN] },
      // The taps conv, through its Relu and MaxPool, and the 8-channel conv before the head's.
      { node: "2", outputs: [4, MIN_OUTPUT_CHANNELS], reader: "5" },
      { node: "5", outputs: [8, MIN_OUTPUT_CHANNELS], reader: "6" },
    ]);
    assert.ok(ops(padded).includes("Pad"));
    await assertSameOutputs(model, padded);
  });

  test("left as they are: a grouped conv and its input, a conv read by a pool", () => {
    const model = graphOf(
      `  - conv: { out: 8, kernel: 3, padding: 1 }\n  - conv: { out: 8, kernel: 3, groups: 8 }\n${HEAD}`,
    );
    const { padded } = padChannels(model);
    // Only the first conv's input (1 channel): its 8 outputs go to a grouped conv, which is not
    // padded, and the head's 10 to a pool.
    assert.deepEqual(padded, [{ node: "0", inputs: [1, INPUT_CHANNEL_ALIGN] }]);
  });

  const model = graphOf(layers);
  const q = quantized(padChannels(sumTapsByConv(model).model).model);
  test("quantized: runs within 0.5 of the float log-probabilities", async () => {
    await assertSameOutputs(model, await q, 0.5);
  });
  test("quantized: the ONNX checker passes it", { skip: noOnnxChecker }, async () => {
    assert.equal(checkerProblem(await q, "padded") ?? null, null);
  });
});

describe("fold-conv-batchnorm: a batch norm right after a conv goes into its weight and bias", () => {
  // Biased and bias-free convs, a grouped one and a padded one: the norm is affine per output
  // channel whatever the conv.
  const layers = `  - conv: { out: 8, kernel: 3, bias: false }\n  - batchnorm\n  - relu\n  - conv: { out: 8, kernel: 3, groups: 8, padding: 1 }\n  - batchnorm\n  - relu\n  - conv: { out: 16, kernel: 1 }\n  - batchnorm\n  - relu\n${HEAD}`;

  test("every such norm is gone, the outputs are the same", async () => {
    const model = graphOf(layers);
    assert.equal(ops(model).filter((o) => o === "BatchNormalization").length, 3, ops(model).join());
    const { model: folded, folds } = foldConvBatchNorms(model);
    assert.deepEqual(
      folds.map((f) => f.into),
      ["0", "3", "6"],
    );
    assert.ok(!ops(folded).includes("BatchNormalization"), ops(folded).join());
    await assertSameOutputs(model, folded);
  });

  test("left as it is: a norm after a ReLU, and a conv whose output something else reads too", () => {
    const model = graphOf(
      `  - conv: { out: 8, kernel: 3 }\n  - relu\n  - batchnorm\n  - c1:\n      - conv: { out: 8, kernel: 3, padding: 1 }\n  - res: { add: c1, layers: [batchnorm] }\n${HEAD}`,
    );
    assert.equal(ops(model).filter((o) => o === "BatchNormalization").length, 2);
    const { folds } = foldConvBatchNorms(model);
    assert.deepEqual(folds, []);
  });

  const model = graphOf(layers);
  const q = quantized(foldConvBatchNorms(model).model);
  test("quantized: runs within 0.5 of the float log-probabilities, no BatchNormalization", async () => {
    assert.ok(!ops(await q).includes("BatchNormalization"));
    await assertSameOutputs(model, await q, 0.5);
  });
  test("quantized: the ONNX checker passes it", { skip: noOnnxChecker }, async () => {
    assert.equal(checkerProblem(await q, "conv-bn") ?? null, null);
  });
});
