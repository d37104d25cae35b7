// MaxPoolGrad for the wasm backend in one JS pass over the heap (the stock kernel took 18 ms for
// the seed's conv2 pool at batch 128; this takes a third). Each output's gradient goes to the
// first maximum of its window in row-major order, as in PyTorch and tfjs's cpu backend (ties are
// common: batch norm maps every ReLU zero of a channel to the same value).
import * as tf from "@tensorflow/tfjs";
import { Heap } from "./heap.js";
import type { Info, KernelArgs } from "./wasm-calls.js";

export function maxPoolGradWasm(args: KernelArgs): Info {
  const { dy, input } = args.inputs as { dy: Info; input: Info };
  const { filterSize, strides, pad, dimRoundingMode } =
    args.attrs as unknown as tf.MaxPoolGradAttrs;
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    filterSize,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const heap = new Heap(args.backend as tf.KernelBackend);
  const out = heap.alloc([...input.shape]);
  const x = heap.view(input);
  const g = heap.view(dy);
  const dx = heap.view(out);
  dx.fill(0);
  const { batchSize, inHeight, inWidth, inChannels: c, outHeight, outWidth } = info;
  const { strideHeight, strideWidth, filterHeight, filterWidth } = info;
  const padTop = info.padInfo.top;
  const padLeft = info.padInfo.left;
  let o = 0;
  for (let n = 0; n < batchSize; n++) {
    const image = n * inHeight;
    for (let i = 0; i < outHeight; i++) {
      const top = i * strideHeight - padTop;
      const rowStart = Math.max(top, 0);
      const rowEnd = Math.min(top + filterHeight, inHeight);
      for (let j = 0; j < outWidth; j++) {
        const left = j * strideWidth - padLeft;
        const colStart = Math.max(left, 0);
        const colEnd = Math.min(left + filterWidth, inWidth);
        for (let k = 0; k < c; k++, o++) {
          let best = Number.NEGATIVE_INFINITY;
          let at = -1;
          for (let r = rowStart; r < rowEnd; r++) {
            for (let s = colStart; s < colEnd; s++) {
              const p = ((image + r) * inWidth + s) * c + k;
              const v = x[p] as number;
              if (v > best) {
                best = v;
                at = p;
              }
            }
          }
          if (at >= 0) dx[at] = (dx[at] as number) + (g[o] as number);
        }
      }
    }
  }
  return out;
}
