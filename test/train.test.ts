import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { Command } from "commander";
import { PNG } from "pngjs";
import { UserError } from "../src/errors.js";
import { packagePath } from "../src/paths.js";
import { loadMnist } from "../src/runtime/data/mnist.js";
import { initEngine } from "../src/runtime/tfjs/engine.js";
import { LogSoftmax } from "../src/runtime/tfjs/layers/log-softmax.js";
import { evaluate, loadTorchWeightsInto, tfjsTrainer } from "../src/runtime/tfjs/trainer.js";
import { readCheckpoint } from "../src/runtime/train/checkpoint.js";
import { type BuildModel, runTraining, type TrainSpec } from "../src/runtime/train/loop.js";
import type { RunMetrics } from "../src/runtime/train/metrics.js";
import { addTrainOptions, optionParsers } from "../src/runtime/train/options.js";
import { PLOT_HEIGHT, PLOT_WIDTH } from "../src/runtime/train/plot.js";

const { tf, name: engine } = await initEngine();
const tmp = mkdtempSync(join(tmpdir(), "mnistc-train-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const spec: TrainSpec = {
  name: "tiny",
  input: { channels: 1, height: 28, width: 28 },
  classes: 10,
  train: {
    epochs: 2,
    batchSize: 32,
    seed: 1,
    optimizer: { type: "sgd", lr: 0.05, momentum: 0.9, weightDecay: 0.0001, nesterov: false },
    scheduler: { type: "step", stepSize: 1, gamma: 0.5 },
    augment: { rotate: 7, translate: 0, scale: [1, 1] },
    labelSmoothing: 0,
  },
  data: { dataset: "mnist", mean: [0.1307], std: [0.3081], preprocess: "digit" },
  // PyTorch's names for tfjs's layers below (conv kernels HWIO ↔ OIHW, dense [in, out] ↔ [out, in]).
  tfjsWeights: {
    "conv1.0.weight": ["conv1.0/kernel", "oihw"],
    "conv1.0.bias": ["conv1.0/bias", "same"],
    "conv1.2.weight": ["conv1.2/gamma", "same"],
    "conv1.2.bias": ["conv1.2/beta", "same"],
    "conv1.2.running_mean": ["conv1.2/moving_mean", "same"],
    "conv1.2.running_var": ["conv1.2/moving_variance", "same"],
    "fc.weight": ["fc/kernel", "oi"],
    "fc.bias": ["fc/bias", "same"],
  },
};

/** A small conv net with batch norm (training vs inference mode matters) and log-softmax. */
const buildModel: BuildModel = (tf, { seed }) => {
  const init = () => tf.initializers.glorotUniform({ seed });
  const model = tf.sequential({ name: "tiny" });
  model.add(
    tf.layers.conv2d({
      name: "conv1.0",
      inputShape: [28, 28, 1],
      filters: 4,
      kernelSize: 3,
      activation: "relu",
      kernelInitializer: init(),
    }),
  );
  model.add(tf.layers.batchNormalization({ name: "conv1.2", momentum: 0.9, epsilon: 1e-5 }));
  model.add(tf.layers.maxPooling2d({ poolSize: 2 }));
  model.add(tf.layers.flatten());
  model.add(tf.layers.dense({ name: "fc", units: 10, kernelInitializer: init() }));
  model.add(new LogSoftmax({ name: "out" }));
  return model;
};

const data = loadMnist({ trainLimit: 320, testLimit: 200 });

async function train(out: string, options: Parameters<typeof runTraining>[0]["options"] = {}) {
  const tensors: number[] = [];
  const metrics = await runTraining({
    engine,
    spec,
    stepper: tfjsTrainer(tf, buildModel),
    data,
    options: { quiet: true, out, ...options },
    onEpoch: () => tensors.push(tf.memory().numTensors),
  });
  return { metrics, tensors };
}

describe("training a tiny net on 320 MNIST images", async () => {
  const outA = join(tmp, "a");
  const full = await train(outA);

  test("loss falls and the net learns", () => {
    const [e1, e2] = full.metrics.epochs;
    assert.ok(e1 && e2);
    assert.ok(e2.trainLoss < e1.trainLoss, `train loss ${e1.trainLoss} -> ${e2.trainLoss}`);
    assert.ok((e2.testAccuracy ?? 0) > 0.5, `test accuracy ${e2.testAccuracy}`);
    assert.deepEqual(
      full.metrics.epochs.map((e) => [e.epoch, e.lr]),
      [
        [1, 0.05],
        [2, 0.025],
      ],
    );
  });

  test("memory stays flat over epochs", () => {
    assert.equal(full.tensors.length, 2);
    assert.equal(full.tensors[0], full.tensors[1], `tensors after each epoch: ${full.tensors}`);
  });

  test("metrics.json, plot.png and the checkpoint are written", () => {
    const written = JSON.parse(readFileSync(join(outA, "metrics.json"), "utf8")) as RunMetrics;
    assert.equal(written.spec, "tiny");
    assert.equal(written.engine, engine);
    assert.equal(written.options.batchSize, 32);
    assert.equal(written.trainExamples, 320);
    assert.deepEqual(written.epochs, full.metrics.epochs);
    const png = PNG.sync.read(readFileSync(join(outA, "plot.png")));
    assert.deepEqual([png.width, png.height], [PLOT_WIDTH, PLOT_HEIGHT]);
    for (const f of ["weights.safetensors", "optimizer.safetensors", "training.json"]) {
      assert.ok(existsSync(join(outA, "checkpoint", f)), `checkpoint/${f}`);
    }
  });

  test("the checkpoint reloads to the same test loss and accuracy", async () => {
    const model = buildModel(tf, { seed: 99 });
    const dir = join(outA, "checkpoint");
    loadTorchWeightsInto(tf, model, spec, readCheckpoint(dir, spec.tfjsWeights).weights, dir);
    const result = await evaluate(tf, model, data.test, spec, { mean: [0.1307], std: [0.3081] });
    model.dispose();
    const last = full.metrics.epochs[1];
    assert.ok(last);
    assert.ok(
      Math.abs(result.loss - (last.testLoss ?? Number.NaN)) < 1e-6,
      `${result.loss} vs ${last.testLoss}`,
    );
    assert.equal(result.accuracy, last.testAccuracy);
  });

  test("--resume continues at the next epoch, as if never interrupted", async () => {
    const outB = join(tmp, "b");
    const first = await train(outB, { epochs: 1 });
    assert.deepEqual(
      first.metrics.epochs.map((e) => e.epoch),
      [1],
    );
    const resumed = await train(outB, { epochs: 2, resume: true });
    assert.deepEqual(
      resumed.metrics.epochs.map((e) => e.epoch),
      [1, 2],
    );
    const [a, b] = [full.metrics.epochs[1], resumed.metrics.epochs[1]];
    assert.ok(a && b);
    for (const key of ["trainLoss", "trainAccuracy", "testLoss", "testAccuracy", "lr"] as const) {
      assert.ok(
        Math.abs((a[key] ?? Number.NaN) - (b[key] ?? Number.NaN)) < 1e-6,
        `${key}: ${a[key]} vs ${b[key]}`,
      );
    }
  });

  test("--resume without a checkpoint, or of another spec, is a user error", async () => {
    await assert.rejects(train(join(tmp, "empty"), { resume: true }), (err: unknown) => {
      assert.ok(err instanceof UserError);
      assert.match(err.message, /empty\/checkpoint: no checkpoint to resume from/);
      return true;
    });
    await assert.rejects(
      runTraining({
        engine,
        spec: { ...spec, name: "other" },
        stepper: tfjsTrainer(tf, buildModel),
        data,
        options: { quiet: true, out: outA, resume: true },
      }),
      /the checkpoint is of spec "tiny", not "other"/,
    );
  });
});

describe("training options", () => {
  const parse = (argv: string[]) =>
    addTrainOptions(
      new Command().exitOverride().configureOutput({ writeErr: () => {} }),
      optionParsers,
    )
      .parse(argv, { from: "user" })
      .opts();

  test("flags parse to numbers; absent flags stay undefined", () => {
    assert.deepEqual(
      parse([
        "--epochs",
        "3",
        "--batch-size",
        "64",
        "--lr",
        "0.02",
        "--seed",
        "0",
        "--train-limit",
        "500",
        "--resume",
        "--json",
      ]),
      { epochs: 3, batchSize: 64, lr: 0.02, seed: 0, trainLimit: 500, resume: true, json: true },
    );
  });

  test("bad values are refused", () => {
    for (const argv of [
      ["--epochs", "0"],
      ["--batch-size", "1.5"],
      ["--lr", "-1"],
      ["--seed", "x"],
      ["--seed", ""],
      ["--seed", " "],
    ]) {
      assert.throws(() => parse(argv), /expected/, argv.join(" "));
    }
  });

  test('mnistc train refuses what train.mjs refuses: one set of parsers (`--seed ""`)', () => {
    const r = spawnSync(
      process.execPath,
      [packagePath("dist", "src", "cli.js"), "train", "specs/step4.yaml", "--seed", ""],
      { encoding: "utf8", cwd: packagePath() },
    );
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /--seed <n>' argument '' is invalid\. expected an integer 0-4,294,967,295/,
    );
  });
});
