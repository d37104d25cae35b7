// `mnistc compile`: the command line, and the weight mapping end to end: a checkpoint of the
// emitted tfjs model (as `--backend tfjs` writes it, PyTorch's layouts, and in the tfjs format of
// mnistc's checkpoints before), compiled to ONNX with --weights, gives the same log-probabilities
// in onnxruntime (NCHW, PyTorch layouts) as in tfjs (NHWC): conv, dense and batch-norm weights and
// the flatten order all map right.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { pathToFileURL } from "node:url";
import type * as tfNs from "@tensorflow/tfjs";
import * as ort from "onnxruntime-node";
import { compile } from "../src/cli/compile.js";
import { encodeSafetensors } from "../src/formats/safetensors.js";
import { packagePath } from "../src/paths.js";
import { initEngine } from "../src/runtime/tfjs/engine.js";
import { torchWeightsOf } from "../src/runtime/tfjs/trainer.js";
import type { TrainSpec } from "../src/runtime/train/loop.js";
import { writeLegacyCheckpoint } from "./helpers/legacy-checkpoint.js";

const cli = packagePath("dist", "src", "cli.js");
const work = mkdtempSync(join(tmpdir(), "mnistc-compile-"));
let tf: typeof tfNs;

before(async () => {
  tf = (await initEngine()).tf;
});
after(() => rmSync(work, { recursive: true, force: true }));

function mnistc(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", cwd: work });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("compile SPEC without flags: the tfjs program into out/<name>/tfjs/, and where it went", () => {
  const r = mnistc("compile", packagePath("specs", "step4.yaml"));
  assert.equal(r.code, 0, r.stderr);
  assert.ok(existsSync(join(work, "out", "step4", "tfjs", "model.mjs")));
  assert.ok(existsSync(join(work, "out", "step4", "tfjs", "train.mjs")));
  assert.match(
    r.stderr,
    /^mnistc: step4 -> out\/step4\/tfjs\/model\.mjs, out\/step4\/tfjs\/train\.mjs\n$/,
  );
  const onnx = mnistc("compile", packagePath("specs", "step4.yaml"), "--target", "onnx");
  assert.equal(onnx.code, 0, onnx.stderr);
  assert.ok(existsSync(join(work, "out", "step4", "step4.onnx")));
});

test("compile --help lists every target with one line each", () => {
  const r = mnistc("compile", "--help");
  assert.equal(r.code, 0);
  assert.match(
    r.stdout,
    /\nTargets:\n {2}tfjs {5}TensorFlow\.js training program[^\n]*\n {2}onnx {5}ONNX inference graph/,
  );
});

test("compile --target tfjs writes model.mjs and train.mjs, runnable from outside the package", () => {
  const out = join(work, "deep", "step1");
  const r = mnistc("compile", packagePath("specs", "step1.yaml"), "--target", "tfjs", "-o", out);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(existsSync(join(out, "model.mjs")) && existsSync(join(out, "train.mjs")));
  assert.match(
    readFileSync(join(out, "train.mjs"), "utf8"),
    /from "(\.\.\/)+.*dist\/src\/runtime\/index\.js"/,
  );
  const help = spawnSync(process.execPath, [join(out, "train.mjs"), "--help"], {
    encoding: "utf8",
  });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /--train-limit/);
});

test("compile: user mistakes are one line and exit 1", () => {
  const spec = packagePath("specs", "step1.yaml");
  const cases: [args: string[], message: RegExp][] = [
    [
      ["--target", "keras", "-o", "x"],
      /^mnistc: error: unknown target "keras" \(known targets: tfjs, onnx, onnx-train, pytorch\)\n$/,
    ],
    [
      ["--target", "tfjs", "-o", "x", "--weights", "ckpt"],
      /^mnistc: error: --weights is not supported for --target tfjs/,
    ],
    [
      ["--target", "onnx", "-o", "m.onnx", "--weights", "nowhere"],
      /^mnistc: error: nowhere: no such checkpoint directory\n$/,
    ],
  ];
  for (const [args, message] of cases) {
    const r = mnistc("compile", spec, ...args);
    assert.equal(r.code, 1, args.join(" "));
    assert.match(r.stderr, message);
  }
});

/**
 * Writes the model's weights as a checkpoint folder: as training writes them (weights.safetensors,
 * PyTorch's names and layouts, converted at the tfjs edge), or as mnistc did before (format 1).
 */
async function saveCheckpoint(
  model: tfNs.LayersModel,
  spec: TrainSpec,
  dir: string,
  legacy: boolean,
): Promise<void> {
  if (legacy) return writeLegacyCheckpoint(tf, model, dir);
  const weights = torchWeightsOf(model, spec);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, "weights.safetensors"),
    encodeSafetensors([...weights].map(([name, w]) => ({ name, ...w }))),
  );
}

for (const [name, legacy] of [
  ["step1", false],
  ["step4", false],
  ["step4", true],
] as const) {
  const format = legacy ? "format-1 (tfjs)" : "safetensors";
  test(`${name}: a ${format} checkpoint of the tfjs model compiled to ONNX predicts the same`, async () => {
    const dir = join(work, `${name}-program`);
    const spec = packagePath("specs", `${name}.yaml`);
    assert.equal(await compile(spec, { target: "tfjs", out: dir }), 0);
    const mod = (await import(pathToFileURL(join(dir, "model.mjs")).href)) as {
      spec: TrainSpec;
      buildModel(tf: typeof tfNs, o: { seed: number }): tfNs.LayersModel;
    };
    const model = mod.buildModel(tf, { seed: 1 });
    // Not the initial weights: batch-norm statistics of 0 and 1 would hide a mix-up.
    tf.tidy(() => {
      model.weights.forEach((w, i) => {
        const random = tf.randomUniform(w.shape as number[], 0.5, 1.5, "float32", i);
        w.write(
          w.originalName.endsWith("running_mean")
            ? random.sub(1)
            : random.mul(w.read()).add(random.sub(1).mul(0.1)),
        );
      });
    });
    const checkpoint = join(work, `${name}-${legacy}-checkpoint`);
    await saveCheckpoint(model, mod.spec, checkpoint, legacy);
    const onnxFile = join(work, `${name}-${legacy}.onnx`);
    assert.equal(await compile(spec, { target: "onnx", out: onnxFile, weights: checkpoint }), 0);

    const batch = 3;
    const nhwc = tf.tidy(() => tf.randomNormal([batch, 28, 28, 1], 0, 1, "float32", 5));
    const expected = tf.tidy(() => (model.predict(nhwc) as tfNs.Tensor).dataSync());
    const nchw = tf.tidy(() => nhwc.transpose([0, 3, 1, 2]).dataSync() as Float32Array);
    const session = await ort.InferenceSession.create(onnxFile);
    try {
      const feeds = {
        [session.inputNames[0] as string]: new ort.Tensor("float32", nchw, [batch, 1, 28, 28]),
      };
      const result = await session.run(feeds);
      const actual = result[session.outputNames[0] as string]?.data as Float32Array;
      assert.equal(actual.length, expected.length);
      const worst = actual.reduce(
        (m, v, i) => Math.max(m, Math.abs(v - (expected[i] ?? Number.NaN))),
        0,
      );
      assert.ok(worst < 1e-3, `largest difference ${worst}`);
    } finally {
      await session.release();
    }
  });
}
