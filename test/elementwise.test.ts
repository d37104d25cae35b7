// The elementwise ops (activations) against PyTorch's definitions: the op table's function and
// derivative by hand-checked values and, in float64, the derivative against finite differences of
// the function; the onnx backend's inference nodes (opset 13) and the training step's forward and
// backward (the op's gradient rule in the onnx-train graph, opset 17) on onnxruntime against them,
// at the kinks too, where the step must give PyTorch's one-sided choice; the traced form tfjs
// evaluates where it has no layer (the runtime's Elementwise) and its tfjs gradient. tfjs's own
// layers are held to the ONNX nodes by the parity tests on every-op.yaml.
import assert from "node:assert/strict";
import { test } from "node:test";
import type * as tfNs from "@tensorflow/tfjs";
import * as ort from "onnxruntime-node";
import { onnxOps } from "../src/backends/onnx/ops.js";
import { TRAIN_FORWARD, type TrainForwardContext } from "../src/backends/onnx-train/forward.js";
import { OnnxGraph, type Tensor } from "../src/backends/onnx-train/graph.js";
import { TRAIN_OPSET } from "../src/backends/onnx-train/index.js";
import { evaluateElementwise, traceElementwise } from "../src/compiler/elementwise.js";
import type { Elementwise } from "../src/compiler/grad-builder.js";
import { type AnyNodeIR, OP_KINDS, type OpKind } from "../src/compiler/ir.js";
import { type ElementwiseFn, opDef, type RfState } from "../src/compiler/ops.js";
import {
  encodeModel,
  floatValue,
  type NodeProto,
  ONNX_IR_VERSION,
  ONNX_OPSET,
  onnx,
  type TensorProto,
} from "../src/formats/onnx-proto.js";
import { initEngine } from "../src/runtime/tfjs/engine.js";
import { Elementwise as ElementwiseLayer } from "../src/runtime/tfjs/layers/elementwise.js";
import { Rng } from "../src/util/rng.js";

/** erf in float64 (Math has none): its Maclaurin series below 3, erfc's continued fraction above. */
function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 100; n++) {
      term *= (-ax * ax) / n;
      sum += term / (2 * n + 1);
    }
    return (Math.sign(x) * 2 * sum) / Math.sqrt(Math.PI);
  }
  let f = ax;
  for (let k = 120; k >= 1; k--) f = ax + k / 2 / f;
  return Math.sign(x) * (1 - Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f);
}

type F64 = number[];
const map = (a: F64, f: (v: number) => number): F64 => a.map(f);
const zip = (a: F64, b: F64, f: (u: number, v: number) => number): F64 =>
  a.map((v, i) => f(v, b[i] as number));

/** The primitives in float64 on plain arrays: the reference every spelling is held to. */
const f64: Elementwise<F64> = {
  add: (a, b) => zip(a, b, (u, v) => u + v),
  sub: (a, b) => zip(a, b, (u, v) => u - v),
  mul: (a, b) => zip(a, b, (u, v) => u * v),
  scale: (a, k) => map(a, (v) => v * k),
  offset: (a, k) => map(a, (v) => v + k),
  exp: (a) => map(a, Math.exp),
  sigmoid: (a) => map(a, (v) => 1 / (1 + Math.exp(-v))),
  tanh: (a) => map(a, Math.tanh),
  erf: (a) => map(a, erf),
  clamp: (a, lo, hi) => map(a, (v) => Math.min(Math.max(v, lo), hi)),
  greater: (a, k) => map(a, (v) => (v > k ? 1 : 0)),
  less: (a, k) => map(a, (v) => (v < k ? 1 : 0)),
};

/** Each elementwise op, once per attribute form (leaky_relu at its default and at 0.2). */
const FORMS: [label: string, kind: OpKind, raw: Record<string, unknown>][] = OP_KINDS.filter(
  (k) => opDef(k).elementwise,
).flatMap((k): [string, OpKind, Record<string, unknown>][] =>
  k === "leaky_relu"
    ? [
        ["leaky_relu", k, {}],
        ["leaky_relu 0.2", k, { negative_slope: 0.2 }],
      ]
    : [[k, k, {}]],
);

