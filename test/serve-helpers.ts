// Shared by the serve API, CLI and browser tests: the model to serve, real MNIST test digits, PNG
// encoding, and small models of other datasets (colour pictures of 3 classes, Fashion-MNIST). The trained model (models/step4.onnx) is used when it exists; otherwise step4 with
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
let tmp: string | undefined;

function tmpDir(): string {
  if (tmp) return tmp;
  const dir = mkdtempSync(join(tmpdir(), "mnistc-serve-"));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  tmp = dir;
  return dir;
}

/** A spec compiled and exported to ONNX with its seeded initial weights; `classNames` set first. */
function seededModel(source: string, file: string, name: string, classNames?: string[]): string {
  const { ir, diagnostics } = compileSpec(source, file);
  if (!ir) throw new Error(`${file} does not compile: ${JSON.stringify(diagnostics)}`);
  // What a training run records once it has read a folder's class folders.
  if (classNames) ir.data.classNames = classNames;
  const contents = findBackend("onnx")?.emit(ir, {}).files[0]?.contents;
  if (!(contents instanceof Uint8Array)) throw new Error("the onnx backend emitted no model");
  const out = join(tmpDir(), `${name}.onnx`);
  writeFileSync(out, contents);
  return out;
}

/** An ONNX file of the seed's net: trained if shipped, else seeded random weights (compiled once). */
export function servedModelFile(): string {
  if (existsSync(TRAINED_MODEL)) return TRAINED_MODEL;
  if (seededFile) return seededFile;
  const spec = packagePath("specs", "step4.yaml");
  seededFile = seededModel(readFileSync(spec, "utf8"), spec, "step4-seeded");
  return seededFile;
}

/**
 * Class names of the colour model: the third is hostile, as a model file from anywhere may be. It
 * must reach a client as text: escaped in JSON, never markup on the page.
 */
export const COLOUR_CLASSES = ["red", "green", '<img src=x onerror="window.pwned=1">'];

/** A 3x8x8 model of 3 classes trained on a folder of pictures (seeded weights, not trained). */
export function colourModelFile(): string {
  const spec = [
    "name: colours",
    "input: { channels: 3, height: 8, width: 8 }",
    "classes: 3",
    "data: { dataset: folder, path: pictures, mean: [0.5, 0.4, 0.3], std: [0.25, 0.25, 0.25] }",
    "layers:",
    "  - conv1: [{ conv: { out: 4, kernel: 3 } }, relu]",
    "  - fc: [flatten, { linear: { out: 3 } }]",
    "  - log_softmax",
    "",
  ].join("\n");
  return seededModel(spec, join(tmpDir(), "colours.yaml"), "colours", COLOUR_CLASSES);
}

/** A 1x28x28 Fashion-MNIST model: MNIST's shape, but pictures are resized, not centred. */
export function fashionModelFile(): string {
  const spec = [
    "name: fashion",
    "input: { channels: 1, height: 28, width: 28 }",
    "classes: 10",
    "data: { dataset: fashion-mnist }",
    "layers:",
    "  - conv1: [{ conv: { out: 2, kernel: 3, stride: 2 } }, relu]",
    "  - fc: [flatten, { linear: { out: 10 } }]",
    "  - log_softmax",
    "",
  ].join("\n");
  return seededModel(spec, join(tmpDir(), "fashion.yaml"), "fashion");
}

/** An RGB PNG (opaque) of `rgb` (3 bytes per pixel, row-major). */
export function encodeRgbPng(rgb: ArrayLike<number>, width: number, height: number): Buffer {
  const data = Buffer.alloc(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    data.set([rgb[3 * i] ?? 0, rgb[3 * i + 1] ?? 0, rgb[3 * i + 2] ?? 0, 255], 4 * i);
  }
  return PNG.sync.write({ width, height, data } as unknown as PNG, { colorType: 2 });
}

/** A w×h picture with a different colour in each quarter and a gradient, as RGB bytes. */
export function quartersRgb(width: number, height: number): Uint8Array {
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const right = x >= width / 2;
      const low = y >= height / 2;
      const shade = Math.round((255 * (x + y)) / (width + height));
      rgb.set(
        [right ? 230 : shade, low ? 200 : 40, right && low ? 20 : 255 - shade],
        3 * (y * width + x),
      );
    }
  }
  return rgb;
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
