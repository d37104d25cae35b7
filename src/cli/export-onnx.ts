// Trained weights → an ONNX file: what `mnistc export` does, and what a training run calls at its
// end to leave `model.onnx` beside its checkpoint. The weights are a checkpoint directory (tfjs
// layout) or a safetensors file (PyTorch's), see ./weights.ts.
import { onnxBackend } from "../backends/onnx/index.js";
import type { ModelIR, WeightMap } from "../compiler/ir.js";
import { UserError } from "../errors.js";
import { writeFileAtomic } from "../util/files.js";
import { loadWeights } from "./weights.js";

export interface ExportedOnnx {
  file: string;
  bytes: number;
}

/** The ONNX model of `ir` with `weights` (from `source`, named in errors). */
export function onnxBytes(ir: ModelIR, weights: WeightMap, source: string): Uint8Array {
  const { files, diagnostics } = onnxBackend.emit(ir, { weights });
  const [file] = files;
  if (!file || diagnostics.some((d) => d.severity === "error")) {
    const first = diagnostics[0];
    throw new UserError(`${source}: ${first ? first.message : "the ONNX backend emitted nothing"}`);
  }
  return file.contents as Uint8Array;
}

/** Writes `contents` atomically (folders created, nothing but a regular file replaced). */
export function writeOutput(outFile: string, contents: string | Uint8Array): void {
  writeFileAtomic(outFile, contents);
}

/**
 * Reads the weights in `weightsPath` (a checkpoint directory or a safetensors file), checks them
 * against the spec's PyTorch names and shapes, and writes the ONNX model atomically to
 * `outFile`. Weights of another architecture are a `UserError` naming what differs.
 */
export function exportCheckpointToOnnx(
  ir: ModelIR,
  weightsPath: string,
  outFile: string,
): ExportedOnnx {
  const bytes = onnxBytes(ir, loadWeights(weightsPath, ir), weightsPath);
  writeOutput(outFile, bytes);
  return { file: outFile, bytes: bytes.length };
}
