// `mnistc predict [MODEL.onnx] IMAGE... [--preprocess digit|resize|none] [--json]`: the class of
// each image (PNG, JPEG or PGM, any size), prepared as the model's metadata says its training data
// was (src/runtime/inference/preprocess.ts): handwriting the MNIST way, anything else resized.
import { UserError } from "../errors.js";
import { MAX_IMAGE_FILE_BYTES } from "../runtime/inference/image.js";
import { DigitModel, resolveModelFile } from "../runtime/inference/onnx-model.js";
import { MNIST_SIDE, type PrepareMode, prepareImage } from "../runtime/inference/preprocess.js";
import { argmax, toProbabilities } from "../runtime/inference/probabilities.js";
import { readRegularFile } from "../util/files.js";
import { classLabel } from "../util/text.js";

export interface PredictOptions {
  json?: boolean;
  /** How each picture becomes the model's input; default the model's profile. */
  preprocess?: PrepareMode;
}

export interface ImagePrediction {
  file: string;
  class: number;
  /** The class's name (the model's metadata; the number when it names none). */
  label: string;
  /** MNIST models only, as before datasets: the class, which is the digit. */
  digit?: number;
  /** One probability per class, summing to 1. */
  probabilities: number[];
}

const BATCH = 256;

/** The predicted class and probabilities of each row of N·classes log-probabilities. */
export function toPredictions(
  logProbs: Float32Array,
  files: string[],
  classNames: readonly string[],
  digits = false,
) {
  const classes = classNames.length;
  return files.map((file, i): ImagePrediction => {
    const row = logProbs.subarray(i * classes, (i + 1) * classes);
    const best = argmax(row);
    return {
      file,
      class: best,
      label: classNames[best] ?? String(best),
      ...(digits ? { digit: best } : {}),
      probabilities: toProbabilities(row),
    };
  });
}

function formatPrediction(p: ImagePrediction, classNames: readonly string[]): string {
  const best = p.probabilities[p.class] ?? 0;
  const name = (c: number) => classLabel(classNames, c);
  const all = p.probabilities.map((q, c) => `${name(c)} ${q.toFixed(3)}`).join("  ");
  return `${p.file}: ${name(p.class)}  (p=${best.toFixed(3)})\n  ${all}\n`;
}

export async function predict(args: string[], opts: PredictOptions): Promise<number> {
  const [first, ...rest] = args;
  const modelArg = first?.toLowerCase().endsWith(".onnx") ? first : undefined;
  const files = modelArg ? rest : args;
  if (files.length === 0) {
    throw new UserError("no image given (usage: mnistc predict [MODEL.onnx] IMAGE...)");
  }
  const model = await DigitModel.load(resolveModelFile(modelArg));
  const [channels, height, width] = model.info.inputShape;
  const mode = opts.preprocess ?? model.info.preprocess;
  if (mode === "digit" && (channels !== 1 || height !== MNIST_SIDE || width !== MNIST_SIDE)) {
    await model.release();
    throw new UserError(
      `${model.info.file}: the model reads ${channels}x${height}x${width} images; digit preprocessing makes 1x${MNIST_SIDE}x${MNIST_SIDE} (use --preprocess resize)`,
    );
  }

  // A bad image is reported and skipped, so one stray file does not hide the others' answers.
  const size = channels * height * width;
  const readable: string[] = [];
  const pixels = new Uint8Array(files.length * size);
  for (const file of files) {
    try {
      const bytes = readRegularFile(file, { maxBytes: MAX_IMAGE_FILE_BYTES, what: "an image" });
      pixels.set(
        prepareImage(bytes, file, { channels, height, width }, mode),
        readable.length * size,
      );
      readable.push(file);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      process.stderr.write(`mnistc: error: ${err.message}\n`);
    }
  }

  const { classNames } = model.info;
  const digits = (model.info.dataset ?? "mnist") === "mnist";
  const predictions: ImagePrediction[] = [];
  for (let start = 0; start < readable.length; start += BATCH) {
    const n = Math.min(BATCH, readable.length - start);
    const batch = model.normalize(pixels.subarray(start * size, (start + n) * size), n);
    const logProbs = await model.predictBatch(batch, n);
    const names = readable.slice(start, start + n);
    for (const p of toPredictions(logProbs, names, classNames, digits)) predictions.push(p);
  }
  await model.release();

  if (opts.json) process.stdout.write(`${JSON.stringify(predictions, null, 2)}\n`);
  else process.stdout.write(predictions.map((p) => formatPrediction(p, classNames)).join(""));
  return readable.length === files.length ? 0 : 1;
}
