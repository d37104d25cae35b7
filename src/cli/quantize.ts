// `mnistc quantize MODEL.onnx -o OUT.onnx [--calibrate N] [--method minmax|percentile] [--data DIR]`:
// a static int8 model in QDQ form (the rewrite: src/backends/onnx/quantize.ts). Activation ranges
// come from running the float model, with the tensors to measure added as graph outputs, on the
// first N training images of the dataset its metadata names, normalized as the model expects.
import * as ort from "onnxruntime-node";
import {
  activationNames,
  computedConstants,
  foldConvBatchNorms,
  foldPooledBatchNorms,
  padChannels,
  quantizeModel,
  quantTargets,
  type Range,
  sumTapsByConv,
  type TensorValue,
  withExtraOutputs,
} from "../backends/onnx/quantize.js";
import { UserError } from "../errors.js";
import { decodeModel, encodeModel, type ModelProto } from "../formats/onnx-proto.js";
import { loadDataset } from "../runtime/data/sources.js";
import { imageBytes } from "../runtime/data/split.js";
import { EVAL_BATCH } from "../runtime/eval/evaluate.js";
import { MAX_MODEL_BYTES } from "../runtime/inference/limits.js";
import { DigitModel } from "../runtime/inference/onnx-model.js";
import { checkNotAnInput, readRegularFile, writeFileAtomic } from "../util/files.js";

export const QUANT_METHODS = ["minmax", "percentile"] as const;
export type QuantMethod = (typeof QUANT_METHODS)[number];

/** Default calibration images, and the percentile method's tail cut (each side). */
export const DEFAULT_CALIBRATION = 1000;
export const PERCENTILE = 99.99;
const CALIBRATION_BATCH = 100;
const BINS = 4096;

export const QUANTIZED_KEY = "mnistc.quantized";

export interface QuantizeOptions {
  out: string;
  calibrate?: number;
  method?: QuantMethod;
  data?: string;
  threads?: number;
  /** Leave Conv/Gemm outputs float (only their inputs quantized): slower, kept for comparison. */
  inputsOnly?: boolean;
}

export interface QuantizeResult {
  bytes: Uint8Array;
  nodes: string[];
  images: number;
  dataset: string;
  method: QuantMethod;
  /** The calibration images, normalized (N·C·H·W): what `compareSpeed` times both models on. */
  calibration: Float32Array;
}

/** Images per second of the float and the int8 model on the same images, here. */
export interface SpeedComparison {
  float: number;
  int8: number;
}

/**
 * Both models timed on the calibration images in `eval`'s batches, passes alternating after a
 * warm-up so a load change hits both: whether int8 pays on this machine depends on the model (a
 * net whose convs are small spends its time in per-node work that int8 does not shorten).
 */
export async function compareSpeed(
  floatBytes: Uint8Array,
  result: QuantizeResult,
  threads: number | undefined,
  passes = 3,
): Promise<SpeedComparison> {
  const options = threads ? { threads } : {};
  const models = [
    await DigitModel.fromBytes(floatBytes, "float", options),
    await DigitModel.fromBytes(result.bytes, "int8", options),
  ];
  const seconds = [0, 0];
  try {
    const size = result.calibration.length / result.images;
    const pass = async (m: DigitModel) => {
      for (let at = 0; at < result.images; at += EVAL_BATCH) {
        const n = Math.min(EVAL_BATCH, result.images - at);
        await m.predictBatch(result.calibration.subarray(at * size, (at + n) * size), n);
      }
    };
    for (const m of models) await pass(m);
    for (let p = 0; p < passes; p++) {
      for (const [i, m] of models.entries()) {
        const started = performance.now();
        await pass(m);
        seconds[i] = (seconds[i] ?? 0) + (performance.now() - started) / 1000;
      }
    }
  } finally {
    for (const m of models) await m.release();
  }
  const rate = (s: number | undefined) => (passes * result.images) / (s ?? Number.NaN);
  return { float: rate(seconds[0]), int8: rate(seconds[1]) };
}

