// Checkpoints: the backend-neutral format (weights.safetensors, optimizer.safetensors,
// training.json; PyTorch's names and layouts), written atomically and read back whole; checkpoints
// of mnistc before it (format 1: tfjs's layers model) read and converted; the tfjs edge.
import assert from "node:assert/strict";
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { tfjsWeightTable } from "../src/backends/tfjs/index.js";
import { tfjsWeightsFromTorch, torchWeightsFromTfjs } from "../src/backends/tfjs/weights.js";
import { compileSpec } from "../src/compiler/index.js";
import type { ModelIR, WeightMap } from "../src/compiler/ir.js";
import { UserError } from "../src/errors.js";
import { encodeSafetensors, parseSafetensors } from "../src/formats/safetensors.js";
import { packagePath } from "../src/paths.js";
import { initEngine } from "../src/runtime/tfjs/engine.js";
import {
  loadTorchWeightsInto,
  loadWeightsInto,
  torchWeightsOf,
} from "../src/runtime/tfjs/trainer.js";
import {
  checkpointFormat,
  readCheckpoint,
  readTfjsCheckpoint,
  resolveCheckpointDir,
  writeCheckpoint,
  writeDirAtomic,
} from "../src/runtime/train/checkpoint.js";
import type { TrainSpec } from "../src/runtime/train/loop.js";
import type { TrainingState } from "../src/runtime/train/state.js";

