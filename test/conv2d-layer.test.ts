// The runtime's Conv2d layer (nn.Conv2d where tfjs's conv2d cannot say it: groups, dilation,
// uneven padding) and ConstantPad2d: forward and gradients on the wasm engine (with the project's
// kernels, depthwise backprop among them) equal the pure-JS cpu engine's, and a dilated kernel is
// spread out exactly as PyTorch's dilation reads it.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../src/runtime/tfjs/engine.js";
import { ConstantPad2d } from "../src/runtime/tfjs/layers/constant-pad2d.js";
import { Conv2d, dilateKernel } from "../src/runtime/tfjs/layers/conv2d.js";
import { Rng } from "../src/util/rng.js";

process.env.MNISTC_ENGINE = "wasm";
await initEngine();

type Pair = [number, number];

interface Case {
  name: string;
  /** NHWC input. */
  x: [number, number, number, number];
  filters: number;
  kernel: Pair;
  strides: Pair;
  padding: [Pair, Pair];
  dilation: Pair;
  groups: number;
}

const none: [Pair, Pair] = [
  [0, 0],
  [0, 0],
];
const CASES: Case[] = [
  {
    name: "depthwise 3x3 same",
    x: [2, 7, 7, 4],
    filters: 4,
    kernel: [3, 3],
    strides: [1, 1],
    padding: [
      [1, 1],
      [1, 1],
    ],
    dilation: [1, 1],
    groups: 4,
  },
  {
    name: "depthwise x2, stride 2",
    x: [2, 9, 8, 3],
    filters: 6,
    kernel: [3, 3],
    strides: [2, 2],
    padding: none,
    dilation: [1, 1],
    groups: 3,
  },
  {
    name: "depthwise 3x1",
    x: [1, 6, 5, 5],
    filters: 5,
    kernel: [3, 1],
    strides: [1, 1],
    padding: none,
    dilation: [1, 1],
    groups: 5,
  },
  {
    name: "groups 2",
    x: [2, 6, 6, 4],
    filters: 6,
    kernel: [3, 3],
    strides: [1, 1],
    padding: [
      [1, 1],
      [1, 1],
    ],
    dilation: [1, 1],
    groups: 2,
  },
  {
    name: "dilation 2",
    x: [2, 9, 9, 3],
    filters: 4,
    kernel: [3, 3],
    strides: [1, 1],
    padding: none,
    dilation: [2, 2],
    groups: 1,
  },
  {
    name: "dilation [2, 1], depthwise",
    x: [1, 10, 8, 4],
    filters: 4,
    kernel: [3, 3],
    strides: [1, 1],
    padding: [
      [2, 2],
      [1, 1],
    ],
    dilation: [2, 1],
    groups: 4,
  },
  {
    name: "uneven padding (even kernel same)",
    x: [2, 6, 6, 2],
    filters: 3,
    kernel: [2, 2],
    strides: [1, 1],
    padding: [
      [0, 1],
      [0, 1],
    ],
    dilation: [1, 1],
    groups: 1,
  },
];

function values(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.uniform(-1, 1));
}

/** Output, and gradients of a weighted sum of it for x, kernel and bias, on the current engine. */
function run(c: Case, kernel: Float32Array, bias: Float32Array, x: Float32Array) {
  const layer = new Conv2d({
    name: "conv",
    filters: c.filters,
    kernelSize: c.kernel,
    strides: c.strides,
    padding: c.padding,
    dilation: c.dilation,
    groups: c.groups,
  });
  const input = tf.tensor4d(x, c.x);
  layer.build(input.shape);
  const perGroup = (c.x[3] ?? 0) / c.groups;
  layer.setWeights([tf.tensor4d(kernel, [...c.kernel, perGroup, c.filters]), tf.tensor1d(bias)]);
  const [kernelV, biasV] = layer.trainableWeights.map((w) => w.read() as tf.Variable);
  const out = tf.tidy(() => layer.apply(input) as tf.Tensor);
  const weights = tf.tensor(values(out.size, 9), out.shape);
  const f = (xx: tf.Tensor, k: tf.Tensor, b: tf.Tensor) => {
    kernelV?.assign(k as tf.Tensor4D);
    biasV?.assign(b as tf.Tensor1D);
    return tf.sum(tf.mul(layer.apply(xx) as tf.Tensor, weights));
  };
  const grads = tf.grads(f)([input, kernelV as tf.Tensor, biasV as tf.Tensor]);
  const result = {
    y: out.dataSync().slice() as Float32Array,
    shape: out.shape,
    grads: grads.map((g) => g.dataSync().slice() as Float32Array),
  };
  tf.dispose([out, weights, input, ...grads]);
  for (const w of layer.weights) w.dispose();
  return result;
}

