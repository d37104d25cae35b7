// `mnistc train SPEC [options]`: compile the spec with the tfjs backend into `<out>/program/`, load
// that program's `model.mjs` and run the same training function its `train.mjs` calls, so what
// this command trains is exactly the emitted program.
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { findBackend } from "../backends/index.js";
import { runtimeImportFor } from "../backends/tfjs/runtime-import.js";
import { formatDiagnostic } from "../compiler/index.js";
import type { BuildModel, TrainSpec } from "../runtime/train/loop.js";
import { checkOutFolder, outFolder } from "../runtime/train/loop.js";
import type { TrainOptions } from "../runtime/train/options.js";
import { writeFileAtomic } from "../util/files.js";
import { loadSpec } from "./spec.js";

interface EmittedProgram {
  spec: TrainSpec;
  buildModel: BuildModel;
}

function writeProgram(dir: string, files: { path: string; contents: string | Uint8Array }[]): void {
  for (const file of files) writeFileAtomic(join(dir, file.path), file.contents);
}

export async function train(specPath: string, opts: TrainOptions): Promise<number> {
  const ir = await loadSpec(specPath);
  if (!ir) return 1;
  const backend = findBackend("tfjs");
  if (!backend) throw new Error("the tfjs backend is not registered");
  const out = outFolder(ir.name, opts.out);
  // Before anything is written: a folder holding a run is not overwritten by accident.
  checkOutFolder(out, opts);
  const programDir = join(out, "program");
  const result = backend.emit(ir, { runtimeImport: runtimeImportFor(programDir) });
  for (const d of result.diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`);
  if (result.diagnostics.some((d) => d.severity === "error")) return 1;
  writeProgram(programDir, result.files);

  const program = (await import(
    pathToFileURL(join(programDir, "model.mjs")).href
  )) as EmittedProgram;
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
  const { exportCheckpointToOnnx } = await import("../runtime/inference/export.js");
  const onnx = exportCheckpointToOnnx(ir, join(out, "checkpoint"), join(out, "model.onnx"));
  if (!opts.quiet) process.stderr.write(`mnistc: wrote ${onnx.file} (${onnx.bytes} bytes)\n`);
  return 0;
}
