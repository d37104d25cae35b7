// Checkpoints: a directory in tfjs's own layers-model format (`model.json` + `weights.bin`), plus
// what an exact `--resume` needs: `training.json` (epochs done, RNG state, options, metrics so far,
// optimizer manifest) and `optimizer.bin` (momentum buffers / Adam moments, float32).
// A checkpoint is written into a temporary sibling directory, fsynced, and renamed over the old
// one, so an interrupted run always leaves its last complete checkpoint behind.
// `readCheckpoint` needs no tfjs: the ONNX exporter reads weights through it.
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import type * as tfNs from "@tensorflow/tfjs";
import { cannotRead, UserError } from "../../errors.js";
import type { RngState } from "../../util/rng.js";
import type { RunMetrics, RunOptions } from "./metrics.js";
import type { OptimizerState } from "./optim.js";

export const CHECKPOINT_FORMAT_VERSION = 1;

export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: "float32" | "int32";
}

/** What `model.save` hands to a save handler, reduced to what a checkpoint keeps. */
export interface ModelArtifacts {
  modelTopology: unknown;
  weightSpecs: WeightSpec[];
  weightData: Uint8Array;
}

export interface NamedArray {
  shape: number[];
  data: Float32Array;
}

/** `training.json`: everything besides the weights that a resumed run needs. */
export interface TrainingState {
  version: number;
  spec: string;
  /** Epochs completed; a resumed run starts at epoch `epoch + 1` (1-based). */
  epoch: number;
  rng: RngState;
  /** Random streams of layers that have their own (seeded dropout), by layer name. */
  layerRng?: Record<string, RngState>;
  options: RunOptions;
  optimizer: { type: OptimizerState["type"]; step: number; slots: WeightSpec[] };
  metrics: RunMetrics;
}

export interface Checkpoint {
  /** The parsed `model.json` (modelTopology, weightsManifest, ...). */
  modelJson: Record<string, unknown> & { modelTopology?: unknown };
  /** Weights by tfjs name (`conv1.0/kernel`), tfjs layout. */
  arrays: Map<string, NamedArray>;
}

// ---------------------------------------------------------------------------------------------
// Writing

/** Writes a file and fsyncs it, so a rename after it never exposes a half-written file. */
function writeDurable(path: string, data: string | Uint8Array): void {
  const fd = openSync(path, "w");
  try {
    const bytes = typeof data === "string" ? Buffer.from(data) : data;
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Some platforms cannot fsync a directory; the rename is still atomic there.
  }
}

/** Atomically replaces one file (temp file beside it, fsync, rename). */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
  writeDurable(tmp, data);
  renameSync(tmp, path);
  fsyncDir(dirname(path));
}

/**
 * Atomically replaces directory `dir` with one holding `files`. A directory cannot be renamed
 * over a non-empty one, so the old one steps aside to `<dir>.old` first; if the process dies
 * between the two renames, `resolveCheckpointDir` finds the complete one under that name.
 */
export function writeDirAtomic(dir: string, files: Record<string, string | Uint8Array>): void {
  const parent = dirname(dir);
  mkdirSync(parent, { recursive: true });
  const tmp = join(parent, `.${basename(dir)}.tmp-${process.pid}`);
  const old = `${dir}.old`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  for (const [name, data] of Object.entries(files)) writeDurable(join(tmp, name), data);
  fsyncDir(tmp);
  if (existsSync(dir)) {
    rmSync(old, { recursive: true, force: true });
    renameSync(dir, old);
  }
  renameSync(tmp, dir);
  fsyncDir(parent);
  rmSync(old, { recursive: true, force: true });
}

function concatBytes(parts: ArrayBuffer | ArrayBuffer[]): Uint8Array {
  if (!Array.isArray(parts)) return new Uint8Array(parts);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let off = 0;
  for (const p of parts) {
    out.set(new Uint8Array(p), off);
    off += p.byteLength;
  }
  return out;
}

/** The model's topology and weights as tfjs would save them, captured in memory. */
export async function captureModel(
  tf: typeof tfNs,
  model: tfNs.LayersModel,
): Promise<ModelArtifacts> {
  let captured: ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      captured = {
        modelTopology: artifacts.modelTopology,
        weightSpecs: (artifacts.weightSpecs ?? []).map((s) => ({
          name: s.name,
          shape: s.shape.slice(),
          dtype: s.dtype === "int32" ? "int32" : "float32",
        })),
        weightData: concatBytes(artifacts.weightData ?? new ArrayBuffer(0)),
      };
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } };
    }),
  );
  if (!captured) throw new Error("model.save did not call the save handler");
  return captured;
}

export interface CheckpointContents {
  model: ModelArtifacts;
  training: Omit<TrainingState, "optimizer" | "version">;
  optimizer: OptimizerState;
}

export function writeCheckpoint(dir: string, contents: CheckpointContents): void {
  const { model, training, optimizer } = contents;
  const modelJson = {
    format: "layers-model",
    generatedBy: "mnistc",
    convertedBy: null,
    modelTopology: model.modelTopology,
    weightsManifest: [{ paths: ["weights.bin"], weights: model.weightSpecs }],
  };
  const slotBytes = new Uint8Array(optimizer.slots.reduce((n, s) => n + s.data.byteLength, 0));
  let off = 0;
  for (const s of optimizer.slots) {
    slotBytes.set(new Uint8Array(s.data.buffer, s.data.byteOffset, s.data.byteLength), off);
    off += s.data.byteLength;
  }
  const state: TrainingState = {
    version: CHECKPOINT_FORMAT_VERSION,
    ...training,
    optimizer: {
      type: optimizer.type,
      step: optimizer.step,
      slots: optimizer.slots.map((s) => ({ name: s.name, shape: s.shape, dtype: "float32" })),
    },
  };
  writeDirAtomic(dir, {
    "model.json": `${JSON.stringify(modelJson)}\n`,
    "weights.bin": model.weightData,
    "training.json": `${JSON.stringify(state, null, 2)}\n`,
    "optimizer.bin": slotBytes,
  });
}

