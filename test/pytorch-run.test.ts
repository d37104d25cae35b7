// Runs what the PyTorch backend emits, with Debian's python3-torch (CI installs it, .ci/run):
//   - model.py of every shipped spec, every-op.yaml and options.yaml loads mnistc's weights with
//     strict=True and gives the ONNX model's log-probabilities within 1e-5 on MNIST test images;
//   - train.py rotates images as mnistc's augmentation does;
//   - one train.py step from mnistc's initial weights on a fixed batch (no augmentation, no
//     dropout) gives the weights and batch-norm statistics of mnistc's own tfjs step within 1e-4;
//   - torchrun with 2 processes (DDP over gloo on loopback) trains step4 on 256 images and writes
//     safetensors that `mnistc export` turns into an ONNX model that `mnistc eval` scores exactly
//     as train.py's own test pass did.
// Skipped, saying why, only where /usr/bin/python3 cannot import torch and CI is not set.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { after, describe, type TestContext, test } from "node:test";
import { pathToFileURL } from "node:url";
import * as ort from "onnxruntime-node";
import { onnxBackend } from "../src/backends/onnx/index.js";
import { pytorchBackend } from "../src/backends/pytorch/index.js";
import {
  safetensorsFromWeights,
  torchWeightsFromSafetensors,
} from "../src/backends/pytorch/weights.js";
import { tfjsBackend } from "../src/backends/tfjs/index.js";
import { runtimeImportFor } from "../src/backends/tfjs/runtime-import.js";
import { compileSpec } from "../src/compiler/index.js";
import { torchInitWeights } from "../src/compiler/init.js";
import type { ModelIR, WeightMap } from "../src/compiler/ir.js";
import { parseSafetensors } from "../src/formats/safetensors.js";
import { packagePath } from "../src/paths.js";
import { affineImage } from "../src/runtime/data/augment.js";
import { defaultMnistDir, loadMnist } from "../src/runtime/data/mnist.js";
import { readCheckpoint } from "../src/runtime/train/checkpoint.js";
import type { BuildModel, TrainSpec } from "../src/runtime/train/loop.js";
import type { RunMetrics } from "../src/runtime/train/metrics.js";
import { scheduleAt } from "../src/runtime/train/schedule.js";
import { Rng } from "../src/util/rng.js";
import { onnxWeights } from "./helpers/weights.js";
import { runCli } from "./onnx-helpers.js";

const PYTHON = "/usr/bin/python3";
const TORCHRUN = "/usr/bin/torchrun";
const haveTorch = spawnSync(PYTHON, ["-c", "import torch"], { stdio: "ignore" }).status === 0;
// CI installs python3-torch (.ci/run), so there a missing torch is a failure, not a skip.
const skip =
  haveTorch || process.env.CI === "true"
    ? false
    : `${PYTHON} cannot import torch (apt-get install python3-torch, as .ci/run does)`;
const requireTorch = () =>
  assert.ok(haveTorch, `${PYTHON} cannot import torch: install Debian's python3-torch`);

/**
 * The tests below are collected and run concurrently (see the end): most of their time is Python
 * starting and waiting on its processes, which overlaps well even on two cores.
 */
const tests: (() => void)[] = [];
function concurrently(
  name: string,
  options: { skip: string | false },
  fn: (t: TestContext) => Promise<void>,
): void {
  tests.push(() => test(name, options, fn));
}

const dir = mkdtempSync(join(tmpdir(), "mnistc-pytorch-run-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const mnistDir = defaultMnistDir();
/**
 * One thread per Python process (the suite runs two test files at once on two cores), and gloo on
 * the loopback interface whatever the host name resolves to (torchrun --standalone's rendezvous
 * is on localhost already).
 */
const pythonEnv = { ...process.env, OMP_NUM_THREADS: "1", GLOO_SOCKET_IFNAME: "lo" };

function compile(text: string, file: string): ModelIR {
  const { ir, diagnostics } = compileSpec(text, file);
  assert.ok(ir, `${file} does not compile: ${JSON.stringify(diagnostics)}`);
  return ir;
}

/** Emits the PyTorch backend's files into `out`. */
function emitPytorch(ir: ModelIR, out: string): void {
  const { files, diagnostics } = pytorchBackend.emit(ir, {});
  // Only a distilling spec's note that train.py leaves distillation out.
  assert.deepEqual(
    diagnostics.map((d) => d.code),
    ir.train.distill ? ["W0904"] : [],
  );
  mkdirSync(out, { recursive: true });
  for (const f of files) writeFileSync(join(out, f.path), f.contents);
}

/** Runs a command to its end; rejects with its output when it fails. */
function run(command: string, args: string[], cwd = dir): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: pythonEnv });
    let output = "";
    child.stdout.on("data", (d) => {
      output += d;
    });
    child.stderr.on("data", (d) => {
      output += d;
    });
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve(output) : reject(new Error(`${command} exited ${code}:\n${output}`)),
    );
  });
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
  return max;
};

