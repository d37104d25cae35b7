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

function assertClose(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    const e = expected[i] as number;
    const err = Math.abs((actual[i] as number) - e) / Math.max(1, Math.abs(e));
    worst = Math.max(worst, err);
  }
  assert.ok(worst <= 1e-4, `${what}: worst relative error ${worst}`);
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
