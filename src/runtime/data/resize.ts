// torchvision's `Resize((h, w))` on a PIL image with bilinear interpolation is PIL's
// `Image.resize(BILINEAR)`: a separable triangle filter whose support widens with the downscale
// factor (so shrinking averages, it does not skip pixels), horizontal pass first, each pass
// rounded to 8 bits with PIL's 22-bit fixed-point coefficients. Reproduced here on planar bytes,
// so a folder's images are the tensors torchvision would give (checked by `npm run ref:torch`).
// And `Grayscale()`: PIL's convert("L"), ITU-R 601-2 luma in 16-bit fixed point.

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;

interface Coefficients {
  /** First input index of each output pixel. */
  start: Int32Array;
  /** Taps of each output pixel. */
  count: Int32Array;
  /** `taps` fixed-point weights per output pixel. */
  weights: Int32Array;
  taps: number;
}

/** PIL's precompute_coeffs + normalize_coeffs_8bpc for the bilinear filter. */
function coefficients(inSize: number, outSize: number): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale;
  const taps = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * taps);
  const k = new Float64Array(taps);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let sum = 0;
    for (let x = 0; x < xmax; x++) {
      const t = Math.abs((x + xmin - center + 0.5) / filterScale);
      const w = t < 1 ? 1 - t : 0;
      k[x] = w;
      sum += w;
    }
    start[xx] = xmin;
    count[xx] = xmax;
    for (let x = 0; x < xmax; x++) {
      const w = sum !== 0 ? (k[x] as number) / sum : 0;
      weights[xx * taps + x] = Math.trunc(w < 0 ? -0.5 + w * ONE : 0.5 + w * ONE);
    }
  }
  return { start, count, weights, taps };
}

const clip8 = (v: number): number => {
  const r = Math.floor(v / ONE);
  return r < 0 ? 0 : r > 255 ? 255 : r;
};

/** One pass along rows (`horizontal`) or columns of a planar image. */
function pass(
  src: Uint8Array,
  planes: number,
  h: number,
  w: number,
  outH: number,
  outW: number,
  horizontal: boolean,
): Uint8Array {
  const c = horizontal ? coefficients(w, outW) : coefficients(h, outH);
  const out = new Uint8Array(planes * outH * outW);
  for (let p = 0; p < planes; p++) {
    const s = p * h * w;
    const o = p * outH * outW;
    for (let y = 0; y < outH; y++) {
      for (let x = 0; x < outW; x++) {
        const i = horizontal ? x : y;
        const first = c.start[i] as number;
        const n = c.count[i] as number;
        let acc = ONE / 2;
        for (let t = 0; t < n; t++) {
          const weight = c.weights[i * c.taps + t] as number;
          const v = horizontal
            ? (src[s + y * w + first + t] as number)
            : (src[s + (first + t) * w + x] as number);
          acc += v * weight;
        }
        out[o + y * outW + x] = clip8(acc);
      }
    }
  }
  return out;
}

/** PIL's bilinear resize of `planes` planes of h×w bytes to outH×outW. */
export function resizeBilinear(
  src: Uint8Array,
  planes: number,
  h: number,
  w: number,
  outH: number,
  outW: number,
): Uint8Array {
  let data = src;
  let width = w;
  if (outW !== w) {
    data = pass(data, planes, h, w, h, outW, true);
    width = outW;
  }
  if (outH !== h) data = pass(data, planes, h, width, outH, outW, false);
  return data === src ? src.slice() : data;
}

/** Interleaved RGB bytes to planes: `channels` 3 keeps R, G, B; 1 is PIL's convert("L"). */
export function rgbToPlanes(rgb: Uint8Array, count: number, channels: 1 | 3): Uint8Array {
  const out = new Uint8Array(channels * count);
  if (channels === 1) {
    for (let i = 0; i < count; i++) {
      const r = rgb[3 * i] as number;
      const g = rgb[3 * i + 1] as number;
      const b = rgb[3 * i + 2] as number;
      out[i] = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >>> 16;
    }
    return out;
  }
  for (let i = 0; i < count; i++) {
    out[i] = rgb[3 * i] as number;
    out[count + i] = rgb[3 * i + 1] as number;
    out[2 * count + i] = rgb[3 * i + 2] as number;
  }
  return out;
}
