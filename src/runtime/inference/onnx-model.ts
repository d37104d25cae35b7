// An ONNX digit classifier run by onnxruntime-node: what `eval`, `predict` and `serve` call.
//
// One ORT session per model; `predictBatch` may be called concurrently (ORT sessions are safe to
// run from several requests at once). The model must read one float32 image tensor [N, C, H, W]
// with known C, H, W and write [N, classes]; mnistc's own files also carry the normalization in
// their metadata, other models are assumed to take x/255 (mean 0, std 1).
import { existsSync } from "node:fs";
import { basename } from "node:path";
import * as ort from "onnxruntime-node";
import {
  DATASET_NAMES,
  type DatasetName,
  datasetDef,
  isDatasetName,
  type PreprocessProfile,
} from "../../compiler/datasets.js";
import { UserError } from "../../errors.js";
import {
  META,
  type MnistcMetadata,
  metadataProblems,
  readMetadata,
} from "../../formats/onnx-metadata.js";
import { decodeModel, floatValues } from "../../formats/onnx-proto.js";
import { packagePath } from "../../paths.js";
import { readRegularFile } from "../../util/files.js";
import { MAX_CLASSES, MAX_MODEL_BYTES } from "./limits.js";

export { MAX_MODEL_BYTES } from "./limits.js";

/** The shipped model used when a command names none: the seed's net (specs/step4.yaml), trained. */
export function defaultModelFile(): string {
  return packagePath("models", "step4.onnx");
}

/** `file`, or the default model; a clear error when neither is there. */
export function resolveModelFile(file: string | undefined): string {
  if (file !== undefined) return file;
  const fallback = defaultModelFile();
  if (!existsSync(fallback)) {
    throw new UserError(
      `no model given and the default model ${fallback} does not exist (name an ONNX file, or export one with: mnistc export specs/step4.yaml --weights CHECKPOINT -o ${fallback})`,
    );
  }
  return fallback;
}

/**
 * Floats a model carries that make it answer NaN, so it is refused: NaN or an infinity in an
 * initializer or in a Constant node's value, and a negative batch-norm variance (the square root
 * of it is NaN).
 */
function nonFiniteWeights(proto: ReturnType<typeof decodeModel>): string[] {
  const bad: string[] = [];
  const graph = proto.graph;
  const initializers = new Map((graph?.initializer ?? []).map((t) => [t.name ?? "", t]));
  for (const t of graph?.initializer ?? []) {
    if (t.dataType !== 1) continue; // FLOAT
    if (!floatValues(t).every(Number.isFinite))
      bad.push(`initializer ${t.name} holds NaN or infinite values`);
  }
  for (const node of graph?.node ?? []) {
    if (node.opType === "Constant") {
      for (const attr of node.attribute ?? []) {
        const t = attr.t;
        if (t && t.dataType === 1 && !floatValues(t).every(Number.isFinite))
          bad.push(`Constant node ${node.name || node.output?.[0]} holds NaN or infinite values`);
        if (attr.name === "value_float" && !Number.isFinite(attr.f ?? 0))
          bad.push(`Constant node ${node.name || node.output?.[0]} is ${attr.f}`);
      }
    }
    if (node.opType === "BatchNormalization") {
      const variance = initializers.get(node.input?.[4] ?? "");
      if (variance && variance.dataType === 1 && floatValues(variance).some((v) => v < 0))
        bad.push(`batch norm ${node.name} has a negative variance in ${variance.name}`);
    }
  }
  return bad;
}

/**
 * Ops that run a subgraph a number of times the model decides (a `Loop` of 10^12 iterations hangs
 * `predict` with no way to bound it), and any node carrying a subgraph. mnistc's models, and the
 * image classifiers it reads, are straight-line graphs: these are refused at load.
 */
const CONTROL_FLOW_OPS = new Set(["Loop", "If", "Scan", "SequenceMap"]);

function controlFlowNodes(proto: ReturnType<typeof decodeModel>): string[] {
  const nodes = [
    ...(proto.graph?.node ?? []),
    ...(proto.functions ?? []).flatMap((f) => f.node ?? []),
  ];
  return nodes
    .filter(
      (node) =>
        CONTROL_FLOW_OPS.has(node.opType ?? "") ||
        (node.attribute ?? []).some((a) => a.g || (a.graphs?.length ?? 0) > 0),
    )
    .map((node) => `${node.opType} node ${node.name || node.output?.[0] || "(unnamed)"}`);
}