// ---------------------------------------------------------------------------------------------
// Reading (no tfjs needed)

/** The checkpoint directory to read: `dir`, or `<dir>.old` if a write was cut off mid-swap. */
export function resolveCheckpointDir(dir: string): string {
  if (existsSync(join(dir, "model.json"))) return dir;
  const old = `${dir}.old`;
  if (existsSync(join(old, "model.json"))) return old;
  return dir;
}

function readJson(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw cannotRead(file, err);
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new UserError(`${file}: not valid JSON (${(err as Error).message})`);
  }
}

function shapeSize(shape: number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

/** Splits a float32/int32 byte blob into named arrays by a tfjs-style manifest. */
function splitArrays(
  bytes: Uint8Array,
  specs: WeightSpec[],
  file: string,
): Map<string, NamedArray> {
  const arrays = new Map<string, NamedArray>();
  let off = 0;
  for (const spec of specs) {
    const n = shapeSize(spec.shape);
    if (spec.dtype !== "float32" && spec.dtype !== "int32") {
      throw new UserError(`${file}: weight ${spec.name} has unsupported dtype ${spec.dtype}`);
    }
    if (off + 4 * n > bytes.length) {
      throw new UserError(`${file}: truncated (${bytes.length} bytes; ${spec.name} needs more)`);
    }
    // Copy into fresh buffers: a Node Buffer's `slice` is a view into a shared pool.
    const words = new Uint8Array(4 * n);
    words.set(bytes.subarray(off, off + 4 * n));
    const data =
      spec.dtype === "float32"
        ? new Float32Array(words.buffer)
        : Float32Array.from(new Int32Array(words.buffer));
    arrays.set(spec.name, { shape: spec.shape.slice(), data });
    off += 4 * n;
  }
  if (off !== bytes.length) {
    throw new UserError(`${file}: ${bytes.length - off} bytes more than its manifest describes`);
  }
  return arrays;
}

function readBinary(file: string): Uint8Array {
  try {
    return readFileSync(file);
  } catch (err) {
    throw cannotRead(file, err);
  }
}

/** A checkpoint's `model.json` and weights by tfjs name, read without tfjs. */
export function readCheckpoint(dir: string): Checkpoint {
  const base = resolveCheckpointDir(dir);
  const modelFile = join(base, "model.json");
  if (!existsSync(base)) throw new UserError(`${dir}: no such checkpoint directory`);
  const modelJson = readJson(modelFile);
  const manifest = modelJson.weightsManifest;
  if (!Array.isArray(manifest)) {
    throw new UserError(`${modelFile}: no weightsManifest (not a tfjs layers-model checkpoint)`);
  }
  const arrays = new Map<string, NamedArray>();
  for (const group of manifest as { paths: string[]; weights: WeightSpec[] }[]) {
    const bytes = concatBytes(
      group.paths.map((p) => {
        const b = readBinary(join(base, p));
        return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
      }),
    );
    const file = join(base, group.paths[0] ?? "weights.bin");
    for (const [name, a] of splitArrays(bytes, group.weights, file)) arrays.set(name, a);
  }
  return { modelJson, arrays };
}

/** `training.json` and the optimizer slots of a checkpoint written by `mnistc train`. */
export function readTrainingState(dir: string): {
  state: TrainingState;
  optimizer: OptimizerState;
} {
  const base = resolveCheckpointDir(dir);
  const file = join(base, "training.json");
  const state = readJson(file) as unknown as TrainingState;
  if (
    state.version !== CHECKPOINT_FORMAT_VERSION ||
    !state.optimizer ||
    !Array.isArray(state.rng)
  ) {
    throw new UserError(`${file}: not a training state written by this version of mnistc`);
  }
  const binFile = join(base, "optimizer.bin");
  const slots = splitArrays(readBinary(binFile), state.optimizer.slots, binFile);
  return {
    state,
    optimizer: {
      type: state.optimizer.type,
      step: state.optimizer.step,
      slots: [...slots].map(([name, a]) => ({ name, shape: a.shape, data: a.data })),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Loading into a tfjs model

/**
 * Sets every weight of `model` (trainable and buffers) from `arrays`, matched by tfjs name.
 * Names and shapes must match exactly: a checkpoint of another architecture is a `UserError`.
 */
export function loadWeightsInto(
  tf: typeof tfNs,
  model: tfNs.LayersModel,
  arrays: Map<string, NamedArray>,
  source: string,
): void {
  const expected = new Set<string>();
  for (const w of model.weights) {
    expected.add(w.originalName);
    const a = arrays.get(w.originalName);
    if (!a)
      throw new UserError(
        `${source}: no weight ${w.originalName}; the checkpoint is of another model`,
      );
    if (a.shape.join("x") !== w.shape.join("x")) {
      throw new UserError(
        `${source}: weight ${w.originalName} has shape [${a.shape}], the model needs [${w.shape}]`,
      );
    }
  }
  const extra = [...arrays.keys()].find((name) => !expected.has(name));
  if (extra)
    throw new UserError(
      `${source}: weight ${extra} is not in the model; the checkpoint is of another model`,
    );
  tf.tidy(() => {
    for (const w of model.weights) {
      const a = arrays.get(w.originalName) as NamedArray;
      w.write(tf.tensor(a.data, a.shape, "float32"));
    }
  });
}
