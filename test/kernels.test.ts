// The project's wasm kernels against the cpu backend's reference kernels, on seeded random data.
import assert from "node:assert/strict";
import { before, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../src/runtime/tfjs/engine.js";
import {
  conv2DBackpropFilterWasm,
  FORMULATIONS,
} from "../src/runtime/tfjs/kernels/conv2d-backprop-filter.js";
import {
  conv2DBackpropInputWasm,
  INPUT_FORMULATIONS,
} from "../src/runtime/tfjs/kernels/conv2d-backprop-input.js";
import { depthwiseConv2DBackpropFilterWasm } from "../src/runtime/tfjs/kernels/depthwise-backprop-filter.js";
import { depthwiseConv2DBackpropInputWasm } from "../src/runtime/tfjs/kernels/depthwise-backprop-input.js";
import { registerWasmKernels } from "../src/runtime/tfjs/kernels/index.js";
import { Rng } from "../src/util/rng.js";

process.env.MNISTC_ENGINE = "wasm";
await initEngine();

type Shape4 = [number, number, number, number];
type Pad = "valid" | "same";

interface ConvCase {
  name: string;
  x: Shape4; // NHWC input
  filter: Shape4; // HWIO
  strides: [number, number];
  pad: Pad;
}

// Shapes that exercise the index arithmetic: padding, strides with and without a remainder,
// non-square kernels and images, batch one, 1×1 kernels, and the seed's two big layers in small.
const cases: ConvCase[] = [
  { name: "3x3 valid", x: [2, 8, 8, 3], filter: [3, 3, 3, 5], strides: [1, 1], pad: "valid" },
  { name: "3x3 same", x: [2, 8, 8, 3], filter: [3, 3, 3, 5], strides: [1, 1], pad: "same" },
  { name: "Ci > Co valid", x: [2, 8, 8, 6], filter: [3, 3, 6, 2], strides: [1, 1], pad: "valid" },
  { name: "Ci > Co same", x: [2, 7, 7, 8], filter: [3, 3, 8, 3], strides: [1, 1], pad: "same" },
  { name: "batch one", x: [1, 6, 6, 2], filter: [3, 3, 2, 4], strides: [1, 1], pad: "valid" },
  {
    name: "batch one, Ci > Co",
    x: [1, 6, 6, 7],
    filter: [3, 3, 7, 4],
    strides: [1, 1],
    pad: "same",
  },
  { name: "1x1", x: [3, 5, 5, 4], filter: [1, 1, 4, 6], strides: [1, 1], pad: "valid" },
  { name: "1x1, Ci > Co", x: [3, 5, 5, 32], filter: [1, 1, 32, 10], strides: [1, 1], pad: "valid" },
  {
    name: "stride 2 valid, odd",
    x: [2, 9, 9, 3],
    filter: [3, 3, 3, 4],
    strides: [2, 2],
    pad: "valid",
  },
  {
    name: "stride 2 valid, even",
    x: [2, 8, 8, 6],
    filter: [3, 3, 6, 3],
    strides: [2, 2],
    pad: "valid",
  },
  { name: "stride 2 same", x: [2, 8, 7, 3], filter: [3, 3, 3, 4], strides: [2, 2], pad: "same" },
  {
    name: "stride 2 same, Ci > Co",
    x: [2, 9, 8, 6],
    filter: [3, 3, 6, 5],
    strides: [2, 2],
    pad: "same",
  },
  { name: "non-square", x: [2, 10, 7, 2], filter: [3, 2, 2, 3], strides: [1, 2], pad: "valid" },
  { name: "non-square same", x: [1, 7, 10, 5], filter: [2, 5, 5, 2], strides: [2, 1], pad: "same" },
  {
    name: "1 input channel (seed conv1)",
    x: [4, 12, 12, 1],
    filter: [3, 3, 1, 8],
    strides: [1, 1],
    pad: "valid",
  },
  {
    name: "128 -> 4 (seed onecross1)",
    x: [2, 10, 10, 128],
    filter: [3, 3, 128, 4],
    strides: [1, 1],
    pad: "valid",
  },
];

function random(shape: number[], seed: number): Float32Array {
  const rng = new Rng(seed);
  const size = shape.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: size }, () => rng.uniform(-1, 1));
}

