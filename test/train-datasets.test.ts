// Datasets beyond MNIST end to end on the built CLI: a spec trains on a folder of the user's own
// images (RGB PNG and JPEG, and grey), on CIFAR-10's binary format and on Fashion-MNIST; the model
// it writes knows its data, so `eval` without --data scores that data and `eval`, `predict` and
// `data` name the classes. Data the test makes: colors a tiny net learns in a few steps.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { packagePath } from "../src/paths.js";
import type { RunMetrics } from "../src/runtime/train/metrics.js";
import { Rng } from "../src/util/rng.js";
import { COLORS, colorFolder, picture, png, type Rgb } from "./helpers/pictures.js";

const tmp = mkdtempSync(join(tmpdir(), "mnistc-train-datasets-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const cli = packagePath("dist", "src", "cli.js");
function mnistc(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", cwd: tmp });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function spec(name: string, channels: number, side: number, data: string, extra = ""): string {
  const file = join(tmp, `${name}.yaml`);
  writeFileSync(
    file,
    `name: ${name}
input: { channels: ${channels}, height: ${side}, width: ${side} }
classes: ${data.includes("fashion") ? 10 : 3}
layers:
  - conv: { out: 6, kernel: 3, padding: 1 }
  - relu
  - gap
  - flatten
  - linear: { out: ${data.includes("fashion") ? 10 : 3} }
  - log_softmax
train: { epochs: 3, batch_size: 8, optimizer: { type: adam, lr: 0.05 }${extra} }
data: ${data}
`,
  );
  return file;
}

const folder = join(tmp, "colors");
colorFolder(folder, { perClass: 16, jpegs: true });

describe("a folder of the user's own images", () => {
  const rgbSpec = spec(
    "colors",
    3,
    8,
    "{ dataset: folder, path: colors }",
    ", augment: { hflip: true, crop: { padding: 1 } }",
  );
  const out = join(tmp, "runs", "colors");

  test("trains (RGB, PNG and JPEG, normalization computed), and the model names its classes", () => {
    const r = mnistc("train", rgbSpec, "--out", out, "--json");
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /data: folder, 39 training \/ 9 test images \(a seeded 20% of each class, held out\)/,
    );
    assert.match(r.stderr, /normalization computed from the training split: mean \[/);
    const metrics = JSON.parse(r.stdout) as RunMetrics;
    assert.deepEqual(metrics.dataset?.classNames, ["blue sky", "grass", "tomato"]);
    assert.equal(metrics.dataset?.mean.length, 3);
    // Three flat colors: learnt in three epochs.
    assert.equal(metrics.epochs.at(-1)?.testAccuracy, 1);

    const inspect = mnistc("inspect", join(out, "model.onnx"));
    assert.match(inspect.stdout, /mnistc\.dataset\s+folder/);
    assert.match(inspect.stdout, /mnistc\.class_names\s+\["blue sky","grass","tomato"\]/);
    assert.match(inspect.stdout, /mnistc\.preprocess\s+resize/);
  });

  test("--backend tfjs takes the same steps on RGB batches (NCHW transposed at its edge)", () => {
    const r = mnistc(
      "train",
      rgbSpec,
      "--backend",
      "tfjs",
      "--out",
      join(tmp, "runs", "colors-tfjs"),
      "--json",
    );
    assert.equal(r.code, 0, r.stderr);
    const tfjs = JSON.parse(r.stdout) as RunMetrics;
    const onnx = JSON.parse(readFileSync(join(out, "metrics.json"), "utf8")) as RunMetrics;
    tfjs.epochs.forEach((e, i) => {
      const o = onnx.epochs[i];
      assert.ok(
        o && Math.abs(e.trainLoss - o.trainLoss) < 1e-4,
        `epoch ${i + 1}: ${e.trainLoss} vs ${o?.trainLoss}`,
      );
      assert.ok(Math.abs((e.testLoss ?? 0) - (o.testLoss ?? 0)) < 1e-4, `epoch ${i + 1} test loss`);
    });
  });

  test("eval without --data needs the folder; with it, scores and names the classes", () => {
    const model = join(out, "model.onnx");
    const bare = mnistc("eval", model);
    assert.equal(bare.code, 1);
    assert.match(
      bare.stderr,
      /the folder dataset has no default folder: give data\.path in the spec or --data DIR/,
    );
    const r = mnistc("eval", model, "--data", folder, "--report", join(tmp, "report"));
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /data {6}folder, .*colors: 9 test images \(a seeded 20% of each class, held out\)/,
    );
    assert.match(r.stdout, /accuracy {2}100\.00% \(9\/9\)/);
    assert.match(r.stdout, /^ {2}2 tomato {8}3 {8}3 {3}100\.00%$/m);
    const report = JSON.parse(readFileSync(join(tmp, "report", "report.json"), "utf8"));
    assert.deepEqual(report.classNames, ["blue sky", "grass", "tomato"]);
  });

  test("predict resizes a picture of any size and names its class", () => {
    const file = join(tmp, "tomato.png");
    writeFileSync(file, png(40, picture(40, COLORS.tomato as Rgb, new Rng(9))));
    const r = mnistc("predict", join(out, "model.onnx"), file, "--json");
    assert.equal(r.code, 0, r.stderr);
    const [p] = JSON.parse(r.stdout);
    assert.equal(p.class, 2);
    assert.equal(p.label, "tomato");
    assert.equal(p.digit, undefined);
    const text = mnistc("predict", join(out, "model.onnx"), file);
    assert.match(text.stdout, /tomato\.png: 2 tomato {2}\(p=/);
  });

  test("grey: the same folder read through PIL's luma", () => {
    const grey = spec("grey", 1, 8, "{ dataset: folder, path: colors, mean: [0.5], std: [0.25] }");
    const r = mnistc("train", grey, "--out", join(tmp, "runs", "grey"), "--epochs", "1", "--json");
    assert.equal(r.code, 0, r.stderr);
    const metrics = JSON.parse(r.stdout) as RunMetrics;
    assert.deepEqual(metrics.dataset?.mean, [0.5]);
  });

  test("mnistc data: counts per class and split, mean/std to paste", () => {
    const r = mnistc("data", rgbSpec, "--json", "--grid", join(tmp, "grid.png"));
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.deepEqual(
      summary.classes.map((c: { name: string; train: number; test: number }) => [
        c.name,
        c.train,
        c.test,
      ]),
      [
        ["blue sky", 13, 3],
        ["grass", 13, 3],
        ["tomato", 13, 3],
      ],
    );
    assert.equal(summary.mean.length, 3);
    assert.ok(readFileSync(join(tmp, "grid.png")).subarray(1, 4).equals(Buffer.from("PNG")));
  });

  test("a spec whose classes disagree with the folder: one line naming both, exit 1", () => {
    const wrong = join(tmp, "wrong.yaml");
    writeFileSync(
      wrong,
      readFileSync(rgbSpec, "utf8").replace("classes: 3", "classes: 4").replace("out: 3", "out: 4"),
    );
    const r = mnistc("train", wrong, "--out", join(tmp, "runs", "wrong"));
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /mnistc: error: spec colors: classes is 4, but .*colors has 3 \(blue sky, grass, tomato\)/,
    );
    assert.doesNotMatch(r.stderr, /^\s+at /m);
  });
});

describe("CIFAR-10's binary format", () => {
  const dir = join(tmp, "cifar");
  mkdirSync(dir);
  const rng = new Rng(5);
  const names = Object.keys(COLORS);
  const batch = (n: number) => {
    const out = Buffer.alloc(n * 3073);
    for (let i = 0; i < n; i++) {
      const label = i % 3;
      const color = COLORS[names[label] as string] as Rgb;
      out[i * 3073] = label;
      const rgba = picture(32, color, rng);
      for (let p = 0; p < 1024; p++)
        for (let c = 0; c < 3; c++) out[i * 3073 + 1 + c * 1024 + p] = rgba[4 * p + c] as number;
    }
    return out;
  };
  for (let f = 1; f <= 5; f++) writeFileSync(join(dir, `data_batch_${f}.bin`), batch(6));
  writeFileSync(join(dir, "test_batch.bin"), batch(9));
  writeFileSync(join(dir, "batches.meta.txt"), `${names.join("\n")}\n`);

  test("trains on the table's normalization and names the classes from batches.meta.txt", () => {
    const s = spec("cifar", 3, 32, "{ dataset: cifar10, path: cifar }");
    const out = join(tmp, "runs", "cifar");
    const r = mnistc("train", s, "--out", out, "--json");
    assert.equal(r.code, 0, r.stderr);
    const metrics = JSON.parse(r.stdout) as RunMetrics;
    assert.deepEqual(metrics.dataset?.mean, [0.4914, 0.4822, 0.4465]);
    assert.deepEqual(metrics.dataset?.classNames, names);
    assert.equal(metrics.trainExamples, 30);
    const e = mnistc("eval", join(out, "model.onnx"), "--data", dir);
    assert.equal(e.code, 0, e.stderr);
    assert.match(e.stdout, /data {6}cifar10, .*cifar: 9 test images/);
    assert.match(e.stdout, /1 grass/);
  });
});

describe("Fashion-MNIST", () => {
  const installed = (() => {
    try {
      return readFileSync("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz").length > 0;
    } catch {
      return false;
    }
  })();
  test("eval of a Fashion-MNIST model without --data scores Fashion-MNIST, never MNIST", {
    skip: !installed && "dataset-fashion-mnist is not installed",
  }, () => {
    const s = spec("fashion", 1, 28, "{ dataset: fashion-mnist }");
    const out = join(tmp, "runs", "fashion");
    const r = mnistc(
      "train",
      s,
      "--out",
      out,
      "--train-limit",
      "256",
      "--test-limit",
      "64",
      "--epochs",
      "1",
    );
    assert.equal(r.code, 0, r.stderr);
    const e = mnistc("eval", join(out, "model.onnx"), "--test-limit", "500");
    assert.equal(e.code, 0, e.stderr);
    assert.match(
      e.stdout,
      /data {6}fashion-mnist, \/usr\/share\/datasets\/fashion-mnist: 500 test images/,
    );
    assert.match(e.stdout, /9 Ankle boot/);
  });
});