function close(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, what);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const scale = Math.max(1, Math.abs(b[i] ?? 0));
    worst = Math.max(worst, Math.abs((a[i] ?? 0) - (b[i] ?? 0)) / scale);
  }
  assert.ok(worst <= 1e-4, `${what}: worst relative difference ${worst}`);
}

for (const c of CASES) {
  test(`Conv2d ${c.name}: wasm forward and gradients equal cpu's`, async () => {
    const perGroup = (c.x[3] ?? 0) / c.groups;
    const kernel = values(c.kernel[0] * c.kernel[1] * perGroup * c.filters, 1);
    const bias = values(c.filters, 2);
    const x = values(
      c.x.reduce((a, b) => a * b, 1),
      3,
    );
    await tf.setBackend("wasm");
    const wasm = run(c, kernel, bias, x);
    await tf.setBackend("cpu");
    const cpu = run(c, kernel, bias, x);
    await tf.setBackend("wasm");
    assert.deepEqual(wasm.shape, cpu.shape);
    close(wasm.y, cpu.y, "output");
    for (const [i, what] of ["dx", "dkernel", "dbias"].entries()) {
      close(wasm.grads[i] as Float32Array, cpu.grads[i] as Float32Array, what);
    }
  });
}

test("dilateKernel spreads taps with zeros between them: 2x2 dilation [2, 3] -> 3x4", () => {
  // [kh=2, kw=2, i=1, o=1]: taps a b / c d.
  const k = tf.tensor4d([1, 2, 3, 4], [2, 2, 1, 1]);
  const d = dilateKernel(k, [2, 3]);
  assert.deepEqual(d.shape, [3, 4, 1, 1]);
  assert.deepEqual([...d.dataSync()], [1, 0, 0, 2, 0, 0, 0, 0, 3, 0, 0, 4]);
});

test("Conv2d output shape is PyTorch's: ⌊(n + pads − ((k − 1)·d + 1)) / s⌋ + 1", () => {
  const layer = new Conv2d({
    name: "c",
    filters: 2,
    kernelSize: [3, 3],
    strides: [2, 1],
    padding: [
      [1, 2],
      [0, 0],
    ],
    dilation: [2, 2],
    groups: 1,
  });
  // H: ⌊(11 + 3 − 5) / 2⌋ + 1 = 5; W: ⌊(9 − 5) / 1⌋ + 1 = 5.
  assert.deepEqual(layer.computeOutputShape([null, 11, 9, 4]), [null, 5, 5, 2]);
});

test("ConstantPad2d -inf: a padded max pool never takes the padding (all-negative input)", () => {
  const pad = new ConstantPad2d({
    name: "p",
    padding: [
      [1, 1],
      [1, 1],
    ],
    value: "-inf",
  });
  const x = tf.tensor4d([-5, -6, -7, -8], [1, 2, 2, 1]);
  const pooled = tf.maxPool(pad.apply(x) as tf.Tensor4D, [2, 2], [2, 2], "valid");
  assert.deepEqual([...pooled.dataSync()], [-5, -6, -7, -8]);
  assert.deepEqual(pad.getConfig().value, "-inf");
});
