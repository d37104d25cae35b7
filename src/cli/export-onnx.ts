// A training checkpoint (tfjs layout) → an ONNX file: what `mnistc export` does, and what a
// training run calls at its end to leave `model.onnx` beside its checkpoint.
import { onnxBackend } from "../backends/onnx/index.js";
import { torchWeightsFromTfjs } from "../backends/tfjs/weights.js";
import type { ModelIR } from "../compiler/ir.js";
import { UserError } from "../errors.js";
import { readCheckpoint } from "../runtime/train/checkpoint.js";
import { writeFileAtomic } from "../util/files.js";

export interface ExportedOnnx {
  file: string;
  bytes: number;
}

/**
 * Reads the checkpoint in `checkpointDir`, maps its weights to the spec's PyTorch names and
 * layouts, and writes the ONNX model atomically to `outFile`. A checkpoint of another
 * architecture is a `UserError` naming the first weight that differs, with both shapes.
 */
export function exportCheckpointToOnnx(
  ir: ModelIR,
  checkpointDir: string,
  outFile: string,
): ExportedOnnx {
  const { arrays } = readCheckpoint(checkpointDir);
  const mapped = torchWeightsFromTfjs(ir, arrays);
  if ("error" in mapped) throw new UserError(`${checkpointDir}: ${mapped.error}`);
  const { files, diagnostics } = onnxBackend.emit(ir, { weights: mapped.weights });
  const [file] = files;
  if (!file || diagnostics.some((d) => d.severity === "error")) {
    const first = diagnostics[0];
    throw new UserError(
      `${checkpointDir}: ${first ? first.message : "the ONNX backend emitted nothing"}`,
    );
  }
  writeFileAtomic(outFile, file.contents);
  return { file: outFile, bytes: file.contents.length };
}
