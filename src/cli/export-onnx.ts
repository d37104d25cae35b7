// Trained weights → an ONNX file: what `mnistc export` does, and what a training run calls at its
// end to leave `model.onnx` beside its checkpoint. The weights are a checkpoint directory or a
// safetensors file, see ./weights.ts.
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { onnxBackend } from "../backends/onnx/index.js";
import type { ModelIR, WeightMap } from "../compiler/ir.js";
import { UserError } from "../errors.js";
import { readTrainingRecord, resolveCheckpointDir } from "../runtime/train/checkpoint.js";
import { writeFileAtomic } from "../util/files.js";
import { loadWeights } from "./weights.js";

const isFile = (path: string) => existsSync(path) && statSync(path).isFile();

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
  const trained = withRunDataset(ir, weightsPath);
  const bytes = onnxBytes(trained, loadWeights(weightsPath, trained), weightsPath);
  writeOutput(outFile, bytes);
  return { file: outFile, bytes: bytes.length };
}

/**
 * The IR completed with what a training run resolved about its data (class names read from a
 * folder, normalization computed from its training split), when `weightsPath` is the checkpoint
 * of a run that recorded them; the IR as it is otherwise (safetensors, older checkpoints).
 */
export function withRunDataset(ir: ModelIR, weightsPath: string): ModelIR {
  if (isFile(weightsPath) || !existsSync(join(resolveCheckpointDir(weightsPath), "training.json")))
    return ir;
  const record = readTrainingRecord(weightsPath).metrics.dataset;
  if (!record) return ir;
  const where = `${weightsPath}: the run's dataset record`;
  if (record.name !== ir.data.dataset) {
    throw new UserError(`${where} says ${record.name}; the spec's dataset is ${ir.data.dataset}`);
  }
  const channels = ir.input.channels;
  const finite = (v: unknown) =>
    Array.isArray(v) && v.length === channels && v.every(Number.isFinite);
  if (!finite(record.mean) || !finite(record.std) || !record.std.every((s) => s > 0)) {
    throw new UserError(`${where} has no ${channels}-channel mean and std`);
  }
  const names = record.classNames;
  if (
    !Array.isArray(names) ||
    names.length !== ir.classes ||
    !names.every((n) => typeof n === "string")
  ) {
    throw new UserError(`${where} does not name the spec's ${ir.classes} classes`);
  }
  return {
    ...ir,
    data: { ...ir.data, mean: [...record.mean], std: [...record.std], classNames: [...names] },
  };
}
