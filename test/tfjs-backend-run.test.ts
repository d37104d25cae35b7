// Runs what the tfjs backend emits: each shipped spec's model.mjs is written to a temp dir (outside
// the package, so it imports the runtime by relative path, as `mnistc compile` writes it), imported,
// and built on the runtime's engine. Then: output shape and normalization, parameter counts,
// names, PyTorch's initialization, seeding, a checkpoint reload, and forward numbers by hand.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { pathToFileURL } from "node:url";
import type * as tfNs from "@tensorflow/tfjs";
import { tfjsBackend } from "../src/backends/tfjs/index.js";
import { runtimeImportFor } from "../src/backends/tfjs/runtime-import.js";
import {
  type NamedArray,
  tfjsParams,
  tfjsWeightsFromTorch,
  torchWeightsFromTfjs,
} from "../src/backends/tfjs/weights.js";
import { compileSpec } from "../src/compiler/index.js";
import { torchInitBound, torchInitWeights } from "../src/compiler/init.js";
import type { ModelIR, WeightMap } from "../src/compiler/ir.js";
import { packagePath } from "../src/paths.js";
import { initEngine } from "../src/runtime/tfjs/engine.js";

type Tf = typeof tfNs;
interface EmittedModule {
  spec: Record<string, unknown>;
  buildModel(tf: Tf, options: { seed: number }): tfNs.LayersModel;
}

let tf: Tf;
let engine = "";
const outDir = mkdtempSync(join(tmpdir(), "mnistc-tfjs-"));

before(async () => {
  ({ tf, name: engine } = await initEngine());
});
after(() => rmSync(outDir, { recursive: true, force: true }));

function compile(text: string, file: string): ModelIR {
  const { ir, diagnostics } = compileSpec(text, file);
  assert.ok(ir, `${file} does not compile: ${JSON.stringify(diagnostics)}`);
  return ir;
}

/** Emits `ir` into its own directory under the temp dir and imports its model.mjs. */
async function emitAndImport(ir: ModelIR): Promise<EmittedModule> {
  const dir = mkdtempSync(join(outDir, `${ir.name}-`));
  const { files, diagnostics } = tfjsBackend.emit(ir, { runtimeImport: runtimeImportFor(dir) });
  assert.deepEqual(diagnostics, []);
  for (const f of files) writeFileSync(join(dir, f.path), f.contents);
  return (await import(pathToFileURL(join(dir, "model.mjs")).href)) as EmittedModule;
}

/** Every weight of the model by tfjs name (checkpoints use `originalName`, never `name_1`). */
function weightsOf(model: tfNs.LayersModel): Map<string, NamedArray> {
  return new Map(
    model.weights.map((w) => [
      w.originalName,
      { shape: [...w.shape] as number[], data: w.read().dataSync() as Float32Array },
    ]),
  );
}

const size = (shape: readonly (number | null)[]) => shape.reduce<number>((a, b) => a * (b ?? 1), 1);

// The shipped specs, and one with every op (grouped, dilated, padded pools, a residual add).
const specs = [
  ...["sepres", "step1", "step2", "step3", "step4"].map((n) => `specs/${n}.yaml`),
  "test/fixtures/specs/good/every-op.yaml",
];