const fnOf = (kind: OpKind) => opDef(kind).elementwise as ElementwiseFn<OpKind>;
const attrsOf = (kind: OpKind, raw: Record<string, unknown>) => opDef(kind).normalize(raw);
const f = (label: string, x: F64): F64 => {
  const [, kind, raw] = FORMS.find(([l]) => l === label) as (typeof FORMS)[number];
  return fnOf(kind).f(f64, x, attrsOf(kind, raw));
};
const df = (label: string, x: F64): F64 => {
  const [, kind, raw] = FORMS.find(([l]) => l === label) as (typeof FORMS)[number];
  return fnOf(kind).df(f64, x, f(label, x), attrsOf(kind, raw));
};

test("the float64 erf: known values", () => {
  const cases: [number, number][] = [
    [0, 0],
    [0.5, 0.5204998778130465],
    [1, 0.8427007929497149],
    [-1, -0.8427007929497149],
    [3, 0.9999779095030014],
    [4.5, 0.9999999998033839],
  ];
  for (const [x, y] of cases) assert.ok(Math.abs(erf(x) - y) < 1e-14, `erf(${x}) = ${erf(x)}`);
});

// By hand (or math.erf): σ(2) = 1/(1 + e⁻²); tanh′ = 1 − tanh²; silu′ = σ(1 + x(1 − σ));
// gelu′ = Φ + xφ; hardswish′ = x/3 + 1/2 on [−3, 3]. At a kink, PyTorch's backward kernels' value.
const VALUES: [label: string, x: number, y: number, dy: number][] = [
  ["relu", -1.5, 0, 0],
  ["relu", 0, 0, 0],
  ["relu", 2, 2, 1],
  ["relu6", 0, 0, 0],
  ["relu6", 3, 3, 1],
  ["relu6", 6, 6, 0],
  ["relu6", 7, 6, 0],
  ["leaky_relu", -2, -0.02, 0.01],
  ["leaky_relu", 0, 0, 0.01],
  ["leaky_relu", 3, 3, 1],
  ["leaky_relu 0.2", -2, -0.4, 0.2],
  ["sigmoid", 0, 0.5, 0.25],
  ["sigmoid", 2, 0.8807970779778823, 0.10499358540350662],
  ["tanh", 0, 0, 1],
  ["tanh", 1, 0.7615941559557649, 0.41997434161402614],
  ["silu", 0, 0, 0.5],
  ["silu", 1, 0.7310585786300049, 0.9276705118714869],
  ["gelu", 0, 0, 0.5],
  ["gelu", 1, 0.8413447460685429, 1.0833154705876864],
  ["gelu", -1, -0.15865525393145707, -0.08331547058768629],
  ["hardswish", -4, 0, 0],
  ["hardswish", -3, 0, -0.5],
  ["hardswish", 1, 2 / 3, 5 / 6],
  ["hardswish", 3, 3, 1.5],
  ["hardswish", 4, 4, 1],
];

test("the op table's f and f′ of each activation: values by hand, PyTorch's at the kinks", () => {
  for (const [label, x, y, dy] of VALUES) {
    const [fy] = f(label, [x]);
    const [fdy] = df(label, [x]);
    assert.ok(Math.abs((fy as number) - y) < 1e-12, `${label}(${x}) = ${fy}, not ${y}`);
    assert.ok(Math.abs((fdy as number) - dy) < 1e-12, `${label}′(${x}) = ${fdy}, not ${dy}`);
  }
  const labels = new Set(VALUES.map(([label]) => label));
  assert.deepEqual(
    FORMS.map(([label]) => label).filter((l) => !labels.has(l)),
    [],
    "forms without hand-checked values",
  );
});

const KINKS = [-3, 0, 3, 6];

test("f′ equals central differences of f in float64, away from the kinks", () => {
  const h = 1e-6;
  const xs = Array.from({ length: 321 }, (_, i) => -8 + i * 0.05 + 0.0123).filter((x) =>
    KINKS.every((k) => Math.abs(x - k) > 1e-3),
  );
  for (const [label] of FORMS) {
    const up = f(
      label,
      xs.map((x) => x + h),
    );
    const down = f(
      label,
      xs.map((x) => x - h),
    );
    const d = df(label, xs);
    xs.forEach((x, i) => {
      const fd = ((up[i] as number) - (down[i] as number)) / (2 * h);
      assert.ok(Math.abs(fd - (d[i] as number)) < 1e-7, `${label}′(${x}): ${d[i]} vs ${fd}`);
    });
  }
});

