// A faster Conv2DBackpropInput for the wasm backend (the stock kernel is a scalar loop: 400 ms for
// the seed's 128→4 layer at batch 128). Two formulations, both on XNNPACK:
//   conv    dx = conv(dy, W flipped with in/out channels swapped), padded by k−1−pad: one GEMM
//           with Ci output columns (stride 1 only; 35 ms of CPU for that layer);
//   col2im  Q = dy · Wᵀ as [(n,i,j), (a,b,ci)], then each Q row added into the kh·kw input pixels
//           it came from (one JS pass): for few input channels, where the conv GEMM would have
//           almost no columns (the seed's conv1, Ci = 1: 15 ms instead of 60), and for strides.
import * as tf from "@tensorflow/tfjs";
import { type ConvGeometry, geometry, Heap } from "./heap.js";
import { type Info, type KernelArgs, WasmCalls } from "./wasm-calls.js";

export const INPUT_FORMULATIONS = ["conv", "col2im"] as const;
export type InputFormulation = (typeof INPUT_FORMULATIONS)[number];

/** The kernel; `force` prefers a formulation (conv only where it applies; tests run both). */
export function conv2DBackpropInputWasm(args: KernelArgs, force?: InputFormulation): Info {
  const { dy, filter } = args.inputs as { dy: Info; filter: Info };
  const attrs = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
  if (attrs.dataFormat === "NCHW") {
    throw new Error("Conv2DBackpropInput on wasm supports NHWC only");
  }
  const g = geometry(
    tf.backend_util.computeConv2DInfo(
      attrs.inputShape,
      filter.shape as [number, number, number, number],
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
      false,
      "channelsLast",
    ),
  );
  const wasm = new WasmCalls(args.backend as tf.KernelBackend);
  // The conv form pads dy by k−1−pad on each side; it needs stride 1 and pads within the kernel.
  const padTop = g.kh - 1 - g.padTop;
  const padLeft = g.kw - 1 - g.padLeft;
  const padBottom = g.h - g.ho + g.kh - 1 - padTop;
  const padRight = g.w - g.wo + g.kw - 1 - padLeft;
  const convFits = g.sh === 1 && g.sw === 1 && Math.min(padTop, padLeft, padBottom, padRight) >= 0;
  const preferred = force ?? (g.kh * g.kw * g.ci <= g.co ? "col2im" : "conv");
  if (!convFits || preferred === "col2im") {
    return viaCol2im(wasm, new Heap(args.backend as tf.KernelBackend), dy, filter, g);
  }
  const flipped = wasm.reverse(filter, [0, 1]);
  const swapped = wasm.transpose(flipped, [0, 1, 3, 2]);
  const dx = wasm.conv2d(
    dy,
    swapped,
    [1, 1],
    [1, 1],
    [
      [padTop, padBottom],
      [padLeft, padRight],
    ],
  );
  wasm.dispose(flipped, swapped);
  return dx;
}

function viaCol2im(wasm: WasmCalls, heap: Heap, dy: Info, filter: Info, g: ConvGeometry): Info {
  const m = g.n * g.ho * g.wo;
  const taps = g.kh * g.kw;
  const flatFilter = wasm.reshape(filter, [taps * g.ci, g.co]);
  const weights = wasm.transpose(flatFilter, [1, 0]); // [co, (a,b,ci)]
  const flatDy = wasm.reshape(dy, [m, g.co]);
  const q = wasm.matMul(flatDy, weights); // [(n,i,j), (a,b,ci)]
  wasm.dispose(flatFilter, weights, flatDy);
  const dx = heap.col2im(q, g);
  wasm.dispose(q);
  return dx;
}
