// BatchNorm2d: PyTorch's semantics (batch statistics, biased/unbiased variance, momentum 0.1) on
// the wasm engine, against tfjs's own ops on the cpu backend and numbers checked by hand.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../src/runtime/tfjs/engine.js";
import { BatchNorm2d } from "../src/runtime/tfjs/layers/batchnorm2d.js";
import { Rng } from "../src/util/rng.js";

process.env.MNISTC_ENGINE = "wasm";
await initEngine();

function random(shape: number[], seed: number, lo = -1, hi = 1): Float32Array {
  const rng = new Rng(seed);
  const size = shape.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: size }, () => rng.uniform(lo, hi));
}

function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  what: string,
  tol = 1e-4,
) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i] as number;
    const e = expected[i] as number;
    assert.ok(
      Math.abs(a - e) <= tol * Math.max(1, Math.abs(e)),
      `${what}[${i}]: got ${a}, expected ${e}`,
    );
  }
}

/** A model holding one BatchNorm2d, its weights set to γ, β. */
function bnModel(shape: number[], gamma: number[], beta: number[], name = "bn"): tf.LayersModel {
  const model = tf.sequential({
    layers: [new BatchNorm2d({ name, inputShape: shape.slice(1) })],
  });
  const layer = model.layers[0] as tf.layers.Layer;
  const [, , rm, rv] = layer.getWeights();
  layer.setWeights([tf.tensor1d(gamma), tf.tensor1d(beta), rm as tf.Tensor, rv as tf.Tensor]);
  return model;
}

