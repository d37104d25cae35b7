// Twenty training steps from the seeded init on real batches, on the tfjs program and on the
// compiled ONNX step, each initializing itself (the tfjs model's TorchUniform, the ONNX path's
// torchInitWeights) and drawing its own dropout masks: the losses agree within 1e-3. The tfjs side runs on its cpu engine, as the
// one-step parity does: early training amplifies float32 differences step by step, and the wasm
// engine's convolution rounding breaks the exact max-pool ties of MNIST's flat background its own
// way, so from step 7 or so wasm and ONNX part (a few 1e-3 by step 20), while cpu and ONNX (and
// PyTorch in float64) stay within 1e-6. sepres: batch norm, dropout, depthwise and dilated convs,
// a residual add, cheap enough for the cpu engine.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { onnxSteps } from "../src/cli/onnx-steps.js";
import { loadProgram } from "../src/cli/program.js";
import { compileSpec } from "../src/compiler/index.js";
import { packagePath } from "../src/paths.js";
import { BatchAssembler } from "../src/runtime/data/batches.js";
import { loadMnist } from "../src/runtime/data/mnist.js";
import { initEngine } from "../src/runtime/tfjs/engine.js";
import { tfjsTrainer } from "../src/runtime/tfjs/trainer.js";

process.env.MNISTC_ENGINE = "cpu";
const BATCH = 8;
const STEPS = 20;
const dir = mkdtempSync(join(tmpdir(), "mnistc-train-steps-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test(`${STEPS} steps of sepres: ONNX and tfjs losses agree within 1e-3`, async () => {
  const { tf } = await initEngine();
  const path = packagePath("specs", "sepres.yaml");
  const { ir } = compileSpec(readFileSync(path, "utf8"), path);
  assert.ok(ir);
  const mnist = loadMnist({ trainLimit: STEPS * BATCH, testLimit: 0 });
  const program = await loadProgram(ir, join(dir, "program"));
  const start = { spec: program.spec, seed: ir.train.seed, batchSize: BATCH };
  const tfjs = await tfjsTrainer(tf, program.buildModel)(start);
  const onnx = await (await onnxSteps(ir, 1))(start);
  const assembler = new BatchAssembler(mnist.train, BATCH, 10, { mean: [0.1307], std: [0.3081] });
  const hyper = { lr: 0.01, momentum: 0.9 };
  for (let i = 0; i < STEPS; i++) {
    const ra = await tfjs.step(assembler.fill(i * BATCH, BATCH), hyper);
    const rb = await onnx.step(assembler.fill(i * BATCH, BATCH), hyper);
    assert.ok(
      Math.abs(ra.loss - rb.loss) <= 1e-3,
      `step ${i + 1}: tfjs ${ra.loss}, onnx ${rb.loss}`,
    );
  }
  onnx.dispose();
  tfjs.dispose();
});
