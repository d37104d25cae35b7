// `mnistc data [SPEC|DIR] [--data DIR] [--grid FILE.png] [--json]`: what a user checks first about
// a dataset. For a spec, its dataset as training will read it; for a folder, what the folder is:
// the four IDX files, CIFAR-10's binary batches, or an ImageFolder tree (read as
// `--channels`×`--size`×`--size`). Prints images per class and split and the training split's
// per-channel mean and std, ready to paste into the spec; `--grid` draws sample images per class.
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { DatasetName } from "../compiler/datasets.js";
import type { DataIR, InputIR } from "../compiler/ir.js";
import { UserError } from "../errors.js";
import { CIFAR_FILES } from "../runtime/data/cifar.js";
import { MNIST_FILES } from "../runtime/data/mnist.js";
import { type Dataset, loadDataset } from "../runtime/data/sources.js";
import { channelStats, classCounts, imageBytes } from "../runtime/data/split.js";
import { writeFileAtomic } from "../util/files.js";
import { printable } from "../util/text.js";
import { loadSpec, resolveSpecArg } from "./spec.js";

export interface DataOptions {
  data?: string;
  grid?: string;
  json?: boolean;
  /** For a folder without a spec: channels (1 or 3) and side of the images read. */
  channels?: number;
  size?: number;
}

/** Sample images per class in `--grid`. */
export const GRID_PER_CLASS = 8;
/** Classes shown in `--grid` (the first ones, in class order). */
export const GRID_CLASSES = 20;

/** What a folder holds, told by its files. */
function kindOfFolder(dir: string): DatasetName {
  const has = (name: string) => existsSync(join(dir, name)) || existsSync(join(dir, `${name}.gz`));
  if (has(MNIST_FILES.trainImages) || has(MNIST_FILES.testImages)) return "idx";
  if (existsSync(join(dir, CIFAR_FILES.train[0] as string))) return "cifar10";
  return "folder";
}

interface Target {
  data: DataIR;
  input: InputIR;
  classes: number | undefined;
  what: string;
}

async function target(arg: string | undefined, opts: DataOptions): Promise<Target | undefined> {
  if (arg === undefined || /\.ya?ml$/i.test(arg)) {
    const ir = await loadSpec(arg ?? resolveSpecArg("specs/step4.yaml"));
    if (!ir) return undefined;
    return { data: ir.data, input: ir.input, classes: ir.classes, what: `spec ${ir.name}` };
  }
  if (!existsSync(arg)) throw new UserError(`${arg}: no such file or folder`);
  const dataset = kindOfFolder(arg);
  const channels = dataset === "cifar10" ? 3 : dataset === "idx" ? 1 : (opts.channels ?? 3);
  if (channels !== 1 && channels !== 3) throw new UserError("--channels: 1 or 3");
  const side = dataset === "cifar10" ? 32 : (opts.size ?? 32);
  return {
    data: { dataset, path: arg, preprocess: "resize" },
    // An IDX folder's size is its header's: the loader is told none.
    input: { channels, height: dataset === "idx" ? 0 : side, width: dataset === "idx" ? 0 : side },
    classes: undefined,
    what: arg,
  };
}

export async function dataCommand(arg: string | undefined, opts: DataOptions): Promise<number> {
  const t = await target(arg, opts);
  if (!t) return 1;
  const lines: string[] = [];
  // Statistics are what this command computes: asked for even where the spec sets them.
  const data: DataIR = { dataset: t.data.dataset, preprocess: t.data.preprocess };
  if (t.data.path !== undefined) data.path = t.data.path;
  const dataset: Dataset = loadDataset(
    data,
    {
      input: t.input,
      ...(t.classes !== undefined ? { classes: t.classes } : {}),
      ...(opts.data !== undefined ? { dir: opts.data } : {}),
      log: (l) => lines.push(l),
    },
    t.what,
  );
  const { train, test } = dataset;
  const stats = channelStats(train);
  const classes = dataset.classNames.length;
  const trainCounts = classCounts(train, classes);
  const testCounts = classCounts(test, classes);
  const summary = {
    dataset: dataset.name,
    dir: dataset.dir,
    ...(dataset.testNote ? { test: dataset.testNote } : {}),
    shape: [train.channels, train.rows, train.cols],
    classes: dataset.classNames.map((name, i) => ({
      class: i,
      name,
      train: trainCounts[i] ?? 0,
      test: testCounts[i] ?? 0,
    })),
    train: train.count,
    testCount: test.count,
    mean: stats.mean,
    std: stats.std,
  };
  if (opts.grid) writeFileAtomic(opts.grid, await gridPng(dataset, t.what));
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    return 0;
  }
  for (const line of lines) process.stderr.write(`${line}\n`);
  let nameWidth = 5;
  for (const c of summary.classes) nameWidth = Math.max(nameWidth, printable(c.name).length);
  const out = [
    `dataset   ${dataset.name}, ${dataset.dir}${dataset.testNote ? ` (test: ${dataset.testNote})` : ""}`,
    `images    ${train.channels}x${train.rows}x${train.cols}, ${train.count} training, ${test.count} test, ${classes} classes`,
    "",
    `  class  ${"name".padEnd(nameWidth)}  train   test`,
    ...summary.classes.map(
      (c) =>
        `  ${String(c.class).padStart(5)}  ${printable(c.name).padEnd(nameWidth)}  ${String(c.train).padStart(5)}  ${String(c.test).padStart(5)}`,
    ),
    "",
    "per-channel mean and std of the training split (x/255), for the spec:",
    `  data: { dataset: ${dataset.name}, mean: ${JSON.stringify(stats.mean)}, std: ${JSON.stringify(stats.std)} }`,
    ...(opts.grid ? ["", `grid      ${opts.grid}`] : []),
  ];
  process.stdout.write(`${out.join("\n")}\n`);
  return 0;
}

async function gridPng(dataset: Dataset, what: string): Promise<Uint8Array> {
  const { imageGridSvg, shortName } = await import("../runtime/report/misclassified.js");
  const { svgToPng } = await import("../runtime/render/png.js");
  const { train } = dataset;
  const size = imageBytes(train);
  const shown = Math.min(GRID_CLASSES, dataset.classNames.length);
  const cells = [];
  for (let c = 0; c < shown; c++) {
    let found = 0;
    for (let i = 0; i < train.count && found < GRID_PER_CLASS; i++) {
      if (train.labels[i] !== c) continue;
      found += 1;
      cells.push({
        pixels: train.images.slice(i * size, (i + 1) * size),
        caption: found === 1 ? shortName(dataset.classNames, c) : "",
        note: `#${i}`,
      });
    }
    while (found++ < GRID_PER_CLASS) cells.push({ pixels: new Uint8Array(size), caption: "" });
  }
  const more = dataset.classNames.length > shown ? ` (first ${shown} classes)` : "";
  return svgToPng(
    imageGridSvg(cells, {
      rows: train.rows,
      cols: train.cols,
      channels: train.channels,
      perRow: GRID_PER_CLASS,
      zoom: Math.max(1, Math.round(64 / Math.max(train.rows, train.cols))),
      title: `${what}: ${dataset.name}, ${GRID_PER_CLASS} training images per class${more}`,
      captionChars: 16,
    }),
  );
}