function outShape(c: ConvCase): Shape4 {
  const [n, h, w] = c.x;
  const [kh, kw, , co] = c.filter;
  const [sh, sw] = c.strides;
  const size = (len: number, k: number, s: number) =>
    c.pad === "same" ? Math.ceil(len / s) : Math.floor((len - k) / s) + 1;
  return [n, size(h, kh, sh), size(w, kw, sw), co];
}

interface Data {
  shape: number[];
  values: Float32Array;
}

/** Run one kernel on a backend and read the result back. */
async function runOn(
  backend: string,
  kernel: string,
  inputs: Record<string, Data>,
  attrs: Record<string, unknown>,
): Promise<Data> {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const tensors = Object.fromEntries(
      Object.entries(inputs).map(([k, v]) => [k, tf.tensor(v.values, v.shape)]),
    );
    const out = tf.engine().runKernel(kernel, tensors, attrs as tf.NamedAttrMap) as tf.Tensor;
    return { shape: out.shape, values: out.dataSync() as Float32Array };
  });
}

function assertClose(
  actual: Float32Array,
  expected: Float32Array,
  what: string,
  tolerance = 1e-4,
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    const e = expected[i] as number;
    const err = Math.abs((actual[i] as number) - e) / Math.max(1, Math.abs(e));
    worst = Math.max(worst, err);
  }
  assert.ok(worst <= tolerance, `${what}: worst relative error ${worst}`);
}

before(async () => {
  await tf.setBackend("wasm");
});

/** Run one of our kernel functions directly on wasm tensors (to force a formulation). */
async function runOurs(
  kernel: (args: Parameters<tf.KernelFunc>[0]) => tf.TensorInfo,
  inputs: Record<string, Data>,
  attrs: Record<string, unknown>,
): Promise<Data> {
  await tf.setBackend("wasm");
  return tf.tidy(() => {
    const tensors = Object.fromEntries(
      Object.entries(inputs).map(([k, v]) => [k, tf.tensor(v.values, v.shape)]),
    );
    const info = kernel({
      inputs: tensors,
      attrs: attrs as tf.NamedAttrMap,
      backend: tf.backend(),
    });
    const out = tf.engine().makeTensorFromTensorInfo(info);
    return { shape: out.shape, values: out.dataSync() as Float32Array };
  });
}

for (const c of cases) {
  test(`Conv2DBackpropFilter matches cpu, every formulation: ${c.name}`, async () => {
    const x = { shape: c.x, values: random(c.x, 1) };
    const dyShape = outShape(c);
    const dy = { shape: dyShape, values: random(dyShape, 2) };
    const attrs = { strides: c.strides, pad: c.pad, dataFormat: "NHWC", filterShape: c.filter };
    const expected = await runOn("cpu", "Conv2DBackpropFilter", { x, dy }, attrs);
    const registered = await runOn("wasm", "Conv2DBackpropFilter", { x, dy }, attrs);
    assert.deepEqual(registered.shape, c.filter);
    assertClose(registered.values, expected.values, c.name);
    for (const f of FORMULATIONS) {
      const forced = await runOurs((a) => conv2DBackpropFilterWasm(a, f), { x, dy }, attrs);
      assert.deepEqual(forced.shape, c.filter, f);
      assertClose(forced.values, expected.values, `${c.name}, ${f}`);
    }
  });

  test(`Conv2DBackpropInput matches cpu, every formulation: ${c.name}`, async () => {
    const filter = { shape: c.filter, values: random(c.filter, 3) };
    const dyShape = outShape(c);
    const dy = { shape: dyShape, values: random(dyShape, 4) };
    const attrs = { strides: c.strides, pad: c.pad, dataFormat: "NHWC", inputShape: c.x };
    const expected = await runOn("cpu", "Conv2DBackpropInput", { dy, filter }, attrs);
    const registered = await runOn("wasm", "Conv2DBackpropInput", { dy, filter }, attrs);
    assert.deepEqual(registered.shape, c.x);
    assertClose(registered.values, expected.values, c.name);
    for (const f of INPUT_FORMULATIONS) {
      const forced = await runOurs((a) => conv2DBackpropInputWasm(a, f), { dy, filter }, attrs);
      assert.deepEqual(forced.shape, c.x, f);
      assertClose(forced.values, expected.values, `${c.name}, ${f}`);
    }
  });
}

