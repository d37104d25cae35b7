// Shared by the serve API, CLI and browser tests: the model to serve, real MNIST test digits, and
// PNG encoding. The trained model (models/step4.onnx) is used when it exists; otherwise step4 with
// seeded random weights is compiled, and tests that need correct answers skip, saying why.
// `MNISTC_TRAINED_MODEL=FILE` checks a candidate trained model before it is committed.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PNG } from "pngjs";
import { findBackend } from "../src/backends/index.js";
import { compileSpec } from "../src/compiler/index.js";
import { packagePath } from "../src/paths.js";
import { loadMnist } from "../src/runtime/data/mnist.js";
import type { ImageSplit } from "../src/runtime/data/split.js";
import { defaultModelFile } from "../src/runtime/inference/onnx-model.js";

export const TRAINED_MODEL = process.env.MNISTC_TRAINED_MODEL || defaultModelFile();

/** Why correctness tests skip, or false when the trained model is there. */
export const needsTrainedModel: string | false = existsSync(TRAINED_MODEL)
  ? false
  : `${TRAINED_MODEL} is not there yet (committed once trained): correct-digit checks skip`;

let seededFile: string | undefined;

/** An ONNX file of the seed's net: trained if shipped, else seeded random weights (compiled once). */
export function servedModelFile(): string {
  if (existsSync(TRAINED_MODEL)) return TRAINED_MODEL;
  if (seededFile) return seededFile;
  const spec = packagePath("specs", "step4.yaml");
  const { ir, diagnostics } = compileSpec(readFileSync(spec, "utf8"), spec);
  if (!ir) throw new Error(`specs/step4.yaml does not compile: ${JSON.stringify(diagnostics)}`);
  const contents = findBackend("onnx")?.emit(ir, {}).files[0]?.contents;
  if (!(contents instanceof Uint8Array)) throw new Error("the onnx backend emitted no model");
  const dir = mkdtempSync(join(tmpdir(), "mnistc-serve-"));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  seededFile = join(dir, "step4-seeded.onnx");
  writeFileSync(seededFile, contents);
  return seededFile;
}

/** The first `n` MNIST test digits. */
export function mnistTest(n: number): ImageSplit {
  return loadMnist({ testLimit: n, trainLimit: 1 }).test;
}

/** Test digit `i` as 784 bytes, white on black (MNIST's own format). */
export function digitPixels(test: ImageSplit, i: number): Uint8Array {
  const size = test.rows * test.cols;
  return test.images.slice(i * size, (i + 1) * size);
}

/** A PNG of a gray image (RGB, opaque). */
export function encodeGrayPng(gray: ArrayLike<number>, width: number, height: number): Buffer {
  const data = Buffer.alloc(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    const v = gray[i] ?? 0;
    data.set([v, v, v, 255], 4 * i);
  }
  return PNG.sync.write({ width, height, data } as unknown as PNG, { colorType: 2 });
}

/** Test digit `i` as a photo of paper would show it: dark ink on white, enlarged `scale` times. */
export function digitOnPaperPng(test: ImageSplit, i: number, scale = 3): Buffer {
  const side = test.rows * scale;
  const src = digitPixels(test, i);
  const gray = new Uint8Array(side * side);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      gray[y * side + x] =
        255 - (src[Math.floor(y / scale) * test.cols + Math.floor(x / scale)] ?? 0);
    }
  }
  return encodeGrayPng(gray, side, side);
}
