// `npm run bench:infer [-- --repeats N --json]`: images per second of inference on the 10,000 MNIST
// test images with the shipped step4 model (models/step4.onnx), through the same DigitModel that
// `mnistc eval`, `predict` and `serve` use, for each batch size and onnxruntime thread count; and,
// side by side when Debian's python3-torch is installed, PyTorch eager on the seed's own Net with
// the same weights. The best mnistc figure over PyTorch's best is the ratio reported. Beside them,
// the engine's ceiling on this machine: onnxruntime's own 1024³ MatMul in multiply-adds a second,
// and what that rate would allow for step4's multiply-adds per image. The int8 rows are the same
// model quantized as `mnistc quantize` does (static QDQ, min-max on 1,000 training images).
// PyTorch eager is 5 to 10 times slower than mnistc here, so to finish in about 3 minutes its rows
// time the first TORCH_IMAGES (2,000) test images, one timed pass after a warm-up pass
// (`--torch-repeats` to change that); mnistc's rows time all 10,000, median of `--repeats` passes
// (default 3).
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-node";
import { quantizeBytes } from "../src/cli/quantize.js";
import { compileSpec } from "../src/compiler/index.js";
import {
  encodeModel,
  floatValue,
  ONNX_IR_VERSION,
  ONNX_OPSET,
  onnx,
} from "../src/formats/onnx-proto.js";
import { packagePath } from "../src/paths.js";
import { loadMnist } from "../src/runtime/data/mnist.js";
import { DigitModel } from "../src/runtime/inference/onnx-model.js";
import { readRegularFile } from "../src/util/files.js";
import { median } from "./stats.js";

const BATCHES = [64, 128, 256, 500, 1000, 2000];
const THREADS = [1, 2];
/** PyTorch's rows: this many test images (the largest batch, so each row runs whole batches of
 * its size), and this many timed passes unless --torch-repeats. */
const TORCH_IMAGES = Math.max(...BATCHES);
const TORCH_REPEATS = 1;

interface Row {
  what: string;
  threads: number;
  batch: number;
  imagesPerSecond: number;
}

const GEMM = 1024;