const sumCases: { shape: number[]; axis: number[]; keepDims: boolean }[] = [
  { shape: [4, 5, 6, 3], axis: [0, 1, 2], keepDims: false }, // a bias gradient
  { shape: [4, 5, 6, 3], axis: [2, 0, 1], keepDims: true },
  { shape: [7, 3], axis: [0], keepDims: false },
  { shape: [1, 6, 2], axis: [0, 1], keepDims: false }, // batch of one
  { shape: [3, 4, 5], axis: [1, 2], keepDims: false }, // not leading: the stock kernel
  { shape: [3, 4], axis: [0, 1], keepDims: false }, // everything: the stock kernel
];

for (const c of sumCases) {
  test(`Sum matches cpu: [${c.shape}] over [${c.axis}]${c.keepDims ? ", keepDims" : ""}`, async () => {
    const x = { shape: c.shape, values: random(c.shape, 7) };
    const attrs = { axis: c.axis, keepDims: c.keepDims };
    const expected = await runOn("cpu", "Sum", { x }, attrs);
    const actual = await runOn("wasm", "Sum", { x }, attrs);
    assert.deepEqual(actual.shape, expected.shape);
    assertClose(actual.values, expected.values, "sum");
  });
}

test("Sum of int32 keeps its dtype and exact value", async () => {
  await tf.setBackend("wasm");
  const total = tf.tidy(() => tf.sum(tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2], "int32"), 0));
  assert.equal(total.dtype, "int32");
  assert.deepEqual(Array.from(total.dataSync()), [9, 12]);
});

const poolCases: {
  name: string;
  x: Shape4;
  size: number;
  stride: number;
  pad: Pad;
  ties: boolean;
}[] = [
  {
    name: "2x2 stride 2 (the seed's)",
    x: [2, 6, 6, 3],
    size: 2,
    stride: 2,
    pad: "valid",
    ties: false,
  },
  { name: "2x2 with ties", x: [2, 6, 6, 3], size: 2, stride: 2, pad: "valid", ties: true },
  { name: "odd size, floor", x: [1, 7, 5, 2], size: 2, stride: 2, pad: "valid", ties: true },
  {
    name: "3x3 stride 2 overlapping, same",
    x: [2, 7, 8, 2],
    size: 3,
    stride: 2,
    pad: "same",
    ties: true,
  },
  { name: "3x3 stride 1", x: [1, 5, 5, 4], size: 3, stride: 1, pad: "valid", ties: false },
];

for (const c of poolCases) {
  test(`MaxPoolGrad matches cpu: ${c.name}`, async () => {
    // Ties: values from {0, 1, 2} so that windows hold equal maxima; the first one must win.
    const rng = new Rng(12);
    const size = c.x.reduce((a, b) => a * b, 1);
    const xv = Float32Array.from({ length: size }, () =>
      c.ties ? rng.int(3) : rng.uniform(-1, 1),
    );
    const grads = async (backend: string) => {
      await tf.setBackend(backend);
      return tf.tidy(() => {
        const x = tf.tensor4d(xv, c.x);
        const f = (t: tf.Tensor) => {
          const y = tf.maxPool(t as tf.Tensor4D, c.size, c.stride, c.pad);
          return y.mul(tf.range(1, y.size + 1).reshape(y.shape)).sum();
        };
        return tf.grad(f)(x).dataSync() as Float32Array;
      });
    };
    const expected = await grads("cpu");
    assertClose(await grads("wasm"), expected, c.name);
  });
}

test("Identity shares the data; a clone outlives its source", async () => {
  await tf.setBackend("wasm");
  const before = tf.engine().backend.numDataIds();
  const x = tf.tensor1d([1, 2, 3]);
  const y = x.clone();
  assert.equal(tf.engine().backend.numDataIds(), before + 1);
  x.dispose();
  assert.deepEqual(Array.from(y.dataSync()), [1, 2, 3]);
  y.dispose();
  assert.equal(tf.engine().backend.numDataIds(), before);
});

