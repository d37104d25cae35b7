// The tfjs backend without running tfjs: golden programs for every shipped spec, the code per op,
// the tfjs <-> PyTorch weight mapping, and the runtime import rule of `mnistc compile`.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { emitTfjs, tfjsBackend } from "../src/backends/tfjs/index.js";
import { runtimeImportFor } from "../src/backends/tfjs/runtime-import.js";
import {
  type NamedArray,
  tfjsParams,
  tfjsWeightsFromTorch,
  torchWeightsFromTfjs,
} from "../src/backends/tfjs/weights.js";
import { compileSpec } from "../src/compiler/index.js";
import type { ModelIR, WeightMap } from "../src/compiler/ir.js";
import { packagePath } from "../src/paths.js";
import { expectGolden } from "./helpers/golden.js";

function compile(text: string, file: string): ModelIR {
  const { ir, diagnostics } = compileSpec(text, file);
  assert.ok(ir, `${file} does not compile: ${JSON.stringify(diagnostics)}`);
  return ir;
}

const shippedSpecs = readdirSync(packagePath("specs"))
  .filter((f) => f.endsWith(".yaml"))
  .sort();

/** An MNIST spec: one block of `layers` (YAML lines), then flatten, linear and log_softmax. */
function tinySpec(layers: string[]): ModelIR {
  const text = [
    "name: tiny",
    "input: { channels: 1, height: 28, width: 28 }",
    "classes: 10",
    "layers:",
    "  - body:",
    ...layers.map((l) => `      - ${l}`),
    "  - flatten",
    "  - linear: { out: 10 }",
    "  - log_softmax",
    "",
  ].join("\n");
  return compile(text, "tiny.yaml");
}

function modelText(ir: ModelIR): string {
  const file = emitTfjs(ir, "mnistc/runtime").files.find((f) => f.path === "model.mjs");
  assert.ok(file);
  return String(file.contents);
}

test("the shipped specs are distill7k, fashion16k, mobile8k, se8k, sep4k, sep7k, sepres and step1..step4", () => {
  assert.deepEqual(shippedSpecs, [
    "distill7k.yaml",
    "fashion16k.yaml",
    "mobile8k.yaml",
    "se8k.yaml",
    "sep4k.yaml",
    "sep7k.yaml",
    "sepres.yaml",
    "step1.yaml",
    "step2.yaml",
    "step3.yaml",
    "step4.yaml",
  ]);
});

for (const spec of shippedSpecs) {
  test(`golden tfjs program for specs/${spec}`, () => {
    const ir = compile(readFileSync(packagePath("specs", spec), "utf8"), `specs/${spec}`);
    const { files, diagnostics } = tfjsBackend.emit(ir, {});
    assert.deepEqual(diagnostics, []);
    assert.deepEqual(
      files.map((f) => f.path),
      ["model.mjs", "train.mjs"],
    );
    const stem = spec.replace(/\.yaml$/, "");
    for (const f of files) expectGolden(`tfjs/${stem}/${f.path}`, String(f.contents));
  });
}

test("each IR node is one named tfjs layer (plus .pad / .nchw helpers)", () => {
  const ir = compile(readFileSync(packagePath("specs", "step4.yaml"), "utf8"), "specs/step4.yaml");
  const text = modelText(ir);
  const names = [...text.matchAll(/name: "([^"]+)"/g)].map((m) => m[1]);
  const helpers = names.filter((n) => n?.endsWith(".pad") || n?.endsWith(".nchw"));
  assert.deepEqual(
    names.filter((n) => !helpers.includes(n) && n !== "input" && n !== ir.name),
    ir.nodes.map((n) => n.name),
  );
});

test("conv padding: valid, same where PyTorch pads alike, else an explicit zeroPadding2d", () => {
  const cases: [conv: string, padding: string, padLayer: string | undefined][] = [
    ["{ out: 2, kernel: 3 }", "valid", undefined],
    ["{ out: 2, kernel: 3, padding: 1 }", "same", undefined],
    ["{ out: 2, kernel: 5, padding: 2 }", "same", undefined],
    ["{ out: 2, kernel: [3, 5], padding: [1, 2] }", "same", undefined],
    ["{ out: 2, kernel: 3, padding: 2 }", "valid", "[[2, 2], [2, 2]]"],
    ["{ out: 2, kernel: 3, stride: 2, padding: 1 }", "valid", "[[1, 1], [1, 1]]"],
    ["{ out: 2, kernel: 3, padding: [1, 0] }", "valid", "[[1, 1], [0, 0]]"],
    ["{ out: 2, kernel: [3, 1], padding: [1, 0] }", "same", undefined],
  ];
  for (const [conv, padding, padLayer] of cases) {
    const text = modelText(tinySpec([`conv: ${conv}`]));
    assert.match(text, new RegExp(`name: "body.0", .*padding: "${padding}"`), conv);
    const pad = text.match(/zeroPadding2d\(\{ name: "body.0.pad", padding: (.*) \}\)/);
    assert.equal(pad?.[1], padLayer, conv);
  }
});