test("activations: shape, no parameters, no MACs, receptive field unchanged", () => {
  const rf: RfState = { size: [5, 5], jump: [2, 2], extent: [14, 14] };
  for (const [label, kind, raw] of FORMS) {
    const op = opDef(kind);
    const a = attrsOf(kind, raw);
    for (const shape of [[8, 14, 14], [16]]) {
      assert.deepEqual(op.shape(a, [shape]), shape, label);
      assert.deepEqual(op.params(a, [shape]), [], label);
      assert.equal(op.macs(a, [shape], shape), 0, label);
      assert.deepEqual(op.receptiveField([rf], a, [shape], shape), rf, label);
    }
    assert.equal(op.rank, "any", label);
    assert.deepEqual(op.required, [], `${label} is written bare`);
  }
});

/** Inputs on a grid with every kink, and seeded values between. */
function inputs(): { x: Float32Array; dy: Float32Array } {
  const rng = new Rng(19);
  const grid = [-8, -6, -4, -3, -2.5, -1, -0.25, 0, 0.5, 1, 2, 3, 4.5, 6, 7.25];
  const values = [...grid, ...Array.from({ length: 49 }, () => rng.uniform(-8, 8))];
  return {
    x: Float32Array.from(values),
    dy: Float32Array.from(values, () => rng.uniform(-2, 2)),
  };
}

/** An IR node of one activation reading [n] (what the backend tables read of it). */
function nodeOf(kind: OpKind, raw: Record<string, unknown>, n: number): AnyNodeIR {
  return {
    name: "act",
    kind,
    attrs: attrsOf(kind, raw),
    block: undefined,
    span: { file: "t.yaml", line: 1, col: 1, endLine: 1, endCol: 1 },
    inputs: ["x"],
    inShapes: [[n]],
    inShape: [n],
    outShape: [n],
    params: [],
    macs: 0,
    rf: { size: 1, jump: 1 },
  } as unknown as AnyNodeIR;
}

/** Runs nodes reading `x` (and `dy`) [1, n] on onnxruntime; the outputs by name. */
async function run(
  nodes: NodeProto[],
  initializers: TensorProto[],
  opset: number,
  feeds: Record<string, Float32Array>,
  outputs: string[],
): Promise<Record<string, Float32Array>> {
  const shape = (name: string) => [1, (feeds[name] ?? feeds.x)?.length ?? 0];
  const model = onnx.ModelProto.create({
    irVersion: ONNX_IR_VERSION,
    opsetImport: [{ domain: "", version: opset }],
    graph: {
      name: "act",
      node: nodes,
      initializer: initializers,
      input: Object.keys(feeds).map((name) => floatValue(name, shape(name))),
      output: outputs.map((name) => floatValue(name, shape("x"))),
    },
  });
  const session = await ort.InferenceSession.create(encodeModel(model));
  const result = await session.run(
    Object.fromEntries(
      Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor("float32", v, shape(k))]),
    ),
  );
  await session.release();
  return Object.fromEntries(outputs.map((name) => [name, result[name]?.data as Float32Array]));
}

function assertClose(label: string, what: string, x: Float32Array, got: Float32Array, want: F64) {
  want.forEach((w, i) => {
    const error = Math.abs((got[i] ?? Number.NaN) - w) / Math.max(1, Math.abs(w));
    assert.ok(error <= 2e-6, `${label} ${what} at x = ${x[i]}: ${got[i]}, PyTorch ${w}`);
  });
}