test("Cast to another dtype still converts", async () => {
  await tf.setBackend("wasm");
  const ints = tf.tidy(() => tf.cast(tf.tensor1d([1.7, -2.2, 3]), "int32").dataSync());
  assert.deepEqual(Array.from(ints), [1, -2, 3]);
  const same = tf.tidy(() => tf.cast(tf.tensor1d([1.5, 2.5]), "float32").dataSync());
  assert.deepEqual(Array.from(same), [1.5, 2.5]);
});

test("a conv2d gradient through tf.grads uses the kernels and matches cpu", async () => {
  const c = cases[0] as ConvCase;
  const xv = random(c.x, 5);
  const fv = random(c.filter, 6);
  const grads = async (backend: string) => {
    await tf.setBackend(backend);
    return tf.tidy(() => {
      const x = tf.tensor4d(xv, c.x);
      const f = tf.tensor4d(fv, c.filter);
      const [dx, df] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf
          .conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, "valid")
          .square()
          .sum(),
      )([x, f]) as [tf.Tensor, tf.Tensor];
      return [dx.dataSync() as Float32Array, df.dataSync() as Float32Array];
    });
  };
  const [dxCpu, dfCpu] = await grads("cpu");
  const [dxWasm, dfWasm] = await grads("wasm");
  assertClose(dxWasm as Float32Array, dxCpu as Float32Array, "dx");
  assertClose(dfWasm as Float32Array, dfCpu as Float32Array, "dfilter");
});

test("the kernels leak no wasm memory", async () => {
  await tf.setBackend("wasm");
  const c = cases[11] as ConvCase; // stride 2 same, Ci > Co: dilation, crops and pads
  const x = tf.tensor(random(c.x, 8), c.x);
  const f = tf.tensor(random(c.filter, 9), c.filter);
  const dy = tf.tensor(random(outShape(c), 10), outShape(c));
  const before = tf.engine().backend.numDataIds();
  const attrs = { strides: c.strides, pad: c.pad, dataFormat: "NHWC" };
  const run = (kernel: string, inputs: tf.NamedTensorMap, more: tf.NamedAttrMap) =>
    tf.dispose(tf.engine().runKernel(kernel, inputs, more));
  run("Conv2DBackpropFilter", { x, dy }, { ...attrs, filterShape: c.filter });
  run("Conv2DBackpropInput", { dy, filter: f }, { ...attrs, inputShape: c.x });
  run("Sum", { x }, { axis: [0, 1, 2], keepDims: false });
  assert.equal(tf.engine().backend.numDataIds(), before);
});

test("registering the kernels twice keeps one registration", () => {
  const first = tf.getKernel("Conv2DBackpropFilter", "wasm").kernelFunc;
  registerWasmKernels();
  assert.equal(tf.getKernel("Conv2DBackpropFilter", "wasm").kernelFunc, first);
});

// Depthwise convolution gradients. Filter [kh, kw, C, M]; output channel c·M + m.
type DepthwisePad = "valid" | "same" | number | tf.backend_util.ExplicitPadding;

interface DepthwiseCase {
  name: string;
  x: Shape4; // NHWC input
  kernel: [number, number];
  multiplier: number;
  strides: [number, number];
  pad: DepthwisePad;
  dimRoundingMode?: "floor" | "round" | "ceil";
}

/** A case: name, x [N, H, W, C], kernel [kh, kw], multiplier, strides, pad, rounding. */
function dw(
  name: string,
  x: Shape4,
  kernel: [number, number],
  multiplier: number,
  strides: [number, number],
  pad: DepthwisePad,
  dimRoundingMode?: "floor" | "round" | "ceil",
): DepthwiseCase {
  return { name, x, kernel, multiplier, strides, pad, dimRoundingMode };
}

// Explicit pads [[0, 0], [top, bottom], [left, right], [0, 0]].
const ASYMMETRIC: tf.backend_util.ExplicitPadding = [
  [0, 0],
  [2, 0],
  [0, 1],
  [0, 0],
];