test("flatten permutes NHWC to NCHW unless the map is 1x1", () => {
  const wide = modelText(tinySpec(["conv: { out: 2, kernel: 3 }"]));
  assert.match(
    wide,
    /permute\(\{ name: "1.nchw", dims: \[3, 1, 2\] \}\)\);\n {2}model.add\(tf.layers.flatten\(\{ name: "1" \}\)\)/,
  );
  const pooled = modelText(tinySpec(["conv: { out: 2, kernel: 3 }", "gap"]));
  assert.doesNotMatch(pooled, /permute/);
  assert.match(
    pooled,
    /averagePooling2d\(\{\s+name: "body.1", poolSize: \[26, 26\], strides: \[26, 26\]/,
  );
});

test("dropout is Dropout2d on feature maps and Dropout on vectors, both seeded", () => {
  const text = modelText(tinySpec(["conv: { out: 2, kernel: 3 }", "dropout: { p: 0.25 }"]));
  assert.match(text, /new Dropout2d\(\{ name: "body.1", rate: 0.25, seed \}\)/);
  assert.match(text, /^import \{ Dropout2d, LogSoftmax, torchUniform \} from "mnistc\/runtime";$/m);
});

test("bias: false gives useBias: false and no bias initializer", () => {
  const text = modelText(tinySpec(["conv: { out: 2, kernel: 3, bias: false }"]));
  assert.match(text, /name: "body.0", .*useBias: false/);
  assert.doesNotMatch(text, /"body.0.bias"/);
  assert.match(text, /kernelInitializer: torchUniform\(seed, "body.0.weight", 9, "oihw"\)/);
});

test("spec literal: the settings, every parameter name and where tfjs keeps it", () => {
  const ir = tinySpec(["conv: { out: 2, kernel: 3 }"]);
  const match = modelText(ir).match(/export const spec = (\{[\s\S]*?\n\});/);
  assert.ok(match?.[1]);
  const spec = JSON.parse(match[1]) as Record<string, unknown>;
  assert.deepEqual(spec, {
    name: "tiny",
    input: ir.input,
    classes: 10,
    train: ir.train,
    data: ir.data,
    params: ["body.0.weight", "body.0.bias", "2.weight", "2.bias"],
    tfjsWeights: {
      "body.0.weight": ["body.0/kernel", "oihw"],
      "body.0.bias": ["body.0/bias", "same"],
      "2.weight": ["2/kernel", "oi"],
      "2.bias": ["2/bias", "same"],
    },
  });
});

test("the tfjs backend refuses trained weights (the program trains its own)", () => {
  const ir = tinySpec(["conv: { out: 2, kernel: 3 }"]);
  const { files, diagnostics } = tfjsBackend.emit(ir, { weights: new Map() });
  assert.deepEqual(files, []);
  assert.equal(diagnostics[0]?.severity, "error");
});

// --- weights -------------------------------------------------------------------------------------

/** 28x28 to [2, 2, 2] by a 14x14 stride-14 conv, flatten, linear to 10: every layout, small. */
const mappingIR = () => tinySpec(["conv: { out: 2, kernel: 14, stride: 14 }"]);

test("tfjs names, shapes and layouts of each parameter", () => {
  const rows = tfjsParams(mappingIR()).map((p) => [
    p.param.name,
    p.tfjsName,
    p.tfjsShape,
    p.layout,
  ]);
  assert.deepEqual(rows, [
    ["body.0.weight", "body.0/kernel", [14, 14, 1, 2], "oihw"],
    ["body.0.bias", "body.0/bias", [2], "same"],
    ["2.weight", "2/kernel", [8, 10], "oi"],
    ["2.bias", "2/bias", [10], "same"],
  ]);
});

/** Weights numbered 0, 1, 2, ... in PyTorch order, offset per parameter to tell them apart. */
function numberedTorch(ir: ModelIR): WeightMap {
  const w: WeightMap = new Map();
  ir.nodes.forEach((node, i) => {
    for (const p of node.params) {
      const n = p.shape.reduce((a, b) => a * b, 1);
      w.set(p.name, {
        shape: p.shape,
        data: Float32Array.from({ length: n }, (_, k) => 1000 * i + k),
      });
    }
  });
  return w;
}

test("PyTorch -> tfjs layouts, checked by hand", () => {
  const ir = mappingIR();
  const mapped = tfjsWeightsFromTorch(ir, numberedTorch(ir));
  assert.ok("weights" in mapped);
  // Conv OIHW [2,1,14,14]: W[o][0][h][w] = 196o + 14h + w. HWIO puts the 2 outputs innermost.
  const kernel = mapped.weights.get("body.0/kernel");
  assert.deepEqual(kernel?.shape, [14, 14, 1, 2]);
  assert.deepEqual([...(kernel?.data.slice(0, 6) ?? [])], [0, 196, 1, 197, 2, 198]);
  // Linear [10, 8] (node 2: 2000 + 8·out + in) -> dense [8, 10]: row `in` holds the 10 outputs.
  const dense = mapped.weights.get("2/kernel");
  assert.deepEqual(dense?.shape, [8, 10]);
  assert.deepEqual([...(dense?.data.slice(0, 3) ?? [])], [2000, 2008, 2016]);
  assert.deepEqual([...(dense?.data.slice(10, 13) ?? [])], [2001, 2009, 2017]);
});

test("weights round-trip PyTorch -> tfjs -> PyTorch exactly, for every shipped spec", () => {
  for (const spec of shippedSpecs) {
    const ir = compile(readFileSync(packagePath("specs", spec), "utf8"), `specs/${spec}`);
    const torch = numberedTorch(ir);
    const tfjs = tfjsWeightsFromTorch(ir, torch);
    assert.ok("weights" in tfjs, spec);
    const back = torchWeightsFromTfjs(ir, tfjs.weights);
    assert.ok("weights" in back, spec);
    assert.deepEqual(back.weights, torch, spec);
  }
});

test("a checkpoint of another shape names the parameter and both shapes", () => {
  const ir = mappingIR();
  const good = tfjsWeightsFromTorch(ir, numberedTorch(ir));
  assert.ok("weights" in good);
  const arrays = (edit: (m: Map<string, NamedArray>) => void) => {
    const m = new Map(good.weights);
    edit(m);
    return m;
  };
  const cases: [string, Map<string, NamedArray>, string][] = [
    [
      "other conv width",
      arrays((m) => m.set("body.0/kernel", { shape: [14, 14, 1, 4], data: new Float32Array(784) })),
      "checkpoint does not fit spec: body.0.weight is [2,1,14,14] in the spec but [4,1,14,14] in the checkpoint",
    ],
    [
      "other linear input",
      arrays((m) => m.set("2/kernel", { shape: [18, 10], data: new Float32Array(180) })),
      "checkpoint does not fit spec: 2.weight is [10,8] in the spec but [10,18] in the checkpoint",
    ],
    [
      "missing bias",
      arrays((m) => m.delete("2/bias")),
      "checkpoint does not fit spec: 2.bias [10] is missing from the checkpoint (no 2/bias)",
    ],
    [
      "fewer values than the shape says",
      arrays((m) => m.set("2/bias", { shape: [10], data: new Float32Array(5) })),
      "checkpoint is damaged: 2/bias has 5 values for [10]",
    ],
    [
      "extra layer",
      arrays((m) => m.set("9/kernel", { shape: [1, 1], data: new Float32Array(1) })),
      "checkpoint does not fit spec: the checkpoint has 9/kernel, which the spec does not have",
    ],
  ];
  for (const [what, input, message] of cases) {
    assert.deepEqual(torchWeightsFromTfjs(ir, input), { error: message }, what);
  }
  // Optimizer slots are not layer weights.
  const withSlots = arrays((m) =>
    m.set("body.0/kernel/m", { shape: [2], data: new Float32Array(2) }),
  );
  assert.ok("weights" in torchWeightsFromTfjs(ir, withSlots));
});

// --- runtime import ------------------------------------------------------------------------------

test("runtime import: the package name inside the package, a relative path outside", () => {
  assert.equal(runtimeImportFor(packagePath("out", "step4")), "mnistc/runtime");
  assert.equal(runtimeImportFor(packagePath()), "mnistc/runtime");
  const outside = join(tmpdir(), "mnistc-out", "step4");
  const specifier = runtimeImportFor(outside);
  assert.match(specifier, /^\.\.?\//);
  assert.equal(resolve(outside, specifier), packagePath("dist", "src", "runtime", "index.js"));
});
