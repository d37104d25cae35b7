// The emitted train.py reads the spec's dataset as mnistc does: an image folder through
// torchvision's ImageFolder (streamed from disk), with the same seeded hold-out and, when the spec
// gives no normalization, the same per-channel statistics of the training split; CIFAR-10's
// binary batches; crop and flip. Run with Debian's python3-torch and python3-torchvision (CI
// installs both, .ci/run); skipped, saying why, only where they are missing and CI is not set.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { packagePath } from "../src/paths.js";
import type { RunMetrics } from "../src/runtime/train/metrics.js";
import { colorFolder } from "./helpers/pictures.js";

const PYTHON = "/usr/bin/python3";
const have =
  spawnSync(PYTHON, ["-c", "import torch, torchvision"], { stdio: "ignore" }).status === 0;
if (process.env.CI && !have) throw new Error(`${PYTHON} cannot import torch and torchvision`);
const skip = have
  ? false
  : `${PYTHON} cannot import torch and torchvision (apt-get install python3-torchvision)`;

const tmp = mkdtempSync(join(tmpdir(), "mnistc-pytorch-datasets-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const cli = packagePath("dist", "src", "cli.js");
const run = (cmd: string, args: string[]) => {
  const r = spawnSync(cmd, args, { encoding: "utf8", cwd: tmp });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

test("train.py on an image folder: mnistc's split and statistics, then it trains", { skip }, () => {
  // 11 a class: round(11 · 0.2) = 2 held out, a rounding both hold-outs must agree on.
  colorFolder(join(tmp, "colors"), { perClass: 11, noise: 40 });
  writeFileSync(
    join(tmp, "colors.yaml"),
    `name: colors
input: { channels: 3, height: 8, width: 8 }
classes: 3
layers: [{ conv: { out: 6, kernel: 3, padding: 1 } }, relu, gap, flatten, { linear: { out: 3 } }, log_softmax]
train: { epochs: 2, batch_size: 8, optimizer: { type: adam, lr: 0.05 }, augment: { hflip: true, crop: { padding: 1 } } }
data: { dataset: folder, path: colors }
`,
  );
  const mnistc = run(process.execPath, [cli, "train", "colors.yaml", "--out", "mrun", "--json"]);
  assert.equal(mnistc.code, 0, mnistc.stderr);
  const ours = JSON.parse(mnistc.stdout) as RunMetrics;
  assert.equal(
    run(process.execPath, [cli, "compile", "colors.yaml", "--target", "pytorch", "-o", "py"]).code,
    0,
  );
  const py = run(PYTHON, ["py/train.py", "--out", "pyout", "--json"]);
  assert.equal(py.code, 0, py.stderr);
  const theirs = JSON.parse(readFileSync(join(tmp, "pyout", "metrics.json"), "utf8"));
  // The same hold-out: 11 images a class, round(2.2) = 2 of each held out.
  assert.equal(theirs.trainExamples, ours.trainExamples);
  assert.equal(theirs.testExamples, ours.testExamples);
  assert.equal(ours.testExamples, 6);
  // The same training images, resized alike: the same statistics to the 4 decimals both print.
  const stats = /normalization from the training split: mean \[([^\]]*)\], std \[([^\]]*)\]/.exec(
    py.stdout,
  );
  assert.ok(stats, py.stdout);
  assert.deepEqual(stats[1]?.split(", ").map(Number), ours.dataset?.mean);
  assert.deepEqual(stats[2]?.split(", ").map(Number), ours.dataset?.std);
  assert.equal(theirs.epochs.length, 2);
});

test("train.py on CIFAR-10's binary batches", { skip }, () => {
  const dir = join(tmp, "cifar");
  mkdirSync(dir);
  const batch = (n: number) => {
    const out = Buffer.alloc(n * 3073);
    for (let i = 0; i < n; i++) {
      out[i * 3073] = i % 3;
      out.fill(40 + 80 * (i % 3), i * 3073 + 1, (i + 1) * 3073);
    }
    return out;
  };
  for (let f = 1; f <= 5; f++) writeFileSync(join(dir, `data_batch_${f}.bin`), batch(4));
  writeFileSync(join(dir, "test_batch.bin"), batch(6));
  writeFileSync(join(dir, "batches.meta.txt"), "a\nb\nc\n");
  writeFileSync(
    join(tmp, "cifar.yaml"),
    `name: cifar
input: { channels: 3, height: 32, width: 32 }
classes: 3
layers: [{ conv: { out: 4, kernel: 3, stride: 2 } }, relu, gap, flatten, { linear: { out: 3 } }, log_softmax]
train: { epochs: 1, batch_size: 4 }
data: { dataset: cifar10, path: cifar, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] }
`,
  );
  assert.equal(
    run(process.execPath, [cli, "compile", "cifar.yaml", "--target", "pytorch", "-o", "pyc"]).code,
    0,
  );
  const py = run(PYTHON, ["pyc/train.py", "--out", "pycout"]);
  assert.equal(py.code, 0, py.stderr);
  assert.match(py.stdout, /cifar: 20 training \/ 6 test images of cifar10 from cifar/);
});