// Channel counts C·M of 3, 6, 8, 10, 16 and 4 exercise both the kernels' blocks of four output
// channels and their remainder, and blocks whose four channels share an input channel (M ≥ 2).
const depthwiseCases: DepthwiseCase[] = [
  dw("3x3 valid", [2, 8, 8, 3], [3, 3], 1, [1, 1], "valid"),
  dw("3x3 same, M 2", [2, 7, 7, 3], [3, 3], 2, [1, 1], "same"),
  dw("3x3 valid, M 2, odd", [3, 9, 7, 5], [3, 3], 2, [1, 1], "valid"),
  dw("3x3 same, M 2, 4 channels", [2, 6, 6, 4], [3, 3], 2, [1, 1], "same"),
  dw("stride 2 valid, odd", [2, 9, 9, 4], [3, 3], 1, [2, 2], "valid"),
  dw("stride 2 valid, even, M 2", [2, 8, 8, 3], [3, 3], 2, [2, 2], "valid"),
  dw("stride 2 same", [2, 8, 7, 3], [3, 3], 1, [2, 2], "same"),
  dw("stride 2 same, M 2, odd", [2, 9, 11, 2], [3, 3], 2, [2, 2], "same"),
  dw("3x1 same", [2, 6, 5, 5], [3, 1], 1, [1, 1], "same"),
  dw("1x3 valid, M 2", [3, 5, 7, 2], [1, 3], 2, [1, 1], "valid"),
  dw("3x1 stride (2, 1) same, M 2", [2, 9, 6, 3], [3, 1], 2, [2, 1], "same"),
  dw("1x3 stride (1, 2) valid", [1, 5, 10, 4], [1, 3], 1, [1, 2], "valid"),
  dw("explicit pad 1", [2, 7, 9, 3], [3, 3], 1, [1, 1], 1),
  dw("explicit pad 2, M 2", [1, 6, 6, 2], [3, 3], 2, [1, 1], 2),
  dw("explicit pad 1, stride 2, floor", [2, 8, 9, 3], [3, 3], 2, [2, 2], 1, "floor"),
  dw("explicit pads, asymmetric, 3x1", [2, 6, 7, 3], [3, 1], 1, [1, 2], ASYMMETRIC),
  dw("batch one, 5x5 same, M 3", [1, 7, 8, 2], [5, 5], 3, [1, 1], "same"),
  dw("1x1, M 2", [2, 4, 5, 3], [1, 1], 2, [1, 1], "valid"),
  dw("16 channels (step4-like)", [3, 12, 12, 16], [3, 3], 1, [1, 1], "valid"),
  dw("1 channel, M 4", [2, 7, 7, 1], [3, 3], 4, [1, 1], "same"),
];

function depthwiseFilterShape(c: DepthwiseCase): Shape4 {
  return [c.kernel[0], c.kernel[1], c.x[3], c.multiplier];
}

function depthwiseOutShape(c: DepthwiseCase): Shape4 {
  const info = tf.backend_util.computeConv2DInfo(
    c.x,
    depthwiseFilterShape(c),
    c.strides,
    1,
    c.pad,
    c.dimRoundingMode,
    true,
  );
  return info.outShape;
}

function depthwiseAttrs(c: DepthwiseCase): Record<string, unknown> {
  return { strides: c.strides, pad: c.pad, dilations: [1, 1], dimRoundingMode: c.dimRoundingMode };
}

// Both our kernels and cpu's sum in float64 and round once: they agree to float32 rounding.
const DEPTHWISE_TOLERANCE = 1e-6;

for (const c of depthwiseCases) {
  test(`DepthwiseConv2dNativeBackpropFilter matches cpu: ${c.name}`, async () => {
    const x = { shape: c.x, values: random(c.x, 21) };
    const dyShape = depthwiseOutShape(c);
    const dy = { shape: dyShape, values: random(dyShape, 22) };
    const attrs = { ...depthwiseAttrs(c), filterShape: depthwiseFilterShape(c) };
    const kernel = "DepthwiseConv2dNativeBackpropFilter";
    const expected = await runOn("cpu", kernel, { x, dy }, attrs);
    const actual = await runOn("wasm", kernel, { x, dy }, attrs);
    assert.deepEqual(actual.shape, depthwiseFilterShape(c));
    assertClose(actual.values, expected.values, c.name, DEPTHWISE_TOLERANCE);
  });

  test(`DepthwiseConv2dNativeBackpropInput matches cpu: ${c.name}`, async () => {
    const filterShape = depthwiseFilterShape(c);
    const filter = { shape: filterShape, values: random(filterShape, 23) };
    const dyShape = depthwiseOutShape(c);
    const dy = { shape: dyShape, values: random(dyShape, 24) };
    const attrs = { ...depthwiseAttrs(c), inputShape: c.x };
    const kernel = "DepthwiseConv2dNativeBackpropInput";
    const expected = await runOn("cpu", kernel, { dy, filter }, attrs);
    const actual = await runOn("wasm", kernel, { dy, filter }, attrs);
    assert.deepEqual(actual.shape, c.x);
    assertClose(actual.values, expected.values, c.name, DEPTHWISE_TOLERANCE);
  });
}

