// Knowledge distillation (`train.distill`): the teachers' mean probabilities, checked against the
// hand-written forward of the tiny ONNX model, at temperature 1 and 2; and a distilling run.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { onnxBackend } from "../src/backends/onnx/index.js";
import { compileSpec } from "../src/compiler/index.js";
import type { ModelIR, WeightMap } from "../src/compiler/ir.js";
import { UserError } from "../src/errors.js";
import { packagePath } from "../src/paths.js";
import type { Batch } from "../src/runtime/data/batches.js";
import { loadMnist } from "../src/runtime/data/mnist.js";
import { initEngine } from "../src/runtime/tfjs/engine.js";
import { tfjsTrainer } from "../src/runtime/tfjs/trainer.js";
import { Teachers } from "../src/runtime/train/distill.js";
import { runTraining, type TrainSpec } from "../src/runtime/train/loop.js";
import type { Stepper, StepperFactory } from "../src/runtime/train/step.js";
import { tinyForward, tinyIR, tinyWeights } from "./onnx-helpers.js";

const dir = mkdtempSync(join(tmpdir(), "mnistc-distill-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function writeModel(name: string, ir: ModelIR, weights: WeightMap): string {
  const contents = onnxBackend.emit(ir, { weights }).files[0]?.contents;
  assert.ok(contents instanceof Uint8Array);
  const path = join(dir, name);
  writeFileSync(path, contents);
  return path;
}

/** The tiny model's weights with every value scaled: a second teacher that answers differently. */
function scaled(weights: WeightMap, by: number): WeightMap {
  return new Map(
    [...weights].map(([k, v]) => [
      k,
      { shape: v.shape, data: k.includes("running_var") ? v.data : v.data.map((x) => x * by) },
    ]),
  );
}

// The tiny IR: [1, 3, 3] images, 3 classes. Teacher A normalizes as the student does; B with
// mean 0.5 and std 0.25, so its inputs must be renormalized.
const student = { mean: 0.1307, std: 0.3081 };
const tiny = tinyIR();
const weightsA = tinyWeights();
const weightsB = scaled(tinyWeights(), 0.7);
const fileA = writeModel("a.onnx", { ...tiny, data: { ...tiny.data, ...norm(student) } }, weightsA);
const fileB = writeModel(
  "b.onnx",
  { ...tiny, data: { ...tiny.data, mean: [0.5], std: [0.25] } },
  weightsB,
);
const options = { input: tiny.input, classes: 3, ...norm(student), threads: 1 };

function norm({ mean, std }: { mean: number; std: number }) {
  return { mean: [mean], std: [std] };
}

/** Two images of 3x3 bytes, student-normalized. */
const pixels = Uint8Array.from([
  0, 30, 60, 90, 120, 150, 180, 210, 240, 255, 0, 128, 7, 77, 200, 13, 99, 31,
]);
const asNormalized = (mean: number, std: number) =>
  Float32Array.from(pixels, (v) => (v / 255 - mean) / std);

describe("Teachers", () => {
  test("the mean probabilities are the average of each teacher's, B's input renormalized", async () => {
    const teachers = await Teachers.load([fileA, fileB], options);
    const p = await teachers.probabilities(asNormalized(student.mean, student.std), 2);
    await teachers.release();
    const a = tinyForward(weightsA, asNormalized(student.mean, student.std), 2);
    const b = tinyForward(weightsB, asNormalized(0.5, 0.25), 2);
    const expected = Array.from(a, (v, i) => (Math.exp(v) + Math.exp(b[i] as number)) / 2);
    assert.equal(p.length, 6);
    for (let i = 0; i < 6; i++)
      assert.ok(
        Math.abs((p[i] as number) - (expected[i] as number)) < 1e-5,
        `${p[i]} vs ${expected[i]}`,
      );
    for (const row of [0, 1]) {
      const sum = (p[row * 3] as number) + (p[row * 3 + 1] as number) + (p[row * 3 + 2] as number);
      assert.ok(Math.abs(sum - 1) < 1e-12, `row ${row} sums to ${sum}`);
    }
  });

  test("at temperature T each teacher's softmax(log p / T) is averaged; teach() sets batch.teacher", async () => {
    const teachers = await Teachers.load([fileA, fileB], options);
    const images = asNormalized(student.mean, student.std);
    const p = await teachers.probabilities(images, 2, 2);
    const targets = Float32Array.from([0, 0, 1, 1, 0, 0]);
    const batch: Batch = { size: 2, images, targets, labels: Uint8Array.from([2, 0]) };
    await teachers.teach(batch, 2);
    await teachers.release();
    const tempered = (logp: Float32Array) =>
      [0, 1].flatMap((row) => {
        const z = [0, 1, 2].map((c) => Math.exp((logp[row * 3 + c] as number) / 2));
        const sum = z.reduce((x, y) => x + y, 0);
        return z.map((v) => v / sum);
      });
    const a = tempered(tinyForward(weightsA, images, 2));
    const b = tempered(tinyForward(weightsB, asNormalized(0.5, 0.25), 2));
    for (let i = 0; i < 6; i++) {
      const want = ((a[i] as number) + (b[i] as number)) / 2;
      assert.ok(Math.abs((p[i] as number) - want) < 1e-5, `${p[i]} vs ${want}`);
      assert.ok(Math.abs((batch.teacher?.[i] ?? Number.NaN) - want) < 1e-5);
    }
    assert.deepEqual([...targets], [0, 0, 1, 1, 0, 0], "the targets stay as they were");
  });

  test("a teacher that cannot teach this student is a user error naming the file", async () => {
    const cases: [Parameters<typeof Teachers.load>[1], RegExp][] = [
      [{ ...options, classes: 10 }, /a\.onnx has 3 classes; the spec has 10/],
      [
        { ...options, input: { channels: 1, height: 28, width: 28 } },
        /a\.onnx takes \[1, 3, 3\] images; the spec's are \[1, 28, 28\]/,
      ],
    ];
    for (const [opts, message] of cases) {
      await assert.rejects(Teachers.load([fileA], opts), (err: unknown) => {
        assert.ok(err instanceof UserError);
        assert.match(err.message, message);
        return true;
      });
    }
    await assert.rejects(Teachers.load([join(dir, "none.onnx")], options), (err: unknown) => {
      assert.ok(err instanceof UserError);
      assert.match(err.message, /none\.onnx/);
      return true;
    });
  });
});

describe("a distilling run", async () => {
  const { tf, name: engine } = await initEngine();
  const specPath = packagePath("specs", "sep4k.yaml");
  const yaml = readFileSync(specPath, "utf8").replace(
    /^ {2}augment:.*$/m,
    "$&\n  distill: { teachers: [../models/sep4k.onnx, ../models/sep7k.onnx], temperature: 3 }",
  );
  const { ir } = compileSpec(yaml, specPath);
  assert.ok(ir?.train.distill, "the spec distills");
  const { loadProgram } = await import("../src/cli/program.js");
  const program = await loadProgram(ir, join(dir, "program"));
  const data = loadMnist({ trainLimit: 128, testLimit: 64 });

  /** A stepper that takes no step but keeps what it was fed (the tfjs one does the rest). */
  function recorder(fed: Batch[]): StepperFactory {
    return async (start) => {
      const inner = await tfjsTrainer(tf, program.buildModel)(start);
      const stepper: Stepper = {
        ...inner,
        backend: "recorder",
        async step(batch: Batch) {
          // Copies: the batch is a view of buffers the next batch reuses.
          fed.push({
            size: batch.size,
            images: batch.images.slice(),
            targets: batch.targets.slice(),
            labels: batch.labels.slice(),
            ...(batch.teacher ? { teacher: batch.teacher.slice() } : {}),
          });
          return { loss: 0, correct: 0 };
        },
      };
      return stepper;
    };
  }

  const run = (out: string, fed: Batch[], extra: Record<string, unknown> = {}) =>
    runTraining({
      engine,
      spec: program.spec as TrainSpec,
      data,
      options: { quiet: true, out: join(dir, out), epochs: 1, ...extra },
      teacherThreads: 1,
      stepper: recorder(fed),
    });

  test("the step is fed the teachers' p̄_T beside the one-hot targets, recorded with the run", async () => {
    const fed: Batch[] = [];
    const metrics = await run("a", fed);
    assert.deepEqual(
      metrics.options.teachers?.map((f) => f.split("/").at(-1)),
      ["sep4k.onnx", "sep7k.onnx"],
    );
    const batch = fed[0];
    assert.ok(batch?.teacher);
    const teachers = await Teachers.load(metrics.options.teachers ?? [], {
      input: ir.input,
      classes: 10,
      mean: [0.1307],
      std: [0.3081],
      threads: 1,
    });
    const p = await teachers.probabilities(batch.images, batch.size, 3);
    await teachers.release();
    for (let i = 0; i < batch.size * 10; i++) {
      assert.ok(Math.abs((batch.teacher[i] as number) - (p[i] as number)) < 1e-6);
      const hard: number = batch.labels[Math.floor(i / 10)] === i % 10 ? 1 : 0;
      assert.equal(batch.targets[i], hard);
    }
  });

  test("--teacher replaces the spec's teachers; a spec that does not distill refuses it", async () => {
    const fed: Batch[] = [];
    const metrics = await run("b", fed, { teacher: [packagePath("models", "sep4k.onnx")] });
    assert.equal(metrics.options.teachers?.length, 1);
    const { distill: _, ...plain } = ir.train;
    await assert.rejects(
      runTraining({
        engine,
        spec: { ...(program.spec as TrainSpec), train: plain },
        stepper: tfjsTrainer(tf, program.buildModel),
        data,
        options: { quiet: true, out: join(dir, "c"), epochs: 1, teacher: ["x.onnx"] },
      }),
      /--teacher: spec sep4k does not distill/,
    );
  });
});

test("mnistc train with a teacher that is not there: one line naming it, exit 1", () => {
  const spec = join(dir, "lost-teacher.yaml");
  writeFileSync(
    spec,
    readFileSync(packagePath("specs", "sep4k.yaml"), "utf8").replace(
      /^ {2}augment:.*$/m,
      "$&\n  distill: { teachers: [gone.onnx] }",
    ),
  );
  const r = spawnSync(
    process.execPath,
    [
      packagePath("dist", "src", "cli.js"),
      "train",
      spec,
      ...["--train-limit", "64", "--test-limit", "32", "--epochs", "1", "--threads", "1"],
      ...["--out", join(dir, "lost"), "--quiet"],
    ],
    { encoding: "utf8" },
  );
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /^mnistc: error: .*gone\.onnx: no such file\n$/);
});

test("teachers are read from the spec's folder: the IR holds them joined to the spec's path", () => {
  const yaml = readFileSync(packagePath("specs", "sep4k.yaml"), "utf8").replace(
    /^ {2}augment:.*$/m,
    "$&\n  distill: { teachers: [../models/a.onnx, b.onnx, /abs/c.onnx] }",
  );
  const cases: [string, string[]][] = [
    ["specs/x.yaml", ["models/a.onnx", "specs/b.onnx", "/abs/c.onnx"]],
    ["x.yaml", ["../models/a.onnx", "b.onnx", "/abs/c.onnx"]],
    ["/p/specs/x.yaml", ["/p/models/a.onnx", "/p/specs/b.onnx", "/abs/c.onnx"]],
  ];
  for (const [file, want] of cases) {
    const distill = compileSpec(yaml, file).ir?.train.distill;
    assert.deepEqual(distill?.teachers, want, file);
    assert.equal(distill?.weight, 0.5);
    assert.equal(distill?.temperature, 1);
  }
});
