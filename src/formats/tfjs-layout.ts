// How a PyTorch parameter is laid out in TensorFlow.js, and the conversions both ways: shared by
// the tfjs backend (which picks each parameter's layout) and the runtime (which converts
// checkpoints and initial values). Pure: arrays in, arrays out.

/** `oihw`: conv weight (tfjs HWIO); `oi`: linear weight (tfjs [in, out]); `same`: 1-D vectors. */
export type Layout = "oihw" | "oi" | "same";

/** A PyTorch shape in tfjs's layout. */
export function toTfjsShape(shape: number[], layout: Layout): number[] {
  const [a = 0, b = 0, c = 0, d = 0] = shape;
  if (layout === "oihw") return [c, d, b, a];
  if (layout === "oi") return [b, a];
  return [...shape];
}

/** A tfjs weight shape back in PyTorch layout (a shape of another rank is kept as it is). */
export function toTorchShape(tfjsShape: number[], layout: Layout): number[] {
  const [a = 0, b = 0, c = 0, d = 0] = tfjsShape;
  if (layout === "oihw" && tfjsShape.length === 4) return [d, c, a, b];
  if (layout === "oi" && tfjsShape.length === 2) return [b, a];
  return [...tfjsShape];
}

/** OIHW -> HWIO, [out, in] -> [in, out]; vectors are copied. */
export function torchToTfjsLayout(data: Float32Array, torchShape: number[], layout: Layout) {
  const tfjsAt = tfjsIndex(torchShape, layout);
  const out = new Float32Array(data.length);
  for (let k = 0; k < data.length; k++) out[tfjsAt(k)] = data[k] ?? 0;
  return out;
}

/** HWIO -> OIHW, [in, out] -> [out, in]; vectors are copied. */
export function tfjsToTorchLayout(data: Float32Array, torchShape: number[], layout: Layout) {
  const tfjsAt = tfjsIndex(torchShape, layout);
  const out = new Float32Array(data.length);
  for (let k = 0; k < data.length; k++) out[k] = data[tfjsAt(k)] ?? 0;
  return out;
}

/** Where the value at row-major index `k` of the PyTorch layout sits in tfjs's layout. */
function tfjsIndex(torchShape: number[], layout: Layout): (k: number) => number {
  if (layout === "oihw") {
    const [o = 0, i = 0, h = 0, w = 0] = torchShape;
    return (k) => {
      const ww = k % w;
      const hh = Math.floor(k / w) % h;
      const ii = Math.floor(k / (w * h)) % i;
      const oo = Math.floor(k / (w * h * i));
      return ((hh * w + ww) * i + ii) * o + oo;
    };
  }
  if (layout === "oi") {
    const [o = 0, i = 0] = torchShape;
    return (k) => (k % i) * o + Math.floor(k / i);
  }
  return (k) => k;
}