for (const file of specs) {
  test(`${file}: emitted model.mjs builds and runs`, async (t) => {
    const ir = compile(readFileSync(packagePath(file), "utf8"), file);
    const mod = await emitAndImport(ir);
    const model = mod.buildModel(tf, { seed: 1 });

    await t.test("spec literal: the settings and the parameter names", () => {
      assert.equal(mod.spec.name, ir.name);
      assert.deepEqual(mod.spec.train, ir.train);
      assert.deepEqual(mod.spec.data, ir.data);
      assert.deepEqual(mod.spec.input, ir.input);
      assert.deepEqual(
        mod.spec.params,
        ir.nodes.flatMap((n) => n.params.map((p) => p.name)),
      );
    });

    await t.test("output [B, classes] of log-probabilities, for B = 1, 2, 64", () => {
      const { height, width, channels } = ir.input;
      for (const batch of [1, 2, 64]) {
        const out = tf.tidy(() => {
          const x = tf.randomNormal([batch, height, width, channels], 0, 1, "float32", 7);
          const y = model.predict(x) as tfNs.Tensor;
          return { shape: y.shape, sums: tf.exp(y).sum(1).dataSync() };
        });
        assert.deepEqual(out.shape, [batch, ir.classes]);
        for (const s of out.sums) assert.ok(Math.abs(s - 1) < 1e-5, `exp sums to ${s}`);
      }
    });

    await t.test("trainable parameters and buffers count as PyTorch does", () => {
      const trainable = model.trainableWeights.reduce((n, w) => n + size(w.shape), 0);
      const buffers = model.nonTrainableWeights.reduce((n, w) => n + size(w.shape), 0);
      assert.equal(trainable, ir.totals.trainable);
      assert.equal(buffers, ir.totals.buffers);
    });

    await t.test("tfjs weights map one-to-one onto the IR's parameters", () => {
      // tfjs lists trainable weights before buffers; the pairing, not the order, is the contract.
      const byName = (a: [string, unknown], b: [string, unknown]) => a[0].localeCompare(b[0]);
      const actual = model.weights.map((w): [string, unknown] => [w.originalName, [...w.shape]]);
      const expected = tfjsParams(ir).map((p): [string, unknown] => [p.tfjsName, p.tfjsShape]);
      assert.deepEqual(actual.sort(byName), expected.sort(byName));
      assert.equal(new Set(actual.map(([n]) => n)).size, actual.length);
      const trainable = new Set(model.trainableWeights.map((w) => w.originalName));
      for (const p of tfjsParams(ir)) assert.equal(trainable.has(p.tfjsName), p.param.trainable);
    });

    await t.test("initial weights: PyTorch's default init, drawn from the seed", () => {
      const mapped = torchWeightsFromTfjs(ir, weightsOf(model));
      assert.ok("weights" in mapped, "error" in mapped ? mapped.error : "");
      assert.deepEqual(mapped.weights, torchInitWeights(ir, 1));
      for (const node of ir.nodes) {
        // fan_in = (in / groups)·kh·kw of the weight's own shape [out, in / groups, kh, kw].
        const [, i = 0, kh = 1, kw = 1] = node.params[0]?.shape ?? [];
        for (const p of node.params) {
          if (p.init.type !== "uniform") continue;
          assert.equal(p.init.fanIn, i * kh * kw, p.name);
          const bound = torchInitBound(p.init.fanIn);
          const data = mapped.weights.get(p.name)?.data ?? new Float32Array();
          const max = data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
          assert.ok(max <= Math.fround(bound), `${p.name}: |w| ${max} > ${bound}`);
          // With enough draws the largest comes close to the bound: it is not a smaller one.
          if (data.length >= 100) assert.ok(max > 0.9 * bound, `${p.name}: |w| only ${max}`);
        }
      }
    });

    await t.test("the same seed gives the same weights, another seed others", () => {
      const again = weightsOf(mod.buildModel(tf, { seed: 1 }));
      const other = weightsOf(mod.buildModel(tf, { seed: 2 }));
      // Batch norm starts at constants (1, 0, 0, 1); conv and linear parameters are drawn.
      const drawn = new Set(
        ir.nodes.flatMap((n) =>
          n.params.filter((p) => p.init.type === "uniform").map((p) => p.name),
        ),
      );
      for (const p of tfjsParams(ir)) {
        const first = weightsOf(model).get(p.tfjsName)?.data;
        assert.deepEqual(again.get(p.tfjsName)?.data, first, p.tfjsName);
        if (drawn.has(p.param.name)) assert.notDeepEqual(other.get(p.tfjsName)?.data, first);
        else assert.deepEqual(other.get(p.tfjsName)?.data, first, p.tfjsName);
      }
    });

    await t.test("a saved model.json reloads with every custom class, same outputs", async () => {
      let artifacts: tfNs.io.ModelArtifacts | undefined;
      await model.save(
        tf.io.withSaveHandler(async (a) => {
          artifacts = a;
          return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } };
        }),
      );
      assert.ok(artifacts);
      const reloaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
      const [a, b] = tf.tidy(() => {
        const x = tf.randomNormal(
          [2, ir.input.height, ir.input.width, ir.input.channels],
          0,
          1,
          "float32",
          3,
        );
        return [
          (model.predict(x) as tfNs.Tensor).dataSync(),
          (reloaded.predict(x) as tfNs.Tensor).dataSync(),
        ];
      });
      assert.deepEqual(b, a);
    });
  });
}

