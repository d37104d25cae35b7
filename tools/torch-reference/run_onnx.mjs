// Runs an ONNX model through mnistc's own inference path (DigitModel: onnxruntime-node plus the
// normalization stored in the file's metadata) and prints the log-probabilities as JSON, so that
// check.py can compare them with PyTorch. onnxruntime has no Debian python package; this is the
// same code `mnistc eval`, `predict` and `serve` run.
//
//   node tools/torch-reference/run_onnx.mjs MODEL.onnx PIXELS.u8 N
//
// PIXELS.u8 holds N raw 8-bit images (N·C·H·W bytes, as in the IDX file); normalization is
// mnistc's, so the metadata's mean/std are checked too. Prints {"info": ..., "logProbs": [[...]]}.
import { readFileSync } from "node:fs";
import { DigitModel } from "../../dist/src/runtime/inference/index.js";

const [file, pixelsFile, count] = process.argv.slice(2);
const n = Number(count);
if (!file || !pixelsFile || !Number.isInteger(n) || n < 1) {
  process.stderr.write("usage: node run_onnx.mjs MODEL.onnx PIXELS.u8 N\n");
  process.exit(2);
}

const model = await DigitModel.load(file, { threads: 1 });
try {
  const pixels = new Uint8Array(readFileSync(pixelsFile));
  const flat = await model.predictBatch(model.normalize(pixels, n), n);
  const classes = model.info.classes;
  const logProbs = [];
  for (let i = 0; i < n; i++)
    logProbs.push(Array.from(flat.subarray(i * classes, (i + 1) * classes)));
  process.stdout.write(`${JSON.stringify({ info: model.info, logProbs })}\n`);
} finally {
  await model.release();
}