test("depthwise gradients by hand: 1x1 with multiplier 2, and a 3x3 on a 1x1 image", async () => {
  // x [1, 1, 2, 1] = [1, 2]; dy [1, 1, 2, 2] = [[1, 10], [100, 1000]]; W [1, 1, 1, 2] = [3, 5].
  // dW[m] = Σ_p x[p]·dy[p, m] = [1 + 200, 10 + 2000]; dx[p] = 3·dy[p, 0] + 5·dy[p, 1].
  const x = { shape: [1, 1, 2, 1], values: Float32Array.from([1, 2]) };
  const dy = { shape: [1, 1, 2, 2], values: Float32Array.from([1, 10, 100, 1000]) };
  const filter = { shape: [1, 1, 1, 2], values: Float32Array.from([3, 5]) };
  const attrs = { strides: [1, 1], pad: "valid", dilations: [1, 1] };
  const dW = await runOn(
    "wasm",
    "DepthwiseConv2dNativeBackpropFilter",
    { x, dy },
    { ...attrs, filterShape: [1, 1, 1, 2] },
  );
  assert.deepEqual(dW.shape, [1, 1, 1, 2]);
  assert.deepEqual(Array.from(dW.values), [201, 2010]);
  const dx = await runOn(
    "wasm",
    "DepthwiseConv2dNativeBackpropInput",
    { dy, filter },
    { ...attrs, inputShape: [1, 1, 2, 1] },
  );
  assert.deepEqual(dx.shape, [1, 1, 2, 1]);
  assert.deepEqual(Array.from(dx.values), [53, 5300]);

  // 3x3 "same" on a one-pixel image: only the centre tap sees x, so dW is 2·3 there and 0
  // elsewhere, and dx is dy times the centre weight.
  const one = { shape: [1, 1, 1, 1], values: Float32Array.from([2]) };
  const dyOne = { shape: [1, 1, 1, 1], values: Float32Array.from([3]) };
  const same = { strides: [1, 1], pad: "same", dilations: [1, 1] };
  const dWSame = await runOn(
    "wasm",
    "DepthwiseConv2dNativeBackpropFilter",
    { x: one, dy: dyOne },
    { ...same, filterShape: [3, 3, 1, 1] },
  );
  assert.deepEqual(Array.from(dWSame.values), [0, 0, 0, 0, 6, 0, 0, 0, 0]);
  const weights = { shape: [3, 3, 1, 1], values: Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]) };
  const dxSame = await runOn(
    "wasm",
    "DepthwiseConv2dNativeBackpropInput",
    { dy: dyOne, filter: weights },
    { ...same, inputShape: [1, 1, 1, 1] },
  );
  assert.deepEqual(Array.from(dxSame.values), [15]);
});

test("the depthwise kernels refuse dilations other than 1, with a clear message", async () => {
  const c = depthwiseCases[0] as DepthwiseCase;
  const x = { shape: c.x, values: random(c.x, 25) };
  const filterShape = depthwiseFilterShape(c);
  const filter = { shape: filterShape, values: random(filterShape, 26) };
  const dy = { shape: depthwiseOutShape(c), values: random(depthwiseOutShape(c), 27) };
  const attrs = { ...depthwiseAttrs(c), dilations: [2, 2] };
  await assert.rejects(
    runOurs(depthwiseConv2DBackpropFilterWasm, { x, dy }, { ...attrs, filterShape }),
    /DepthwiseConv2dNativeBackpropFilter on wasm supports dilation 1 only, got dilations \[2,2\]/,
  );
  await assert.rejects(
    runOurs(depthwiseConv2DBackpropInputWasm, { dy, filter }, { ...attrs, inputShape: c.x }),
    /DepthwiseConv2dNativeBackpropInput on wasm supports dilation 1 only/,
  );
});

