// The tfjs training program of a spec, emitted into a folder and imported: what `mnistc train
// --backend tfjs` runs, what `npm run bench:train` times and what the tests load. The one place
// that writes the backend's files and imports the `model.mjs` they hold.
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { findBackend } from "../backends/index.js";
import { runtimeImportFor } from "../backends/tfjs/runtime-import.js";
import { formatDiagnostics } from "../compiler/index.js";
import type { ModelIR } from "../compiler/ir.js";
import { UserError } from "../errors.js";
import type { BuildModel, TrainSpec } from "../runtime/train/loop.js";
import { writeFileAtomic } from "../util/files.js";

/** What an emitted `model.mjs` exports. */
export interface EmittedProgram {
  spec: TrainSpec;
  buildModel: BuildModel;
}

/**
 * Emits the tfjs program of `ir` into `dir` (model.mjs + train.mjs) without loading it: what an
 * ONNX run leaves beside its checkpoint, so `node DIR/train.mjs --resume` continues it on tfjs.
 */
export function writeProgram(ir: ModelIR, dir: string): void {
  const backend = findBackend("tfjs");
  if (!backend) throw new Error("the tfjs backend is not registered");
  const result = backend.emit(ir, { runtimeImport: runtimeImportFor(dir) });
  const errors = result.diagnostics.filter((d) => d.severity === "error");
  if (errors.length > 0) throw new UserError(formatDiagnostics(errors));
  for (const file of result.files) writeFileAtomic(join(dir, file.path), file.contents);
}

/** Emits the tfjs program of `ir` into `dir` and imports its model.mjs (which loads tfjs). */
export async function loadProgram(ir: ModelIR, dir: string): Promise<EmittedProgram> {
  writeProgram(ir, dir);
  return (await import(pathToFileURL(join(dir, "model.mjs")).href)) as EmittedProgram;
}
