import assert from "node:assert/strict";
import { test } from "node:test";
import type { OptimizerIR } from "../src/compiler/ir.js";
import { initEngine } from "../src/runtime/tfjs/engine.js";
import { createOptimizer, type NamedParam } from "../src/runtime/train/optim.js";

const { tf } = await initEngine();

/** Runs `grads.length` steps on one scalar parameter starting at 1; returns p after each step. */
async function trajectory(cfg: OptimizerIR, grads: number[], lr = 0.1): Promise<number[]> {
  const opt = createOptimizer(tf, cfg);
  const variable = tf.variable(tf.scalar(1));
  const params: NamedParam[] = [{ name: "p", variable }];
  const out: number[] = [];
  for (const g of grads) {
    const grad = tf.scalar(g);
    opt.step(params, [grad], { lr });
    grad.dispose();
    out.push((await variable.data())[0] as number);
  }
  opt.dispose();
  variable.dispose();
  return out;
}

const near = (actual: number[], expected: number[]) =>
  actual.forEach((a, i) => {
    assert.ok(
      Math.abs(a - (expected[i] as number)) < 1e-6,
      `step ${i + 1}: ${a} != ${expected[i]}`,
    );
  });

const sgd = (over: Partial<Extract<OptimizerIR, { type: "sgd" }>> = {}): OptimizerIR => ({
  type: "sgd",
  lr: 0.1,
  momentum: 0.9,
  weightDecay: 0.01,
  nesterov: false,
  ...over,
});

test("SGD, PyTorch's formula: d = g + wd·p; buf = μ·buf + d; p -= lr·buf", async () => {
  // step 1: d = 0.5 + 0.01 = 0.51, buf = 0.51, p = 1 - 0.051 = 0.949
  // step 2: d = 0.5 + 0.00949 = 0.50949, buf = 0.459 + 0.50949 = 0.96849, p = 0.949 - 0.096849
  near(await trajectory(sgd(), [0.5, 0.5]), [0.949, 0.852151]);
});

test("SGD with nesterov: p -= lr·(d + μ·buf)", async () => {
  // step 1: d = 0.51, buf = 0.51, p = 1 - 0.1·(0.51 + 0.459) = 0.9031
  near(await trajectory(sgd({ nesterov: true }), [0.5, 0.5]), [0.9031, 0.76507411]);
});

test("plain SGD (no momentum, no decay)", async () => {
  near(await trajectory(sgd({ momentum: 0, weightDecay: 0 }), [0.5, -1]), [0.95, 1.05]);
});

test("Adam with bias correction: the first step moves by lr", async () => {
  const adam: OptimizerIR = {
    type: "adam",
    lr: 0.1,
    betas: [0.9, 0.999],
    eps: 1e-8,
    weightDecay: 0,
  };
  // step 1: m̂ = 0.5, v̂ = 0.25 → p = 1 - 0.1·0.5/0.5 = 0.9
  // step 2: m = 0.07, v = 0.00031225 → p = 0.9 - 0.1/0.19·0.07/(sqrt(v)/sqrt(0.001999) + eps)
  near(await trajectory(adam, [0.5, 0.25]), [0.9, 0.8067820404774622]);
  // L2 weight decay adds wd·p to the gradient (not AdamW)
  near(await trajectory({ ...adam, weightDecay: 0.1 }, [0.5, 0.25]), [0.9, 0.8050097658613199]);
});

test("a cycled momentum overrides SGD's", async () => {
  const opt = createOptimizer(tf, sgd({ weightDecay: 0 }));
  const variable = tf.variable(tf.scalar(1));
  const g = tf.scalar(1);
  opt.step([{ name: "p", variable }], [g], { lr: 0.1, momentum: 0.5 });
  opt.step([{ name: "p", variable }], [g], { lr: 0.1, momentum: 0.5 });
  // buf: 1, then 0.5 + 1 = 1.5; p = 1 - 0.1 - 0.15
  near([(await variable.data())[0] as number], [0.75]);
  g.dispose();
  variable.dispose();
  opt.dispose();
});

test("optimizer state round-trips: a reloaded optimizer continues identically", async () => {
  const cfg: OptimizerIR = {
    type: "adam",
    lr: 0.1,
    betas: [0.9, 0.999],
    eps: 1e-8,
    weightDecay: 0,
  };
  const a = createOptimizer(tf, cfg);
  const pa = tf.variable(tf.tensor1d([1, 2]));
  const g = tf.tensor1d([0.5, -0.25]);
  a.step([{ name: "w", variable: pa }], [g], { lr: 0.1 });
  const state = await a.state();
  assert.equal(state.step, 1);
  assert.deepEqual(
    state.slots.map((s) => s.name),
    ["w#exp_avg", "w#exp_avg_sq"],
  );
  const b = createOptimizer(tf, cfg);
  b.load(state);
  const pb = tf.variable(pa.clone());
  a.step([{ name: "w", variable: pa }], [g], { lr: 0.1 });
  b.step([{ name: "w", variable: pb }], [g], { lr: 0.1 });
  assert.deepEqual(await pa.data(), await pb.data());
  const before = tf.memory().numTensors;
  a.step([{ name: "w", variable: pa }], [g], { lr: 0.1 });
  assert.equal(tf.memory().numTensors, before, "a step leaks no tensors");
  for (const t of [a, b]) t.dispose();
  for (const t of [pa, pb, g]) t.dispose();
});
