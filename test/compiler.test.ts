// The compiler end to end on the shipped specs, with numbers checked by hand against PyTorch: the
// seed's Net (specs/step4.yaml) must be 16,478 trainable parameters, layer by layer.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { test } from "node:test";
import { buildSchema, compileSpec } from "../src/compiler/index.js";
import type { AnyNodeIR, ModelIR, Pads, Pair } from "../src/compiler/ir.js";
import { OP_KINDS } from "../src/compiler/ir.js";
import { isBare, OPS, randomMaskOf, samePads, windowOutput } from "../src/compiler/ops.js";
import { paramCount } from "../src/compiler/params.js";
import { editDistance, nearest } from "../src/compiler/suggest.js";
import { packagePath } from "../src/paths.js";
import { Rng } from "../src/util/rng.js";

const SHIPPED = ["sepres", "step1", "step2", "step3", "step4"];

function compileFile(...parts: string[]): ModelIR {
  const file = packagePath(...parts);
  const { ir, diagnostics } = compileSpec(readFileSync(file, "utf8"), parts.join("/"));
  assert.deepEqual(diagnostics, [], `${parts.join("/")} should compile`);
  assert.ok(ir);
  return ir;
}

/** A spec from its layer lines, with MNIST input. */
function spec(layers: string, extra = ""): string {
  return `input: { channels: 1, height: 28, width: 28 }\nclasses: 10\nlayers:\n${layers}\n${extra}`;
}

function compiled(text: string): ModelIR {
  const { ir, diagnostics } = compileSpec(text, "t.yaml");
  assert.deepEqual(diagnostics, []);
  assert.ok(ir);
  return ir;
}

test("step4 is the seed's Net: PyTorch's parameter counts layer by layer", () => {
  const ir = compileFile("specs", "step4.yaml");
  // Conv: out·in·k·k + out; BatchNorm2d: 2·C trainable + 2·C buffers (hand-computed).
  const expected: [string, number, number][] = [
    ["conv1.0", 128 * 1 * 9 + 128, 0], // 1,280
    ["conv1.2", 2 * 128, 2 * 128], // 256 + 256 buffers
    ["onecross1.0", 4 * 128 * 9 + 4, 0], // 4,612
    ["conv2.0", 16 * 4 * 9 + 16, 0], // 592
    ["conv2.2", 32, 32],
    ["conv3.0", 16 * 16 * 9 + 16, 0], // 2,320
    ["conv3.2", 32, 32],
    ["onecross1_2.0", 2320, 0],
    ["conv4.0", 32 * 16 * 9 + 32, 0], // 4,640
    ["conv4.2", 64, 64],
    ["conv5.0", 10 * 32 + 10, 0], // 330
  ];
  const counted = ir.nodes
    .filter((n) => n.params.length > 0)
    .map((n): [string, number, number] => {
      const sum = (trainable: boolean) =>
        n.params
          .filter((p) => p.trainable === trainable)
          .reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
      return [n.name, sum(true), sum(false)];
    });
  assert.deepEqual(counted, expected);
  assert.deepEqual(ir.totals.trainable, 16478);
  assert.deepEqual(ir.totals.buffers, 384);
  assert.equal(ir.budget, 16500);
});

test("step4: output shapes of each block as in the seed", () => {
  const ir = compileFile("specs", "step4.yaml");
  const last = (block: string) => ir.nodes.filter((n) => n.block === block).at(-1)?.outShape;
  assert.deepEqual(last("conv1"), [128, 26, 26]);
  assert.deepEqual(last("onecross1"), [4, 24, 24]);
  assert.deepEqual(ir.nodes.find((n) => n.name === "conv2.0")?.outShape, [16, 22, 22]);
  assert.deepEqual(last("conv2"), [16, 11, 11]);
  assert.deepEqual(last("conv3"), [16, 9, 9]);
  assert.deepEqual(last("onecross1_2"), [16, 7, 7]);
  assert.deepEqual(ir.nodes.find((n) => n.name === "conv4.0")?.outShape, [32, 5, 5]);
  assert.deepEqual(last("conv4"), [32, 2, 2]);
  assert.deepEqual(last("conv5"), [10, 2, 2]);
  assert.deepEqual(last("gap1"), [10, 1, 1]);
  assert.deepEqual(ir.nodes.at(-1)?.outShape, [10]);
});

