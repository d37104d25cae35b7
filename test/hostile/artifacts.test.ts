// Hostile class 2: artifacts stay inside their folder. A checkpoint may reference only plain file
// names in its own folder (no `..`, no absolute paths, no symlinks); its dtypes, shapes and
// training.json fields are checked; names that become paths are validated by `check`; a model's
// metadata is validated before use.
import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { exportCheckpointToOnnx } from "../../src/cli/export-onnx.js";
import { compileSpec } from "../../src/compiler/index.js";
import { torchInitWeights } from "../../src/compiler/init.js";
import { nameProblem } from "../../src/compiler/names.js";
import { UserError } from "../../src/errors.js";
import { onnx } from "../../src/formats/onnx-proto.js";
import { DigitModel } from "../../src/runtime/inference/onnx-model.js";
import { checkTrainingRecord, readTfjsCheckpoint } from "../../src/runtime/train/checkpoint.js";
import { writeTfjsCheckpoint } from "../onnx-helpers.js";

const dir = mkdtempSync(join(tmpdir(), "mnistc-hostile-art-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const SPEC = `input: { channels: 1, height: 28, width: 28 }
classes: 10
layers:
  - flatten
  - linear: { out: 10 }
  - log_softmax
`;
const { ir } = compileSpec(SPEC, "tiny.yaml");
assert.ok(ir);

/** A valid checkpoint in a fresh folder; `edit` then changes its model.json. */
function checkpoint(name: string, edit?: (json: Record<string, unknown>) => void): string {
  const ckpt = join(dir, name, "checkpoint");
  writeTfjsCheckpoint(
    ckpt,
    ir as NonNullable<typeof ir>,
    torchInitWeights(ir as NonNullable<typeof ir>),
  );
  if (edit) {
    const file = join(ckpt, "model.json");
    const json = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
    edit(json);
    writeFileSync(file, JSON.stringify(json));
  }
  return ckpt;
}

interface Group {
  paths: string[];
  weights: { shape: unknown; dtype: unknown }[];
}
const manifest = (json: Record<string, unknown>) => (json.weightsManifest as Group[])[0] as Group;
const firstWeight = (json: Record<string, unknown>) =>
  manifest(json).weights[0] as Group["weights"][number];

describe("checkpoint manifests", () => {
  // A secret outside the checkpoint, of exactly the size the manifest needs.
  const secret = join(dir, "secret.bin");
  writeFileSync(secret, Buffer.alloc(7850 * 4, 7));

  const cases: [string, (json: Record<string, unknown>) => void, RegExp][] = [
    [
      "a path with ..",
      (j) => {
        manifest(j).paths = ["../../secret.bin"];
      },
      /plain file names inside its own folder/,
    ],
    [
      "an absolute path",
      (j) => {
        manifest(j).paths = [secret];
      },
      /plain file names inside/,
    ],
    [
      "a path that is not a string",
      (j) => {
        manifest(j).paths = [{}] as never;
      },
      /plain file names/,
    ],
    [
      "no paths",
      (j) => {
        manifest(j).paths = [];
      },
      /no list of paths/,
    ],
    [
      "one weights file listed 15,000 times (issue 23, item 12)",
      (j) => {
        manifest(j).paths = new Array(15_000).fill(manifest(j).paths[0]);
      },
      /the manifest lists weights\.bin twice/,
    ],
    [
      "2,000 weights files",
      (j) => {
        manifest(j).paths = Array.from({ length: 2000 }, (_, i) => `w${i}.bin`);
      },
      /lists more than 1024 weights files/,
    ],
    [
      "dtype float64",
      (j) => {
        firstWeight(j).dtype = "float64";
      },
      /unsupported dtype "float64"/,
    ],
    [
      "a negative size",
      (j) => {
        firstWeight(j).shape = [-10, 784];
      },
      /expected a list of sizes/,
    ],
    [
      "a shape of strings",
      (j) => {
        firstWeight(j).shape = ["10"];
      },
      /expected a list of sizes/,
    ],
    [
      "a huge shape",
      (j) => {
        firstWeight(j).shape = [1e6, 1e6];
      },
      /truncated/,
    ],
  ];
  for (const [name, edit, pattern] of cases) {
    test(name, () => {
      const ckpt = checkpoint(name.replace(/\W+/g, "-"), edit);
      assert.throws(
        () => readTfjsCheckpoint(ckpt),
        (e: unknown) => e instanceof UserError && pattern.test(e.message),
      );
      // Nothing was written: export refuses before writing.
      const out = join(dir, `${name.replace(/\W+/g, "-")}.onnx`);
      assert.throws(
        () => exportCheckpointToOnnx(ir as NonNullable<typeof ir>, ckpt, out),
        UserError,
      );
      assert.equal(existsSync(out), false);
    });
  }

  test("two 600 MiB weights files (sparse): over 1 GiB in all, refused before reading", () => {
    const ckpt = checkpoint("sparse", (j) => {
      manifest(j).paths = ["a.bin", "b.bin"];
    });
    for (const f of ["a.bin", "b.bin"]) {
      writeFileSync(join(ckpt, f), "");
      truncateSync(join(ckpt, f), 600 * 1024 * 1024);
    }
    const start = performance.now();
    assert.throws(
      () => readTfjsCheckpoint(ckpt),
      (e: unknown) =>
        e instanceof UserError && /hold more than 1073741824 bytes in all/.test(e.message),
    );
    assert.ok(performance.now() - start < 5000);
  });

  test("a weights file that is a symlink out of the folder is refused", () => {
    const ckpt = checkpoint("symlink");
    rmSync(join(ckpt, "weights.bin"));
    symlinkSync(secret, join(ckpt, "weights.bin"));
    assert.throws(() => readTfjsCheckpoint(ckpt), /is a symbolic link; refused/);
  });

  test("a checkpoint whose weights.safetensors is a symlink out of the folder is refused", () => {
    const ckpt = join(dir, "neutral-symlink", "checkpoint");
    mkdirSync(ckpt, { recursive: true });
    symlinkSync(secret, join(ckpt, "weights.safetensors"));
    const out = join(dir, "neutral-symlink.onnx");
    assert.throws(
      () => exportCheckpointToOnnx(ir as NonNullable<typeof ir>, ckpt, out),
      /weights\.safetensors: is a symbolic link; refused/,
    );
    assert.equal(existsSync(out), false);
  });
});

describe("training.json", () => {
  const valid = () => ({
    version: 1,
    spec: "tiny",
    epoch: 2,
    rng: [1, 2, 3, 4],
    options: {
      epochs: 3,
      batchSize: 8,
      lr: 0.1,
      seed: 1,
      data: "mnist-data",
      out: "/x",
      resume: false,
    },
    optimizer: { type: "sgd", step: 10, slots: [] },
    metrics: { epochs: [] },
  });
  // biome-ignore lint/suspicious/noExplicitAny: hand edits of a JSON value
  type Json = Record<string, any>;
  const cases: [string, (s: Json) => void, RegExp][] = [
    [
      "epoch -5",
      (s) => {
        s.epoch = -5;
      },
      /epoch is -5; expected an integer >= 0/,
    ],
    [
      "epoch 1.5",
      (s) => {
        s.epoch = 1.5;
      },
      /epoch is 1.5/,
    ],
    [
      "epochs 0",
      (s) => {
        s.options.epochs = 0;
      },
      /options.epochs is 0/,
    ],
    [
      "batch size a string",
      (s) => {
        s.options.batchSize = "8";
      },
      /options.batchSize is "8"/,
    ],
    [
      "lr NaN (null in JSON)",
      (s) => {
        s.options.lr = null;
      },
      /options.lr is null/,
    ],
    [
      "an all-zero rng",
      (s) => {
        s.rng = [0, 0, 0, 0];
      },
      /rng is \[0,0,0,0\]/,
    ],
    [
      "an unknown optimizer",
      (s) => {
        s.optimizer.type = "lbfgs";
      },
      /optimizer.type is "lbfgs"/,
    ],
    [
      "a negative step",
      (s) => {
        s.optimizer.step = -1;
      },
      /optimizer.step is -1/,
    ],
    [
      "slots not a list",
      (s) => {
        s.optimizer.slots = {};
      },
      /optimizer.slots is not a list/,
    ],
    [
      "a bad epoch record",
      (s) => {
        s.metrics.epochs = [{ epoch: 1, trainLoss: "x" }];
      },
      /metrics.epochs\[0\]/,
    ],
    [
      "another version",
      (s) => {
        s.version = 3;
      },
      /not a training state mnistc can read \(format 3; this mnistc reads formats 1 and 2\)/,
    ],
    [
      "format 2 with a dropout stream that is not one",
      (s) => {
        s.version = 2;
        s.dropout = { "res.3": [0, 0, 0, 0] };
      },
      /dropout.res.3 is \[0,0,0,0\]/,
    ],
  ];
  test("a valid state passes", () => assert.equal(checkTrainingRecord(valid(), "t").epoch, 2));
  for (const [name, edit, pattern] of cases) {
    test(name, () => {
      const s = valid() as Json;
      edit(s);
      assert.throws(
        () => checkTrainingRecord(s, "t.json"),
        (e: unknown) => e instanceof UserError && pattern.test(e.message),
      );
    });
  }
});

describe("names that become paths", () => {
  for (const name of ["..", ".", "a/b", "a\\b", "", ".hidden", "-rf", "x".repeat(65), "a b"]) {
    test(`${JSON.stringify(name)} is refused`, () => assert.ok(nameProblem(name)));
  }
  for (const name of ["step4", "my-net_2", "v1.2"]) {
    test(`${name} is fine`, () => assert.equal(nameProblem(name), undefined));
  }
  test("check refuses a spec named .. (E0113), and a file-name default of ..", () => {
    const named = compileSpec(`name: ".."\n${SPEC}`, "x.yaml");
    assert.deepEqual(
      named.diagnostics.map((d) => d.code),
      ["E0113"],
    );
    const fromFile = compileSpec(SPEC, "...yaml");
    assert.deepEqual(
      fromFile.diagnostics.map((d) => d.code),
      ["E0113"],
    );
  });
});

describe("ONNX metadata", () => {
  const ckpt = checkpoint("meta");
  const good = join(dir, "good.onnx");
  exportCheckpointToOnnx(ir as NonNullable<typeof ir>, ckpt, good);

  function withMeta(key: string, value: string): string {
    const model = onnx.ModelProto.decode(readFileSync(good));
    const prop = model.metadataProps.find((p) => p.key === key);
    if (prop) prop.value = value;
    else model.metadataProps.push(onnx.StringStringEntryProto.create({ key, value }));
    const file = join(dir, `meta-${key}-${value.replace(/\W+/g, "_")}.onnx`);
    writeFileSync(file, onnx.ModelProto.encode(model).finish());
    return file;
  }
  const cases: [string, string, RegExp][] = [
    [
      "mnistc.std",
      "[0]",
      /mnistc.std is "\[0\]"; expected a JSON list of finite numbers of at least 0.000001/,
    ],
    ["mnistc.std", "[-1]", /mnistc.std/],
    ["mnistc.mean", "[1e999]", /mnistc.mean is "\[1e999\]"/],
    ["mnistc.mean", "not json", /mnistc.mean/],
    ["mnistc.mean", "[0.1, 0.2]", /mnistc.mean has 2 values for an input of 1 channels/],
    // The ten class names no longer fit either: whichever check speaks first refuses it.
    [
      "mnistc.classes",
      "7",
      /mnistc.classes says 7 classes, the output \[N, 10\] has 10|mnistc.class_names is not a JSON list of 7 class names/,
    ],
    ["mnistc.class_names", '["a", "b"]', /mnistc.class_names is not a JSON list of 10 class names/],
    ["mnistc.class_names", "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]", /mnistc.class_names/],
    ["mnistc.preprocess", "sharpen", /mnistc.preprocess is "sharpen"; expected digit or resize/],
    ["mnistc.dataset", "imagenet", /mnistc.dataset names "imagenet", not a dataset mnistc knows/],
    ["mnistc.classes", "-3", /mnistc.classes is "-3"/],
    ["mnistc.spec", "../../etc", /mnistc.spec/],
  ];
  for (const [key, value, pattern] of cases) {
    test(`${key} = ${value} is refused`, async () => {
      await assert.rejects(
        DigitModel.load(withMeta(key, value)),
        (e: unknown) => e instanceof UserError && pattern.test(e.message),
      );
    });
  }
  test("the untouched model loads", async () => {
    const m = await DigitModel.load(good);
    assert.equal(m.info.classes, 10);
    await m.release();
  });
  test("a folder for the checkpoint's parent is created one level at a time", () => {
    mkdirSync(join(dir, "nested"), { recursive: true });
    exportCheckpointToOnnx(
      ir as NonNullable<typeof ir>,
      ckpt,
      join(dir, "nested", "a", "b", "m.onnx"),
    );
    assert.ok(existsSync(join(dir, "nested", "a", "b", "m.onnx")));
  });
});
