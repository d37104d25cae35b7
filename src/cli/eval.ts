// `mnistc eval [MODEL] [--data DIR] [--test-limit N] [--json]`: an ONNX model on the test set of
// the dataset its metadata names (`--data` to read it from another folder) with onnxruntime-node: accuracy, mean NLL loss, per-class accuracy, confusion matrix, speed.
// `mnistc eval SPEC --weights WEIGHTS` evaluates the spec's ONNX model with those weights (a
// checkpoint directory or a safetensors file) without writing it anywhere the user sees.
// `--report DIR` also writes report.json, confusion.png and misclassified.png into DIR.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UserError } from "../errors.js";
import { loadDataset } from "../runtime/data/sources.js";
import { imageBytes } from "../runtime/data/split.js";
import { EVAL_BATCH, MetricsAccumulator } from "../runtime/eval/evaluate.js";
import { DigitModel, resolveModelFile } from "../runtime/inference/onnx-model.js";
import { MAX_HEATMAP_CLASSES, renderConfusionPng } from "../runtime/report/confusion.js";
import {
  byConfidence,
  type Misclassified,
  renderMisclassifiedPng,
} from "../runtime/report/misclassified.js";
import { writeFileAtomic } from "../util/files.js";
import { classLabel } from "../util/text.js";
import { onnxBytes, withRunDataset } from "./export-onnx.js";
import { loadSpec } from "./spec.js";
import { loadWeights } from "./weights.js";

export interface EvalOptions {
  data?: string;
  testLimit?: number;
  json?: boolean;
  /** With a spec as MODEL: its trained weights. */
  weights?: string;
  /** A folder for report.json, confusion.png and misclassified.png. */
  report?: string;
}

/** The most confident mistakes shown in misclassified.png (report.json lists them all). */
export const MAX_SHOWN = 100;