test("step4: state_dict names, PyTorch layouts and the relu outside any block", () => {
  const ir = compileFile("specs", "step4.yaml");
  const names = ir.nodes.flatMap((n) => n.params.map((p) => `${p.name} ${p.shape.join("x")}`));
  assert.deepEqual(names.slice(0, 7), [
    "conv1.0.weight 128x1x3x3",
    "conv1.0.bias 128",
    "conv1.2.weight 128",
    "conv1.2.bias 128",
    "conv1.2.running_mean 128",
    "conv1.2.running_var 128",
    "onecross1.0.weight 4x128x3x3",
  ]);
  const relu = ir.nodes.find((n) => n.name === "3");
  assert.equal(relu?.kind, "relu");
  assert.equal(relu?.block, undefined);
  assert.deepEqual(ir.nodes.map((n) => n.name).slice(-2), ["9", "10"]);
});

test("step4: MACs = Cout·Hout·Wout·Cin·kh·kw per conv, 0 elsewhere", () => {
  const ir = compileFile("specs", "step4.yaml");
  const macs = Object.fromEntries(ir.nodes.filter((n) => n.macs > 0).map((n) => [n.name, n.macs]));
  assert.deepEqual(macs, {
    "conv1.0": 128 * 26 * 26 * 1 * 9,
    "onecross1.0": 4 * 24 * 24 * 128 * 9,
    "conv2.0": 16 * 22 * 22 * 4 * 9,
    "conv3.0": 16 * 9 * 9 * 16 * 9,
    "onecross1_2.0": 16 * 7 * 7 * 16 * 9,
    "conv4.0": 32 * 5 * 5 * 16 * 9,
    "conv5.0": 10 * 2 * 2 * 32,
  });
  assert.equal(ir.totals.macs, 4127744);
});

test("step4: receptive field r += (k-1)·j, j *= s", () => {
  const ir = compileFile("specs", "step4.yaml");
  const rf = (name: string) => {
    const n = ir.nodes.find((x) => x.name === name);
    return n ? `${n.rf.size}/${n.rf.jump}` : "missing";
  };
  const expected: Record<string, string> = {
    "conv1.0": "3/1",
    "onecross1.0": "5/1",
    "conv2.0": "7/1",
    "conv2.3": "8/2", // maxpool 2: 7 + 1·1, jump 2
    "conv3.0": "12/2", // 8 + 2·2
    "onecross1_2.0": "16/2",
    "conv4.0": "20/2",
    "conv4.3": "22/4",
    "conv5.0": "22/4", // 1x1
    "gap1.0": "26/8", // avgpool 2: 22 + 1·4
    "10": "26/8",
  };
  for (const [name, value] of Object.entries(expected)) assert.equal(rf(name), value, name);
});

test("every shipped spec compiles, fits its budget and ends in log_softmax over [10]", () => {
  for (const name of SHIPPED) {
    const ir = compileFile("specs", `${name}.yaml`);
    assert.equal(ir.name, name);
    assert.equal(ir.nodes.at(-1)?.kind, "log_softmax");
    assert.deepEqual(ir.nodes.at(-1)?.outShape, [10]);
    assert.ok(ir.budget !== undefined && ir.totals.trainable <= ir.budget, `${name} within budget`);
  }
  const step3 = compileFile("specs", "step3.yaml");
  assert.ok(step3.totals.trainable < 8000, "step3 is under 8k as the course asks");
});

