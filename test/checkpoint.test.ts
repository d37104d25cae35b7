import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { UserError } from "../src/errors.js";
import { initEngine } from "../src/runtime/tfjs/engine.js";
import {
  type CheckpointContents,
  captureModel,
  loadWeightsInto,
  readCheckpoint,
  readTrainingState,
  resolveCheckpointDir,
  writeCheckpoint,
  writeDirAtomic,
} from "../src/runtime/train/checkpoint.js";

const tmp = mkdtempSync(join(tmpdir(), "mnistc-ckpt-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

function floats(...values: number[]): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}

const contents: CheckpointContents = {
  model: {
    modelTopology: { class_name: "Sequential" },
    weightSpecs: [
      { name: "fc/kernel", shape: [2, 2], dtype: "float32" },
      { name: "fc/bias", shape: [2], dtype: "float32" },
    ],
    weightData: floats(1, 2, 3, 4, 0.5, -0.5),
  },
  optimizer: {
    type: "sgd",
    step: 7,
    slots: [{ name: "fc/bias#momentum", shape: [2], data: Float32Array.from([0.25, 0.125]) }],
  },
  training: {
    spec: "tiny",
    epoch: 2,
    rng: [1, 2, 3, 4],
    options: {
      epochs: 3,
      batchSize: 4,
      lr: 0.1,
      seed: 1,
      data: "mnist-data",
      out: tmp,
      resume: false,
    },
    metrics: {
      spec: "tiny",
      engine: "cpu",
      backend: "tfjs",
      options: {
        epochs: 3,
        batchSize: 4,
        lr: 0.1,
        seed: 1,
        data: "mnist-data",
        out: tmp,
        resume: false,
      },
      trainExamples: 8,
      testExamples: 4,
      epochs: [],
    },
  },
};

describe("checkpoint files", () => {
  test("written in tfjs's format and read back without tfjs", () => {
    const dir = join(tmp, "a", "checkpoint");
    writeCheckpoint(dir, contents);
    assert.deepEqual(readdirSync(dir).sort(), [
      "model.json",
      "optimizer.bin",
      "training.json",
      "weights.bin",
    ]);
    const { modelJson, arrays } = readCheckpoint(dir);
    assert.equal(modelJson.format, "layers-model");
    assert.deepEqual(modelJson.modelTopology, { class_name: "Sequential" });
    assert.deepEqual(modelJson.weightsManifest, [
      { paths: ["weights.bin"], weights: contents.model.weightSpecs },
    ]);
    assert.deepEqual(arrays.get("fc/kernel"), {
      shape: [2, 2],
      data: Float32Array.from([1, 2, 3, 4]),
    });
    assert.deepEqual(arrays.get("fc/bias"), { shape: [2], data: Float32Array.from([0.5, -0.5]) });
    const { state, optimizer } = readTrainingState(dir);
    assert.equal(state.epoch, 2);
    assert.deepEqual(state.rng, [1, 2, 3, 4]);
    assert.deepEqual(optimizer, contents.optimizer);
  });

  test("a rewrite replaces the directory whole and leaves no temporary behind", () => {
    const parent = join(tmp, "b");
    const dir = join(parent, "checkpoint");
    writeCheckpoint(dir, contents);
    writeFileSync(join(dir, "stale.txt"), "from an older run");
    writeCheckpoint(dir, { ...contents, training: { ...contents.training, epoch: 3 } });
    assert.equal(existsSync(join(dir, "stale.txt")), false);
    assert.equal(readTrainingState(dir).state.epoch, 3);
    assert.deepEqual(readdirSync(parent), ["checkpoint"]);
  });

  test("a swap cut off between its renames is found under .old", () => {
    const dir = join(tmp, "c", "checkpoint");
    writeCheckpoint(`${dir}.old`, contents);
    assert.equal(resolveCheckpointDir(dir), `${dir}.old`);
    assert.equal(readCheckpoint(dir).arrays.size, 2);
  });

  test("writeDirAtomic over an existing directory", () => {
    const dir = join(tmp, "d", "x");
    writeDirAtomic(dir, { "a.txt": "1" });
    writeDirAtomic(dir, { "b.txt": "2" });
    assert.deepEqual(readdirSync(dir), ["b.txt"]);
  });

  const bad: [string, (dir: string) => void, RegExp][] = [
    [
      "truncated weights",
      (d) => writeFileSync(join(d, "weights.bin"), floats(1, 2)),
      /weights\.bin: truncated/,
    ],
    [
      "extra bytes",
      (d) => writeFileSync(join(d, "weights.bin"), floats(1, 2, 3, 4, 5, 6, 7)),
      /4 bytes more/,
    ],
    ["no model.json", (d) => rmSync(join(d, "model.json")), /model\.json: no such file/],
    [
      "model.json not JSON",
      (d) => writeFileSync(join(d, "model.json"), "{"),
      /model\.json: not valid JSON/,
    ],
    ["no manifest", (d) => writeFileSync(join(d, "model.json"), "{}"), /no weightsManifest/],
  ];
  for (const [name, spoil, message] of bad) {
    test(`bad checkpoint: ${name}`, () => {
      const dir = join(tmp, "bad", name.replace(/\W+/g, "-"));
      writeCheckpoint(dir, contents);
      spoil(dir);
      assert.throws(
        () => readCheckpoint(dir),
        (err: unknown) => {
          assert.ok(err instanceof UserError);
          assert.match(err.message, message);
          return true;
        },
      );
    });
  }

  test("a missing directory", () => {
    assert.throws(() => readCheckpoint(join(tmp, "none")), /none: no such checkpoint directory/);
  });
});

describe("checkpoints and tfjs models", async () => {
  const { tf } = await initEngine();
  const build = (units = 3) => {
    const model = tf.sequential();
    model.add(tf.layers.dense({ name: "fc1", inputShape: [4], units, activation: "relu" }));
    model.add(tf.layers.batchNormalization({ name: "bn" }));
    model.add(tf.layers.dense({ name: "fc2", units: 2 }));
    return model;
  };

  test("a saved model loads into a fresh build with the same predictions", async () => {
    const a = build();
    // non-default batch-norm statistics, so that buffers must travel too
    tf.tidy(() => {
      a.apply(tf.randomNormal([8, 4], 3, 2, "float32", 5), { training: true });
    });
    const dir = join(tmp, "tf", "checkpoint");
    mkdirSync(dir, { recursive: true });
    writeCheckpoint(dir, { ...contents, model: await captureModel(tf, a) });
    const { arrays } = readCheckpoint(dir);
    assert.deepEqual([...arrays.keys()].sort(), [
      "bn/beta",
      "bn/gamma",
      "bn/moving_mean",
      "bn/moving_variance",
      "fc1/bias",
      "fc1/kernel",
      "fc2/bias",
      "fc2/kernel",
    ]);
    const b = build(); // same names: tfjs suffixes its variables, the original names still match
    loadWeightsInto(tf, b, arrays, dir);
    const x = tf.tensor2d([
      [1, 2, 3, 4],
      [-1, 0.5, 2, 0],
    ]);
    const pa = a.predict(x) as ReturnType<typeof tf.tensor>;
    const pb = b.predict(x) as ReturnType<typeof tf.tensor>;
    assert.deepEqual(await pa.data(), await pb.data());
    for (const t of [x, pa, pb]) t.dispose();
    a.dispose();
    b.dispose();
  });

  test("a checkpoint of another architecture is refused, naming the weight", async () => {
    const a = build(3);
    const dir = join(tmp, "tf2", "checkpoint");
    writeCheckpoint(dir, { ...contents, model: await captureModel(tf, a) });
    const b = build(5);
    assert.throws(
      () => loadWeightsInto(tf, b, readCheckpoint(dir).arrays, dir),
      /weight fc1\/kernel has shape \[4,3\], the model needs \[4,5\]/,
    );
    a.dispose();
    b.dispose();
  });
});
