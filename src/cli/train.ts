// `mnistc train SPEC [options]`: compile the spec with the tfjs backend into `<out>/program/` and
// train. With `--backend onnx` (the default) the compiled ONNX step takes the steps on
// onnxruntime-node, from PyTorch's seeded initialization, and TensorFlow.js is never loaded (the
// program is written, not run: `node <out>/program/train.mjs --resume` continues the run on tfjs).
// With `--backend tfjs` what this command trains is exactly the emitted program: its `model.mjs`
// is imported and run by the same training function its `train.mjs` calls. Both read and write the
// same checkpoints (PyTorch's names and layouts), so a run resumes on either.
import { join } from "node:path";
import { embeddedSpec } from "../backends/tfjs/index.js";
import { UserError } from "../errors.js";
import { outFolder, type TrainRun } from "../runtime/train/loop.js";
import type { TrainOptions } from "../runtime/train/options.js";
import { RunFolder, specInputs } from "../runtime/train/run-folder.js";
import { onnxSteps } from "./onnx-steps.js";
import { loadProgram, writeProgram } from "./program.js";
import { loadSpec } from "./spec.js";

export interface TrainCliOptions extends TrainOptions {
  /** Who takes the steps: the tfjs program, or the compiled ONNX step. */
  backend?: "tfjs" | "onnx";
  /** onnxruntime's threads (default: every core). */
  threads?: number;
}

export async function train(specPath: string, opts: TrainCliOptions): Promise<number> {
  const ir = await loadSpec(specPath);
  if (!ir) return 1;
  const out = outFolder(ir.name, opts.out);
  // Before anything is written: a folder holding a run is not overwritten by accident, and no
  // other run writes into it while this one does (through the export below).
  const spec = specPath === "-" ? [] : [{ what: "the spec", path: specPath }];
  const folder = RunFolder.open(out, opts, [...spec, ...specInputs(ir)]);
  try {
    const programDir = join(out, "program");
    // Staged: the old run's program stays until the new run is ready to start.
    const staged = folder.stage("program");
    const { backend = "onnx", threads, ...trainOptions } = opts;
    let trainer: Pick<TrainRun, "engine" | "engineVersion" | "spec" | "stepper">;
    if (backend === "tfjs") {
      const { tfjsNeeded } = await import("../runtime/tfjs/available.js");
      const needed = tfjsNeeded("--backend tfjs");
      if (needed) throw new UserError(needed);
      const program = await loadProgram(ir, staged);
      const { initEngine } = await import("../runtime/tfjs/engine.js");
      const { tfjsTrainer } = await import("../runtime/tfjs/trainer.js");
      const { tf, name } = await initEngine();
      trainer = {
        engine: name,
        engineVersion: `TensorFlow.js ${tf.version.tfjs}`,
        spec: program.spec,
        stepper: tfjsTrainer(tf, program.buildModel),
      };
    } else {
      // Written for the user (node program/train.mjs), never imported: no tfjs on this path.
      writeProgram(ir, staged);
      const { tfjsNeeded } = await import("../runtime/tfjs/available.js");
      const needed = tfjsNeeded("running program/train.mjs");
      if (needed && !opts.quiet) process.stderr.write(`mnistc: note: ${needed}\n`);
      const { onnxRuntimeVersion } = await import("../runtime/onnx-train/stepper.js");
      trainer = {
        engine: "onnxruntime",
        engineVersion: `onnxruntime-node ${onnxRuntimeVersion()}`,
        spec: embeddedSpec(ir),
        stepper: await onnxSteps(ir, threads),
      };
    }
    if (!opts.quiet) process.stderr.write(`mnistc: ${ir.name} -> ${programDir}\n`);
    const { runTraining } = await import("../runtime/train/loop.js");
    await runTraining({
      ...trainer,
      options: { ...trainOptions, out },
      folder,
      ...(threads ? { teacherThreads: threads } : {}),
    });
    // The deployable form of what was just trained, beside its checkpoint (issue: ONNX export).
    const { exportCheckpointToOnnx } = await import("./export-onnx.js");
    const onnx = exportCheckpointToOnnx(ir, join(out, "checkpoint"), join(out, "model.onnx"));
    if (!opts.quiet) process.stderr.write(`mnistc: wrote ${onnx.file} (${onnx.bytes} bytes)\n`);
  } finally {
    folder.release();
  }
  return 0;
}
