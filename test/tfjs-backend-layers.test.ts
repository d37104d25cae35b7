// The runtime pieces the emitted tfjs model is made of: seeded dropout (whole channels on maps,
// elements on vectors), log_softmax, and PyTorch's init bound and per-parameter seeds.
import assert from "node:assert/strict";
import { before, test } from "node:test";
import type * as tfNs from "@tensorflow/tfjs";
import { paramSeed, torchInitBound, torchUniformValues } from "../src/compiler/init.js";
import { initEngine } from "../src/runtime/tfjs/engine.js";
import { TorchUniform } from "../src/runtime/tfjs/init.js";
import { Dropout, Dropout2d } from "../src/runtime/tfjs/layers/dropout.js";
import { LogSoftmax } from "../src/runtime/tfjs/layers/log-softmax.js";

let tf: typeof tfNs;
before(async () => {
  tf = (await initEngine()).tf;
});

/** The layer applied to ones of `shape` in training mode, as a flat array. */
function trainingOutput(layer: tfNs.layers.Layer, shape: number[]): Float32Array {
  return tf.tidy(() => {
    const y = layer.apply(tf.ones(shape), { training: true }) as tfNs.Tensor;
    return y.dataSync() as Float32Array;
  });
}

test("Dropout2d zeroes whole channels per sample and scales the rest by 1/(1-p)", () => {
  const [b, h, w, c] = [4, 3, 3, 8];
  const out = trainingOutput(new Dropout2d({ name: "d2", rate: 0.5, seed: 1 }), [b, h, w, c]);
  let dropped = 0;
  for (let n = 0; n < b; n++) {
    for (let ch = 0; ch < c; ch++) {
      const values = new Set<number>();
      for (let p = 0; p < h * w; p++) values.add(out[(n * h * w + p) * c + ch] ?? Number.NaN);
      assert.equal(values.size, 1, `sample ${n} channel ${ch} is not all one value`);
      const [v] = values;
      assert.ok(v === 0 || v === 2, `value ${v}`);
      if (v === 0) dropped++;
    }
  }
  // 32 channel draws at p = 0.5: some dropped, some kept.
  assert.ok(dropped > 0 && dropped < b * c, `${dropped} of ${b * c} dropped`);
});

test("Dropout zeroes single elements; inference and p = 0 are the identity", () => {
  const out = trainingOutput(new Dropout({ name: "d1", rate: 0.25, seed: 1 }), [8, 16]);
  const values = new Set(out);
  assert.deepEqual([...values].sort(), [0, 4 / 3].map(Math.fround).sort());
  const identity = tf.tidy(() => {
    const x = tf.tensor([[1, -2, 3]]);
    const inference = new Dropout({ name: "d3", rate: 0.5, seed: 1 }).apply(x) as tfNs.Tensor;
    const p0 = new Dropout2d({ name: "d4", rate: 0, seed: 1 }).apply(tf.ones([1, 2, 2, 1]), {
      training: true,
    }) as tfNs.Tensor;
    return [[...inference.dataSync()], [...p0.dataSync()]];
  });
  assert.deepEqual(identity, [
    [1, -2, 3],
    [1, 1, 1, 1],
  ]);
});

test("dropout masks repeat with the seed and layer name, and differ per call", () => {
  const masks = (seed: number, name: string) => {
    const layer = new Dropout({ name, rate: 0.5, seed });
    return [trainingOutput(layer, [64]), trainingOutput(layer, [64])];
  };
  const [a1, a2] = masks(1, "x");
  const [b1, b2] = masks(1, "x");
  assert.deepEqual(b1, a1);
  assert.deepEqual(b2, a2);
  assert.notDeepEqual(a2, a1);
  assert.notDeepEqual(masks(2, "x")[0], a1);
  assert.notDeepEqual(masks(1, "y")[0], a1);
});

test("a dropout stream resumes from its saved state", () => {
  const layer = new Dropout({ name: "r", rate: 0.5, seed: 3 });
  trainingOutput(layer, [64]);
  const saved = layer.rngState();
  const next = trainingOutput(layer, [64]);
  const resumed = new Dropout({ name: "r", rate: 0.5, seed: 3 });
  resumed.setRngState(saved);
  assert.deepEqual(trainingOutput(resumed, [64]), next);
});

test("LogSoftmax over the last axis, by hand", () => {
  // log(e + e^2 + e^3) = 3.40760596
  const out = tf.tidy(() =>
    (new LogSoftmax({ name: "ls" }).apply(tf.tensor([[1, 2, 3]])) as tfNs.Tensor).dataSync(),
  );
  const expected = [-2.40760596, -1.40760596, -0.40760596];
  for (const [i, v] of expected.entries()) {
    assert.ok(Math.abs((out[i] ?? Number.NaN) - v) < 1e-6, `log_softmax[${i}]`);
  }
});

test("PyTorch's init bound is 1/sqrt(fan_in)", () => {
  const cases: [fanIn: number, bound: number][] = [
    [9, 1 / 3],
    [1152, 1 / Math.sqrt(1152)],
    [16, 0.25],
    [0, 0],
  ];
  for (const [fanIn, bound] of cases) assert.equal(torchInitBound(fanIn), bound);
});

test("each parameter draws from its own seed", () => {
  assert.notEqual(paramSeed(1, "conv1.0.weight"), paramSeed(1, "conv1.0.bias"));
  assert.notEqual(paramSeed(1, "conv1.0.weight"), paramSeed(2, "conv1.0.weight"));
  const a = torchUniformValues(1, "fc.weight", 1000, 16);
  assert.deepEqual(torchUniformValues(1, "fc.weight", 1000, 16), a);
  const max = a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  assert.ok(max <= 0.25 && max > 0.24, `max |w| ${max}`);
  const mean = a.reduce((s, v) => s + v, 0) / a.length;
  assert.ok(Math.abs(mean) < 0.02, `mean ${mean}`);
});

test("TorchUniform lays PyTorch-order draws out as tfjs kernels (OIHW -> HWIO)", () => {
  // A [kh=1, kw=2, in=1, out=2] kernel: PyTorch order is [o][i][h][w] = (o0w0, o0w1, o1w0, o1w1).
  const torchOrder = torchUniformValues(5, "k", 4, 2);
  const kernel = tf.tidy(() =>
    new TorchUniform({ seed: 5, param: "k", fanIn: 2, layout: "oihw" })
      .apply([1, 2, 1, 2])
      .dataSync(),
  );
  const at = (i: number) => torchOrder[i] ?? Number.NaN;
  assert.deepEqual([...kernel], [at(0), at(2), at(1), at(3)]);
});
