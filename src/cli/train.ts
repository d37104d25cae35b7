// `mnistc train SPEC [options]`: compile the spec with the tfjs backend into `<out>/program/`, load
// that program's `model.mjs` and run the same training function its `train.mjs` calls. With
// `--backend onnx` (the default) the compiled ONNX step takes the steps and the emitted model keeps
// the checkpoints; with `--backend tfjs` what this command trains is exactly the emitted program.
import { join } from "node:path";
import { outFolder } from "../runtime/train/loop.js";
import type { TrainOptions } from "../runtime/train/options.js";
import { RunFolder, specInputs } from "../runtime/train/run-folder.js";
import { onnxSteps } from "./onnx-steps.js";
import { loadProgram } from "./program.js";
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
    const program = await loadProgram(ir, folder.stage("program"));
    const { initEngine } = await import("../runtime/tfjs/engine.js");
    const { runTraining } = await import("../runtime/train/loop.js");
    const { tf, name } = await initEngine();
    if (!opts.quiet) process.stderr.write(`mnistc: ${ir.name} -> ${programDir}\n`);
    const { backend = "onnx", threads, ...trainOptions } = opts;
    await runTraining({
      tf,
      engine: name,
      spec: program.spec,
      buildModel: program.buildModel,
      options: { ...trainOptions, out },
      folder,
      ...(threads ? { teacherThreads: threads } : {}),
      ...(backend === "onnx" ? { stepper: await onnxSteps(ir, threads) } : {}),
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
