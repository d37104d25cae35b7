import assert from "node:assert/strict";
import { test } from "node:test";
import type { SchedulerIR } from "../src/compiler/ir.js";
import { oneCycle, scheduleAt, stepLr } from "../src/runtime/train/schedule.js";

const close = (actual: number, expected: number, what: string) =>
  assert.ok(
    Math.abs(actual - expected) <= 1e-12 + 1e-9 * Math.abs(expected),
    `${what}: ${actual} != ${expected}`,
  );

test("StepLR: base · gamma^floor(epoch / step_size)", () => {
  // The seed: lr 0.01, step_size 6, gamma 0.1 over 15 epochs.
  const expected = [0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001];
  expected.forEach((lr, epoch) => {
    close(stepLr(0.01, 6, 0.1, epoch), lr, `epoch ${epoch}`);
  });
  close(stepLr(0.01, 6, 0.1, 12), 0.0001, "epoch 12");
  const step: SchedulerIR = { type: "step", stepSize: 6, gamma: 0.1 };
  // constant within an epoch
  const at = (e: number, b: number) =>
    scheduleAt({ scheduler: step, baseLr: 0.01, epochs: 15, stepsPerEpoch: 469 }, e, b).lr;
  close(at(5, 468), 0.01, "last batch of epoch 6");
  close(at(6, 0), 0.001, "first batch of epoch 7");
});

test("OneCycleLR (cos): PyTorch's values over 100 steps", () => {
  // max_lr 0.1, pct_start 0.3, div 25, final_div 1e4: initial 0.004, phase 1 ends at step 29,
  // min lr 4e-7. Step 64 is halfway down: (0.1 + 4e-7) / 2.
  const cfg = {
    type: "onecycle" as const,
    maxLr: 0.1,
    pctStart: 0.3,
    anneal: "cos" as const,
    divFactor: 25,
    finalDivFactor: 1e4,
  };
  const table: [number, number, number][] = [
    [0, 0.004, 0.95],
    [10, 0.1 + ((0.004 - 0.1) / 2) * (Math.cos((Math.PI * 10) / 29) + 1), 0.9234204220349895],
    [29, 0.1, 0.85],
    [30, 0.09994965352845243, 0.8500503466729342],
    [64, 0.0500002, 0.9],
    [99, 4e-7, 0.95],
  ];
  for (const [step, lr, momentum] of table) {
    const v = oneCycle(cfg, step, 100);
    close(v.lr, lr, `lr at ${step}`);
    close(v.momentum, momentum, `momentum at ${step}`);
  }
  // per batch: epoch 3 (0-based 2), batch 4 of 10 is step 24
  const s = scheduleAt({ scheduler: cfg, baseLr: 123, epochs: 10, stepsPerEpoch: 10 }, 2, 4);
  close(s.lr, oneCycle(cfg, 24, 100).lr, "scheduleAt");
  assert.equal(s.momentum, oneCycle(cfg, 24, 100).momentum);
});

test("OneCycleLR (linear)", () => {
  const cfg = {
    type: "onecycle" as const,
    maxLr: 0.1,
    pctStart: 0.3,
    anneal: "linear" as const,
    divFactor: 25,
    finalDivFactor: 1e4,
  };
  close(oneCycle(cfg, 10, 100).lr, 0.004 + (0.096 * 10) / 29, "step 10");
  close(oneCycle(cfg, 10, 100).momentum, 0.95 - (0.1 * 10) / 29, "momentum 10");
  close(oneCycle(cfg, 64, 100).lr, 0.0500002, "step 64");
});

test("no scheduler: constant lr, no momentum override", () => {
  const v = scheduleAt(
    { scheduler: { type: "none" }, baseLr: 0.05, epochs: 3, stepsPerEpoch: 7 },
    2,
    6,
  );
  assert.deepEqual(v, { lr: 0.05 });
});
