// `npm run bench:quantize [-- --repeats N --calibrate N --method minmax|percentile --json]`: the
// shipped step4 model (models/step4.onnx) in fp32 beside its int8 QDQ form (`mnistc quantize`,
// made here in-process the same way), side by side in one run: accuracy on all 10,000 MNIST test
// images, and images per second through the DigitModel `mnistc eval` uses, at eval's batch size,
// on 1 and 2 onnxruntime threads. Passes of the models alternate so a load change on the machine
// hits both. Also the int8 model with QDQ on the convolutions' inputs only (no Q after them), to
// show what onnxruntime's QLinearConv fusion is worth.
import { cpus, loadavg } from "node:os";
import { parseArgs } from "node:util";
import { QUANT_METHODS, type QuantMethod, quantizeBytes } from "../src/cli/quantize.js";
import { packagePath } from "../src/paths.js";
import { loadMnist } from "../src/runtime/data/mnist.js";
import { EVAL_BATCH, MetricsAccumulator } from "../src/runtime/eval/evaluate.js";
import { DigitModel } from "../src/runtime/inference/onnx-model.js";
import { readRegularFile } from "../src/util/files.js";
import { median } from "./stats.js";

const THREADS = [1, 2];

interface Row {
  what: string;
  threads: number;
  imagesPerSecond: number;
  accuracy: number;
  correct: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      repeats: { type: "string" },
      calibrate: { type: "string" },
      method: { type: "string" },
      json: { type: "boolean", default: false },
    },
  });
  const repeats = Math.max(1, Number(values.repeats ?? 5));
  const calibrate = Math.max(1, Number(values.calibrate ?? 1000));
  const method = (values.method ?? "minmax") as QuantMethod;
  if (!QUANT_METHODS.includes(method)) throw new Error(`--method: ${QUANT_METHODS.join(" | ")}`);
  const file = packagePath("models", "step4.onnx");
  const fp32 = readRegularFile(file, { maxBytes: 1 << 26, what: "an ONNX file" });
  const started = performance.now();
  const int8 = await quantizeBytes(fp32, file, { calibrate, method });
  const quantizeSeconds = (performance.now() - started) / 1000;
  const inputsOnly = await quantizeBytes(fp32, file, { calibrate, method, inputsOnly: true });
  const variants = [
    { what: "fp32", bytes: fp32 },
    { what: "int8 (QDQ)", bytes: int8.bytes },
    { what: "int8 (QDQ on inputs only)", bytes: inputsOnly.bytes },
  ];
  const test = loadMnist({ trainLimit: 0 }).test;
  const rows: Row[] = [];
  for (const threads of THREADS) {
    const models = await Promise.all(
      variants.map((v) => DigitModel.fromBytes(v.bytes, v.what, { threads })),
    );
    const images = models[0]?.normalize(test.images, test.count) as Float32Array;
    const pixels = images.length / test.count;
    const rates: number[][] = models.map(() => []);
    const correct: number[] = models.map(() => 0);
    // The first pass warms each session up and gives the accuracy; the rest are timed.
    for (let r = 0; r < repeats + 1; r++) {
      for (const [m, model] of models.entries()) {
        const metrics = new MetricsAccumulator(model.info.classes);
        const t0 = performance.now();
        for (let start = 0; start < test.count; start += EVAL_BATCH) {
          const n = Math.min(EVAL_BATCH, test.count - start);
          const logProbs = await model.predictBatch(
            images.subarray(start * pixels, (start + n) * pixels),
            n,
          );
          if (r === 0) metrics.add(logProbs, test.labels.subarray(start, start + n));
        }
        if (r > 0) rates[m]?.push((test.count * 1000) / (performance.now() - t0));
        else correct[m] = metrics.result().correct;
      }
    }
    for (const [m, v] of variants.entries()) {
      rows.push({
        what: v.what,
        threads,
        imagesPerSecond: Math.round(median(rates[m] ?? [])),
        accuracy: (correct[m] ?? 0) / test.count,
        correct: correct[m] ?? 0,
      });
    }
    await Promise.all(models.map((m) => m.release()));
  }
  const speedup = THREADS.map((threads) => {
    const of = (what: string) =>
      rows.find((r) => r.threads === threads && r.what === what)?.imagesPerSecond ?? 0;
    return { threads, int8OverFp32: Math.round((of("int8 (QDQ)") / of("fp32")) * 100) / 100 };
  });
  const result = {
    model: "models/step4.onnx",
    images: test.count,
    batch: EVAL_BATCH,
    calibration: { method, images: int8.images, dataset: int8.dataset, seconds: quantizeSeconds },
    quantized: int8.nodes,
    loadAverage: Math.round((loadavg()[0] ?? 0) * 100) / 100,
    cores: cpus().length,
    rows,
    speedup,
  };
  if (values.json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  const lines = [
    `step4 fp32 vs int8, ${test.count} MNIST test images, batches of ${EVAL_BATCH}, median of ${repeats} passes (load average ${result.loadAverage} on ${result.cores} cores)`,
    `int8: ${int8.nodes.length} Conv nodes quantized, ranges by ${method} on ${int8.images} training images (${quantizeSeconds.toFixed(1)} s)`,
    `${"".padEnd(26)} ${"threads".padStart(7)} ${"accuracy".padStart(9)} ${"images/s".padStart(9)}`,
    ...rows.map(
      (r) =>
        `${r.what.padEnd(26)} ${String(r.threads).padStart(7)} ${`${(100 * r.accuracy).toFixed(2)}%`.padStart(9)} ${String(r.imagesPerSecond).padStart(9)}`,
    ),
    ...speedup.map(
      (s) => `int8 / fp32, ${s.threads} thread${s.threads === 1 ? "" : "s"}: ${s.int8OverFp32}x`,
    ),
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

await main();
