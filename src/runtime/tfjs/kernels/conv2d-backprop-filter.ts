// Conv2DBackpropFilter for the wasm backend, which has none (training fails without it).
//
//   dW[a, b, ci, co] = Σ_{n,i,j} x[n, i·s + a − padTop, j·s + b − padLeft, ci] · dy[n, i, j, co]
//
// is one matrix product over pixels, run by XNNPACK's GEMM, once one side is expanded into its
// kh·kw shifted copies (im2col of x, or dy moved onto x's pixels; a JS gather on the heap). The
// GEMM packs its right operand on every call, with strided reads (~20 ns per element, against
// ~3 ns to transpose or gather one), so the formulation is picked by what it packs:
//   patchesRight  dyᵀ [Co, M] · im2col(x) [M, (a,b,ci)]     (the seed's conv1, 1 → 128)
//   patchesLeft   im2col(x)ᵀ [(a,b,ci), M] · dy [M, Co]     (16 → 16, 4 → 16)
//   shiftedRight  xᵀ [Ci, M] · shifted dy [M, (a,b,co)]     (its onecross1, 128 → 4)
//   shiftedLeft   shifted dyᵀ [(a,b,co), M] · x [M, Ci]
// For the seed's net at batch 128 the filter gradients take ~175 ms of CPU in all, where forward
// convolutions of transposed tensors took ~345.
import * as tf from "@tensorflow/tfjs";
import { type ConvGeometry, geometry, Heap } from "./heap.js";
import { type Info, type KernelArgs, WasmCalls } from "./wasm-calls.js";

/** Estimated ns per element: GEMM packing of the right operand, a transpose, a JS gather. */
const PACK_NS = 20;
const TRANSPOSE_NS = 3;
const GATHER_NS = 3;

export const FORMULATIONS = ["patchesRight", "patchesLeft", "shiftedRight", "shiftedLeft"] as const;
export type Formulation = (typeof FORMULATIONS)[number];

/** The kernel; `force` picks a formulation instead of the cheapest (tests run them all). */
export function conv2DBackpropFilterWasm(args: KernelArgs, force?: Formulation): Info {
  const { x, dy } = args.inputs as { x: Info; dy: Info };
  const attrs = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  if (attrs.dataFormat === "NCHW") {
    throw new Error("Conv2DBackpropFilter on wasm supports NHWC only");
  }
  const g = geometry(
    tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      attrs.filterShape,
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
      false,
      "channelsLast",
    ),
  );
  const calls = new WasmCalls(args.backend as tf.KernelBackend);
  const heap = new Heap(args.backend as tf.KernelBackend);
  switch (force ?? cheapest(g)) {
    case "patchesRight":
      return patchesRight(calls, heap, x, dy, g);
    case "patchesLeft":
      return patchesLeft(calls, heap, x, dy, g);
    case "shiftedRight":
      return shiftedRight(calls, heap, x, dy, g);
    case "shiftedLeft":
      return shiftedLeft(calls, heap, x, dy, g);
  }
}

export function cheapest(g: ConvGeometry): Formulation {
  const taps = g.kh * g.kw;
  const outPixels = g.n * g.ho * g.wo;
  const inPixels = g.n * g.h * g.w;
  const patches = taps * g.ci * outPixels;
  const shifted = taps * g.co * inPixels;
  const costs: [Formulation, number][] = [
    ["patchesRight", TRANSPOSE_NS * g.co * outPixels + (PACK_NS + GATHER_NS) * patches],
    ["patchesLeft", PACK_NS * g.co * outPixels + GATHER_NS * patches],
    ["shiftedRight", TRANSPOSE_NS * g.ci * inPixels + (PACK_NS + GATHER_NS) * shifted],
    ["shiftedLeft", PACK_NS * g.ci * inPixels + GATHER_NS * shifted],
  ];
  costs.sort((a, b) => a[1] - b[1]);
  return (costs[0] as [Formulation, number])[0];
}

/** dW as [Co, (a,b,ci)] = dyᵀ · im2col(x), transposed to [kh, kw, Ci, Co]. */
function patchesRight(calls: WasmCalls, heap: Heap, x: Info, dy: Info, g: ConvGeometry): Info {
  const right = heap.im2col(x, g, "pixels");
  const flatDy = calls.reshape(dy, [right.shape[0] as number, g.co]);
  const left = calls.transpose(flatDy, [1, 0]);
  const product = calls.matMul(left, right);
  calls.dispose(right, flatDy, left);
  return toFilter(calls, product, [1, 0], g);
}

/** dW as [(a,b,ci), Co] = im2col(x)ᵀ · dy: already the filter layout. */
function patchesLeft(calls: WasmCalls, heap: Heap, x: Info, dy: Info, g: ConvGeometry): Info {
  const left = heap.im2col(x, g, "taps");
  const right = calls.reshape(dy, [left.shape[1] as number, g.co]);
  const product = calls.matMul(left, right);
  calls.dispose(left, right);
  const out = calls.reshape(product, [g.kh, g.kw, g.ci, g.co]);
  calls.dispose(product);
  return out;
}

/** dW as [Ci, (a,b,co)] = xᵀ · shifted dy, transposed to [kh, kw, Ci, Co]. */
function shiftedRight(calls: WasmCalls, heap: Heap, x: Info, dy: Info, g: ConvGeometry): Info {
  const right = heap.shiftedDy(dy, g, "pixels");
  const flatX = calls.reshape(x, [right.shape[0] as number, g.ci]);
  const left = calls.transpose(flatX, [1, 0]);
  const product = calls.matMul(left, right);
  calls.dispose(right, flatX, left);
  const grouped = calls.reshape(product, [g.ci, g.kh, g.kw, g.co]);
  const out = calls.transpose(grouped, [1, 2, 0, 3]);
  calls.dispose(product, grouped);
  return out;
}

/** dW as [(a,b,co), Ci] = shifted dyᵀ · x, transposed to [kh, kw, Ci, Co]. */
function shiftedLeft(calls: WasmCalls, heap: Heap, x: Info, dy: Info, g: ConvGeometry): Info {
  const left = heap.shiftedDy(dy, g, "taps");
  const right = calls.reshape(x, [left.shape[1] as number, g.ci]);
  const product = calls.matMul(left, right);
  calls.dispose(left, right);
  const grouped = calls.reshape(product, [g.kh, g.kw, g.co, g.ci]);
  const out = calls.transpose(grouped, [0, 1, 3, 2]);
  calls.dispose(product, grouped);
  return out;
}

/** [Co, (a,b,ci)] → [kh, kw, Ci, Co]. */
function toFilter(calls: WasmCalls, product: Info, perm: number[], g: ConvGeometry): Info {
  const transposed = calls.transpose(product, perm);
  const out = calls.reshape(transposed, [g.kh, g.kw, g.ci, g.co]);
  calls.dispose(product, transposed);
  return out;
}
