// Parity of the compiled training step (onnx-train backend on onnxruntime) with the tfjs program's
// step: from the same weights, batch and dropout masks, one step gives the same loss and the same
// updated parameters, batch-norm buffers and optimizer slots (the first step's momentum buffer is
// the gradient itself) within 1e-4 of each tensor's scale, for every shipped spec, a spec with every
// op, and each optimizer form.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { after, test } from "node:test";
import { onnxSteps } from "../src/cli/onnx-steps.js";
import { loadProgram } from "../src/cli/program.js";
import { compileSpec } from "../src/compiler/index.js";
import type { ModelIR, OptimizerIR } from "../src/compiler/ir.js";
import { packagePath } from "../src/paths.js";
import { type Batch, BatchAssembler } from "../src/runtime/data/batches.js";
import { loadMnist } from "../src/runtime/data/mnist.js";
import { initEngine } from "../src/runtime/tfjs/engine.js";
import { tfjsTrainer } from "../src/runtime/tfjs/trainer.js";
import type { ModelState } from "../src/runtime/train/state.js";
import type { Stepper } from "../src/runtime/train/step.js";
import { Rng } from "../src/util/rng.js";
import { testWeights } from "./helpers/weights.js";

// tfjs on its cpu engine: float32 without the wasm convolutions' rounding noise, which breaks the
// exact ties of max-pool windows over MNIST's flat background one way or the other (each way a
// valid gradient, a few 1e-3 apart; PyTorch in float64 agrees with cpu and ONNX to 1e-7).
process.env.MNISTC_ENGINE = "cpu";
const BATCH = 8;
const dir = mkdtempSync(join(tmpdir(), "mnistc-train-parity-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const { tf } = await initEngine();
const mnist = loadMnist({ trainLimit: 20 * BATCH, testLimit: 0 });

const specs = [
  ...readdirSync(packagePath("specs"))
    .filter((f) => f.endsWith(".yaml"))
    .sort()
    .map((f) => packagePath("specs", f)),
  packagePath("test", "fixtures", "specs", "good", "every-op.yaml"),
];

function compile(path: string): ModelIR {
  const { ir } = compileSpec(readFileSync(path, "utf8"), path);
  assert.ok(ir, path);
  return ir;
}

interface Side {
  stepper: Stepper;
  dispose(): void;
}

/**
 * One side of the comparison: a stepper of the emitted tfjs model or of the ONNX step, both
 * started from the same state (the test weights, no slots yet, fresh dropout streams).
 */
async function side(ir: ModelIR, onnx: boolean): Promise<Side> {
  const program = await loadProgram(ir, mkdtempSync(join(dir, `${ir.name}-`)));
  const state: ModelState = {
    weights: testWeights(ir),
    optimizer: { type: ir.train.optimizer.type, step: 0, slots: new Map() },
    dropout: {},
  };
  const factory = onnx ? await onnxSteps(ir, 1) : tfjsTrainer(tf, program.buildModel);
  const stepper = await factory({
    spec: program.spec,
    seed: ir.train.seed,
    batchSize: BATCH,
    state,
    source: ir.name,
  });
  return { stepper, dispose: () => stepper.dispose() };
}

/** Every weight and buffer of a side by PyTorch name (as both hand them to checkpoints). */
async function values(s: Side): Promise<Map<string, Float32Array>> {
  const { weights } = await s.stepper.state();
  return new Map([...weights].map(([name, w]) => [name, w.data]));
}

/**
 * max |a − b| over the tensor's scale: its largest |b|, or `floor` if larger (a conv bias before
 * batch norm has no gradient in exact arithmetic: its float32 value is rounding noise).
 */
function relative(a: Float32Array, b: Float32Array, floor = 1e-6): number {
  let diff = 0;
  let scale = floor;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
    scale = Math.max(scale, Math.abs(b[i] ?? 0));
  }
  return diff / scale;
}

const largest = (arrays: Float32Array[]) =>
  arrays.reduce((m, a) => a.reduce((n, v) => Math.max(n, Math.abs(v)), m), 0);

const OPTIMIZERS: [string, OptimizerIR | undefined][] = [
  ["the spec's optimizer", undefined],
  [
    "SGD nesterov, weight decay",
    { type: "sgd", lr: 0.05, momentum: 0.9, weightDecay: 5e-4, nesterov: true },
  ],
  [
    "Adam, weight decay",
    { type: "adam", lr: 0.01, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-4 },
  ],
];

/** Every weight and buffer of the two models within `tolerance` of its scale. */
async function assertSameWeights(a: Side, b: Side, tolerance: number): Promise<void> {
  const [wa, wb] = [await values(a), await values(b)];
  assert.equal(wb.size, wa.size);
  for (const [name, data] of wa) {
    const other = wb.get(name);
    assert.ok(other, name);
    assert.ok(relative(other, data) <= tolerance, `${name}: ${relative(other, data)}`);
  }
}

/** Steps both sides once on `batch` and compares loss, hits, weights, buffers and slots. */
async function assertSameStep(a: Side, b: Side, batch: () => Batch): Promise<void> {
  const hyper = { lr: 0.05, momentum: 0.9 };
  const ra = await a.stepper.step(batch(), hyper);
  const rb = await b.stepper.step(batch(), hyper);
  assert.ok(
    Math.abs(ra.loss - rb.loss) <= 1e-4 * Math.abs(ra.loss),
    `loss ${ra.loss} vs ${rb.loss}`,
  );
  assert.equal(rb.correct, ra.correct);
  await assertSameWeights(a, b, 1e-4);
  const [sa, sb] = [(await a.stepper.state()).optimizer, (await b.stepper.state()).optimizer];
  assert.equal(sb.step, sa.step);
  const floor = 1e-3 * largest([...sa.slots.values()].map((s) => s.data));
  assert.equal(sb.slots.size, sa.slots.size);
  for (const [name, slot] of sa.slots) {
    const other = sb.slots.get(name);
    assert.ok(other, name);
    assert.deepEqual(other.shape, slot.shape, name);
    const error = relative(other.data, slot.data, floor);
    assert.ok(error <= 1e-4, `${name}: ${error}`);
  }
}

function assemblerFor(ir: ModelIR): BatchAssembler {
  return new BatchAssembler(mnist.train, BATCH, ir.classes, {
    mean: ir.data.mean ?? [0],
    std: ir.data.std ?? [1],
  });
}

for (const file of specs) {
  for (const [what, optimizer] of OPTIMIZERS) {
    // Every optimizer on the spec with every op; the shipped specs with their own.
    if (optimizer && !file.endsWith("every-op.yaml")) continue;
    test(`one step of ${basename(file)}, ${what}: ONNX equals tfjs (1e-4)`, async () => {
      const ir = compile(file);
      if (optimizer) ir.train.optimizer = optimizer;
      const a = await side(ir, false);
      const b = await side(ir, true);
      const assembler = assemblerFor(ir);
      // A distilling spec's step also reads its teachers' probabilities.
      const teacher = ir.train.distill ? { teacher: teacherRows(BATCH, ir.classes, 3) } : {};
      await assertSameStep(a, b, () => ({ ...assembler.fill(0, BATCH), ...teacher }));
      a.dispose();
      b.dispose();
    });
  }
}

/** Seeded rows that sum to 1, some peaked, some flat: what tempered teachers give. */
function teacherRows(rows: number, classes: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const out = new Float32Array(rows * classes);
  for (let r = 0; r < rows; r++) {
    const z = Array.from({ length: classes }, () => rng.uniform(-1, 1) * (1 + (r % 3) * 4));
    const e = z.map(Math.exp);
    const sum = e.reduce((x, y) => x + y, 0);
    e.forEach((v, c) => {
      out[r * classes + c] = v / sum;
    });
  }
  return out;
}

const DISTILLING: [string, number, number][] = [
  ["T = 3, weight 0.7", 3, 0.7],
  ["T = 1, weight 1", 1, 1],
];

for (const file of [packagePath("specs", "sep4k.yaml"), specs.at(-1) as string]) {
  for (const [what, temperature, weight] of DISTILLING) {
    test(`one distilling step of ${basename(file)}, ${what}: ONNX equals tfjs (1e-4)`, async () => {
      const ir = compile(file);
      ir.train.distill = { teachers: [], weight, temperature };
      const a = await side(ir, false);
      const b = await side(ir, true);
      const assembler = assemblerFor(ir);
      const teacher = teacherRows(BATCH, ir.classes, 5);
      await assertSameStep(a, b, () => ({ ...assembler.fill(0, BATCH), teacher }));
      a.dispose();
      b.dispose();
    });
  }
}

test("at T = 1 a distilling step is the plain step on the target (1-w)·one-hot + w·p̄", async () => {
  const ir = compile(packagePath("specs", "sep4k.yaml"));
  const w = 0.3;
  const distilling = {
    ...ir,
    train: { ...ir.train, distill: { teachers: [], weight: w, temperature: 1 } },
  };
  const a = await side(distilling, true);
  const b = await side(ir, true);
  const assembler = assemblerFor(ir);
  const teacher = teacherRows(BATCH, ir.classes, 9);
  const hyper = { lr: 0.05, momentum: 0.9 };
  const ra = await a.stepper.step({ ...assembler.fill(0, BATCH), teacher }, hyper);
  const plain = assembler.fill(0, BATCH);
  const mixed = plain.targets.map((y, i) => (1 - w) * y + w * (teacher[i] as number));
  const rb = await b.stepper.step({ ...plain, targets: mixed }, hyper);
  // KL(p̄ ‖ q) is the cross-entropy −Σ p̄·log q less p̄'s entropy H: the losses differ by w·H/B.
  let entropy = 0;
  for (const p of teacher) entropy -= p * Math.log(p);
  assert.ok(
    Math.abs(ra.loss - (rb.loss - (w * entropy) / BATCH)) < 1e-5,
    `${ra.loss} vs ${rb.loss}`,
  );
  await assertSameWeights(a, b, 1e-5);
  a.dispose();
  b.dispose();
});