// Backend parity, the PyTorch reference and the emitted programs' runs all test every-op.yaml:
// an op missing there would be tested by none of them.
test("every-op.yaml uses every op kind, and each attribute form of the elementwise ops", () => {
  const ir = compileFile("test", "fixtures", "specs", "good", "every-op.yaml");
  const kinds = new Set<string>(ir.nodes.map((n) => n.kind));
  assert.deepEqual(
    OP_KINDS.filter((k) => !kinds.has(k)),
    [],
    "op kinds every-op.yaml misses",
  );
  const slopes = ir.nodes.flatMap((n) => (n.kind === "leaky_relu" ? [n.attrs.negativeSlope] : []));
  assert.deepEqual(slopes, [0.01, 0.2]);
});

test("block ops by hand: operands, shapes, parameters, MACs, receptive fields", () => {
  const ir = compiled(
    spec(`  - c1: [ { conv: { out: 8, kernel: 3, padding: same } } ]
  - se:
      mul: c1
      layers: [ gap, { conv: { out: 8, kernel: 1 } }, sigmoid ]
  - d:
      concat: se
      layers: [ { conv: { out: 4, kernel: 3, padding: same } } ]
  - r:
      add: d
      layers: [ { conv: { out: 12, kernel: 1 } } ]
  - gap
  - flatten
  - linear: { out: 10 }
  - log_softmax`),
  );
  const row = (name: string) => {
    const n = ir.nodes.find((m) => m.name === name);
    assert.ok(n, name);
    return [
      n.inputs.join(" "),
      n.outShape.join("x"),
      paramCount(n, true),
      n.macs,
      `${n.rf.size}/${n.rf.jump}`,
    ];
  };
  // gap sees its whole 28x28 map: 3 + 27·1 = 30, jump 28; the gated product keeps c1's grid (jump
  // 1) and the gate's reach (30); a 3x3 conv then adds 2. concat: se's 8 channels, then d.0's 4.
  const expected: Record<string, unknown[]> = {
    "c1.0": ["input", "8x28x28", 80, 28 * 28 * 8 * 9, "3/1"],
    "se.0": ["c1.0", "8x1x1", 0, 0, "30/28"],
    "se.1": ["se.0", "8x1x1", 72, 64, "30/28"],
    "se.mul": ["se.2 c1.0", "8x28x28", 0, 0, "30/1"],
    "d.0": ["se.mul", "4x28x28", 292, 28 * 28 * 4 * 72, "32/1"],
    "d.concat": ["se.mul d.0", "12x28x28", 0, 0, "32/1"],
    "r.0": ["d.concat", "12x28x28", 156, 28 * 28 * 12 * 12, "32/1"],
    "r.add": ["r.0 d.concat", "12x28x28", 0, 0, "32/1"],
  };
  for (const [name, values] of Object.entries(expected)) assert.deepEqual(row(name), values, name);
});

test("conv/pool output size: ⌊(n + 2p − k)/s⌋ + 1", () => {
  const cases: [n: number, k: number, s: number, p: number, out: number][] = [
    [28, 3, 1, 0, 26],
    [28, 3, 1, 1, 28],
    [28, 3, 2, 1, 14],
    [11, 2, 2, 0, 5], // floor mode
    [5, 2, 2, 0, 2],
    [7, 7, 1, 0, 1],
  ];
  for (const [n, k, s, p, out] of cases)
    assert.equal(windowOutput(n, k, s, p), out, `${n},${k},${s},${p}`);
});

