// Gathers and scatters written in JS directly on the wasm heap. The wasm backend's Slice, Concat
// and Pack first copy their whole input out of the heap (readSync), so for the index shuffles of
// the convolution gradients one pass of our own over heap views is several times cheaper.
import type * as tf from "@tensorflow/tfjs";
import type { Info } from "./wasm-calls.js";

/** The part of the wasm backend that hands out heap memory. */
interface HeapBackend {
  makeOutput(shape: number[], dtype: "float32"): Info;
  typedArrayFromHeap(info: Info): Float32Array;
}

/** A convolution's shape and index arithmetic (NHWC x, HWIO filter, dilation 1). */
export interface ConvGeometry {
  n: number;
  h: number;
  w: number;
  ci: number;
  ho: number;
  wo: number;
  co: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  padTop: number;
  padLeft: number;
}

export function geometry(info: tf.backend_util.Conv2DInfo): ConvGeometry {
  return {
    n: info.batchSize,
    h: info.inHeight,
    w: info.inWidth,
    ci: info.inChannels,
    ho: info.outHeight,
    wo: info.outWidth,
    co: info.outChannels,
    kh: info.filterHeight,
    kw: info.filterWidth,
    sh: info.strideHeight,
    sw: info.strideWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
  };
}

/**
 * For each output pixel p and kernel offset a, the source pixel it reads, or -1: `outLength`
 * rows of `taps` entries.
 */
type IndexTable = Int32Array;

/** Forward map: output pixel i, offset a → input pixel i·s + a − pad (im2col). */
function forwardTable(
  outLength: number,
  taps: number,
  stride: number,
  pad: number,
  inLength: number,
) {
  const table: IndexTable = new Int32Array(outLength * taps);
  for (let i = 0; i < outLength; i++) {
    for (let a = 0; a < taps; a++) {
      const r = i * stride + a - pad;
      table[i * taps + a] = r >= 0 && r < inLength ? r : -1;
    }
  }
  return table;
}

/** Inverse map: input pixel y, offset a → the output pixel i with i·s + a − pad = y, or -1. */
function inverseTable(
  inLength: number,
  taps: number,
  stride: number,
  pad: number,
  outLength: number,
) {
  const table: IndexTable = new Int32Array(inLength * taps);
  for (let y = 0; y < inLength; y++) {
    for (let a = 0; a < taps; a++) {
      const d = y - a + pad;
      const i = d / stride;
      table[y * taps + a] = d >= 0 && d % stride === 0 && i < outLength ? i : -1;
    }
  }
  return table;
}

/** How `gather` lays out its result. */
export type Layout =
  /** [(n, p, q), (a, b, c)]: rows are pixels. */
  | "pixels"
  /** [(a, b, c), (n, p, q)]: rows are kernel offsets and channels. */
  | "taps";

interface GatherPlan {
  n: number;
  /** Source image [n, h, w, c]. */
  h: number;
  w: number;
  c: number;
  /** Result pixels per image. */
  outH: number;
  outW: number;
  kh: number;
  kw: number;
  rows: IndexTable;
  cols: IndexTable;
}

export class Heap {
  private readonly backend: HeapBackend;

  constructor(backend: tf.KernelBackend) {
    this.backend = backend as unknown as HeapBackend;
  }

  /** A new float32 tensor. Allocate before taking views: allocation may move the heap. */
  alloc(shape: number[]): Info {
    return this.backend.makeOutput(shape, "float32");
  }

  view(info: Info): Float32Array {
    return this.backend.typedArrayFromHeap(info);
  }

