// Checkpoints are interchangeable between the backends: a run trained on one resumes on the other.
// An ONNX run interrupted after an epoch and resumed on ONNX is the uninterrupted run exactly; a
// tfjs epoch then an ONNX one (and the other way round) end within float32 noise of it.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { onnxSteps } from "../src/cli/onnx-steps.js";
import { loadProgram } from "../src/cli/program.js";
import { compileSpec } from "../src/compiler/index.js";
import { packagePath } from "../src/paths.js";
import { loadMnist } from "../src/runtime/data/mnist.js";
import { initEngine } from "../src/runtime/tfjs/engine.js";
import { tfjsTrainer } from "../src/runtime/tfjs/trainer.js";
import { runTraining } from "../src/runtime/train/loop.js";

const tmp = mkdtempSync(join(tmpdir(), "mnistc-resume-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const path = packagePath("specs", "sepres.yaml");
const compiled = compileSpec(readFileSync(path, "utf8"), path).ir;
assert.ok(compiled);
const ir = compiled;
// StepLR: the schedule of epoch 2 does not depend on how many epochs the first run was told.
ir.train.scheduler = { type: "step", stepSize: 1, gamma: 0.5 };
ir.train.batchSize = 32;
const { tf, name: engine } = await initEngine();
const program = await loadProgram(ir, join(tmp, "program"));
const data = loadMnist({ trainLimit: 256, testLimit: 100 });
const onnxStepper = await onnxSteps(ir, 1);
const tfjsStepper = tfjsTrainer(tf, program.buildModel);

async function train(out: string, onnx: boolean, epochs: number, resume = false) {
  const metrics = await runTraining({
    engine: onnx ? "onnxruntime" : engine,
    spec: program.spec,
    stepper: onnx ? onnxStepper : tfjsStepper,
    data,
    options: { quiet: true, out: join(tmp, out), epochs, resume },
  });
  return metrics.epochs.at(-1);
}

test("checkpoints move between the tfjs and ONNX backends", async () => {
  const reference = await train("onnx", true, 2);
  await train("onnx-resumed", true, 1);
  const resumed = await train("onnx-resumed", true, 2, true);
  await train("from-tfjs", false, 1);
  const fromTfjs = await train("from-tfjs", true, 2, true);
  await train("to-tfjs", true, 1);
  const toTfjs = await train("to-tfjs", false, 2, true);
  assert.ok(reference && resumed && fromTfjs && toTfjs);
  for (const key of ["trainLoss", "testLoss", "testAccuracy"] as const) {
    assert.ok(
      Math.abs((resumed[key] ?? Number.NaN) - (reference[key] ?? Number.NaN)) < 1e-6,
      `resumed ${key}: ${resumed[key]} vs ${reference[key]}`,
    );
    assert.ok(
      Math.abs((fromTfjs[key] ?? Number.NaN) - (reference[key] ?? Number.NaN)) < 2e-3,
      `from tfjs ${key}: ${fromTfjs[key]} vs ${reference[key]}`,
    );
    assert.ok(
      Math.abs((toTfjs[key] ?? Number.NaN) - (reference[key] ?? Number.NaN)) < 2e-3,
      `to tfjs ${key}: ${toTfjs[key]} vs ${reference[key]}`,
    );
  }
});