/** Min/max, then (percentile) a histogram over that span: the range of each tensor. */
async function calibrate(
  session: ort.InferenceSession,
  inputName: string,
  images: Float32Array,
  count: number,
  shape: [number, number, number],
  names: string[],
  constants: string[],
  method: QuantMethod,
): Promise<{ ranges: Map<string, Range>; values: Map<string, TensorValue> }> {
  const size = shape[0] * shape[1] * shape[2];
  const ranges = new Map<string, Range>(names.map((n) => [n, { min: Infinity, max: -Infinity }]));
  const values = new Map<string, TensorValue>();
  const pass = async (each: (name: string, data: Float32Array) => void, fetch: string[]) => {
    for (let start = 0; start < count; start += CALIBRATION_BATCH) {
      const n = Math.min(CALIBRATION_BATCH, count - start);
      const x = new ort.Tensor("float32", images.subarray(start * size, (start + n) * size), [
        n,
        ...shape,
      ]);
      const out = await session.run({ [inputName]: x }, fetch);
      for (const name of fetch) {
        const t = out[name];
        if (!t) throw new Error(`calibration: no ${name} in the run's outputs`);
        if (constants.includes(name)) {
          if (!values.has(name))
            values.set(name, {
              dims: t.dims.map(Number),
              data: Float32Array.from(t.data as Float32Array),
            });
        } else {
          each(name, t.data as Float32Array);
        }
      }
    }
  };
  await pass(
    (name, data) => {
      const r = ranges.get(name) as Range;
      for (const v of data) {
        if (v < r.min) r.min = v;
        if (v > r.max) r.max = v;
      }
    },
    [...names, ...constants],
  );
  if (method === "percentile") {
    const hist = new Map(names.map((n) => [n, new Float64Array(BINS)]));
    await pass((name, data) => {
      const r = ranges.get(name) as Range;
      const h = hist.get(name) as Float64Array;
      const width = (r.max - r.min) / BINS || 1;
      for (const v of data) {
        const bin = Math.min(BINS - 1, Math.floor((v - r.min) / width));
        h[bin] = (h[bin] ?? 0) + 1;
      }
    }, names);
    for (const name of names) {
      const r = ranges.get(name) as Range;
      const h = hist.get(name) as Float64Array;
      const total = h.reduce((a, b) => a + b, 0);
      const cut = (total * (100 - PERCENTILE)) / 100;
      const width = (r.max - r.min) / BINS;
      let lo = 0;
      for (let acc = 0; lo < BINS - 1 && acc + (h[lo] ?? 0) <= cut; lo++) acc += h[lo] ?? 0;
      let hi = BINS - 1;
      for (let acc = 0; hi > 0 && acc + (h[hi] ?? 0) <= cut; hi--) acc += h[hi] ?? 0;
      ranges.set(name, { min: r.min + lo * width, max: r.min + (hi + 1) * width });
    }
  }
  return { ranges, values };
}