/** The largest fixed batch axis a model may declare (each call runs a batch of that size). */
export const MAX_FIXED_BATCH = 65536;

export interface DigitModelInfo {
  /** The spec name from the metadata, else the graph name, else the file name. */
  name: string;
  file: string;
  inputShape: [number, number, number];
  classes: number;
  /** Per-channel normalization: x' = (x/255 - mean) / std. */
  mean: number[];
  std: number[];
  /** Trainable parameters as the spec counted them, when the file says. */
  params?: number;
  /** `trained`, `seeded-init seed=<n>`, or undefined for a model mnistc did not write. */
  weights?: string;
  /** The dataset the metadata names; absent for a foreign model or one from before datasets. */
  dataset?: DatasetName;
  /** One name per class: the metadata's, else the dataset's, else the class numbers. */
  classNames: string[];
  /**
   * How predict and serve prepare a picture: the metadata's, else `digit` for a 1x28x28 model
   * that names no dataset (mnistc's models from before datasets are MNIST's), else `resize`.
   */
  preprocess: PreprocessProfile;
}

/** The dataset, class names and preprocessing a model's metadata gives, with their fallbacks. */
function dataOf(
  meta: MnistcMetadata,
  shape: [number, number, number],
  classes: number,
  file: string,
): Pick<DigitModelInfo, "dataset" | "classNames" | "preprocess"> {
  let dataset: DatasetName | undefined;
  if (meta.dataset !== undefined) {
    if (!isDatasetName(meta.dataset)) {
      throw new UserError(
        `${file}: bad metadata: ${META.dataset} names ${JSON.stringify(meta.dataset.slice(0, 40))}, not a dataset mnistc knows (${DATASET_NAMES.join(", ")})`,
      );
    }
    dataset = meta.dataset;
  }
  const fixed = dataset ? datasetDef(dataset).classNames : undefined;
  const classNames =
    meta.classNames ??
    (fixed && fixed.length === classes
      ? [...fixed]
      : Array.from({ length: classes }, (_, i) => String(i)));
  const mnistShaped = shape[0] === 1 && shape[1] === 28 && shape[2] === 28;
  const preprocess =
    meta.preprocess ?? (dataset ? datasetDef(dataset).profile : mnistShaped ? "digit" : "resize");
  return { ...(dataset ? { dataset } : {}), classNames, preprocess };
}

export interface DigitModelOptions {
  /** ORT intra-op threads (default: ORT's choice, all cores). */
  threads?: number;
}

function knownDims(dims: readonly (number | string)[]): number[] | undefined {
  const rest = dims.slice(1);
  return rest.every((d) => typeof d === "number" && d > 0) ? (rest as number[]) : undefined;
}

/** Broadcast a per-channel list (one value, or one per channel) to `channels` values. */
function perChannel(
  values: number[] | undefined,
  channels: number,
  fallback: number,
  what: string,
): number[] {
  if (!values) return new Array(channels).fill(fallback);
  if (values.length === channels) return values;
  if (values.length === 1) return new Array(channels).fill(values[0]);
  throw new UserError(
    `${what} has ${values.length} values for an input of ${channels} channels (expected 1 or ${channels})`,
  );
}

