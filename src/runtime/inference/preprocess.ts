// Any grayscale digit image → the 28x28 image an MNIST model expects, done the way MNIST itself was
// made: white digit on black, the digit's bounding box scaled to fit 20x20 (aspect ratio kept,
// anti-aliased), then placed in 28x28 so that its center of mass sits where MNIST's digits have theirs.
//
// 1. Polarity: the median of the border pixels is the background; a light background means a dark
//    digit on paper, which is inverted.
// 2. Contrast: the background level maps to 0 and the brightest ink to 255 (photos of paper are
//    not black and white). Less than MIN_CONTRAST levels between them: no digit, an error.
// 3. Crop to the bounding box of pixels at least INK_THRESHOLD bright.
// 4. Resize so the longer side is 20: area averaging when shrinking, bilinear when enlarging.
// 5. Shift by whole pixels so the center of mass lands where MNIST's do, (14, 14), clamped so that
//    the digit stays inside.
// `prepareImage` chooses between that and the plain resize of other datasets (a model's profile).
import type { PreprocessProfile } from "../../compiler/datasets.js";
import { UserError } from "../../errors.js";
import { resizeBilinear, rgbToPlanes } from "../data/resize.js";
import { decodeImage, decodeRgb } from "./image.js";

export const MNIST_SIDE = 28;
export const DIGIT_BOX = 20;
/** Fewest gray levels between background and ink for an image to hold a digit at all. */
export const MIN_CONTRAST = 32;
/** After contrast stretching, pixels at least this bright count as ink for the bounding box. */
export const INK_THRESHOLD = 64;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

function borderPixels(gray: ArrayLike<number>, width: number, height: number): number[] {
  const values: number[] = [];
  for (let x = 0; x < width; x++) {
    values.push(gray[x] ?? 0);
    if (height > 1) values.push(gray[(height - 1) * width + x] ?? 0);
  }
  for (let y = 1; y < height - 1; y++) {
    values.push(gray[y * width] ?? 0);
    if (width > 1) values.push(gray[y * width + width - 1] ?? 0);
  }
  return values;
}

interface AxisTap {
  start: number;
  weights: number[];
}

/** 1-D resampling taps from `src` to `dst` samples: box (area) when shrinking, else bilinear. */
function axisTaps(src: number, dst: number): AxisTap[] {
  const taps: AxisTap[] = [];
  if (dst <= src) {
    const f = src / dst;
    for (let i = 0; i < dst; i++) {
      const lo = i * f;
      const hi = (i + 1) * f;
      const start = Math.floor(lo);
      const weights: number[] = [];
      for (let j = start; j < Math.min(src, Math.ceil(hi)); j++) {
        weights.push((Math.min(hi, j + 1) - Math.max(lo, j)) / f);
      }
      taps.push({ start, weights });
    }
  } else {
    for (let i = 0; i < dst; i++) {
      const x = Math.min(Math.max(((i + 0.5) * src) / dst - 0.5, 0), src - 1);
      const start = Math.floor(x);
      const t = x - start;
      taps.push({ start, weights: start + 1 < src ? [1 - t, t] : [1] });
    }
  }
  return taps;
}

/** Separable resize of a w×h float image to ow×oh. */
export function resize(
  src: Float32Array,
  w: number,
  h: number,
  ow: number,
  oh: number,
): Float32Array {
  const xTaps = axisTaps(w, ow);
  const yTaps = axisTaps(h, oh);
  const rows = new Float32Array(h * ow);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < ow; x++) {
      const tap = xTaps[x] as AxisTap;
      let s = 0;
      for (let k = 0; k < tap.weights.length; k++) {
        s += (tap.weights[k] ?? 0) * (src[y * w + tap.start + k] ?? 0);
      }
      rows[y * ow + x] = s;
    }
  }
  const out = new Float32Array(oh * ow);
  for (let y = 0; y < oh; y++) {
    const tap = yTaps[y] as AxisTap;
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let k = 0; k < tap.weights.length; k++) {
        s += (tap.weights[k] ?? 0) * (rows[(tap.start + k) * ow + x] ?? 0);
      }
      out[y * ow + x] = s;
    }
  }
  return out;
}

/**
 * The 28x28 image (0..255, white digit on black, row-major) an MNIST model sees for a grayscale
 * image of any size and either polarity. `source` names the image in errors.
 */
