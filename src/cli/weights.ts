// Trained weights for a spec: a checkpoint directory as `mnistc train` writes it (its
// weights.safetensors; or, from a checkpoint of mnistc before that format, tfjs's model.json +
// weights.bin, mapped to PyTorch's layout), or a safetensors file as the emitted train.py or any
// PyTorch code writes it. PyTorch's names and layouts either way. What `compile --weights`,
// `export --weights` and `eval --weights` read.
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { torchWeightsFromSafetensors } from "../backends/pytorch/weights.js";
import { torchWeightsFromTfjs } from "../backends/tfjs/weights.js";
import type { ModelIR, WeightMap } from "../compiler/ir.js";
import { UserError } from "../errors.js";
import { parseSafetensors, SafetensorsError } from "../formats/safetensors.js";
import {
  CHECKPOINT_FILES,
  checkpointFormat,
  MAX_CHECKPOINT_FILE_BYTES,
  readTfjsCheckpoint,
  resolveCheckpointDir,
} from "../runtime/train/checkpoint.js";
import { readRegularFile } from "../util/files.js";

/** How many mismatches one error line names before it counts the rest. */
const SHOWN = 6;

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * A safetensors file's weights for `ir`; a UserError names the file and every mismatch. Inside a
 * checkpoint folder (`inCheckpoint`) the file may not be a symlink, as no file of one may.
 */
export function readSafetensorsWeights(path: string, ir: ModelIR, inCheckpoint = false): WeightMap {
  // A regular file under the checkpoint limit, read as every other input is (util/files.ts).
  const bytes = readRegularFile(path, {
    maxBytes: MAX_CHECKPOINT_FILE_BYTES,
    what: inCheckpoint ? "a checkpoint file" : "a safetensors file",
    ...(inCheckpoint ? { noFollow: true } : {}),
  });
  let mapped: ReturnType<typeof torchWeightsFromSafetensors>;
  try {
    mapped = torchWeightsFromSafetensors(ir, parseSafetensors(bytes));
  } catch (err) {
    if (err instanceof SafetensorsError) throw new UserError(`${path}: ${err.message}`);
    throw err;
  }
  if ("errors" in mapped) {
    const { errors } = mapped;
    const more = errors.length > SHOWN ? `; and ${errors.length - SHOWN} more` : "";
    throw new UserError(
      `${path}: does not fit spec ${ir.name}: ${errors.slice(0, SHOWN).join("; ")}${more}`,
    );
  }
  return mapped.weights;
}

/**
 * A checkpoint directory's weights for `ir`, in PyTorch layout: the averaged ones of a run with
 * `train.ema` (what it evaluated), else the trained ones.
 */
export function readCheckpointWeights(dir: string, ir: ModelIR): WeightMap {
  if (checkpointFormat(dir) === "mnistc") {
    const base = resolveCheckpointDir(dir);
    const ema = join(base, CHECKPOINT_FILES.ema);
    const file = existsSync(ema) ? ema : join(base, CHECKPOINT_FILES.weights);
    return readSafetensorsWeights(file, ir, true);
  }
  const { arrays } = readTfjsCheckpoint(dir);
  const mapped = torchWeightsFromTfjs(ir, arrays);
  if ("error" in mapped) throw new UserError(`${dir}: ${mapped.error}`);
  return mapped.weights;
}

/** A file is read as safetensors (so is a missing `*.safetensors`), anything else as a checkpoint. */
export function loadWeights(path: string, ir: ModelIR): WeightMap {
  return isFile(path) || path.endsWith(".safetensors")
    ? readSafetensorsWeights(path, ir)
    : readCheckpointWeights(path, ir);
}
