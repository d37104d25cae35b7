// A faster Sum for the wasm backend when the reduced axes lead and the kept ones trail, as in every
// bias gradient (Σ over N, H, W of an NHWC gradient) and per-channel statistic. The stock kernel
// first transposes the reduced axes to the inside (a full copy of the tensor, 150 ms for the seed's
// first layer at batch 128); average pooling over the same axes reads the tensor once in place:
//   sum = avgPool over the pixels of each image, then over the images, times the count.
// Two short averaging passes rather than one long one keep float32 rounding small.
import * as tf from "@tensorflow/tfjs";
import { type Info, type KernelArgs, WasmCalls } from "./wasm-calls.js";

export function makeSumWasm(stock: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => sumWasm(args, stock);
}

/** How many leading axes `axes` names, or -1 when it is not exactly 0..k-1. */
function leadingAxes(axes: number[]): number {
  const sorted = [...axes].sort((a, b) => a - b);
  return sorted.every((a, i) => a === i) ? sorted.length : -1;
}

function sumWasm(args: KernelArgs, stock: tf.KernelFunc): Info | Info[] {
  const { x } = args.inputs as { x: Info };
  const { axis, keepDims } = args.attrs as unknown as tf.SumAttrs;
  if (x.dtype !== "float32") return stock(args);
  const axes = tf.util.parseAxisParam(axis, x.shape);
  const k = leadingAxes(axes);
  if (k < 1 || k >= x.shape.length) return stock(args);
  const kept = x.shape.slice(k);
  const keptSize = tf.util.sizeFromShape(kept);
  const first = x.shape[0] as number;
  const reduced = tf.util.sizeFromShape(x.shape.slice(0, k));
  const rest = reduced / first;
  if (reduced < 2 || keptSize < 2) return stock(args);

  const wasm = new WasmCalls(args.backend as tf.KernelBackend);
  let perImage = wasm.reshape(x, [first, rest, 1, keptSize]);
  if (rest > 1) {
    const pooled = wasm.avgPool(perImage, [rest, 1]);
    wasm.dispose(perImage);
    perImage = pooled;
  }
  const column = wasm.reshape(perImage, [1, first, 1, keptSize]);
  wasm.dispose(perImage);
  let mean = column;
  if (first > 1) {
    mean = wasm.avgPool(column, [first, 1]);
    wasm.dispose(column);
  }
  const count = wasm.fill([], reduced);
  const sum = wasm.run("Multiply", { a: mean, b: count });
  wasm.dispose(mean, count);
  const outShape = keepDims ? [...axes.map(() => 1), ...kept] : kept;
  const out = wasm.reshape(sum, outShape);
  wasm.dispose(sum);
  return out;
}
