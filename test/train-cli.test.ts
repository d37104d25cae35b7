// `mnistc train` end to end: compile step4 into <out>/program, train it briefly, and the errors a
// user can cause (one line, exit 1, no stack trace).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { packagePath } from "../src/paths.js";
import type { RunMetrics } from "../src/runtime/train/metrics.js";

const tmp = mkdtempSync(join(tmpdir(), "mnistc-train-cli-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const cli = packagePath("dist", "src", "cli.js");
const step4 = packagePath("specs", "step4.yaml");

function mnistc(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

// step4 (a chain: tf.sequential) and a graph with every op (functional API, grouped and dilated
// convs on the wasm engine's kernels, a residual add).
// [spec name, file, trainable parameters, backend]
const RUNS: [string, string, number, string][] = [
  ["step4", step4, 16478, "onnx"],
  ["every-op", packagePath("test", "fixtures", "specs", "good", "every-op.yaml"), 2422, "onnx"],
  ["every-op", packagePath("test", "fixtures", "specs", "good", "every-op.yaml"), 2422, "tfjs"],
];

for (const [name, spec, trainable, backend] of RUNS)
  test(`mnistc train ${name} --backend ${backend}: runs and writes the run's outputs`, () => {
    const out = join(tmp, `${name}-${backend}`);
    const small = [
      "--train-limit",
      "64",
      "--test-limit",
      "64",
      "--batch-size",
      "32",
      "--epochs",
      "1",
    ];
    const r = mnistc("train", spec, ...small, "--backend", backend, "--out", out, "--json");
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      backend === "tfjs"
        ? /^engine: \w+ \(TensorFlow\.js [\d.]+\)$/m
        : /^engine: onnxruntime \(onnxruntime-node [\d.]+\)$/m,
    );
    assert.match(
      r.stderr,
      new RegExp(`model: ${name}, ${trainable} trainable parameters; 1 epoch of 2 batches of 32`),
    );
    assert.match(r.stderr, /^epoch 1\/1 {2}train loss [\d.]+ acc [\d.]+% {2}test loss/m);
    const metrics = JSON.parse(r.stdout) as RunMetrics;
    assert.equal(metrics.spec, name);
    assert.match(metrics.backend, new RegExp(`^${backend}`));
    assert.ok(metrics.epochs.every((e) => Number.isFinite(e.trainLoss)));
    assert.equal(metrics.options.batchSize, 32);
    assert.equal(metrics.epochs.length, 1);
    for (const file of [
      "program/model.mjs",
      "program/train.mjs",
      "metrics.json",
      "plot.png",
      "checkpoint/weights.safetensors",
      "checkpoint/optimizer.safetensors",
      "checkpoint/training.json",
      "model.onnx",
    ]) {
      assert.ok(existsSync(join(out, file)), `missing ${file}`);
    }

    // The ONNX model left beside the checkpoint computes what training last evaluated.
    const evaluated = mnistc("eval", join(out, "model.onnx"), "--test-limit", "64", "--json");
    assert.equal(evaluated.code, 0, evaluated.stderr);
    const onnx = JSON.parse(evaluated.stdout) as { accuracy: number; loss: number; count: number };
    const last = metrics.epochs.at(-1);
    assert.ok(last);
    assert.equal(onnx.count, 64);
    assert.equal(onnx.accuracy, last.testAccuracy);
    assert.ok(
      Math.abs(onnx.loss - (last.testLoss ?? Number.NaN)) < 1e-4,
      `${onnx.loss} vs ${last.testLoss}`,
    );
  });

test("user mistakes are one line and exit 1", () => {
  const cases: [string[], RegExp][] = [
    [["--resume", "--out", join(tmp, "none")], /none\/checkpoint: no checkpoint to resume from/],
    [["--data", join(tmp, "nowhere"), "--out", join(tmp, "x")], /nowhere: no such folder/],
  ];
  for (const [args, message] of cases) {
    const r = mnistc("train", step4, "--quiet", ...args);
    assert.equal(r.code, 1, args.join(" "));
    assert.match(r.stderr, /^mnistc: error: /);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
});

/** A folder of the four MNIST IDX files: `train` and `test` images of 28x28, labels i mod 10. */
function idxFolder(dir: string, train: number, test: number): string {
  mkdirSync(dir, { recursive: true });
  const write = (name: string, count: number) => {
    const images = Buffer.alloc(16 + count * 784);
    images.writeUInt32BE(0x803, 0);
    images.writeUInt32BE(count, 4);
    images.writeUInt32BE(28, 8);
    images.writeUInt32BE(28, 12);
    for (let i = 16; i < images.length; i++) images[i] = (i * 37) % 256;
    const labels = Buffer.alloc(8 + count);
    labels.writeUInt32BE(0x801, 0);
    labels.writeUInt32BE(count, 4);
    for (let i = 0; i < count; i++) labels[8 + i] = i % 10;
    writeFileSync(join(dir, `${name}-images-idx3-ubyte`), images);
    writeFileSync(join(dir, `${name}-labels-idx1-ubyte`), labels);
  };
  write("train", train);
  write("t10k", test);
  return dir;
}

test("--train-limit/--test-limit past the split's size: all of it is used, and the log says so", () => {
  const data = idxFolder(join(tmp, "idx-small"), 40, 20);
  const out = join(tmp, "limits");
  const limits = ["--train-limit", "70000", "--test-limit", "30", "--epochs", "1"];
  const r = mnistc("train", step4, "--data", data, ...limits, "--out", out, "--json");
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stderr,
    /^note: --train-limit 70000 is more than the 40 training images there are; using all 40$/m,
  );
  assert.match(
    r.stderr,
    /^note: --test-limit 30 is more than the 20 test images there are; using all 20$/m,
  );
  assert.match(r.stderr, /data: mnist, 40 training \/ 20 test images/);
  assert.match(r.stderr, /; 1 epoch of 1 batch of 128;/);
  // Within the split: no note.
  const within = mnistc(
    "train",
    step4,
    "--data",
    data,
    "--train-limit",
    "32",
    "--epochs",
    "1",
    "--out",
    join(tmp, "within"),
  );
  assert.equal(within.code, 0, within.stderr);
  assert.doesNotMatch(within.stderr, /note: --(train|test)-limit/);
});

test("mnistc train --val N: trains on the rest, evaluates the held-out images, never the test set", () => {
  const out = join(tmp, "val");
  const args = ["--train-limit", "96", "--val", "32", "--batch-size", "32", "--epochs", "2"];
  const r = mnistc("train", step4, ...args, "--out", out, "--json");
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stderr,
    /data: mnist, 64 training \/ 32 validation images \(the last 32 training images\)/,
  );
  assert.match(r.stderr, /the test set is not read/);
  assert.match(r.stderr, /2 epochs of 2 batches of 32/);
  assert.match(r.stderr, /^epoch 2\/2 {2}train loss [\d.]+ acc [\d.]+% {2}val loss [\d.]+ acc/m);
  const metrics = JSON.parse(r.stdout) as RunMetrics;
  assert.equal(metrics.testExamples, 0);
  assert.equal(metrics.valExamples, 32);
  assert.equal(metrics.options.val, 32);
  for (const e of metrics.epochs) {
    assert.equal(e.testAccuracy, undefined);
    assert.ok(e.valAccuracy !== undefined && e.valAccuracy >= 0 && e.valAccuracy <= 1);
  }
  // A resumed run keeps the split.
  const more = mnistc("train", step4, "--out", out, "--resume", "--epochs", "3", "--json");
  assert.equal(more.code, 0, more.stderr);
  const resumed = JSON.parse(more.stdout) as RunMetrics;
  assert.equal(resumed.valExamples, 32);
  assert.equal(resumed.epochs.length, 3);
  const bad = mnistc(
    "train",
    step4,
    "--train-limit",
    "96",
    "--val",
    "96",
    "--out",
    join(tmp, "v2"),
  );
  assert.equal(bad.code, 1);
  assert.match(
    bad.stderr,
    /--val 96: the validation split must leave training images \(there are 96\)/,
  );
});