/** Quantizes the model in `bytes` (named `file` in messages). */
export async function quantizeBytes(
  bytes: Uint8Array,
  file: string,
  opts: Omit<QuantizeOptions, "out">,
): Promise<QuantizeResult> {
  const method = opts.method ?? "minmax";
  const float: ModelProto = decodeModel(bytes, file);
  const model = await DigitModel.fromBytes(
    bytes,
    file,
    opts.threads ? { threads: opts.threads } : {},
  );
  const info = model.info;
  await model.release();
  if (float.metadataProps.some((p) => p.key === QUANTIZED_KEY)) {
    throw new UserError(`${file} is already quantized (its metadata has ${QUANTIZED_KEY})`);
  }
  if (info.dataset === undefined && opts.data === undefined) {
    throw new UserError(
      `${file} names no dataset in its metadata (not a model mnistc exported?): pass --data DIR, a folder of MNIST-format IDX files to calibrate on`,
    );
  }
  const dataset = info.dataset ?? "mnist";
  // The graph rewritten for onnxruntime's int8 kernels first (each rule: src/backends/onnx/
  // quantize.ts): shifted sums summed by a conv, batch norms folded into the conv before them or
  // between convs, so the chain through them stays int8; convs widened with zero channels to fit
  // the fast int8 conv kernel.

  const { model: summed, merged } = sumTapsByConv(float);
  const { model: convFolded, folds: convFolds } = foldConvBatchNorms(summed);
  const { model: foldedModel, folds } = foldPooledBatchNorms(convFolded);
  const { model: proto, padded } = padChannels(foldedModel);
  const targets = quantTargets(proto, !opts.inputsOnly);
  if (targets.length === 0) {
    throw new UserError(`${file}: no Conv or Gemm with constant weights to quantize`);
  }
  const [channels, height, width] = info.inputShape;
  const count = opts.calibrate ?? DEFAULT_CALIBRATION;
  const data = loadDataset(
    { dataset, preprocess: info.preprocess, mean: info.mean, std: info.std },
    {
      input: { channels, height, width },
      classes: info.classes,
      ...(opts.data !== undefined ? { dir: opts.data } : {}),
      train: true,
      test: false,
      trainLimit: count,
    },
    `${file} (${dataset})`,
  );
  const train = data.train;
  if (train.count === 0) throw new UserError(`${data.dir}: no training images to calibrate on`);
  if (train.channels !== channels || train.rows !== height || train.cols !== width) {
    throw new UserError(
      `${file}: the model reads ${channels}x${height}x${width} images, ${data.dir} has ${train.channels}x${train.rows}x${train.cols}`,
    );
  }
  const n = Math.min(count, train.count);
  const norm = await DigitModel.fromBytes(bytes, file);
  const images = norm.normalize(train.images.subarray(0, n * imageBytes(train)), n);
  await norm.release();

  const names = activationNames(targets);
  const constants = computedConstants(proto, targets);
  const session = await ort.InferenceSession.create(
    encodeModel(withExtraOutputs(proto, [...names, ...constants])),
    opts.threads ? { intraOpNumThreads: opts.threads } : {},
  );
  let measured: Awaited<ReturnType<typeof calibrate>>;
  try {
    const inputName = session.inputNames[0] ?? "input";
    measured = await calibrate(
      session,
      inputName,
      images,
      n,
      info.inputShape,
      names,
      constants,
      method,
    );
  } finally {
    await session.release();
  }
  const nodes = targets.map((t) => t.node);
  const note = {
    format: "QDQ",
    weights: "int8 symmetric, per output channel",
    biases: "int32, scale = input scale x weight scale",
    activations: opts.inputsOnly
      ? "uint8 asymmetric, Conv/Gemm inputs"
      : "uint8 asymmetric, Conv/Gemm inputs and outputs (after a sole Relu)",
    method: method === "percentile" ? `percentile ${PERCENTILE}` : "minmax",
    calibration: { dataset, images: n, split: "train" },
    taps: merged.map(
      (m) =>
        `${m.conv}'s taps summed by a ${m.kernel.join("x")} Conv (${m.into}), not slices and a Sum`,
    ),
    padded: padded.map((p) =>
      [
        p.node,
        p.inputs ? `input channels ${p.inputs.join(" -> ")}` : "",
        p.outputs ? `output channels ${p.outputs.join(" -> ")} (reader ${p.reader})` : "",
      ]
        .filter((x) => x)
        .join(": "),
    ),
    folded: [
      ...convFolds.map((f) => `${f.batchNorm} into ${f.into}`),
      ...folds.map((f) => `${f.batchNorm} into ${f.into} (shift into ${f.shiftInto})`),
    ],
    nodes,
  };
  const quantized = quantizeModel(proto, {
    targets,
    ranges: measured.ranges,
    constants: measured.values,
    metadata: [{ key: QUANTIZED_KEY, value: JSON.stringify(note) }],
  });
  return { bytes: encodeModel(quantized), nodes, images: n, dataset, method, calibration: images };
}

export async function quantize(file: string, opts: QuantizeOptions): Promise<number> {
  const bytes = readRegularFile(file, { maxBytes: MAX_MODEL_BYTES, what: "an ONNX file" });
  checkNotAnInput(opts.out);
  const result = await quantizeBytes(bytes, file, opts);
  // The result must load as any model does (metadata, weights, onnxruntime) before it is written.
  const check = await DigitModel.fromBytes(result.bytes, opts.out);
  await check.release();
  writeFileAtomic(opts.out, result.bytes);
  process.stdout.write(
    `${opts.out}: int8 QDQ model, ${result.nodes.length} Conv/Gemm nodes quantized (${result.nodes.join(", ")}); ranges by ${result.method} on ${result.images} ${result.dataset} training images; ${(result.bytes.length / 1024).toFixed(1)} KiB (float: ${(bytes.length / 1024).toFixed(1)} KiB)\n`,
  );
  const speed = await compareSpeed(bytes, result, opts.threads);
  const ratio = speed.int8 / speed.float;
  process.stdout.write(
    `speed here, on those images: int8 ${Math.round(speed.int8)} images/s, float ${Math.round(speed.float)} (${ratio.toFixed(2)}x)${ratio < 1 ? "; int8 is slower than float for this model on this machine: keep the float model where speed matters" : ""}\n`,
  );
  return 0;
}
