// DepthwiseConv2dNativeBackpropFilter for the wasm backend, which has none (training a depthwise
// conv fails without it). With channel multiplier M and output channel q = c·M + m,
//
//   dW[a, b, c, m] = Σ_{n,i,j} x[n, i·sh + a − padTop, j·sw + b − padLeft, c] · dy[n, i, j, q]
//
// There is no channel contraction to hand to a GEMM, so it is one JS pass over the heap. For each
// output row (n, i) and tap (a, b), the columns j whose input lies inside x are one contiguous run
// (computed once per b, no per-pixel bounds tests); along it, four output channels at a time are
// summed in registers (four independent float64 chains), then added to the tap's accumulator row.
// Float64 throughout, as the cpu backend: the result is cpu's to float32 rounding.
// ~14 ms for x [128, 26, 26, 16], 3×3 valid; the cpu backend takes ~2 s.
import * as tf from "@tensorflow/tfjs";
import { type ConvGeometry, geometry, Heap } from "./heap.js";
import type { Info, KernelArgs } from "./wasm-calls.js";

/** Throws unless every dilation is 1 (tfjs's depthwise gradient supports no other either). */
export function assertNoDilation(kernel: string, dilations: number | number[] | undefined): void {
  if (dilations !== undefined && !tf.backend_util.tupleValuesAreOne(dilations)) {
    throw new Error(
      `${kernel} on wasm supports dilation 1 only, got dilations ${JSON.stringify(dilations)}`,
    );
  }
}

export function assertFloat32(kernel: string, ...infos: Info[]): void {
  for (const info of infos) {
    if (info.dtype !== "float32") {
      throw new Error(`${kernel} on wasm supports float32 only, got ${info.dtype}`);
    }
  }
}

/**
 * For each tap b of a window, the output columns j with j·stride + b − pad inside [0, inLength):
 * the run [first[b], first[b] + count[b]).
 */
export function columnRuns(g: ConvGeometry): { first: Int32Array; count: Int32Array } {
  const first = new Int32Array(g.kw);
  const count = new Int32Array(g.kw);
  for (let b = 0; b < g.kw; b++) {
    const start = Math.max(0, Math.ceil((g.padLeft - b) / g.sw));
    const end = Math.min(g.wo, Math.floor((g.w - 1 + g.padLeft - b) / g.sw) + 1);
    first[b] = start;
    count[b] = Math.max(0, end - start);
  }
  return { first, count };
}

/** Output channel q = c·M + m → its input channel c. */
export function channelOf(outChannels: number, multiplier: number): Int32Array {
  const table = new Int32Array(outChannels);
  for (let q = 0; q < outChannels; q++) table[q] = Math.floor(q / multiplier);
  return table;
}

/** tfjs's conv geometry of a depthwise conv (padding resolved as its forward kernel does). */
export function depthwiseInfo(
  inShape: readonly number[],
  filterShape: readonly number[],
  attrs: Pick<tf.DepthwiseConv2dNativeBackpropFilterAttrs, "strides" | "pad" | "dimRoundingMode">,
): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    inShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    true,
  );
}

export function depthwiseConv2DBackpropFilterWasm(args: KernelArgs): Info {
  const { x, dy } = args.inputs as { x: Info; dy: Info };
  const attrs = args.attrs as unknown as tf.DepthwiseConv2dNativeBackpropFilterAttrs;
  const kernel = tf.DepthwiseConv2dNativeBackpropFilter;
  assertNoDilation(kernel, attrs.dilations);
  assertFloat32(kernel, x, dy);
  const info = depthwiseInfo(x.shape, attrs.filterShape, attrs);
  const g = geometry(info);
  const heap = new Heap(args.backend as tf.KernelBackend);
  const out = heap.alloc([...info.filterShape]);
  const acc = accumulate(heap.view(x), heap.view(dy), g);
  heap.view(out).set(acc);
  return out;
}

/** dW in float64, [kh, kw, C, M] (= [kh, kw, C·M]); `g.co` is C·M. */
function accumulate(x: Float32Array, dy: Float32Array, g: ConvGeometry): Float64Array {
  const { n: batch, h, w, ci, ho, wo, co, kh, kw, sh, sw, padTop, padLeft } = g;
  const acc = new Float64Array(kh * kw * co);
  const chan = channelOf(co, co / ci);
  const runs = columnRuns(g);
  const xStep = sw * ci; // x offset from one output column to the next
  const blocked = co - (co % 4);
  for (let n = 0; n < batch; n++) {
    for (let i = 0; i < ho; i++) {
      const dyRow = (n * ho + i) * wo * co;
      for (let a = 0; a < kh; a++) {
        const r = i * sh + a - padTop;
        if (r < 0 || r >= h) continue;
        const xRow = (n * h + r) * w;
        for (let b = 0; b < kw; b++) {
          const count = runs.count[b] as number;
          if (count === 0) continue;
          const first = runs.first[b] as number;
          const x0 = (xRow + first * sw + b - padLeft) * ci;
          const d0 = dyRow + first * co;
          const t = (a * kw + b) * co;
          let q = 0;
          for (; q < blocked; q += 4) {
            let s0 = 0;
            let s1 = 0;
            let s2 = 0;
            let s3 = 0;
            let p0 = x0 + (chan[q] as number);
            let p1 = x0 + (chan[q + 1] as number);
            let p2 = x0 + (chan[q + 2] as number);
            let p3 = x0 + (chan[q + 3] as number);
            let d = d0 + q;
            for (let j = 0; j < count; j++) {
              s0 += (x[p0] as number) * (dy[d] as number);
              s1 += (x[p1] as number) * (dy[d + 1] as number);
              s2 += (x[p2] as number) * (dy[d + 2] as number);
              s3 += (x[p3] as number) * (dy[d + 3] as number);
              p0 += xStep;
              p1 += xStep;
              p2 += xStep;
              p3 += xStep;
              d += co;
            }
            acc[t + q] = (acc[t + q] as number) + s0;
            acc[t + q + 1] = (acc[t + q + 1] as number) + s1;
            acc[t + q + 2] = (acc[t + q + 2] as number) + s2;
            acc[t + q + 3] = (acc[t + q + 3] as number) + s3;
          }
          for (; q < co; q++) {
            let s = 0;
            let p = x0 + (chan[q] as number);
            let d = d0 + q;
            for (let j = 0; j < count; j++, p += xStep, d += co) {
              s += (x[p] as number) * (dy[d] as number);
            }
            acc[t + q] = (acc[t + q] as number) + s;
          }
        }
      }
    }
  }
  return acc;
}