// --- model.py against the ONNX model ---------------------------------------------------------

const PARITY_SPECS = [
  ...readdirSync(packagePath("specs"))
    .filter((f) => f.endsWith(".yaml"))
    .sort()
    .map((f) => packagePath("specs", f)),
  packagePath("test", "fixtures", "specs", "good", "every-op.yaml"),
  packagePath("test", "fixtures", "specs", "good", "options.yaml"),
];
const IMAGES = 64;
const TOLERANCE = 1e-5;

function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if ((row[i] ?? 0) > (row[best] ?? 0)) best = i;
  return best;
}

/** The weights of models/step4.onnx: step4 as trained in docs/results/step4 (a real checkpoint). */
function trainedStep4(): WeightMap {
  return onnxWeights(packagePath("models", "step4.onnx"));
}

/**
 * Seeded init moved away from where it hides mistakes: conv/linear weights doubled (else the
 * output fades towards uniform), batch-norm affine parameters and statistics off 0 and 1.
 */
function testWeights(ir: ModelIR): WeightMap {
  const weights = torchInitWeights(ir, 2024);
  const rng = new Rng(77);
  for (const node of ir.nodes) {
    for (const p of node.params) {
      const w = weights.get(p.name);
      if (!w) continue;
      if (p.init.type === "fill") {
        const positive = p.init.value > 0;
        w.data = Float32Array.from(w.data, () =>
          positive ? rng.uniform(0.5, 2) : rng.uniform(-0.5, 0.5),
        );
      } else {
        w.data = w.data.map((v) => v * 2);
      }
    }
  }
  return weights;
}

