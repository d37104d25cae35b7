// `npm run bench:infer [-- --repeats N --json]`: images per second of inference on the 10,000 MNIST
// test images with the shipped step4 model (models/step4.onnx), through the same DigitModel that
// `mnistc eval`, `predict` and `serve` use, for each batch size and onnxruntime thread count; and,
// side by side when Debian's python3-torch is installed, PyTorch eager on the seed's own Net with
// the same weights. The best mnistc figure over PyTorch's best is the ratio reported.
import { spawnSync } from "node:child_process";
import { cpus, loadavg } from "node:os";
import { parseArgs } from "node:util";
import { packagePath } from "../src/paths.js";
import { loadMnist } from "../src/runtime/data/mnist.js";
import { DigitModel } from "../src/runtime/inference/onnx-model.js";
import { median } from "./stats.js";

const BATCHES = [64, 128, 256, 500, 1000, 2000];
const THREADS = [1, 2];

interface Row {
  what: string;
  threads: number;
  batch: number;
  imagesPerSecond: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { repeats: { type: "string" }, json: { type: "boolean", default: false } },
  });
  const repeats = Math.max(1, Number(values.repeats ?? 3));
  const file = packagePath("models", "step4.onnx");
  const test = loadMnist({ trainLimit: 0 }).test;
  const rows: Row[] = [];
  for (const threads of THREADS) {
    const model = await DigitModel.load(file, { threads });
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
        what: "mnistc (onnxruntime-node)",
        threads,
        batch,
        imagesPerSecond: Math.round(median(rates)),
      });
    }
    await model.release();
  }
  const script = packagePath("tools", "torch-reference", "bench_infer.py");
  const torch = spawnSync(
    "/usr/bin/python3",
    [script, "--repeats", String(repeats), ...BATCHES.map(String)],
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
  const ours = best("mnistc");
  const theirs = best("PyTorch");
  const result = {
    model: "models/step4.onnx",
    images: test.count,
    loadAverage: Math.round((loadavg()[0] ?? 0) * 100) / 100,
    cores: cpus().length,
    rows,
    bestMnistc: ours,
    bestPyTorch: theirs || null,
    ratio: theirs ? Math.round((ours / theirs) * 100) / 100 : null,
  };
  if (values.json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  const lines = [
    `step4 inference, ${test.count} test images, median of ${repeats} passes (load average ${result.loadAverage} on ${result.cores} cores)`,
    `${"".padEnd(28)} ${"threads".padStart(7)} ${"batch".padStart(6)} ${"images/s".padStart(9)}`,
    ...rows.map(
      (r) =>
        `${r.what.padEnd(28)} ${String(r.threads).padStart(7)} ${String(r.batch).padStart(6)} ${String(r.imagesPerSecond).padStart(9)}`,
    ),
    theirs
      ? `best: mnistc ${ours} images/s, PyTorch eager ${theirs}: ${result.ratio}x`
      : `best: mnistc ${ours} images/s (PyTorch not installed: /usr/bin/python3 cannot import torch)`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

await main();
