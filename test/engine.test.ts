// The engine: which one loads, the MNISTC_ENGINE override, no tfjs banner, and a whole training
// step of a small batch-norm CNN giving the same gradients on wasm (with the project's kernels)
// as on the cpu reference backend.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../src/runtime/tfjs/engine.js";
import { BatchNorm2d } from "../src/runtime/tfjs/layers/batchnorm2d.js";
import { Rng } from "../src/util/rng.js";

const engineModule = fileURLToPath(new URL("../src/runtime/tfjs/engine.js", import.meta.url));

/** Start a fresh process (initEngine is once per process) and report the engine it picks. */
function engineIn(env: Record<string, string | undefined>) {
  const script = `
    const { initEngine } = await import(${JSON.stringify(engineModule)});
    const { tf, name } = await initEngine();
    tf.tensor1d([1, 2]).dataSync();
    console.log(name + " " + tf.getBackend());`;
  return spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    env: { ...process.env, ...env },
    encoding: "utf8",
  });
}

function hasTfjsNode(): boolean {
  try {
    createRequire(import.meta.url).resolve("@tensorflow/tfjs-node");
    return true;
  } catch {
    return false;
  }
}

test("initEngine picks the fastest engine that loads, once per process", async () => {
  const first = await initEngine();
  const second = await initEngine();
  assert.equal(first, second);
  assert.equal(first.tf.getBackend(), first.name);
  const expected = process.env.MNISTC_ENGINE || (hasTfjsNode() ? "tensorflow" : "wasm");
  assert.equal(first.name, expected);
});

test("MNISTC_ENGINE forces an engine; the cpu engine prints no tfjs banner", () => {
  const run = engineIn({ MNISTC_ENGINE: "cpu" });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout.trim(), "cpu cpu");
  assert.doesNotMatch(run.stdout + run.stderr, /tfjs-node|Hi, looks like/);
});

test("a bad MNISTC_ENGINE is a user error naming the choices", () => {
  const run = engineIn({ MNISTC_ENGINE: "gpu" });
  assert.notEqual(run.status, 0);
  assert.match(
    run.stderr,
    /UserError: MNISTC_ENGINE must be one of tensorflow, wasm, cpu, got "gpu"/,
  );
});

test("forcing tensorflow without @tensorflow/tfjs-node says it did not load", {
  skip: hasTfjsNode(),
}, () => {
  const run = engineIn({ MNISTC_ENGINE: "tensorflow" });
  assert.notEqual(run.status, 0);
  assert.match(run.stderr, /MNISTC_ENGINE=tensorflow: the tensorflow engine did not load/);
});

/** A small net with every layer kind the seed uses: conv, relu, batch norm, max pool, 1×1 conv. */
function smallNet(): tf.Sequential {
  const rng = new Rng(3);
  const init = (shape: number[]) =>
    tf.tensor(
      Array.from({ length: shape.reduce((a, b) => a * b) }, () => rng.uniform(-0.3, 0.3)),
      shape,
    );
  const model = tf.sequential();
  model.add(tf.layers.conv2d({ name: "c1", inputShape: [10, 10, 1], filters: 6, kernelSize: 3 }));
  model.add(tf.layers.reLU({ name: "r1" }));
  model.add(new BatchNorm2d({ name: "b1" }));
  model.add(tf.layers.conv2d({ name: "c2", filters: 3, kernelSize: 3 }));
  model.add(tf.layers.maxPooling2d({ name: "p2", poolSize: 2 }));
  model.add(tf.layers.conv2d({ name: "c3", filters: 5, kernelSize: 1, padding: "same" }));
  model.add(tf.layers.flatten({ name: "f" }));
  model.setWeights(
    model.weights.map((w, i) =>
      w.name.includes("running") ? (model.getWeights()[i] as tf.Tensor) : init(w.shape as number[]),
    ),
  );
  return model;
}

test("one training step's loss and gradients match between wasm and cpu", async () => {
  const rng = new Rng(4);
  const images = Float32Array.from({ length: 4 * 10 * 10 }, () => rng.uniform(0, 1));
  const run = async (backend: string) => {
    await tf.setBackend(backend);
    return tf.tidy(() => {
      const model = smallNet();
      const x = tf.tensor4d(images, [4, 10, 10, 1]);
      const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const { value, grads } = tf.variableGrads(() => {
        const logits = model.apply(x, { training: true }) as tf.Tensor;
        return tf
          .logSoftmax(logits)
          .mul(tf.oneHot([0, 30, 11, 44], 45))
          .sum()
          .neg() as tf.Scalar;
      }, vars);
      const out = {
        loss: value.dataSync()[0] as number,
        grads: vars.map((v) => Array.from((grads[v.name] as tf.Tensor).dataSync())),
        stats: model.weights
          .map((w, k) => [w.name, model.getWeights()[k] as tf.Tensor] as const)
          .filter(([name]) => name.includes("running"))
          .map(([, t]) => Array.from(t.dataSync())),
      };
      for (const layer of model.layers) layer.dispose();
      return out;
    });
  };
  const cpu = await run("cpu");
  const wasm = await run("wasm");
  assert.ok(
    Math.abs(wasm.loss - cpu.loss) <= 1e-4 * Math.abs(cpu.loss),
    `loss ${wasm.loss} vs ${cpu.loss}`,
  );
  cpu.grads.forEach((expected, i) => {
    const actual = wasm.grads[i] as number[];
    const scale = Math.max(...expected.map(Math.abs));
    expected.forEach((e, j) => {
      assert.ok(
        Math.abs((actual[j] as number) - e) <= 1e-4 * scale + 1e-6,
        `gradient ${i}[${j}]: ${actual[j]} vs ${e}`,
      );
    });
  });
  assert.deepEqual(wasm.stats.length, 2);
  wasm.stats.forEach((s, i) => {
    for (const [j, e] of (cpu.stats[i] as number[]).entries()) {
      assert.ok(Math.abs((s[j] as number) - e) <= 1e-5, `running stat ${i}[${j}]`);
    }
  });
  await tf.setBackend("wasm");
});

test("the engine module is importable on its own (no other runtime modules needed)", () => {
  const out = execFileSync(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      `const m = await import(${JSON.stringify(engineModule)}); console.log(typeof m.initEngine)`,
    ],
    { encoding: "utf8" },
  );
  assert.equal(out.trim(), "function");
});