concurrently(
  "model.py loads mnistc's weights (strict) and gives the ONNX log-probabilities within 1e-5 + 1e-6 relative",
  {
    skip,
  },
  async (t) => {
    requireTorch();
    const test = loadMnist({ trainLimit: 0, testLimit: IMAGES }).test;
    const jobs = [];
    const expected = new Map<string, { ir: ModelIR; logProbs: Float32Array }>();
    const cases = PARITY_SPECS.map((path) => {
      const ir = compile(readFileSync(path, "utf8"), path);
      return { ir, label: ir.name, weights: testWeights(ir) };
    });
    const step4 = cases.find((c) => c.label === "step4")?.ir;
    assert.ok(step4);
    cases.push({ ir: step4, label: "step4-trained", weights: trainedStep4() });
    for (const { ir, label, weights } of cases) {
      const out = join(dir, "parity", label);
      emitPytorch(ir, out);
      writeFileSync(join(out, "weights.safetensors"), safetensorsFromWeights(ir, weights));
      const [mean = 0] = ir.data.mean ?? [];
      const [std = 1] = ir.data.std ?? [];
      const input = Float32Array.from(test.images, (v) => (v / 255 - mean) / std);
      writeFileSync(join(out, "input.f32"), input);
      const bytes = onnxBackend.emit(ir, { weights }).files[0]?.contents;
      assert.ok(bytes instanceof Uint8Array);
      const session = await ort.InferenceSession.create(bytes);
      const feeds = { input: new ort.Tensor("float32", input, [IMAGES, 1, 28, 28]) };
      const result = await session.run(feeds);
      await session.release();
      expected.set(label, { ir, logProbs: result.log_probs?.data as Float32Array });
      jobs.push({
        dir: out,
        weights: join(out, "weights.safetensors"),
        input: join(out, "input.f32"),
        count: IMAGES,
        output: join(out, "output.f32"),
        name: label,
      });
    }
    // And train.py's augmentation against mnistc's, on real digits: [degrees, dx, dy, scale].
    const transforms: [number, number, number, number][] = [
      [7, 0, 0, 1],
      [-7, 0, 0, 1],
      [3.5, 0, 0, 1],
      [-30, 0, 0, 1],
      [90, 0, 0, 1],
      [0, 0, 0, 1],
      [45, 0, 0, 1],
      [-12.25, 0, 0, 1],
      [0, 3, -2, 1],
      [0, 0, 0, 0.85],
      [5, -2, 1, 1.1],
      [-7, 2, 3, 0.9],
    ];
    const imagesFile = join(dir, "parity", "images.u8");
    writeFileSync(imagesFile, test.images.subarray(0, transforms.length * 784));
    const rotate = {
      dir: join(dir, "parity", "step4"),
      images: imagesFile,
      count: transforms.length,
      transforms,
      output: join(dir, "parity", "rotated.f32"),
    };
    const jobsFile = join(dir, "parity", "jobs.json");
    writeFileSync(jobsFile, JSON.stringify({ models: jobs, rotate }));
    const output = await run(PYTHON, [packagePath("test", "python", "run_models.py"), jobsFile]);
    const lines = output
      .trim()
      .split("\n")
      .filter((l) => l.startsWith("{"));
    assert.equal(lines.length, jobs.length + 1, output);
    const failures: string[] = [];
    jobs.forEach((job, i) => {
      const report = JSON.parse(lines[i] as string);
      const { ir, logProbs } = expected.get(job.name) as { ir: ModelIR; logProbs: Float32Array };
      const names = ir.nodes.flatMap((n) => n.params.map((p) => p.name));
      assert.deepEqual(report.names, names, `${job.name}: state_dict names`);
      assert.deepEqual(report.parameters, names, `${job.name}: PARAMETERS`);
      assert.deepEqual(report.shape, [IMAGES, ir.classes]);
      assert.deepEqual(report.one, [1, ir.classes], `${job.name}: a batch of one`);
      const raw = readFileSync(job.output);
      const got = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
      // 1e-5, plus float32's own spacing where a log-probability is large: ulp(43) is 3.8e-6,
      // and two float32 implementations summing in different orders differ by a few ulps there.
      assert.equal(got.length, logProbs.length);
      let diff = 0;
      let diffModerate = 0;
      let range = 0;
      got.forEach((v, k) => {
        const want = logProbs[k] as number;
        const d = Math.abs(v - want);
        diff = Math.max(diff, d);
        if (Math.abs(want) <= 10) diffModerate = Math.max(diffModerate, d);
        range = Math.max(range, Math.abs(want));
        if (d > TOLERANCE + 1e-6 * Math.abs(want)) {
          failures.push(`${job.name}: log p ${want} vs PyTorch's ${v} at ${k}`);
        }
      });
      for (let row = 0; row < IMAGES; row++) {
        const k = ir.classes;
        if (
          argmax(got.subarray(row * k, (row + 1) * k)) !==
          argmax(logProbs.subarray(row * k, (row + 1) * k))
        ) {
          failures.push(`${job.name}: image ${row} is classified differently`);
        }
      }
      t.diagnostic(
        `${job.name}: max |PyTorch - ONNX| ${diff.toExponential(2)} (${diffModerate.toExponential(2)} where |log p| <= 10; max |log p| ${range.toFixed(1)})`,
      );
    });
    assert.deepEqual(failures, []);

    const rawRotated = readFileSync(rotate.output);
    const rotated = new Float32Array(
      rawRotated.buffer.slice(rawRotated.byteOffset, rawRotated.byteOffset + rawRotated.length),
    );
    const ours = new Float32Array(transforms.length * 784);
    transforms.forEach(([degrees, dx, dy, scale], i) => {
      affineImage(test.images, i * 784, 28, 28, { degrees, dx, dy, scale }, ours, i * 784);
    });
    const rotationDiff = maxDiff(rotated, ours);
    t.diagnostic(`augmentation: max |train.py - mnistc| ${rotationDiff.toExponential(2)} (of 255)`);
    assert.ok(rotationDiff <= 1e-3, `train.py augments differently: max |diff| ${rotationDiff}`);
  },
);

// --- one training step against mnistc's ----------------------------------------------------