test("a tiny depthwise model trains on wasm with cpu's gradients", async () => {
  // x → depthwise 3x3 same (M 2) + bias → relu → depthwise 3x1 stride 2 valid (M 1) → mean over
  // pixels → a fixed linear read-out → squared error; three SGD steps on each backend.
  const xShape: Shape4 = [3, 9, 8, 3];
  const xv = random(xShape, 31);
  const f1v = random([3, 3, 3, 2], 32);
  const b1v = random([6], 33);
  const f2v = random([3, 1, 6, 1], 34);
  const readout = random([6, 2], 35);
  const target = random([3, 2], 36);
  const train = async (backend: string) => {
    await tf.setBackend(backend);
    const f1 = tf.variable(tf.tensor4d(f1v, [3, 3, 3, 2]));
    const b1 = tf.variable(tf.tensor1d(b1v));
    const f2 = tf.variable(tf.tensor4d(f2v, [3, 1, 6, 1]));
    const vars = [f1, b1, f2];
    const x = tf.tensor4d(xv, xShape);
    const w = tf.tensor2d(readout, [6, 2]);
    const y = tf.tensor2d(target, [3, 2]);
    const forward = (input: tf.Tensor4D) => {
      const h = tf.relu(tf.add(tf.depthwiseConv2d(input, f1, 1, "same"), b1)) as tf.Tensor4D;
      const z = tf.depthwiseConv2d(h, f2, [2, 1], "valid");
      const pooled = tf.mean(z, [1, 2]) as tf.Tensor2D;
      return tf.sum(tf.square(tf.sub(tf.matMul(pooled, w), y))) as tf.Scalar;
    };
    const steps: Float32Array[][] = [];
    for (let step = 0; step < 3; step++) {
      const grads = tf.tidy(() => {
        const { grads: g } = tf.variableGrads(() => forward(x), vars);
        const dx = tf.grad((input: tf.Tensor) => forward(input as tf.Tensor4D))(x);
        const values = [dx, ...vars.map((v) => g[v.name] as tf.Tensor)].map(
          (t) => t.dataSync() as Float32Array,
        );
        for (const v of vars) v.assign(tf.sub(v, tf.mul(g[v.name] as tf.Tensor, 0.1)));
        return values;
      });
      steps.push(grads);
    }
    const weights = vars.map((v) => v.dataSync() as Float32Array);
    tf.dispose([...vars, x, w, y]);
    return { steps, weights };
  };
  const cpu = await train("cpu");
  const wasm = await train("wasm");
  const names = ["dx", "d filter1", "d bias1", "d filter2"];
  cpu.steps.forEach((expected, step) => {
    expected.forEach((e, k) => {
      assertClose(wasm.steps[step]?.[k] as Float32Array, e, `step ${step}: ${names[k]}`);
    });
  });
  cpu.weights.forEach((e, k) => {
    assertClose(wasm.weights[k] as Float32Array, e, `trained weights ${k}`);
  });
});

test("the depthwise kernels leak no wasm memory", async () => {
  await tf.setBackend("wasm");
  const c = depthwiseCases[7] as DepthwiseCase; // stride 2 same, M 2, odd
  const filterShape = depthwiseFilterShape(c);
  const x = tf.tensor(random(c.x, 41), c.x);
  const f = tf.tensor(random(filterShape, 42), filterShape);
  const dy = tf.tensor(random(depthwiseOutShape(c), 43), depthwiseOutShape(c));
  const before = tf.engine().backend.numDataIds();
  const attrs = depthwiseAttrs(c) as tf.NamedAttrMap;
  tf.dispose(
    tf
      .engine()
      .runKernel("DepthwiseConv2dNativeBackpropFilter", { x, dy }, { ...attrs, filterShape }),
  );
  tf.dispose(
    tf
      .engine()
      .runKernel(
        "DepthwiseConv2dNativeBackpropInput",
        { dy, filter: f },
        { ...attrs, inputShape: c.x },
      ),
  );
  assert.equal(tf.engine().backend.numDataIds(), before);
  tf.dispose([x, f, dy]);
});