test("attribute defaults are PyTorch's; int or [h, w] sizes", () => {
  const ir = compiled(
    spec(`  - conv: { out: 4, kernel: [3, 5] }
  - batchnorm
  - maxpool: { kernel: 2 }
  - avgpool: { kernel: 3, stride: 1 }
  - dropout
  - flatten
  - linear: { out: 10 }
  - log_softmax`),
  );
  const attrs = Object.fromEntries(ir.nodes.map((n) => [n.kind, n.attrs]));
  assert.deepEqual(attrs.conv, {
    out: 4,
    kernel: [3, 5],
    stride: [1, 1],
    padding: [0, 0, 0, 0],
    same: false,
    dilation: [1, 1],
    groups: 1,
    bias: true,
  });
  assert.deepEqual(attrs.batchnorm, { eps: 1e-5, momentum: 0.1 });
  assert.deepEqual(attrs.maxpool, { kernel: [2, 2], stride: [2, 2], padding: [0, 0] });
  assert.deepEqual(attrs.avgpool, { kernel: [3, 3], stride: [1, 1], padding: [0, 0] });
  assert.deepEqual(attrs.dropout, { p: 0.5 });
  assert.deepEqual(attrs.linear, { out: 10, bias: true });
  // 28x28 → conv [3,5] → 26x24 → maxpool 2 → 13x12 → avgpool 3 s1 → 11x10; flatten 4·11·10 = 440.
  assert.deepEqual(
    ir.nodes.map((n) => n.outShape.join("x")),
    ["4x26x24", "4x26x24", "4x13x12", "4x11x10", "4x11x10", "440", "10", "10"],
  );
  assert.equal(ir.nodes[6]?.macs, 440 * 10);
  assert.equal(ir.totals.trainable, 4 * 15 + 4 + 8 + 4400 + 10);
});

test("train and data: the seed's recipe where PyTorch has no default, PyTorch's elsewhere", () => {
  const bare = compiled(spec("  - flatten\n  - linear: { out: 10 }\n  - log_softmax"));
  assert.deepEqual(bare.train, {
    epochs: 15,
    batchSize: 128,
    seed: 1,
    optimizer: { type: "sgd", lr: 0.01, momentum: 0.9, weightDecay: 0, nesterov: false },
    scheduler: { type: "none" },
    augment: { rotate: 0, translate: 0, scale: [1, 1] },
    labelSmoothing: 0,
  });
  assert.deepEqual(bare.data, {
    dataset: "mnist",
    mean: [0.1307],
    std: [0.3081],
    classNames: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
    preprocess: "digit",
  });
  assert.equal(bare.budget, undefined);
  assert.equal(bare.name, "t");

  const train = (section: string) =>
    compiled(spec("  - flatten\n  - linear: { out: 10 }\n  - log_softmax", `train:\n${section}`))
      .train;
  assert.deepEqual(train("  optimizer: { type: sgd, lr: 0.1 }").optimizer, {
    type: "sgd",
    lr: 0.1,
    momentum: 0,
    weightDecay: 0,
    nesterov: false,
  });
  assert.deepEqual(train("  optimizer: { type: adam }").optimizer, {
    type: "adam",
    lr: 0.001,
    betas: [0.9, 0.999],
    eps: 1e-8,
    weightDecay: 0,
  });
  assert.deepEqual(train("  scheduler: { type: step, step_size: 6 }").scheduler, {
    type: "step",
    stepSize: 6,
    gamma: 0.1,
  });
  assert.deepEqual(train("  scheduler: { type: onecycle, max_lr: 0.05 }").scheduler, {
    type: "onecycle",
    maxLr: 0.05,
    pctStart: 0.3,
    anneal: "cos",
    divFactor: 25,
    finalDivFactor: 1e4,
  });
});

test("every option spelled out (test/fixtures/specs/good/options.yaml)", () => {
  const ir = compileFile("test", "fixtures", "specs", "good", "options.yaml");
  assert.equal(ir.name, "options-demo");
  const conv = ir.nodes[0];
  assert.deepEqual(conv?.attrs, {
    out: 4,
    kernel: [3, 5],
    stride: [2, 1],
    padding: [1, 2, 1, 2],
    same: false,
    dilation: [1, 1],
    groups: 1,
    bias: false,
  });
  // H: ⌊(28 + 2 − 3)/2⌋ + 1 = 14; W: ⌊(28 + 4 − 5)/1⌋ + 1 = 28.
  assert.deepEqual(conv?.outShape, [4, 14, 28]);
  assert.deepEqual(
    conv?.params.map((p) => p.name),
    ["c.0.weight"],
  );
  assert.equal(ir.totals.trainable, 4 * 1 * 3 * 5 + 2 * 4 + 10 * 4);
  assert.deepEqual(ir.train.optimizer, {
    type: "adam",
    lr: 0.002,
    betas: [0.8, 0.99],
    eps: 1e-7,
    weightDecay: 0.0001,
  });
  assert.deepEqual(ir.train.scheduler, {
    type: "onecycle",
    maxLr: 0.01,
    pctStart: 0.25,
    anneal: "linear",
    divFactor: 10,
    finalDivFactor: 100,
  });
  assert.deepEqual(
    [ir.train.epochs, ir.train.batchSize, ir.train.seed, ir.train.augment.rotate],
    [3, 64, 7, 10],
  );
});

