// Training-time augmentation as torchvision's RandomAffine(degrees, translate, scale, fill=0) with
// bilinear sampling: an angle drawn uniformly in [-degrees, degrees] (counter-clockwise as shown),
// a shift of whole pixels drawn in ±translate·size per axis, a scale drawn in [lo, hi], all about
// the image center ((W-1)/2, (H-1)/2 in pixel indices); zero where the source falls outside.
// RandomRotation is the case translate 0, scale [1, 1]. Before it, for the usual CIFAR recipe,
// RandomCrop(size, padding) (a window of the zero-padded image at an offset drawn in [0, 2·padding]
// per axis, top first) and RandomHorizontalFlip(0.5), in that order: Compose([RandomCrop,
// RandomHorizontalFlip, RandomAffine]). Every channel of an image gets the same draw.
import type { AugmentIR } from "../../compiler/ir.js";
import type { Rng } from "../../util/rng.js";
import { type ImageSplit, imageBytes } from "./split.js";

/** One image's draw: what `affineImage` applies. */
export interface Affine {
  degrees: number;
  /** Pixels, positive to the right and down. */
  dx: number;
  dy: number;
  scale: number;
}

export const IDENTITY: Affine = { degrees: 0, dx: 0, dy: 0, scale: 1 };

/** Whether the recipe changes any image (so the plain lookup path can be taken otherwise). */
export function augments(a: AugmentIR): boolean {
  return affines(a) || (a.crop ?? 0) > 0 || a.hflip === true;
}

function affines(a: AugmentIR): boolean {
  const [lo, hi] = scaleRange(a);
  return a.rotate > 0 || (a.translate ?? 0) > 0 || lo !== 1 || hi !== 1;
}

/** Programs emitted before translate and scale existed carry a recipe without them. */
function scaleRange(a: AugmentIR): [number, number] {
  return a.scale ?? [1, 1];
}

/**
 * Draws one image's transform in RandomAffine.get_params's order: angle, shift, scale. Only the
 * parts the recipe uses draw, so a rotation-only recipe draws one number per image as it did
 * before translate and scale existed (its runs stay reproducible to the digit).
 */
export function drawAffine(a: AugmentIR, rows: number, cols: number, rng: Rng): Affine {
  const degrees = a.rotate > 0 ? rng.uniform(-a.rotate, a.rotate) : 0;
  let dx = 0;
  let dy = 0;
  if ((a.translate ?? 0) > 0) {
    const maxX = a.translate * cols;
    const maxY = a.translate * rows;
    dx = Math.round(rng.uniform(-maxX, maxX));
    dy = Math.round(rng.uniform(-maxY, maxY));
  }
  const [lo, hi] = scaleRange(a);
  const scale = lo !== 1 || hi !== 1 ? rng.uniform(lo, hi) : 1;
  return { degrees, dx, dy, scale };
}

/**
 * Applies `t` to one rows×cols image into `out` at `outOffset`, as floats in the source's 0..255
 * range: each output pixel samples the source point that the transform carries onto it.
 */
export function affineImage(
  src: Uint8Array,
  srcOffset: number,
  rows: number,
  cols: number,
  t: Affine,
  out: Float32Array,
  outOffset: number,
): void {
  const rad = (t.degrees * Math.PI) / 180;
  const cos = Math.cos(rad) / t.scale;
  const sin = Math.sin(rad) / t.scale;
  const cx = (cols - 1) / 2;
  const cy = (rows - 1) / 2;
  const at = (x: number, y: number): number =>
    x < 0 || y < 0 || x >= cols || y >= rows ? 0 : (src[srcOffset + y * cols + x] as number);
  for (let y = 0; y < rows; y++) {
    const dy = y - cy - t.dy;
    for (let x = 0; x < cols; x++) {
      const dx = x - cx - t.dx;
      // Inverse mapping: undo the shift, then the rotation and scale about the center.
      const sx = cos * dx - sin * dy + cx;
      const sy = sin * dx + cos * dy + cy;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      out[outOffset + y * cols + x] =
        (1 - fy) * ((1 - fx) * at(x0, y0) + fx * at(x0 + 1, y0)) +
        fy * ((1 - fx) * at(x0, y0 + 1) + fx * at(x0 + 1, y0 + 1));
    }
  }
}

/** RandomRotation(degrees, fill=0): the affine transform with rotation only. */
export function rotateImage(
  src: Uint8Array,
  srcOffset: number,
  rows: number,
  cols: number,
  degrees: number,
  out: Float32Array,
  outOffset: number,
): void {
  affineImage(src, srcOffset, rows, cols, { ...IDENTITY, degrees }, out, outOffset);
}

/**
 * Image `index` of `split` through the recipe, every channel with the same draws, into `out`
 * (channels·rows·cols floats in the source's 0..255 range). Draws in Compose's order: crop offsets,
 * flip, then the affine transform; a part the recipe leaves out draws nothing.
 */
export function augmentImage(
  split: ImageSplit,
  index: number,
  a: AugmentIR,
  rng: Rng,
  out: Float32Array,
): void {
  const { channels, rows, cols } = split;
  const plane = rows * cols;
  const src = index * imageBytes(split);
  const pad = a.crop ?? 0;
  const top = pad > 0 ? rng.int(2 * pad + 1) - pad : 0;
  const left = pad > 0 ? rng.int(2 * pad + 1) - pad : 0;
  const flip = a.hflip === true && rng.next() < 0.5;
  let image = split.images;
  let offset = src;
  if (pad > 0 || flip) {
    // The crop's output (y, x) is the source at (y + top, x + left); the flip then mirrors the
    // crop, so output x reads the crop's cols-1-x. Zero where that falls in the padding.
    image = new Uint8Array(channels * plane);
    offset = 0;
    for (let c = 0; c < channels; c++) {
      for (let y = 0; y < rows; y++) {
        const sy = y + top;
        if (sy < 0 || sy >= rows) continue;
        for (let x = 0; x < cols; x++) {
          const sx = (flip ? cols - 1 - x : x) + left;
          if (sx < 0 || sx >= cols) continue;
          image[c * plane + y * cols + x] = split.images[
            src + c * plane + sy * cols + sx
          ] as number;
        }
      }
    }
  }
  if (affines(a)) {
    const t = drawAffine(a, rows, cols, rng);
    for (let c = 0; c < channels; c++)
      affineImage(image, offset + c * plane, rows, cols, t, out, c * plane);
  } else {
    for (let i = 0; i < channels * plane; i++) out[i] = image[offset + i] as number;
  }
}