/** Best and median multiply-adds per second of a GEMM × GEMM MatMul on onnxruntime. */
async function gemmRate(
  threads: number,
  repeats: number,
): Promise<{ best: number; median: number }> {
  const model = onnx.ModelProto.create({
    irVersion: ONNX_IR_VERSION,
    opsetImport: [{ domain: "", version: ONNX_OPSET }],
    graph: {
      name: "gemm",
      node: [{ opType: "MatMul", input: ["a", "b"], output: ["c"] }],
      input: [floatValue("a", [GEMM, GEMM]), floatValue("b", [GEMM, GEMM])],
      output: [floatValue("c", [GEMM, GEMM])],
    },
  });
  const session = await ort.InferenceSession.create(encodeModel(model), {
    intraOpNumThreads: threads,
  });
  const a = new ort.Tensor(
    "float32",
    Float32Array.from({ length: GEMM * GEMM }, (_, i) => (i % 7) / 7),
    [GEMM, GEMM],
  );
  const rates: number[] = [];
  for (let r = 0; r < 3 * repeats + 2; r++) {
    const started = performance.now();
    await session.run({ a, b: a });
    if (r >= 2) rates.push(GEMM ** 3 / ((performance.now() - started) / 1000));
  }
  await session.release();
  return { best: Math.max(...rates), median: median(rates) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      repeats: { type: "string" },
      "torch-repeats": { type: "string" },
      json: { type: "boolean", default: false },
    },
  });
  const repeats = Math.max(1, Number(values.repeats ?? 3));
  const torchRepeats = Math.max(1, Number(values["torch-repeats"] ?? TORCH_REPEATS));
  const file = packagePath("models", "step4.onnx");
  const test = loadMnist({ trainLimit: 0 }).test;
  const rows: Row[] = [];
  const fp32 = readRegularFile(file, { maxBytes: 1 << 26, what: "an ONNX file" });
  const int8 = (await quantizeBytes(fp32, file, { calibrate: 1000, method: "minmax" })).bytes;
  const variants = [
    { what: "mnistc fp32 (onnxruntime-node)", bytes: fp32 },
    { what: "mnistc int8 (onnxruntime-node)", bytes: int8 },
  ];
  for (const threads of THREADS) {
    for (const variant of variants) {
      const model = await DigitModel.fromBytes(variant.bytes, variant.what, { threads });
      const images = model.normalize(test.images, test.count);
      const pixels = images.length / test.count;
      for (const batch of BATCHES) {
        const rates: number[] = [];
        for (let r = 0; r < repeats + 1; r++) {
          const started = performance.now();
          for (let start = 0; start < test.count; start += batch) {
            const n = Math.min(batch, test.count - start);
            await model.predictBatch(images.subarray(start * pixels, (start + n) * pixels), n);
          }
          // The first pass warms the session up.
          if (r > 0) rates.push((test.count * 1000) / (performance.now() - started));
        }
        rows.push({
          what: variant.what,
          threads,
          batch,
          imagesPerSecond: Math.round(median(rates)),
        });
      }
      await model.release();
    }
  }
  const script = packagePath("tools", "torch-reference", "bench_infer.py");
  const torch = spawnSync(
    "/usr/bin/python3",
    [
      script,
      "--repeats",
      String(torchRepeats),
      "--images",
      String(TORCH_IMAGES),
      ...BATCHES.map(String),
    ],
    {
      encoding: "utf8",
    },
  );
  if (torch.status === 0) {
    for (const line of torch.stdout.trim().split("\n")) rows.push(JSON.parse(line) as Row);
  }
  const best = (prefix: string) =>
    rows
      .filter((r) => r.what.startsWith(prefix))
      .reduce((m, r) => Math.max(m, r.imagesPerSecond), 0);
  const ours = best("mnistc fp32");
  const ours8 = best("mnistc int8");
  const theirs = best("PyTorch");
  const compiled = compileSpec(
    readFileSync(packagePath("specs", "step4.yaml"), "utf8"),
    "specs/step4.yaml",
  );
  if (!compiled.ir) throw new Error("specs/step4.yaml does not compile");
  const macsPerImage = compiled.ir.totals.macs;
  const ceiling = [];
  for (const threads of THREADS) {
    const rate = await gemmRate(threads, repeats);
    ceiling.push({
      threads,
      gemmMacsPerSecond: Math.round(rate.median),
      bestGemmMacsPerSecond: Math.round(rate.best),
      imagesPerSecondAtGemmRate: Math.round(rate.median / macsPerImage),
    });
  }
  const result = {
    model: "models/step4.onnx",
    images: test.count,
    torch: { images: TORCH_IMAGES, repeats: torchRepeats },
    loadAverage: Math.round((loadavg()[0] ?? 0) * 100) / 100,
    cores: cpus().length,
    rows,
    bestMnistc: ours,
    bestMnistcInt8: ours8,
    int8OverFp32: Math.round((ours8 / ours) * 100) / 100,
    bestPyTorch: theirs || null,
    ratio: theirs ? Math.round((ours / theirs) * 100) / 100 : null,
    macsPerImage,
    mnistcMacsPerSecond: ours * macsPerImage,
    ceiling,
  };
  if (values.json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  const lines = [
    `step4 inference, ${test.count} test images, median of ${repeats} passes (PyTorch: the first ${TORCH_IMAGES}, ${torchRepeats} timed pass${torchRepeats === 1 ? "" : "es"}; load average ${result.loadAverage} on ${result.cores} cores)`,
    `${"".padEnd(32)} ${"threads".padStart(7)} ${"batch".padStart(6)} ${"images/s".padStart(9)}`,
    ...rows.map(
      (r) =>
        `${r.what.padEnd(32)} ${String(r.threads).padStart(7)} ${String(r.batch).padStart(6)} ${String(r.imagesPerSecond).padStart(9)}`,
    ),
    theirs
      ? `best: mnistc ${ours} images/s, PyTorch eager ${theirs}: ${result.ratio}x; mnistc int8 ${ours8} images/s, ${result.int8OverFp32}x fp32`
      : `best: mnistc ${ours} images/s, int8 ${ours8} (${result.int8OverFp32}x; PyTorch not installed: /usr/bin/python3 cannot import torch)`,
    `the engine's ceiling: step4 is ${(macsPerImage / 1e6).toFixed(2)} M multiply-adds an image, so mnistc's best is ${(result.mnistcMacsPerSecond / 1e9).toFixed(1)} G a second;`,
    ...ceiling.map(
      (c) =>
        `  onnxruntime's ${GEMM}³ MatMul, ${c.threads} thread${c.threads === 1 ? "" : "s"}: ${(c.gemmMacsPerSecond / 1e9).toFixed(1)} G a second (median; best ${(c.bestGemmMacsPerSecond / 1e9).toFixed(1)}), ${c.imagesPerSecondAtGemmRate} images/s if all of step4 ran at that rate`,
    ),
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

await main();