test("linear after flatten sees the whole feature map (like gap)", () => {
  const ir = compiled(
    spec(
      "  - conv: { out: 2, kernel: 3, stride: 2 }\n  - flatten\n  - linear: { out: 10 }\n  - log_softmax",
    ),
  );
  // conv: 3/2 on a 13x13 map; linear covers 13 positions: 3 + 12·2 = 27, jump 2·13 = 26.
  assert.deepEqual(
    ir.nodes.map((n) => `${n.rf.size}/${n.rf.jump}`),
    ["3/2", "3/2", "27/26", "27/26"],
  );
});

test("spans point at each layer's line", () => {
  const ir = compileFile("specs", "step4.yaml");
  const text = readFileSync(packagePath("specs", "step4.yaml"), "utf8").split("\n");
  for (const n of ir.nodes) {
    const line = text[n.span.line - 1] ?? "";
    assert.equal(
      line.slice(n.span.col - 1).split(/[:\s]/)[0],
      n.kind,
      `${n.name} at ${n.span.line}:${n.span.col}`,
    );
  }
});

test("edit distance and suggestions", () => {
  const cases: [string, string, number][] = [
    ["relu", "relu", 0],
    ["rellu", "relu", 1],
    ["cnov", "conv", 1], // a swap counts 1
    ["maxpol", "maxpool", 1],
    ["softmax", "log_softmax", 4],
    ["", "gap", 3],
  ];
  for (const [a, b, d] of cases) assert.equal(editDistance(a, b), d, `${a} → ${b}`);
  assert.equal(nearest("batchnrom", OP_KINDS), "batchnorm");
  assert.equal(nearest("softmax", OP_KINDS), "log_softmax"); // contained, the only one
  assert.equal(nearest("pool", OP_KINDS), undefined); // in maxpool and avgpool: no guess
  assert.equal(nearest("dense", OP_KINDS), undefined);
});

test("the op table: bare names are the ops without required attributes", () => {
  assert.deepEqual(OP_KINDS.filter(isBare), [
    "relu",
    "relu6",
    "leaky_relu",
    "sigmoid",
    "tanh",
    "silu",
    "gelu",
    "hardswish",
    "batchnorm",
    "gap",
    "dropout",
    "flatten",
    "log_softmax",
  ]);
  for (const kind of OP_KINDS) {
    for (const name of OPS[kind].required)
      assert.ok(name in OPS[kind].attributes, `${kind}.${name}`);
  }
});

test("schema/mnistc.schema.json is generated from the op table and up to date", () => {
  const file = packagePath("schema", "mnistc.schema.json");
  const text = `${JSON.stringify(buildSchema(), null, 2)}\n`;
  if (process.env.UPDATE_GOLDEN === "1" && process.env.CI !== "true") writeFileSync(file, text);
  assert.equal(
    readFileSync(file, "utf8"),
    text,
    "run the tests with UPDATE_GOLDEN=1 to regenerate it",
  );
});

test("the README's spec example compiles", () => {
  const readme = readFileSync(packagePath("README.md"), "utf8");
  // The Spec format section's example: the first yaml block that is a spec (has layers).
  const example = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)]
    .map((m) => m[1] as string)
    .find((block) => /^layers:/m.test(block));
  assert.ok(example, "README has a yaml example");
  const { ir, diagnostics } = compileSpec(example, "README.md");
  assert.deepEqual(diagnostics, []);
  assert.equal(ir?.totals.trainable, 16 * 9 + 16 + 32 + 10 * 16 * 9 + 10);
});