  /**
   * im2col: P[n, i, j, (a, b), c] = x[n, i·sh + a − padTop, j·sw + b − padLeft, c], zero outside:
   * the input window each output pixel of the forward convolution read.
   */
  im2col(x: Info, g: ConvGeometry, layout: Layout): Info {
    return this.gather(x, layout, {
      n: g.n,
      h: g.h,
      w: g.w,
      c: g.ci,
      outH: g.ho,
      outW: g.wo,
      kh: g.kh,
      kw: g.kw,
      rows: forwardTable(g.ho, g.kh, g.sh, g.padTop, g.h),
      cols: forwardTable(g.wo, g.kw, g.sw, g.padLeft, g.w),
    });
  }

  /**
   * im2col seen from dy's side: S[n, y, x, (a, b), c] = dy[n, i, j, c] where
   * y = i·sh + a − padTop and x = j·sw + b − padLeft, zero where no (i, j) maps there.
   */
  shiftedDy(dy: Info, g: ConvGeometry, layout: Layout): Info {
    return this.gather(dy, layout, {
      n: g.n,
      h: g.ho,
      w: g.wo,
      c: g.co,
      outH: g.h,
      outW: g.w,
      kh: g.kh,
      kw: g.kw,
      rows: inverseTable(g.h, g.kh, g.sh, g.padTop, g.ho),
      cols: inverseTable(g.w, g.kw, g.sw, g.padLeft, g.wo),
    });
  }

  private gather(source: Info, layout: Layout, p: GatherPlan): Info {
    const taps = p.kh * p.kw;
    const pixels = p.n * p.outH * p.outW;
    const out = this.alloc(layout === "pixels" ? [pixels, taps * p.c] : [taps * p.c, pixels]);
    const src = this.view(source);
    const dst = this.view(out);
    const c = p.c;
    let pixel = 0;
    for (let n = 0; n < p.n; n++) {
      for (let y = 0; y < p.outH; y++) {
        for (let x = 0; x < p.outW; x++) {
          for (let a = 0; a < p.kh; a++) {
            const r = p.rows[y * p.kh + a] as number;
            for (let b = 0; b < p.kw; b++) {
              const s = p.cols[x * p.kw + b] as number;
              const from = r < 0 || s < 0 ? -1 : ((n * p.h + r) * p.w + s) * c;
              const tap = a * p.kw + b;
              if (layout === "pixels") {
                const to = (pixel * taps + tap) * c;
                if (from < 0) dst.fill(0, to, to + c);
                else if (c > 16) dst.set(src.subarray(from, from + c), to);
                else for (let k = 0; k < c; k++) dst[to + k] = src[from + k] as number;
              } else {
                let to = tap * c * pixels + pixel;
                for (let k = 0; k < c; k++, to += pixels) {
                  dst[to] = from < 0 ? 0 : (src[from + k] as number);
                }
              }
            }
          }
          pixel++;
        }
      }
    }
    return out;
  }

  /** col2im: dx[n, i·sh + a − padTop, j·sw + b − padLeft, c] += Q[(n, i, j), (a, b, c)]. */
  col2im(q: Info, g: ConvGeometry): Info {
    const out = this.alloc([g.n, g.h, g.w, g.ci]);
    const src = this.view(q);
    const dst = this.view(out);
    dst.fill(0);
    const rows = forwardTable(g.ho, g.kh, g.sh, g.padTop, g.h);
    const cols = forwardTable(g.wo, g.kw, g.sw, g.padLeft, g.w);
    const c = g.ci;
    let o = 0;
    for (let n = 0; n < g.n; n++) {
      for (let i = 0; i < g.ho; i++) {
        for (let j = 0; j < g.wo; j++) {
          for (let a = 0; a < g.kh; a++) {
            const r = rows[i * g.kh + a] as number;
            for (let b = 0; b < g.kw; b++) {
              const s = cols[j * g.kw + b] as number;
              if (r >= 0 && s >= 0) {
                const d = ((n * g.h + r) * g.w + s) * c;
                for (let k = 0; k < c; k++)
                  dst[d + k] = (dst[d + k] as number) + (src[o + k] as number);
              }
              o += c;
            }
          }
        }
      }
    }
    return out;
  }
}
