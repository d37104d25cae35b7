// DepthwiseConv2dNativeBackpropInput for the wasm backend, which has none. With channel
// multiplier M and output channel q = c·M + m,
//
//   dx[n, y, x, c] = Σ_{a,b,m} dy[n, i, j, q] · W[a, b, c, m]
//                    over the (i, j, a, b) with y = i·sh + a − padTop, x = j·sw + b − padLeft
//
// One JS pass over the heap, one input row (n, y) at a time, into a float64 row buffer [W, C]:
// for each tap row a that some output row i reaches y through, and each tap b, the output columns
// whose pixel lands inside the row are one contiguous run; along it four channels at a time are
// multiplied by their tap weights (held in registers) into the buffer, which is then stored as
// float32. Float64 sums, as the cpu backend: the result is cpu's to float32 rounding.
// ~18 ms for dy [128, 24, 24, 16], 3×3 valid.
import * as tf from "@tensorflow/tfjs";
import {
  assertFloat32,
  assertNoDilation,
  channelOf,
  columnRuns,
  depthwiseInfo,
} from "./depthwise-backprop-filter.js";
import { type ConvGeometry, geometry, Heap } from "./heap.js";
import type { Info, KernelArgs } from "./wasm-calls.js";

export function depthwiseConv2DBackpropInputWasm(args: KernelArgs): Info {
  const { dy, filter } = args.inputs as { dy: Info; filter: Info };
  const attrs = args.attrs as unknown as tf.DepthwiseConv2dNativeBackpropInputAttrs;
  const kernel = tf.DepthwiseConv2dNativeBackpropInput;
  assertNoDilation(kernel, attrs.dilations);
  assertFloat32(kernel, dy, filter);
  const info = depthwiseInfo(attrs.inputShape, filter.shape, attrs);
  const g = geometry(info);
  const heap = new Heap(args.backend as tf.KernelBackend);
  const out = heap.alloc([...info.inShape]);
  gather(heap.view(dy), heap.view(filter), heap.view(out), g);
  return out;
}

/** Input row y, tap row a → the output row i with i·sh + a − padTop = y, or -1. */
function reachingRows(g: ConvGeometry): Int32Array {
  const table = new Int32Array(g.h * g.kh);
  for (let y = 0; y < g.h; y++) {
    for (let a = 0; a < g.kh; a++) {
      const d = y - a + g.padTop;
      const i = d / g.sh;
      table[y * g.kh + a] = d >= 0 && d % g.sh === 0 && i < g.ho ? i : -1;
    }
  }
  return table;
}

function gather(dy: Float32Array, weights: Float32Array, dx: Float32Array, g: ConvGeometry): void {
  const { n: batch, h, w, ci, ho, wo, co, kh, kw, sw, padLeft } = g;
  const row = new Float64Array(w * ci);
  const chan = channelOf(co, co / ci);
  const rows = reachingRows(g);
  const runs = columnRuns(g);
  const rowStep = sw * ci; // row-buffer offset from one output column to the next
  const blocked = co - (co % 4);
  for (let n = 0; n < batch; n++) {
    for (let y = 0; y < h; y++) {
      row.fill(0);
      for (let a = 0; a < kh; a++) {
        const i = rows[y * kh + a] as number;
        if (i < 0) continue;
        const dyRow = (n * ho + i) * wo * co;
        for (let b = 0; b < kw; b++) {
          const count = runs.count[b] as number;
          if (count === 0) continue;
          const first = runs.first[b] as number;
          const r0 = (first * sw + b - padLeft) * ci;
          const d0 = dyRow + first * co;
          const t = (a * kw + b) * co;
          let q = 0;
          for (; q < blocked; q += 4) {
            const w0 = weights[t + q] as number;
            const w1 = weights[t + q + 1] as number;
            const w2 = weights[t + q + 2] as number;
            const w3 = weights[t + q + 3] as number;
            let p0 = r0 + (chan[q] as number);
            let p1 = r0 + (chan[q + 1] as number);
            let p2 = r0 + (chan[q + 2] as number);
            let p3 = r0 + (chan[q + 3] as number);
            let d = d0 + q;
            for (let j = 0; j < count; j++) {
              row[p0] = (row[p0] as number) + (dy[d] as number) * w0;
              row[p1] = (row[p1] as number) + (dy[d + 1] as number) * w1;
              row[p2] = (row[p2] as number) + (dy[d + 2] as number) * w2;
              row[p3] = (row[p3] as number) + (dy[d + 3] as number) * w3;
              p0 += rowStep;
              p1 += rowStep;
              p2 += rowStep;
              p3 += rowStep;
              d += co;
            }
          }
          for (; q < co; q++) {
            const wq = weights[t + q] as number;
            let p = r0 + (chan[q] as number);
            let d = d0 + q;
            for (let j = 0; j < count; j++, p += rowStep, d += co) {
              row[p] = (row[p] as number) + (dy[d] as number) * wq;
            }
          }
        }
      }
      dx.set(row, (n * h + y) * w * ci);
    }
  }
}