/** The ONNX model of `spec` with `weights`, in a temporary file (removed after loading). */
async function loadSpecModel(spec: string, weights: string): Promise<DigitModel | undefined> {
  const specIr = await loadSpec(spec);
  if (!specIr) return undefined;
  const ir = withRunDataset(specIr, weights);
  const bytes = onnxBytes(ir, loadWeights(weights, ir), weights);
  const dir = mkdtempSync(join(tmpdir(), "mnistc-eval-"));
  try {
    const file = join(dir, `${ir.name}.onnx`);
    writeFileSync(file, bytes);
    const model = await DigitModel.load(file);
    model.info.file = weights;
    return model;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function percent(f: number): string {
  return `${(100 * f).toFixed(2)}%`;
}

/** A square table with row and column headers, every column right-aligned. */
export function formatConfusion(confusion: number[][]): string {
  // A loop, not Math.max(...cells): a spread of classes² arguments overflows the stack.
  let width = 4;
  for (const row of confusion) for (const v of row) width = Math.max(width, String(v).length + 1);
  const cell = (v: string | number) => String(v).padStart(width);
  const lines = [`true\\pred ${confusion.map((_, c) => cell(c)).join("")}`];
  for (const [t, row] of confusion.entries()) {
    lines.push(`${String(t).padStart(9)} ${row.map(cell).join("")}`);
  }
  return lines.join("\n");
}

export async function evaluate(modelArg: string | undefined, opts: EvalOptions): Promise<number> {
  let model: DigitModel;
  if (opts.weights !== undefined) {
    if (modelArg === undefined || !/\.ya?ml$/.test(modelArg)) {
      throw new UserError("--weights goes with a spec: mnistc eval SPEC.yaml --weights WEIGHTS");
    }
    const loaded = await loadSpecModel(modelArg, opts.weights);
    if (!loaded) return 1;
    model = loaded;
  } else {
    model = await DigitModel.load(resolveModelFile(modelArg));
  }
  const { classes, inputShape } = model.info;
  if (opts.report !== undefined && classes > MAX_HEATMAP_CLASSES) {
    await model.release();
    throw new UserError(
      `${model.info.file}: --report draws confusion.png for at most ${MAX_HEATMAP_CLASSES} classes; the model answers ${classes} (eval without --report prints the matrix)`,
    );
  }
  // The model's own dataset (mnistc's models record it); a model that names none is taken for
  // an MNIST one, as every model mnistc wrote before datasets was, and the output says so.
  const dataset = model.info.dataset ?? "mnist";
  const [channels, height, width] = inputShape;
  let data: ReturnType<typeof loadDataset>;
  try {
    data = loadDataset(
      { dataset, preprocess: model.info.preprocess, mean: model.info.mean, std: model.info.std },
      {
        input: { channels, height, width },
        classes,
        ...(opts.data !== undefined ? { dir: opts.data } : {}),
        train: false,
        ...(opts.testLimit !== undefined ? { testLimit: opts.testLimit } : {}),
      },
      `${model.info.file} (${dataset})`,
    );
  } catch (err) {
    await model.release();
    throw err;
  }
  const { test } = data;
  if (channels !== test.channels || height !== test.rows || width !== test.cols) {
    await model.release();
    throw new UserError(
      `${model.info.file}: the model reads ${channels}x${height}x${width} images, the test set has ${test.channels}x${test.rows}x${test.cols}`,
    );
  }
  if (test.count === 0) throw new UserError(`${data.dir}: the test set is empty`);
  const classNames = model.info.classNames;

  const plane = imageBytes(test);
  const metrics = new MetricsAccumulator(classes);
  const mistakes: Misclassified[] = [];
  const started = process.hrtime.bigint();
  for (let start = 0; start < test.count; start += EVAL_BATCH) {
    const n = Math.min(EVAL_BATCH, test.count - start);
    const input = model.normalize(test.images.subarray(start * plane, (start + n) * plane), n);
    const logProbs = await model.predictBatch(input, n);
    const labels = test.labels.subarray(start, start + n);
    for (const { at: i, predicted } of metrics.add(logProbs, labels)) {
      const index = start + i;
      mistakes.push({
        index,
        label: labels[i] ?? 0,
        predicted,
        confidence: Math.exp(logProbs[i * classes + predicted] ?? Number.NEGATIVE_INFINITY),
        pixels: test.images.slice(index * plane, (index + 1) * plane),
      });
    }
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await model.release();

  const m = metrics.result();
  const imagesPerSecond = Math.round(m.count / seconds);
  const { info } = model;
  const report = {
    model: { file: info.file, name: info.name, params: info.params, weights: info.weights },
    dataset,
    ...(info.dataset ? {} : { datasetAssumed: true }),
    data: data.dir,
    classNames,
    count: m.count,
    accuracy: m.accuracy,
    loss: m.loss,
    perClass: m.perClass,
    confusion: m.confusion,
    imagesPerSecond,
    batchSize: EVAL_BATCH,
  };
  const written =
    opts.report === undefined
      ? []
      : await writeReport(opts.report, report, byConfidence(mistakes), test, classNames);
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return 0;
  }
  const shownName = (c: number) => classLabel(classNames, c);
  let nameWidth = 5;
  for (let c = 0; c < classes; c++) nameWidth = Math.max(nameWidth, shownName(c).length);
  const about = [
    info.name,
    info.weights,
    info.params !== undefined ? `${info.params} parameters` : "",
  ];
  const lines = [
    `model     ${info.file} (${about.filter(Boolean).join(", ")})`,
    `data      ${dataset}${info.dataset ? "" : " (the model names no dataset: taken for MNIST)"}, ${data.dir}: ${m.count} test images${data.testNote ? ` (${data.testNote})` : ""}`,
    `accuracy  ${percent(m.accuracy)} (${m.correct}/${m.count})`,
    `loss      ${m.loss.toFixed(4)} (mean NLL)`,
    `speed     ${imagesPerSecond} images/s (onnxruntime-node, batches of ${EVAL_BATCH})`,
    "",
    "per-class accuracy:",
    `  ${"class".padEnd(nameWidth)}  count  correct  accuracy`,
    ...m.perClass.map(
      (c) =>
        `  ${shownName(c.class).padEnd(nameWidth)}  ${String(c.count).padStart(5)}  ${String(c.correct).padStart(7)}  ${percent(c.accuracy).padStart(8)}`,
    ),
    "",
    "confusion matrix (rows: true class, columns: predicted; by class number):",
    formatConfusion(m.confusion),
    ...(written.length > 0 ? ["", `report    ${written.join(", ")}`] : []),
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
  return 0;
}

/** report.json (the numbers and every mistake), confusion.png and misclassified.png in `dir`. */
async function writeReport(
  dir: string,
  report: { model: { name?: string; file: string }; count: number; confusion: number[][] },
  mistakes: Misclassified[],
  test: { channels: number; rows: number; cols: number },
  classNames: string[],
): Promise<string[]> {
  const name = report.model.name ?? report.model.file;
  const files = {
    json: join(dir, "report.json"),
    confusion: join(dir, "confusion.png"),
    misclassified: join(dir, "misclassified.png"),
  };
  const listed = mistakes.map(({ index, label, predicted, confidence }) => ({
    index,
    label,
    predicted,
    confidence,
  }));
  writeFileAtomic(files.json, `${JSON.stringify({ ...report, misclassified: listed }, null, 2)}\n`);
  const wrong = `${mistakes.length} of ${report.count} test images misclassified`;
  writeFileAtomic(
    files.confusion,
    await renderConfusionPng(`${name}: confusion matrix (${wrong})`, report.confusion, classNames),
  );
  const shown = mistakes.slice(0, MAX_SHOWN);
  const title =
    shown.length < mistakes.length
      ? `${name}: ${wrong}; the ${shown.length} most confident shown (true → predicted, confidence)`
      : `${name}: ${wrong} (true → predicted, confidence)`;
  writeFileAtomic(
    files.misclassified,
    renderMisclassifiedPng(shown, {
      rows: test.rows,
      cols: test.cols,
      channels: test.channels,
      classNames,
      title,
    }),
  );
  return [files.json, files.confusion, files.misclassified];
}
