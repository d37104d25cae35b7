// `mnistc predict [MODEL.onnx] IMAGE... [--json]`: the digit in each image (PNG or PGM, any size,
// either polarity), preprocessed the MNIST way (src/runtime/preprocess.ts).
import { UserError } from "../errors.js";
import { readImage } from "../runtime/inference/image.js";
import { DigitModel, resolveModelFile } from "../runtime/inference/onnx-model.js";
import { MNIST_SIDE, preprocessImage } from "../runtime/inference/preprocess.js";
import { argmax, toProbabilities } from "../runtime/inference/probabilities.js";

export interface PredictOptions {
  json?: boolean;
}

export interface ImagePrediction {
  file: string;
  digit: number;
  /** One probability per class, summing to 1. */
  probabilities: number[];
}

const BATCH = 256;

/** The predicted class and probabilities of each row of N·classes log-probabilities. */
export function toPredictions(logProbs: Float32Array, files: string[], classes: number) {
  return files.map((file, i): ImagePrediction => {
    const row = logProbs.subarray(i * classes, (i + 1) * classes);
    return { file, digit: argmax(row), probabilities: toProbabilities(row) };
  });
}

function formatPrediction(p: ImagePrediction): string {
  const best = p.probabilities[p.digit] ?? 0;
  const all = p.probabilities.map((q, c) => `${c} ${q.toFixed(3)}`).join("  ");
  return `${p.file}: ${p.digit}  (p=${best.toFixed(3)})\n  ${all}\n`;
}

export async function predict(args: string[], opts: PredictOptions): Promise<number> {
  const [first, ...rest] = args;
  const modelArg = first?.toLowerCase().endsWith(".onnx") ? first : undefined;
  const files = modelArg ? rest : args;
  if (files.length === 0) {
    throw new UserError("no image given (usage: mnistc predict [MODEL.onnx] IMAGE...)");
  }
  const model = await DigitModel.load(resolveModelFile(modelArg));
  const [, height, width] = model.info.inputShape;
  if (height !== MNIST_SIDE || width !== MNIST_SIDE) {
    throw new UserError(
      `${model.info.file}: the model reads ${height}x${width} images; predict prepares MNIST's ${MNIST_SIDE}x${MNIST_SIDE}`,
    );
  }

  // A bad image is reported and skipped, so one stray file does not hide the others' answers.
  const plane = MNIST_SIDE * MNIST_SIDE;
  const readable: string[] = [];
  const pixels = new Uint8Array(files.length * plane);
  for (const file of files) {
    try {
      const image = await readImage(file);
      const input = preprocessImage(image.data, image.width, image.height, file);
      pixels.set(input, readable.length * plane);
      readable.push(file);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      process.stderr.write(`mnistc: error: ${err.message}\n`);
    }
  }

  const predictions: ImagePrediction[] = [];
  for (let start = 0; start < readable.length; start += BATCH) {
    const n = Math.min(BATCH, readable.length - start);
    const batch = model.normalize(pixels.subarray(start * plane, (start + n) * plane), n);
    const logProbs = await model.predictBatch(batch, n);
    const names = readable.slice(start, start + n);
    for (const p of toPredictions(logProbs, names, model.info.classes)) predictions.push(p);
  }
  await model.release();

  if (opts.json) process.stdout.write(`${JSON.stringify(predictions, null, 2)}\n`);
  else process.stdout.write(predictions.map(formatPrediction).join(""));
  return readable.length === files.length ? 0 : 1;
}