/** Reference: tf.moments and plain arithmetic, differentiated by tfjs itself, on cpu. */
async function reference(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, dyWeights: tf.Tensor) {
  await tf.setBackend("cpu");
  const f = (xi: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
    const { mean, variance } = tf.moments(xi, [0, 1, 2]);
    return xi.sub(mean).div(variance.add(1e-5).sqrt()).mul(g).add(b);
  };
  const y = f(x, gamma, beta).dataSync();
  const [dx, dg, db] = tf
    .grads((xi: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => f(xi, g, b).mul(dyWeights).sum())([
      x,
      gamma,
      beta,
    ])
    .map((t) => t.dataSync());
  await tf.setBackend("wasm");
  return { y, dx: dx as Float32Array, dg: dg as Float32Array, db: db as Float32Array };
}

const shapes: number[][] = [
  [4, 5, 6, 3],
  [1, 3, 2, 7], // batch of one
  [8, 1, 1, 4], // 1×1 pixels: statistics over the batch only
];

for (const shape of shapes) {
  test(`training forward and gradients match tfjs ops on cpu: [${shape}]`, async () => {
    const channels = shape[3] as number;
    const xv = random(shape, 11, -2, 3);
    const gv = Array.from(random([channels], 12, 0.5, 1.5));
    const bv = Array.from(random([channels], 13));
    const wv = random(shape, 14);
    const ref = await reference(
      tf.tensor(xv, shape),
      tf.tensor1d(gv),
      tf.tensor1d(bv),
      tf.tensor(wv, shape),
    );

    const layer = new BatchNorm2d({ name: `bn_${shape.join("x")}` });
    layer.build(shape);
    layer.setWeights([tf.tensor1d(gv), tf.tensor1d(bv), tf.zeros([channels]), tf.ones([channels])]);
    const x = tf.tensor(xv, shape);
    const w = tf.tensor(wv, shape);
    const y = layer.apply(x, { training: true }) as tf.Tensor;
    assertClose(y.dataSync(), ref.y, "y");
    // Gradients through the layer itself: dx by tf.grad, dγ and dβ by tf.variableGrads.
    const loss = (xi: tf.Tensor) => (layer.apply(xi, { training: true }) as tf.Tensor).mul(w).sum();
    const dx = tf.grad(loss)(x).dataSync();
    // LayerVariable.read() is the tf.Variable itself.
    const [gammaVar, betaVar] = layer.trainableWeights.map((v) => v.read() as tf.Variable);
    const { grads } = tf.variableGrads(
      () => loss(x) as tf.Scalar,
      [gammaVar as tf.Variable, betaVar as tf.Variable],
    );
    const dg = (grads[(gammaVar as tf.Variable).name] as tf.Tensor).dataSync();
    const db = (grads[(betaVar as tf.Variable).name] as tf.Tensor).dataSync();
    assertClose(dx as Float32Array, ref.dx, "dx");
    assertClose(dg as Float32Array, ref.dg, "dγ");
    assertClose(db as Float32Array, ref.db, "dβ");
  });
}

test("running statistics after one training step, by hand (momentum 0.1, unbiased variance)", () => {
  // Two channels over 4 values each: [1, 2, 3, 4] and [0, 0, 2, 2].
  // ch0: mean 2.5, biased var 1.25, unbiased 5/3 → rm 0.25, rv 0.9 + 0.1·5/3 = 1.0666667
  // ch1: mean 1,   biased var 1,    unbiased 4/3 → rm 0.1,  rv 0.9 + 0.1·4/3 = 1.0333333
  const x = tf.tensor4d([1, 0, 2, 0, 3, 2, 4, 2], [2, 1, 2, 2]);
  const layer = new BatchNorm2d({ name: "bn_stats" });
  const y = layer.apply(x, { training: true }) as tf.Tensor;
  const [, , rm, rv] = layer.getWeights().map((t) => Array.from(t.dataSync()));
  assertClose(rm as number[], [0.25, 0.1], "running_mean", 1e-6);
  assertClose(rv as number[], [0.9 + 0.1 * (5 / 3), 0.9 + 0.1 * (4 / 3)], "running_var", 1e-6);
  // y = (x − mean)/sqrt(var + eps) with γ = 1, β = 0.
  const s0 = Math.sqrt(1.25 + 1e-5);
  const s1 = Math.sqrt(1 + 1e-5);
  assertClose(
    y.dataSync(),
    [-1.5 / s0, -1 / s1, -0.5 / s0, -1 / s1, 0.5 / s0, 1 / s1, 1.5 / s0, 1 / s1],
    "y",
  );
});

test("inference normalises with the running statistics", () => {
  const model = bnModel([1, 1, 2, 2], [2, 0.5], [1, -1], "bn_eval");
  const layer = model.layers[0] as tf.layers.Layer;
  const [g, b] = layer.getWeights();
  layer.setWeights([g as tf.Tensor, b as tf.Tensor, tf.tensor1d([1, -2]), tf.tensor1d([4, 0.25])]);
  const y = model.predict(tf.tensor4d([3, 0, 5, -2], [1, 1, 2, 2])) as tf.Tensor;
  // ch0: 2·(x − 1)/sqrt(4 + eps) + 1;  ch1: 0.5·(x + 2)/sqrt(0.25 + eps) − 1
  const s0 = Math.sqrt(4 + 1e-5);
  const s1 = Math.sqrt(0.25 + 1e-5);
  assertClose(y.dataSync(), [(2 * 2) / s0 + 1, (0.5 * 2) / s1 - 1, (2 * 4) / s0 + 1, -1], "y");
});

test("config and weights survive a model.json round trip", async () => {
  const model = tf.sequential({
    layers: [new BatchNorm2d({ name: "conv1.2", inputShape: [3, 3, 2], eps: 1e-3, momentum: 0.2 })],
  });
  model.apply(tf.tensor4d(random([4, 3, 3, 2], 21), [4, 3, 3, 2]), { training: true });
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } };
    }),
  );
  const artifacts = saved as tf.io.ModelArtifacts;
  // What a model.json file holds goes through JSON text.
  const topology = JSON.parse(JSON.stringify(artifacts.modelTopology));
  const names = (artifacts.weightSpecs ?? []).map((s) => s.name);
  assert.deepEqual(names, [
    "conv1.2/weight",
    "conv1.2/bias",
    "conv1.2/running_mean",
    "conv1.2/running_var",
  ]);
  const loaded = await tf.loadLayersModel(
    tf.io.fromMemory({ ...artifacts, modelTopology: topology }),
  );
  const layer = loaded.layers[0] as BatchNorm2d;
  assert.ok(layer instanceof BatchNorm2d);
  assert.equal(layer.eps, 1e-3);
  assert.equal(layer.momentum, 0.2);
  const before = model.getWeights().map((t) => Array.from(t.dataSync()));
  const after = loaded.getWeights().map((t) => Array.from(t.dataSync()));
  assert.deepEqual(after, before);
  assert.notDeepEqual(before[2], [0, 0]); // the training step moved running_mean
  const x = tf.tensor4d(random([2, 3, 3, 2], 22), [2, 3, 3, 2]);
  assertClose(
    (loaded.predict(x) as tf.Tensor).dataSync(),
    (model.predict(x) as tf.Tensor).dataSync(),
    "predict",
    1e-6,
  );
});