test("the README's residual block example compiles into a graph with an add", () => {
  const readme = readFileSync(packagePath("README.md"), "utf8");
  const block = /```yaml\n( {2}- conv2:[\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(block, "README has the residual example");
  const ir = compiled(
    spec(`${block}  - gap\n  - flatten\n  - linear: { out: 10 }\n  - log_softmax`),
  );
  const add = ir.nodes.find((n) => n.name === "res1.add");
  assert.deepEqual(add?.inputs, ["res1.3", "conv2.2"]);
  assert.deepEqual(add?.outShape, [16, 26, 26]);
});

test("compileSpec never throws: garbage and mutated specs give diagnostics", () => {
  const garbage = [
    "",
    "\u0000\u0001",
    "{{{{",
    "- - - -",
    "layers: 3",
    "layers: [[[]]]",
    "input: null\nclasses: null\nlayers: null",
    "a: &a [*a]",
    "x: &x\n  y: *x",
    "layers:\n  - conv: { out: 1e400, kernel: 3 }",
    "layers:\n  - __proto__: [relu]",
    "input: {channels: 1, height: 28, width: 28}\nclasses: 10\nlayers:\n  - __proto__: [relu]\n  - log_softmax",
    "? [a]\n: b",
    "--- a\n--- b",
    "%YAML 9.9\n---\na: 1",
    "classes: 10\ninput: {channels: 1, height: 28, width: 28}\nlayers:\n  - constructor: []\n  - toString",
  ];
  const seed = readFileSync(packagePath("specs", "step4.yaml"), "utf8");
  const rng = new Rng(42);
  const mutated: string[] = [];
  for (let i = 0; i < 300; i++) {
    const chars = [...seed];
    for (let m = 0; m < 1 + (rng.nextUint32() % 4); m++) {
      const at = rng.nextUint32() % chars.length;
      const op = rng.nextUint32() % 3;
      if (op === 0) chars.splice(at, 1);
      else if (op === 1) chars.splice(at, 0, "-:[]{} 0x\n"[rng.nextUint32() % 10] ?? " ");
      else chars[at] = String.fromCharCode(32 + (rng.nextUint32() % 95));
    }
    mutated.push(chars.join(""));
  }
  for (const text of [...garbage, ...mutated]) {
    const result = compileSpec(text, "fuzz.yaml");
    assert.equal(
      result.ir === undefined,
      result.diagnostics.some((d) => d.severity === "error"),
      text,
    );
    for (const d of result.diagnostics) {
      assert.match(d.code, /^E\d{4}$/);
      assert.ok(d.span.line >= 1 && d.span.col >= 1, `located: ${d.message}`);
    }
  }
});

// --- the new vocabulary, by hand ----------------------------------------------------------------

test("samePads: d·(k − 1) in all, the odd pixel at bottom/right (PyTorch's padding='same')", () => {
  const cases: [Pair, Pair, Pads][] = [
    [
      [3, 3],
      [1, 1],
      [1, 1, 1, 1],
    ],
    [
      [2, 2],
      [1, 1],
      [0, 0, 1, 1],
    ],
    [
      [3, 1],
      [1, 1],
      [1, 0, 1, 0],
    ],
    [
      [3, 3],
      [2, 2],
      [2, 2, 2, 2],
    ],
    [
      [4, 4],
      [3, 1],
      [4, 1, 5, 2],
    ], // 3·3 = 9 → 4 + 5; 1·3 = 3 → 1 + 2
  ];
  for (const [kernel, dilation, pads] of cases) {
    assert.deepEqual(samePads(kernel, dilation), pads, `k ${kernel} d ${dilation}`);
  }
});

test("grouped, dilated and factorized convs: shapes, parameters, MACs and RF by hand", () => {
  // [layer, output shape, trainable, MACs, RF size] on a 16x12x12 input.
  const cases: [string, number[], number, number, number][] = [
    // depthwise 3x3 same: 16·1·9 + 16; MACs 16·12·12·1·9.
    ["conv: { out: 16, kernel: 3, padding: same, groups: 16 }", [16, 12, 12], 160, 20736, 3],
    // groups 4: each of 32 filters sees 16/4 = 4 channels: 32·4·9 + 32; 12 − 2 = 10.
    ["conv: { out: 32, kernel: 3, groups: 4 }", [32, 10, 10], 1184, 32 * 100 * 36, 3],
    // dilation 2: a 5x5 window; 12 − 4 = 8; the parameters of a 3x3.
    ["conv: { out: 8, kernel: 3, dilation: 2 }", [8, 8, 8], 8 * 16 * 9 + 8, 8 * 64 * 144, 5],
    // 3x1 then padded 1x0: H 12 − 2 + 2 = 12.
    [
      "conv: { out: 16, kernel: [3, 1], padding: [1, 0], bias: false }",
      [16, 12, 12],
      768,
      16 * 144 * 48,
      3,
    ],
    // channel multiplier 2: groups 16, out 32: 32·1·9 + 32.
    ["conv: { out: 32, kernel: 3, groups: 16 }", [32, 10, 10], 320, 32 * 100 * 9, 3],
    // maxpool 3 s2 p1: ⌊(12 + 2 − 3)/2⌋ + 1 = 6.
    ["maxpool: { kernel: 3, stride: 2, padding: 1 }", [16, 6, 6], 0, 0, 3],
  ];
  for (const [layer, shape, trainable, macs, rf] of cases) {
    // 28 → conv 3x3 s2 → 13 → conv 2x2 → 12: RF 5, jump 2.
    const base = compiled(
      spec(
        `  - conv: { out: 16, kernel: 3, stride: 2, padding: 0 }\n  - conv: { out: 16, kernel: 2 }\n  - ${layer}\n  - gap\n  - flatten\n  - linear: { out: 10 }\n  - log_softmax`,
      ),
    );
    const node = base.nodes[2];
    assert.deepEqual(base.nodes[1]?.outShape, [16, 12, 12], "the input of the case");
    assert.deepEqual(node?.outShape, shape, layer);
    assert.equal(paramCount(node as AnyNodeIR, true), trainable, layer);
    assert.equal(node?.macs, macs, layer);
    // RF in units of the 12x12 map's jump (2): size grows by (extent − 1)·2 over the 4/2 before.
    const before = base.nodes[1]?.rf.size ?? 0;
    assert.equal(node?.rf.size, before + (rf - 1) * 2, layer);
  }
});

test("a residual add reads two nodes; the receptive field follows the longer path", () => {
  const ir = compiled(
    spec(`  - a:
      - conv: { out: 4, kernel: 3, padding: same }
  - b:
      add: a
      layers:
        - conv: { out: 4, kernel: 5, padding: same }
        - conv: { out: 4, kernel: 5, padding: same }
  - gap
  - flatten
  - linear: { out: 10 }
  - log_softmax`),
  );
  const add = ir.nodes.find((n) => n.kind === "add");
  assert.equal(add?.name, "b.add");
  assert.deepEqual(add?.inputs, ["b.1", "a.0"]);
  assert.deepEqual(add?.inShapes, [
    [4, 28, 28],
    [4, 28, 28],
  ]);
  // Path through b: 3 + 4 + 4 = 11; the skip from a alone sees 3.
  assert.equal(add?.rf.size, 11);
  assert.equal(add?.macs, 0);
  assert.deepEqual(add?.params, []);
  // The node after the block reads the sum.
  assert.deepEqual(ir.nodes[ir.nodes.indexOf(add as AnyNodeIR) + 1]?.inputs, ["b.add"]);
});

test("an op declares the random mask it draws: dropout's p, and no mask for any other op", () => {
  const ir = compileFile("test", "fixtures", "specs", "good", "every-op.yaml");
  const masks = ir.nodes.flatMap((n) => randomMaskOf(n) ?? []);
  assert.deepEqual(masks, [
    { name: "res.5", p: 0.2 },
    { name: "head.3", p: 0.1 },
  ]);
});