export function preprocessImage(
  gray: ArrayLike<number>,
  width: number,
  height: number,
  source = "the image",
): Uint8Array {
  if (!(width > 0 && height > 0)) {
    throw new UserError(`${source}: the image is empty (${width}x${height})`);
  }
  if (gray.length !== width * height) {
    throw new UserError(`${source}: ${gray.length} pixels for a ${width}x${height} image`);
  }
  const count = width * height;

  // 1-2. Polarity and contrast: background → 0, the brightest ink → 255.
  const border = median(borderPixels(gray, width, height));
  const invert = border > 127.5;
  const background = invert ? 255 - border : border;
  let brightest = 0;
  const ink = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const v = invert ? 255 - (gray[i] ?? 0) : (gray[i] ?? 0);
    ink[i] = v;
    if (v > brightest) brightest = v;
  }
  const contrast = brightest - background;
  if (contrast < MIN_CONTRAST) {
    throw new UserError(
      `${source}: no digit found (the image is blank: ${Math.round(contrast)} gray levels of ink against the background)`,
    );
  }
  for (let i = 0; i < count; i++) {
    ink[i] = Math.min(255, Math.max(0, (((ink[i] ?? 0) - background) * 255) / contrast));
  }

  // 3. Bounding box of the ink.
  let x0 = width;
  let y0 = height;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if ((ink[y * width + x] ?? 0) >= INK_THRESHOLD) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
  }
  const bw = x1 - x0 + 1;
  const bh = y1 - y0 + 1;
  const crop = new Float32Array(bw * bh);
  for (let y = 0; y < bh; y++) {
    crop.set(ink.subarray((y0 + y) * width + x0, (y0 + y) * width + x0 + bw), y * bw);
  }

  // 4. Fit the longer side to DIGIT_BOX, keeping the aspect ratio.
  const scale = DIGIT_BOX / Math.max(bw, bh);
  const ow = Math.max(1, Math.min(DIGIT_BOX, Math.round(bw * scale)));
  const oh = Math.max(1, Math.min(DIGIT_BOX, Math.round(bh * scale)));
  const digit = resize(crop, bw, bh, ow, oh);

  // 5. Center of mass → (14, 14) in pixel-index coordinates, where MNIST puts it (the mean over
  //    its 10,000 test digits is x 14.01, y 13.99), not the geometric middle 13.5.
  let mass = 0;
  let mx = 0;
  let my = 0;
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      const v = digit[y * ow + x] ?? 0;
      mass += v;
      mx += v * x;
      my += v * y;
    }
  }
  const center = MNIST_SIDE / 2;
  const clamp = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
  const ox = clamp(Math.round(center - mx / mass), MNIST_SIDE - ow);
  const oy = clamp(Math.round(center - my / mass), MNIST_SIDE - oh);
  const out = new Uint8Array(MNIST_SIDE * MNIST_SIDE);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      out[(oy + y) * MNIST_SIDE + ox + x] = Math.round(clamp(digit[y * ow + x] ?? 0, 255));
    }
  }
  return out;
}

/** How a picture becomes a model's input: a dataset profile, or `none` (already the input). */
export type PrepareMode = PreprocessProfile | "none";

export interface ModelInput {
  channels: number;
  height: number;
  width: number;
}

/**
 * The C·H·W bytes a model sees for an image file's bytes, as its training data was made:
 * - `digit`: MNIST's crop, fit and centre (`preprocessImage`), for 1x28x28 handwriting models;
 * - `resize`: the folder loader's `Grayscale()` or RGB, then `Resize((h, w))` (`data/resize.ts`);
 * - `none`: the picture must already be h×w; only converted to the model's channels.
 */
export function prepareImage(
  bytes: Uint8Array,
  source: string,
  input: ModelInput,
  mode: PrepareMode,
): Uint8Array {
  const { channels, height, width } = input;
  if (mode === "digit") {
    if (channels !== 1 || height !== MNIST_SIDE || width !== MNIST_SIDE) {
      throw new UserError(
        `digit preprocessing makes 1x${MNIST_SIDE}x${MNIST_SIDE} images; the model reads ${channels}x${height}x${width} (use resize)`,
      );
    }
    const gray = decodeImage(bytes, source);
    return preprocessImage(gray.data, gray.width, gray.height, source);
  }
  if (channels !== 1 && channels !== 3) {
    throw new UserError(`the model reads ${channels}-channel images; pictures give 1 or 3`);
  }
  const rgb = decodeRgb(bytes, source);
  if (mode === "none" && (rgb.width !== width || rgb.height !== height)) {
    throw new UserError(
      `${source}: the image is ${rgb.width}x${rgb.height}; the model reads ${width}x${height} (use --preprocess resize)`,
    );
  }
  const planes = rgbToPlanes(rgb.data, rgb.width * rgb.height, channels === 1 ? 1 : 3);
  return resizeBilinear(planes, channels, rgb.height, rgb.width, height, width);
}