for (const [label, kind, raw] of FORMS) {
  test(`${label}: the ONNX inference nodes (opset ${ONNX_OPSET}) equal f`, async () => {
    const { x } = inputs();
    const node = nodeOf(kind, raw, x.length);
    const rule = onnxOps[kind] as (
      n: AnyNodeIR,
      c: Parameters<typeof onnxOps.relu>[1],
    ) => NodeProto[];
    const nodes = rule(node, { inputs: ["x"], input: "x", output: "y" });
    const { y } = await run(nodes, [], ONNX_OPSET, { x }, ["y"]);
    assertClose(label, "y", x, y as Float32Array, f(label, [...x]));
  });

  test(`${label}: the training step's forward and backward equal f and dy·f′, kinks too`, async () => {
    const { x, dy } = inputs();
    const node = nodeOf(kind, raw, x.length);
    const g = new OnnxGraph();
    const xt: Tensor = { name: "x", shape: [1, x.length] };
    const dyt: Tensor = { name: "dy", shape: [1, x.length] };
    const ctx: TrainForwardContext = {
      g,
      inputs: [xt],
      params: {},
      batch: 1,
      mask: () => {
        throw new Error("no mask");
      },
      update: () => {},
    };
    const forward = (
      TRAIN_FORWARD[kind] as (
        n: AnyNodeIR,
        c: TrainForwardContext,
      ) => {
        output: Tensor;
        saved: Record<string, Tensor>;
      }
    )(node, ctx);
    const grad = opDef(kind).gradient(
      g,
      node.attrs,
      {
        inputs: [xt],
        output: forward.output,
        dy: dyt,
        params: {},
        saved: {},
        wanted: [true],
        batch: 1,
      },
      node.inShapes,
      node.outShape,
    );
    g.op("Identity", [forward.output], forward.output.shape, [], "y");
    g.op("Identity", [grad.inputs[0] as Tensor], xt.shape, [], "dx");
    const out = await run(g.nodes, g.initializers, TRAIN_OPSET, { x, dy }, ["y", "dx"]);
    assertClose(label, "y", x, out.y as Float32Array, f(label, [...x]));
    const want = f64.mul(df(label, [...x]), [...dy]);
    assertClose(label, "dx", x, out.dx as Float32Array, want);
  });
}

test("a traced function evaluates to f; the evaluator refuses trees no trace makes", () => {
  const xs = [-4, -3, -1, 0, 0.5, 3, 7];
  for (const [label, kind, raw] of FORMS) {
    const expr = traceElementwise((e, x) => fnOf(kind).f(e, x, attrsOf(kind, raw)));
    assert.deepEqual(JSON.parse(JSON.stringify(expr)), expr, `${label}: JSON holds it`);
    const back = evaluateElementwise(f64, expr, xs);
    assert.deepEqual(back, f(label, xs), label);
  }
  assert.deepEqual(
    traceElementwise((e, x) => fnOf("hardswish").f(e, x, {})),
    ["scale", ["mul", "x", ["clamp", ["offset", "x", 3], 0, 6]], 1 / 6],
  );
  const bad: [unknown, RegExp][] = [
    ["y", /not an elementwise expression/],
    [["constructor", "x"], /not an elementwise expression/],
    [["clamp", "x", 0], /wrong number of arguments/],
    [["offset", "x", "3"], /is not a number/],
    [["mul", "x", 2], /not an elementwise expression/],
  ];
  for (const [expr, message] of bad) {
    assert.throws(() => evaluateElementwise(f64, expr, xs), message, JSON.stringify(expr));
  }
});

test("the runtime's Elementwise layer: f in tf ops, and tfjs's gradient dy·f′", async () => {
  process.env.MNISTC_ENGINE = "cpu";
  const { tf } = await initEngine();
  const { x, dy } = inputs();
  // Away from the kinks (a clip's gradient counts its bounds in), but hardswish's, where that is
  // PyTorch's choice: x/3 + 1/2 at both −3 and 3.
  for (const [label, kind, raw] of FORMS) {
    const expr = traceElementwise((e, v) => fnOf(kind).f(e, v, attrsOf(kind, raw)));
    const layer = new ElementwiseLayer({ name: `t_${label}`.replace(/\W/g, "_"), f: expr });
    const [y, dx] = tf.tidy(() => {
      const xt = tf.tensor1d(x);
      const apply = (v: tfNs.Tensor) => layer.apply(v) as tfNs.Tensor;
      const grad = tf.grad(apply)(xt, tf.tensor1d(dy));
      return [apply(xt).dataSync() as Float32Array, grad.dataSync() as Float32Array];
    });
    assertClose(label, "y", x, y, f(label, [...x]));
    const want = f64.mul(df(label, [...x]), [...dy]);
    const smooth = (i: number) =>
      kind === "hardswish" || KINKS.every((k) => Math.abs((x[i] as number) - k) > 1e-3);
    const keep = (a: ArrayLike<number>) => Array.from(a).filter((_, i) => smooth(i));
    assertClose(label, "dx", Float32Array.from(keep(x)), Float32Array.from(keep(dx)), keep(want));
  }
});