const tmp = mkdtempSync(join(tmpdir(), "mnistc-ckpt-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const w = (shape: number[], ...values: number[]) => ({ shape, data: Float32Array.from(values) });

const options = {
  epochs: 3,
  batchSize: 4,
  lr: 0.1,
  seed: 1,
  data: "mnist-data",
  out: tmp,
  resume: false,
};
const state: TrainingState = {
  spec: "tiny",
  epoch: 2,
  rng: [1, 2, 3, 4],
  weights: new Map([
    ["fc.weight", w([2, 2], 1, 2, 3, 4)],
    ["fc.bias", w([2], 0.5, -0.5)],
    ["bn.running_mean", w([2], 0.125, -1)],
  ]),
  optimizer: {
    type: "sgd",
    step: 7,
    slots: new Map([["fc.bias.momentum_buffer", w([2], 0.25, 0.125)]]),
  },
  dropout: { drop: [5, 6, 7, 8] },
  options,
  metrics: {
    spec: "tiny",
    engine: "onnxruntime",
    backend: "onnx",
    options,
    trainExamples: 8,
    testExamples: 4,
    epochs: [],
  },
};

describe("checkpoint files", () => {
  test("written as safetensors and JSON, read back whole", () => {
    const dir = join(tmp, "a", "checkpoint");
    writeCheckpoint(dir, state);
    assert.deepEqual(readdirSync(dir).sort(), [
      "optimizer.safetensors",
      "training.json",
      "weights.safetensors",
    ]);
    assert.equal(checkpointFormat(dir), "mnistc");
    assert.deepEqual(readCheckpoint(dir, {}), state);
    // weights.safetensors is a state_dict file as PyTorch's safetensors writes one.
    const weights = parseSafetensors(readFileSync(join(dir, "weights.safetensors")));
    assert.deepEqual(weights.metadata, { format: "pt", "mnistc.spec": "tiny" });
    assert.deepEqual(
      weights.tensors.map((t) => [t.name, t.dtype, t.shape]),
      [
        ["fc.weight", "F32", [2, 2]],
        ["fc.bias", "F32", [2]],
        ["bn.running_mean", "F32", [2]],
      ],
    );
    const training = JSON.parse(readFileSync(join(dir, "training.json"), "utf8"));
    assert.equal(training.version, 2);
    assert.deepEqual(training.optimizer, { type: "sgd", step: 7 });
    assert.deepEqual(training.dropout, { drop: [5, 6, 7, 8] });
  });

  test("a rewrite replaces the directory whole and leaves no temporary behind", () => {
    const parent = join(tmp, "b");
    const dir = join(parent, "checkpoint");
    writeCheckpoint(dir, state);
    writeFileSync(join(dir, "stale.txt"), "from an older run");
    writeCheckpoint(dir, { ...state, epoch: 3 });
    assert.equal(existsSync(join(dir, "stale.txt")), false);
    assert.equal(readCheckpoint(dir, {}).epoch, 3);
    assert.deepEqual(readdirSync(parent), ["checkpoint"]);
  });

  test("a swap cut off between its renames is found under .old", () => {
    const dir = join(tmp, "c", "checkpoint");
    writeCheckpoint(`${dir}.old`, state);
    assert.equal(resolveCheckpointDir(dir), `${dir}.old`);
    assert.equal(readCheckpoint(dir, {}).weights.size, 3);
  });

  test("writeDirAtomic over an existing directory", () => {
    const dir = join(tmp, "d", "x");
    writeDirAtomic(dir, { "a.txt": "1" });
    writeDirAtomic(dir, { "b.txt": "2" });
    assert.deepEqual(readdirSync(dir), ["b.txt"]);
  });

  const slots = (entries: [string, { shape: number[]; data: Float32Array }][]) =>
    encodeSafetensors(entries.map(([name, t]) => ({ name, ...t })));
  const bad: [string, (dir: string) => void, RegExp][] = [
    [
      "truncated weights",
      (d) => {
        const bytes = readFileSync(join(d, "weights.safetensors"));
        writeFileSync(join(d, "weights.safetensors"), bytes.subarray(0, bytes.length - 4));
      },
      /weights\.safetensors: tensor bn\.running_mean: data_offsets \[24, 32\] lie outside/,
    ],
    [
      "extra bytes",
      (d) => {
        const bytes = readFileSync(join(d, "weights.safetensors"));
        writeFileSync(join(d, "weights.safetensors"), Buffer.concat([bytes, Buffer.alloc(4)]));
      },
      /weights\.safetensors: 4 bytes after the last tensor belong to none/,
    ],
    ["no training.json", (d) => rmSync(join(d, "training.json")), /training\.json: no such file/],
    [
      "training.json not JSON",
      (d) => writeFileSync(join(d, "training.json"), "{"),
      /training\.json: not valid JSON/,
    ],
    [
      "no optimizer state",
      (d) => rmSync(join(d, "optimizer.safetensors")),
      /optimizer\.safetensors: no such file/,
    ],
    [
      "a slot of no parameter",
      (d) =>
        writeFileSync(
          join(d, "optimizer.safetensors"),
          slots([["gone.weight.momentum_buffer", w([2], 1, 2)]]),
        ),
      /optimizer state gone\.weight\.momentum_buffer is for no parameter of the model \(sgd keeps <parameter>\.momentum_buffer\)/,
    ],
    [
      "a slot of another optimizer",
      (d) =>
        writeFileSync(join(d, "optimizer.safetensors"), slots([["fc.bias.exp_avg", w([2], 1, 2)]])),
      /optimizer state fc\.bias\.exp_avg is for no parameter/,
    ],
    [
      "a slot of another shape",
      (d) =>
        writeFileSync(
          join(d, "optimizer.safetensors"),
          slots([["fc.bias.momentum_buffer", w([3], 1, 2, 3)]]),
        ),
      /optimizer state fc\.bias\.momentum_buffer has shape \[3\], its parameter \[2\]/,
    ],
  ];
  for (const [name, spoil, message] of bad) {
    test(`bad checkpoint: ${name}`, () => {
      const dir = join(tmp, "bad", name.replace(/\W+/g, "-"));
      writeCheckpoint(dir, state);
      spoil(dir);
      assert.throws(
        () => readCheckpoint(dir, {}),
        (err: unknown) => {
          assert.ok(err instanceof UserError);
          assert.match(err.message, message);
          return true;
        },
      );
    });
  }

  test("a missing directory", () => {
    assert.throws(() => checkpointFormat(join(tmp, "none")), /none: no such checkpoint directory/);
    assert.throws(() => readCheckpoint(join(tmp, "none"), {}), /training\.json: no such file/);
  });
});

const fixture = packagePath("test", "fixtures", "checkpoints", "every-op-v1");
const everyOp: ModelIR = (() => {
  const path = packagePath("test", "fixtures", "checkpoints", "every-op-v1.yaml");
  const { ir } = compileSpec(readFileSync(path, "utf8"), path);
  assert.ok(ir);
  return ir;
})();

describe("checkpoints of mnistc before (format 1: tfjs's layers model)", () => {
  test("are read whole, in PyTorch's names and layouts", () => {
    assert.equal(checkpointFormat(fixture), "tfjs");
    const read = readCheckpoint(fixture, tfjsWeightTable(everyOp));
    const params = everyOp.nodes.flatMap((n) => n.params);
    assert.deepEqual(
      [...read.weights.keys()],
      params.map((p) => p.name),
    );
    // The weights as `export` has always read them (backends/tfjs/weights.ts).
    const exported = torchWeightsFromTfjs(everyOp, readTfjsCheckpoint(fixture).arrays);
    assert.ok("weights" in exported);
    assert.deepEqual(read.weights, exported.weights);
    // One momentum buffer per trainable parameter, of its shape; mapped back to tfjs's layout by
    // the backend's own table, the bytes of optimizer.bin.
    const trainable = params.filter((p) => p.trainable);
    assert.deepEqual(
      [...read.optimizer.slots.keys()].sort(),
      trainable.map((p) => `${p.name}.momentum_buffer`).sort(),
    );
    const asWeights: WeightMap = new Map(
      params.map((p) => [
        p.name,
        read.optimizer.slots.get(`${p.name}.momentum_buffer`) ?? read.weights.get(p.name),
      ]) as [string, { shape: number[]; data: Float32Array }][],
    );
    const back = tfjsWeightsFromTorch(everyOp, asWeights);
    assert.ok("weights" in back);
    const training = JSON.parse(readFileSync(join(fixture, "training.json"), "utf8"));
    const bin = readFileSync(join(fixture, "optimizer.bin"));
    let offset = 0;
    for (const slot of training.optimizer.slots as { name: string; shape: number[] }[]) {
      const size = slot.shape.reduce((a, b) => a * b, 1);
      const expected = new Float32Array(
        bin.buffer.slice(bin.byteOffset + offset, bin.byteOffset + offset + 4 * size),
      );
      offset += 4 * size;
      const tfjsName = slot.name.split("#")[0] as string;
      assert.deepEqual(back.weights.get(tfjsName)?.data, expected, slot.name);
    }
    assert.deepEqual(read.optimizer.type, "sgd");
    assert.equal(read.optimizer.step, training.optimizer.step);
    assert.deepEqual(read.dropout, training.layerRng);
    assert.deepEqual([read.spec, read.epoch, read.rng], ["every-op", 1, training.rng]);
  });

  test("converting needs the model's own tfjs weights: another model's are refused", () => {
    const path = packagePath("specs", "step1.yaml");
    const other = compileSpec(readFileSync(path, "utf8"), path).ir;
    assert.ok(other);
    assert.throws(
      () => readCheckpoint(fixture, tfjsWeightTable(other)),
      /every-op-v1: no weight conv1\.0\/kernel; the checkpoint is of another model/,
    );
  });

  const bad: [string, (dir: string) => void, RegExp][] = [
    [
      "truncated weights",
      (d) => writeFileSync(join(d, "weights.bin"), Buffer.alloc(8)),
      /weights\.bin: truncated/,
    ],
    [
      "extra bytes",
      (d) =>
        writeFileSync(
          join(d, "weights.bin"),
          Buffer.concat([readFileSync(join(d, "weights.bin")), Buffer.alloc(4)]),
        ),
      /4 bytes more/,
    ],
    ["no model.json", (d) => rmSync(join(d, "model.json")), /model\.json: no such file/],
    [
      "model.json not JSON",
      (d) => writeFileSync(join(d, "model.json"), "{"),
      /model\.json: not valid JSON/,
    ],
    ["no manifest", (d) => writeFileSync(join(d, "model.json"), "{}"), /no weightsManifest/],
    [
      "truncated optimizer state",
      (d) => writeFileSync(join(d, "optimizer.bin"), Buffer.alloc(8)),
      /optimizer\.bin: truncated/,
    ],
  ];
  for (const [name, spoil, message] of bad) {
    test(`bad checkpoint: ${name}`, () => {
      const dir = join(tmp, "bad-v1", name.replace(/\W+/g, "-"));
      cpSync(fixture, dir, { recursive: true });
      spoil(dir);
      const read = () =>
        name === "no model.json"
          ? readTfjsCheckpoint(dir)
          : readCheckpoint(dir, tfjsWeightTable(everyOp));
      assert.throws(read, (err: unknown) => {
        assert.ok(err instanceof UserError);
        assert.match(err.message, message);
        return true;
      });
    });
  }
});

describe("the tfjs edge: PyTorch's layouts in, PyTorch's layouts out", async () => {
  const { tf } = await initEngine();
  const build = (units = 3) => {
    const model = tf.sequential();
    model.add(tf.layers.dense({ name: "fc1", inputShape: [4], units, activation: "relu" }));
    model.add(tf.layers.batchNormalization({ name: "bn" }));
    model.add(tf.layers.dense({ name: "fc2", units: 2 }));
    return model;
  };
  const spec = {
    name: "dense",
    tfjsWeights: {
      "fc1.weight": ["fc1/kernel", "oi"],
      "fc1.bias": ["fc1/bias", "same"],
      "bn.weight": ["bn/gamma", "same"],
      "bn.bias": ["bn/beta", "same"],
      "bn.running_mean": ["bn/moving_mean", "same"],
      "bn.running_var": ["bn/moving_variance", "same"],
      "fc2.weight": ["fc2/kernel", "oi"],
      "fc2.bias": ["fc2/bias", "same"],
    },
  } as unknown as TrainSpec;

  test("a model's weights through a checkpoint into a fresh build: the same predictions", async () => {
    const a = build();
    // non-default batch-norm statistics, so that buffers must travel too
    tf.tidy(() => {
      a.apply(tf.randomNormal([8, 4], 3, 2, "float32", 5), { training: true });
    });
    const weights = torchWeightsOf(a, spec);
    // fc1's kernel is [in 4, out 3] in tfjs, [out 3, in 4] in PyTorch.
    assert.deepEqual(weights.get("fc1.weight")?.shape, [3, 4]);
    const kernel = a.getLayer("fc1").getWeights()[0]?.arraySync() as number[][];
    assert.equal(weights.get("fc1.weight")?.data[1 * 4 + 2], Math.fround(kernel[2]?.[1] ?? NaN));
    const dir = join(tmp, "tf", "checkpoint");
    writeCheckpoint(dir, {
      ...state,
      weights,
      optimizer: { ...state.optimizer, slots: new Map() },
    });
    const b = build(); // same names: tfjs suffixes its variables, the original names still match
    loadTorchWeightsInto(tf, b, spec, readCheckpoint(dir, {}).weights, dir);
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

  test("weights of another architecture are refused, naming the weight", () => {
    const a = build(3);
    const b = build(5);
    assert.throws(
      () => loadTorchWeightsInto(tf, b, spec, torchWeightsOf(a, spec), "ckpt"),
      /ckpt: weight fc1\.weight has shape \[3,4\], the model needs \[5,4\]/,
    );
    assert.throws(
      () => loadWeightsInto(tf, b, new Map(), "ckpt"),
      /ckpt: no weight fc1\/kernel; the checkpoint is of another model/,
    );
    a.dispose();
    b.dispose();
  });
});