// --- forward numbers by hand ---------------------------------------------------------------------

const PARITY_SPEC = `
name: parity
input: { channels: 1, height: 28, width: 28 }
classes: 10
layers:
  - body:
      - conv: { out: 2, kernel: 14, stride: 14 }
  - flatten
  - linear: { out: 10 }
  - log_softmax
`;

test("forward pass equals PyTorch's, by hand: conv layout, NCHW flatten, linear layout", async (t) => {
  t.diagnostic(`engine: ${engine}`);
  const ir = compile(PARITY_SPEC, "parity.yaml");
  const mod = await emitAndImport(ir);
  const model = mod.buildModel(tf, { seed: 1 });

  // Input: each 14x14 quadrant holds q = 1, 2 (top) and 3, 4 (bottom); its top-right pixel holds 10q.
  const image = new Float32Array(28 * 28);
  for (let i = 0; i < 28; i++) {
    for (let j = 0; j < 28; j++) {
      const q = 1 + 2 * Math.floor(i / 14) + Math.floor(j / 14);
      image[i * 28 + j] = i % 14 === 0 && j % 14 === 13 ? 10 * q : q;
    }
  }
  // Conv (PyTorch OIHW [2,1,14,14]): channel 0 reads the top-left pixel (h 0, w 0) of each
  // quadrant, bias 0.5; channel 1 the top-right one (h 0, w 13), bias 0.
  // So channel 0 = [1.5, 2.5, 3.5, 4.5], channel 1 = [10, 20, 30, 40], and PyTorch's flatten
  // (channel-major) is f = [1.5, 2.5, 3.5, 4.5, 10, 20, 30, 40].
  const conv = new Float32Array(2 * 14 * 14);
  conv[0] = 1;
  conv[196 + 13] = 1;
  // Linear (PyTorch [out, in] = [10, 8]): output k < 8 reads f[(k + 1) % 8]; bias 5 and -5 on 8, 9.
  const linear = new Float32Array(10 * 8);
  for (let k = 0; k < 8; k++) linear[k * 8 + ((k + 1) % 8)] = 1;
  const torch: WeightMap = new Map([
    ["body.0.weight", { shape: [2, 1, 14, 14], data: conv }],
    ["body.0.bias", { shape: [2], data: Float32Array.from([0.5, 0]) }],
    ["2.weight", { shape: [10, 8], data: linear }],
    ["2.bias", { shape: [10], data: Float32Array.from([0, 0, 0, 0, 0, 0, 0, 0, 5, -5]) }],
  ]);
  const mapped = tfjsWeightsFromTorch(ir, torch);
  assert.ok("weights" in mapped);
  model.setWeights(
    model.weights.map((w) => {
      const a = mapped.weights.get(w.originalName) as NamedArray;
      return tf.tensor(a.data, a.shape);
    }),
  );

  const logits = [2.5, 3.5, 4.5, 10, 20, 30, 40, 1.5, 5, -5];
  const x = tf.tensor(image, [1, 28, 28, 1]);
  const linearOut = tf.model({ inputs: model.inputs, outputs: model.getLayer("2").output });
  const z = [...((linearOut.predict(x) as tfNs.Tensor).dataSync() as Float32Array)];
  assert.deepEqual(z, logits);

  const lse = Math.log(logits.reduce((s, v) => s + Math.exp(v), 0));
  const out = (model.predict(x) as tfNs.Tensor).dataSync();
  logits.forEach((v, k) => {
    assert.ok(Math.abs((out[k] ?? Number.NaN) - (v - lse)) < 1e-4, `log_softmax[${k}]`);
  });
});
