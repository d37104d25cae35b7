// train.ema: PyTorch's AveragedModel with an EMA avg_fn and use_buffers=True, checked against
// numbers computed by hand (and by torch 1.13, which gives the same float32 values), then end to
// end: a run keeps the average in its checkpoint, continues it on --resume, and exports it.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import type { WeightMap } from "../src/compiler/ir.js";
import { packagePath } from "../src/paths.js";
import { readSafetensorsFile } from "../src/runtime/train/checkpoint.js";
import { WeightEma } from "../src/runtime/train/ema.js";
import { onnxWeights } from "./helpers/weights.js";

const tmp = mkdtempSync(join(tmpdir(), "mnistc-ema-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const map = (entries: Record<string, number[]>): WeightMap =>
  new Map(
    Object.entries(entries).map(([k, v]) => [k, { shape: [v.length], data: Float32Array.from(v) }]),
  );

test("the average: the first update copies, then a = decay·a + (1-decay)·w, buffers too", () => {
  const ema = new WeightEma(0.9);
  // A weight and a batch-norm running mean (a buffer: averaged too, use_buffers=True).
  const steps = [
    { w: [1, 2], mean: [5] },
    { w: [3, 6], mean: [1] },
    { w: [0.1, -0.7], mean: [1] },
  ];
  const seen: number[][] = [];
  for (const s of steps) {
    ema.update(map({ "fc.weight": s.w, "bn.running_mean": s.mean }));
    seen.push([...(ema.weights.get("fc.weight")?.data ?? [])]);
  }
  // 0.9·1 + 0.1·3 = 1.2; 0.9·1.2 + 0.1·0.1 = 1.09 (float32, as torch prints them).
  assert.deepEqual(seen, [
    [1, 2],
    [1.2000000476837158, 2.4000000953674316],
    [1.090000033378601, 2.0900001525878906],
  ]);
  assert.equal(ema.weights.get("bn.running_mean")?.data[0], Math.fround(0.9 * 4.6 + 0.1 * 1));
  assert.equal(ema.updates, 3);
  // The model's arrays are copied, never aliased.
  const w = map({ x: [1] });
  const fresh = new WeightEma(0.5);
  fresh.update(w);
  (w.get("x") as { data: Float32Array }).data[0] = 9;
  assert.equal(fresh.weights.get("x")?.data[0], 1);
});

test("mnistc train with train.ema: checkpointed, resumed, evaluated and exported from the average", () => {
  const spec = join(tmp, "ema.yaml");
  const base = readFileSync(packagePath("specs", "sep4k.yaml"), "utf8");
  writeFileSync(
    spec,
    base.replace("  augment: { rotate: 7 }", "  augment: { rotate: 7 }\n  ema: { decay: 0.9 }"),
  );
  const out = join(tmp, "run");
  const cli = packagePath("dist", "src", "cli.js");
  const train = (...extra: string[]) =>
    spawnSync(
      process.execPath,
      [
        cli,
        "train",
        spec,
        "--train-limit",
        "384",
        "--val",
        "128",
        "--batch-size",
        "64",
        "--threads",
        "1",
        "--out",
        out,
        "--quiet",
        ...extra,
      ],
      { encoding: "utf8" },
    );
  const first = train("--epochs", "1");
  assert.equal(first.status, 0, first.stderr);
  const record = () =>
    JSON.parse(readFileSync(join(out, "checkpoint", "training.json"), "utf8")) as {
      ema: { decay: number; updates: number };
      optimizer: { step: number };
    };
  // 256 training images in batches of 64: 4 steps, each followed by an update.
  assert.deepEqual(record().ema, { decay: 0.9, updates: 4 });
  const second = train("--epochs", "2", "--resume");
  assert.equal(second.status, 0, second.stderr);
  assert.deepEqual(record().ema, { decay: 0.9, updates: 8 });
  assert.equal(record().optimizer.step, 8);
  const averaged = readSafetensorsFile(join(out, "checkpoint", "ema.safetensors"));
  const trained = readSafetensorsFile(join(out, "checkpoint", "weights.safetensors"));
  const exported = onnxWeights(join(out, "model.onnx"));
  const name = "conv1.0.weight";
  assert.notDeepEqual(averaged.get(name)?.data, trained.get(name)?.data);
  assert.deepEqual(exported.get(name)?.data, averaged.get(name)?.data);
  assert.deepEqual(
    exported.get("conv1.1.running_mean")?.data,
    averaged.get("conv1.1.running_mean")?.data,
  );
});
