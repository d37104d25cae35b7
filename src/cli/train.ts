// `mnistc train SPEC [options]`: compile the spec with the tfjs backend into `<out>/program/`, load
// that program's `model.mjs` and run the same training function its `train.mjs` calls, so what
// this command trains is exactly the emitted program.
import { join, resolve } from "node:path";
import type { TrainOptions } from "../runtime/train/options.js";
import { loadProgram } from "./program.js";
import { loadSpec } from "./spec.js";

export async function train(specPath: string, opts: TrainOptions): Promise<number> {
  const ir = await loadSpec(specPath);
  if (!ir) return 1;
  const out = resolve(opts.out ?? join("runs", ir.name));
  const programDir = join(out, "program");
  const program = await loadProgram(ir, programDir);
  const { initEngine } = await import("../runtime/tfjs/engine.js");
  const { runTraining } = await import("../runtime/train/loop.js");
  const { tf, name } = await initEngine();
  if (!opts.quiet) process.stderr.write(`mnistc: ${ir.name} -> ${programDir}\n`);
  await runTraining({
    tf,
    engine: name,
    spec: program.spec,
    buildModel: program.buildModel,
    options: { ...opts, out },
  });
  // The deployable form of what was just trained, beside its checkpoint (issue: ONNX export).
  const { exportCheckpointToOnnx } = await import("./export-onnx.js");
  const onnx = exportCheckpointToOnnx(ir, join(out, "checkpoint"), join(out, "model.onnx"));
  if (!opts.quiet) process.stderr.write(`mnistc: wrote ${onnx.file} (${onnx.bytes} bytes)\n`);
  return 0;
}