/** `spec` without its dropout layers and train section, with `train` instead. */
function variant(path: string, name: string, train: string[]): ModelIR {
  const text = readFileSync(path, "utf8")
    .replace(/^name: .*$/m, `name: ${name}`)
    .replace(/^ *- dropout.*\n/gm, "")
    .replace(/^train:\n(?:[ #].*\n)*/m, "");
  return compile(`${text}\ntrain:\n${train.map((l) => `  ${l}`).join("\n")}\n`, `${name}.yaml`);
}

const BATCH = 64;
const STEP_VARIANTS = [
  // Residual, grouped, dilated, factorized convs, pools with padding, linear; SGD with
  // Nesterov momentum and weight decay.
  variant(packagePath("test", "fixtures", "specs", "good", "every-op.yaml"), "every-op-sgd", [
    `batch_size: ${BATCH}`,
    "seed: 3",
    "optimizer: { type: sgd, lr: 0.1, momentum: 0.9, weight_decay: 0.001, nesterov: true }",
  ]),
  // The seed's net; Adam with its betas and weight decay, StepLR, label smoothing.
  variant(packagePath("specs", "step4.yaml"), "step4-adam", [
    `batch_size: ${BATCH}`,
    "seed: 5",
    "label_smoothing: 0.1",
    "optimizer: { type: adam, lr: 0.01, betas: [0.8, 0.99], weight_decay: 0.0001 }",
    "scheduler: { type: step, step_size: 1, gamma: 0.5 }",
  ]),
];

interface TfjsProgram {
  spec: TrainSpec;
  buildModel: BuildModel;
}

for (const ir of STEP_VARIANTS) {
  concurrently(
    `${ir.name}: one train.py step equals mnistc's tfjs step within 1e-4`,
    {
      skip,
    },
    async (t) => {
      requireTorch();
      assert.equal(ir.train.augment.rotate, 0);
      assert.ok(ir.nodes.every((n) => n.kind !== "dropout"));
      const base = join(dir, "step", ir.name);
      emitPytorch(ir, join(base, "pytorch"));
      const init = join(base, "init.safetensors");
      writeFileSync(init, safetensorsFromWeights(ir, torchInitWeights(ir, ir.train.seed)));
      // train.py: one epoch of one batch (its sampler shuffles the batch: the mean loss and the
      // batch statistics do not depend on the order).
      const python = run(PYTHON, [
        join(base, "pytorch", "train.py"),
        ...["--epochs", "1", "--train-limit", String(BATCH), "--test-limit", "100"],
        ...["--init", init, "--data", mnistDir, "--out", join(base, "torch-out"), "--quiet"],
      ]);

      // mnistc: the tfjs program the tfjs backend emits, run by the runtime's loop.
      const tfjsDir = join(base, "tfjs");
      mkdirSync(tfjsDir, { recursive: true });
      for (const f of tfjsBackend.emit(ir, { runtimeImport: runtimeImportFor(tfjsDir) }).files) {
        writeFileSync(join(tfjsDir, f.path), f.contents);
      }
      const program = (await import(pathToFileURL(join(tfjsDir, "model.mjs")).href)) as TfjsProgram;
      const { initEngine } = await import("../src/runtime/tfjs/engine.js");
      const { runTraining } = await import("../src/runtime/train/loop.js");
      const { tfjsTrainer } = await import("../src/runtime/tfjs/trainer.js");
      const { tf, name: engine } = await initEngine();
      const tfjsOut = join(base, "tfjs-out");
      const mnistc = await runTraining({
        engine,
        spec: program.spec,
        stepper: tfjsTrainer(tf, program.buildModel),
        data: loadMnist({ trainLimit: BATCH, testLimit: 100 }),
        options: { quiet: true, out: tfjsOut, epochs: 1 },
      });
      // The checkpoint holds PyTorch's names and layouts, converted at the tfjs edge.
      const mapped = readCheckpoint(join(tfjsOut, "checkpoint"), program.spec.tfjsWeights);

      await python;
      const written = parseSafetensors(
        readFileSync(join(base, "torch-out", "weights.safetensors")),
      );
      const torch = torchWeightsFromSafetensors(ir, written);
      assert.ok("weights" in torch, "errors" in torch ? torch.errors.join("; ") : "");
      const initial = torchInitWeights(ir, ir.train.seed);
      let worst = 0;
      let moved = 0;
      for (const [name, w] of mapped.weights) {
        const theirs = torch.weights.get(name)?.data ?? new Float32Array();
        const diff = maxDiff(theirs, w.data);
        worst = Math.max(worst, diff);
        assert.ok(diff <= 1e-4, `${name}: max |PyTorch - mnistc| ${diff} > 1e-4`);
        moved = Math.max(moved, maxDiff(w.data, initial.get(name)?.data ?? new Float32Array()));
      }
      t.diagnostic(`max |PyTorch - mnistc| over every tensor: ${worst.toExponential(2)}`);
      assert.ok(moved > 1e-3, `the step barely moved the weights (${moved})`);
      const metrics = JSON.parse(readFileSync(join(base, "torch-out", "metrics.json"), "utf8"));
      const [theirs] = metrics.epochs;
      const [ours] = mnistc.epochs;
      assert.ok(ours && theirs);
      assert.ok(Math.abs(theirs.trainLoss - ours.trainLoss) <= 1e-4, "the step's loss");
      assert.equal(theirs.lr, ours.lr);
    },
  );
}

// --- torchrun: two processes on loopback, back into mnistc ---------------------------------

concurrently(
  "torchrun --nproc_per_node 2: DDP trains step4; mnistc exports and scores its safetensors",
  {
    skip,
  },
  async (t) => {
    requireTorch();
    const specPath = packagePath("specs", "step4.yaml");
    const ir = compile(readFileSync(specPath, "utf8"), specPath);
    const base = join(dir, "ddp");
    emitPytorch(ir, join(base, "out"));
    const out = join(base, "run");
    // Debian's torchrun (1.13 on Python 3.11) cannot parse its own default `--redirects 0
    // --tee 0`; stdout teed into per-rank logs works with every torchrun.
    const started = Date.now();
    const log = await run(TORCHRUN, [
      ...["--standalone", "--nproc_per_node", "2", "--redirects", "1", "--tee", "1"],
      ...["--log_dir", join(base, "logs"), join(base, "out", "train.py")],
      ...["--epochs", "1", "--train-limit", "256", "--test-limit", "200"],
      ...["--data", mnistDir, "--out", out],
    ]);
    t.diagnostic(`torchrun: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    assert.deepEqual(readdirSync(out).sort(), ["metrics.json", "weights.safetensors"]);
    const metrics = JSON.parse(readFileSync(join(out, "metrics.json"), "utf8")) as RunMetrics & {
      options: { processes: number };
    };
    assert.equal(metrics.options.processes, 2);
    assert.match(metrics.engine, /^PyTorch .* \(cpu, 2 processes\)$/);
    assert.equal(metrics.trainExamples, 256);
    const [epoch] = metrics.epochs;
    assert.ok(epoch);
    // Only process 0 prints and writes.
    assert.equal((log.match(/epoch 1\/1/g) ?? []).length, 1, log);
    assert.match(log, /\[default0\]:epoch 1\/1/);
    // Scheduler stepped once per batch, as mnistc steps it: 256 / 128 = 2 batches.
    const { scheduler } = ir.train;
    assert.equal(scheduler.type, "onecycle");
    const expectedLr = scheduleAt(
      { scheduler, baseLr: ir.train.optimizer.lr, epochs: 1, stepsPerEpoch: 2 },
      0,
      1,
    ).lr;
    assert.ok(Math.abs(epoch.lr - expectedLr) < 1e-12, `lr ${epoch.lr} vs ${expectedLr}`);

    const onnxFile = join(base, "step4.onnx");
    const exported = runCli([
      "export",
      specPath,
      "--weights",
      join(out, "weights.safetensors"),
      "-o",
      onnxFile,
    ]);
    assert.equal(exported.status, 0, exported.stderr);
    const evaluated = runCli(["eval", onnxFile, "--test-limit", "200", "--json"]);
    assert.equal(evaluated.status, 0, evaluated.stderr);
    const report = JSON.parse(evaluated.stdout);
    assert.equal(report.count, 200);
    assert.equal(report.accuracy, epoch.testAccuracy);
    assert.ok(
      Math.abs(report.loss - (epoch.testLoss ?? Number.NaN)) <= 1e-4,
      `${report.loss} vs ${epoch.testLoss}`,
    );
    t.diagnostic(
      `${basename(onnxFile)}: ${(100 * report.accuracy).toFixed(1)}% on 200 test images`,
    );
  },
);

describe("what the PyTorch backend emits, run", { concurrency: true }, () => {
  for (const define of tests) define();
});