export class DigitModel {
  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly inputName: string,
    private readonly outputName: string,
    /** A batch axis fixed in the graph (PyTorch exports without dynamic axes fix it to 1). */
    private readonly fixedBatch: number | undefined,
    readonly info: DigitModelInfo,
  ) {}

  /** Load and check a model; every problem with the file is a `UserError` naming it. */
  static async load(file: string, options: DigitModelOptions = {}): Promise<DigitModel> {
    const bytes = readRegularFile(file, { maxBytes: MAX_MODEL_BYTES, what: "an ONNX file" });
    return DigitModel.open(bytes, file, options, true);
  }

  /**
   * A model in memory (a training run's inference graph at its current weights, evaluated after
   * each epoch): checked as a file is, except that weights may be anything training made them.
   * `file` names it in errors and `info`.
   */
  static async fromBytes(
    bytes: Uint8Array,
    file: string,
    options: DigitModelOptions = {},
  ): Promise<DigitModel> {
    return DigitModel.open(bytes, file, options, false);
  }

  private static async open(
    bytes: Uint8Array,
    file: string,
    options: DigitModelOptions,
    finiteWeights: boolean,
  ): Promise<DigitModel> {
    const proto = decodeModel(bytes, file);
    const problems = metadataProblems(proto);
    if (problems.length > 0) throw new UserError(`${file}: bad metadata: ${problems.join("; ")}`);
    const loops = controlFlowNodes(proto);
    if (loops.length > 0) {
      throw new UserError(
        `${file}: control flow is not supported (${loops.slice(0, 3).join(", ")}${loops.length > 3 ? `, and ${loops.length - 3} more` : ""}): mnistc runs straight-line image classifiers, whose run time the input fixes`,
      );
    }
    const badWeights = finiteWeights ? nonFiniteWeights(proto) : [];
    if (badWeights.length > 0)
      throw new UserError(`${file}: bad weights: ${badWeights.join("; ")}`);
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(bytes, {
        ...(options.threads ? { intraOpNumThreads: options.threads } : {}),
      });
    } catch (err) {
      const reason = (err as Error).message.split("\n")[0];
      throw new UserError(`${file}: onnxruntime cannot load this model: ${reason}`);
    }

    const [input, ...moreInputs] = session.inputMetadata;
    const [output, ...moreOutputs] = session.outputMetadata;
    // One float32 output [N, classes]: a second output, or integers, would be read as classes.
    if (moreOutputs.length > 0 || (output?.isTensor && output.type !== "float32")) {
      const got = session.outputMetadata
        .map((o) => (o.isTensor ? `${o.type} [${o.shape.join(", ")}]` : "a non-tensor"))
        .join(" and ");
      await session.release();
      throw new UserError(
        `${file}: expected one float32 output [N, classes] of log-probabilities; got ${got}`,
      );
    }
    const imageDims = input?.isTensor && input.type === "float32" ? input.shape : undefined;
    const chw = imageDims?.length === 4 ? knownDims(imageDims) : undefined;
    if (!input || moreInputs.length > 0 || !chw) {
      const got = input?.isTensor
        ? `${input.type} [${input.shape.join(", ")}]${moreInputs.length ? ` and ${moreInputs.length} more inputs` : ""}`
        : "no tensor input";
      await session.release();
      throw new UserError(
        `${file}: not an image model: expected one float32 input [N, C, H, W] with known C, H, W; got ${got}`,
      );
    }
    const [channels = 1, height = 1, width = 1] = chw;

    const meta = readMetadata(proto);
    const outDims = output?.isTensor ? output.shape : [];
    const classes =
      outDims.length === 2 && typeof outDims[1] === "number" ? outDims[1] : meta.classes;
    if (!output || classes === undefined || classes < 1) {
      await session.release();
      throw new UserError(
        `${file}: expected an output [N, classes]; got ${output?.isTensor ? `[${output.shape.join(", ")}]` : "none"}`,
      );
    }

    if (classes > MAX_CLASSES) {
      await session.release();
      throw new UserError(
        `${file}: the model answers ${classes.toLocaleString("en-US")} classes; mnistc reads models of at most ${MAX_CLASSES.toLocaleString("en-US")}`,
      );
    }
    const width2 = outDims.length === 2 && typeof outDims[1] === "number" ? outDims[1] : undefined;
    if (meta.classes !== undefined && width2 !== undefined && meta.classes !== width2) {
      await session.release();
      throw new UserError(
        `${file}: bad metadata: ${META.classes} says ${meta.classes} classes, the output [N, ${width2}] has ${width2}`,
      );
    }
    let mean: number[];
    let std: number[];
    let data: ReturnType<typeof dataOf>;
    try {
      mean = perChannel(meta.mean, channels, 0, `${file}: bad metadata: ${META.mean}`);
      std = perChannel(meta.std, channels, 1, `${file}: bad metadata: ${META.std}`);
      data = dataOf(meta, [channels, height, width], classes, file);
    } catch (err) {
      await session.release();
      throw err;
    }
    const info: DigitModelInfo = {
      name: meta.spec ?? (proto.graph?.name || basename(file, ".onnx")),
      file,
      inputShape: [channels, height, width],
      classes,
      mean,
      std,
      ...(meta.trainableParams !== undefined ? { params: meta.trainableParams } : {}),
      ...(meta.weights !== undefined ? { weights: meta.weights } : {}),
      ...data,
    };
    const batch = imageDims?.[0];
    const fixedBatch = typeof batch === "number" && batch > 0 ? batch : undefined;
    if (fixedBatch !== undefined && fixedBatch > MAX_FIXED_BATCH) {
      await session.release();
      throw new UserError(
        `${file}: the input's batch axis is fixed at ${fixedBatch.toLocaleString("en-US")}; mnistc runs models whose batch is dynamic or at most ${MAX_FIXED_BATCH.toLocaleString("en-US")}`,
      );
    }
    return new DigitModel(session, input.name, output.name, fixedBatch, info);
  }

  /** Values per image: C·H·W. */
  get imageSize(): number {
    const [c, h, w] = this.info.inputShape;
    return c * h * w;
  }

  /**
   * Log-probabilities (N·classes, row-major) of `n` images that are already normalized and laid
   * out N·C·H·W.
   */
  async predictBatch(images: Float32Array, n: number): Promise<Float32Array> {
    if (!Number.isInteger(n) || n < 1 || images.length !== n * this.imageSize) {
      throw new Error(
        `predictBatch: ${images.length} values is not ${n} images of ${this.imageSize}`,
      );
    }
    if (this.fixedBatch === undefined || this.fixedBatch === n) return this.run(images, n);
    // A fixed batch axis: run chunks of that size, the last one padded with zeros.
    const b = this.fixedBatch;
    const out = new Float32Array(n * this.info.classes);
    for (let start = 0; start < n; start += b) {
      const count = Math.min(b, n - start);
      const chunk = new Float32Array(b * this.imageSize);
      chunk.set(images.subarray(start * this.imageSize, (start + count) * this.imageSize));
      const logProbs = await this.run(chunk, b);
      out.set(logProbs.subarray(0, count * this.info.classes), start * this.info.classes);
    }
    return out;
  }

  private async run(images: Float32Array, n: number): Promise<Float32Array> {
    const tensor = new ort.Tensor("float32", images, [n, ...this.info.inputShape]);
    let result: ort.InferenceSession.ReturnType;
    try {
      result = await this.session.run({ [this.inputName]: tensor });
    } catch (err) {
      // A graph whose declared input does not fit its own layers fails only when run.
      const reason = (err as Error).message.split("\n")[0];
      throw new UserError(
        `${this.info.file}: onnxruntime cannot run the model on input [${[n, ...this.info.inputShape].join(", ")}]: ${reason}`,
      );
    }
    const out = result[this.outputName];
    if (!out) throw new Error(`predictBatch: the model returned no ${this.outputName}`);
    const data = out.data as Float32Array;
    if (data.length !== n * this.info.classes) {
      throw new Error(`predictBatch: got ${data.length} outputs for ${n} images`);
    }
    // Finite weights can still answer NaN (an overflow inside the graph): never a silent answer.
    for (let i = 0; i < data.length; i++) {
      if (Number.isNaN(data[i] as number)) {
        const image = Math.floor(i / this.info.classes);
        throw new UserError(
          `${this.info.file}: the model answered NaN for image ${image + 1} of a batch of ${n}; its weights or normalization are broken`,
        );
      }
    }
    return data;
  }

  /** Normalize 8-bit pixels (N·H·W gray, or N·C·H·W) with the model's mean/std. */
  normalize(pixels: Uint8Array, n: number): Float32Array {
    const [c, h, w] = this.info.inputShape;
    const plane = h * w;
    const out = new Float32Array(n * c * plane);
    const perImage = pixels.length / n;
    const gray = perImage === plane && c > 1; // one gray plane replicated to every channel
    if (perImage !== plane && perImage !== c * plane) {
      throw new Error(`normalize: ${pixels.length} pixels is not ${n} images of ${c}x${h}x${w}`);
    }
    for (let i = 0; i < n; i++) {
      for (let ch = 0; ch < c; ch++) {
        const mean = this.info.mean[ch] ?? 0;
        const scale = 1 / (255 * (this.info.std[ch] ?? 1));
        const meanOverStd = mean / (this.info.std[ch] ?? 1);
        const src = i * perImage + (gray ? 0 : ch * plane);
        const dst = (i * c + ch) * plane;
        for (let p = 0; p < plane; p++) out[dst + p] = (pixels[src + p] ?? 0) * scale - meanOverStd;
      }
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
