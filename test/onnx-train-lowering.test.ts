// Each lowering rule of the onnx-train backend on its own: a graph holding just the rule's nodes,
// run by onnxruntime, against PyTorch's definitions computed here by plain loops (NCHW, groups,
// stride, dilation, per-side padding), for every case the rule applies to. A rule that applies
// to no case of the table would be untested: that fails too.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as ort from "onnxruntime-node";
import { OnnxGraph, type Tensor } from "../src/backends/onnx-train/graph.js";
import { TRAIN_OPSET } from "../src/backends/onnx-train/index.js";
import {
  avgPoolGrad,
  CHANNEL_DOT,
  CHANNEL_SCALE,
  CHANNEL_SUM,
  CONV_FILTER_GRAD,
  CONV_FORWARD,
  CONV_INPUT_GRAD,
  maxPoolGrad,
  type Rule,
  sumBesideFilterGrad,
} from "../src/backends/onnx-train/lowering.js";
import type { OpAttrs } from "../src/compiler/ir.js";
import {
  encodeModel,
  floatValue,
  intAttr,
  intsAttr,
  ONNX_IR_VERSION,
  onnx,
} from "../src/formats/onnx-proto.js";
import { Rng } from "../src/util/rng.js";

type Conv = OpAttrs["conv"];

interface Case {
  name: string;
  batch: number;
  cin: number;
  h: number;
  w: number;
  attrs: Conv;
}

const conv = (a: Partial<Conv> & { out: number; kernel: [number, number] }): Conv => ({
  stride: [1, 1],
  padding: [0, 0, 0, 0],
  same: false,
  dilation: [1, 1],
  groups: 1,
  bias: true,
  ...a,
});

const CASES: Case[] = [
  { name: "3x3", batch: 2, cin: 3, h: 7, w: 6, attrs: conv({ out: 4, kernel: [3, 3] }) },
  {
    name: "3x3 s2 p1",
    batch: 2,
    cin: 3,
    h: 8,
    w: 7,
    attrs: conv({ out: 5, kernel: [3, 3], stride: [2, 2], padding: [1, 1, 1, 1] }),
  },
  {
    name: "dilation 2",
    batch: 1,
    cin: 2,
    h: 9,
    w: 9,
    attrs: conv({ out: 3, kernel: [3, 3], dilation: [2, 2] }),
  },
  {
    name: "groups 2",
    batch: 2,
    cin: 4,
    h: 6,
    w: 6,
    attrs: conv({ out: 6, kernel: [3, 3], groups: 2, padding: [1, 1, 1, 1] }),
  },
  {
    name: "depthwise x2",
    batch: 2,
    cin: 3,
    h: 6,
    w: 5,
    attrs: conv({ out: 6, kernel: [3, 3], groups: 3 }),
  },
  {
    name: "3x1 uneven pads",
    batch: 2,
    cin: 2,
    h: 6,
    w: 5,
    attrs: conv({ out: 3, kernel: [3, 1], padding: [1, 0, 2, 0] }),
  },
  {
    name: "2x2 same (odd pixel bottom-right)",
    batch: 1,
    cin: 3,
    h: 5,
    w: 5,
    attrs: conv({ out: 2, kernel: [2, 2], padding: [0, 0, 1, 1], same: true }),
  },
  {
    name: "many in, few out (128 -> 4 shape)",
    batch: 2,
    cin: 40,
    h: 7,
    w: 7,
    attrs: conv({ out: 2, kernel: [3, 3] }),
  },
  {
    name: "many in, few out, padded",
    batch: 2,
    cin: 30,
    h: 6,
    w: 6,
    attrs: conv({ out: 2, kernel: [3, 3], padding: [1, 1, 1, 1] }),
  },
  { name: "1x1", batch: 2, cin: 5, h: 4, w: 4, attrs: conv({ out: 3, kernel: [1, 1] }) },
  {
    name: "one input channel",
    batch: 2,
    cin: 1,
    h: 6,
    w: 5,
    attrs: conv({ out: 3, kernel: [3, 3] }),
  },
];

const outSize = (n: number, k: number, s: number, d: number, before: number, after: number) =>
  Math.floor((n + before + after - ((k - 1) * d + 1)) / s) + 1;

function geometry(c: Case) {
  const { kernel, stride, dilation, padding, groups, out } = c.attrs;
  const ho = outSize(c.h, kernel[0], stride[0], dilation[0], padding[0], padding[2]);
  const wo = outSize(c.w, kernel[1], stride[1], dilation[1], padding[1], padding[3]);
  return { ho, wo, cinG: c.cin / groups, coutG: out / groups };
}

/** Calls `f(n, o, i, y, x, a, b, ix, iy)` for every term of PyTorch's conv sum. */
function forTerms(
  c: Case,
  f: (
    n: number,
    o: number,
    ci: number,
    oy: number,
    ox: number,
    a: number,
    b: number,
    iy: number,
    ix: number,
  ) => void,
) {
  const { ho, wo, cinG, coutG } = geometry(c);
  const { kernel, stride, dilation, padding } = c.attrs;
  for (let n = 0; n < c.batch; n++)
    for (let o = 0; o < c.attrs.out; o++) {
      const g = Math.floor(o / coutG);
      for (let oy = 0; oy < ho; oy++)
        for (let ox = 0; ox < wo; ox++)
          for (let i = 0; i < cinG; i++)
            for (let a = 0; a < kernel[0]; a++)
              for (let b = 0; b < kernel[1]; b++) {
                const iy = oy * stride[0] + a * dilation[0] - padding[0];
                const ix = ox * stride[1] + b * dilation[1] - padding[1];
                if (iy < 0 || iy >= c.h || ix < 0 || ix >= c.w) continue;
                f(n, o, g * cinG + i, oy, ox, a, b, iy, ix);
              }
    }
}

function data(c: Case, seed: number) {
  const rng = new Rng(seed);
  const { ho, wo, cinG } = geometry(c);
  const r = (n: number) => Float32Array.from({ length: n }, () => rng.uniform(-1, 1));
  const [kh, kw] = c.attrs.kernel;
  return {
    x: r(c.batch * c.cin * c.h * c.w),
    w: r(c.attrs.out * cinG * kh * kw),
    bias: r(c.attrs.out),
    dy: r(c.batch * c.attrs.out * ho * wo),
    // A per-channel affine of x (batch norm's output): scale and shift per input channel.
    scale: Float32Array.from({ length: c.cin }, () => rng.uniform(0.5, 1.5)),
    shift: r(c.cin),
  };
}

/** A case's data as the rule graphs' inputs, by name and shape. */
function graphInputs(c: Case, d: ReturnType<typeof data>) {
  const { ho, wo, cinG } = geometry(c);
  return {
    x: { data: d.x, shape: [c.batch, c.cin, c.h, c.w] },
    w: { data: d.w, shape: [c.attrs.out, cinG, ...c.attrs.kernel] },
    bias: { data: d.bias, shape: [c.attrs.out] },
    dy: { data: d.dy, shape: [c.batch, c.attrs.out, ho, wo] },
    scale: { data: d.scale, shape: [c.cin] },
    shift: { data: d.shift, shape: [c.cin] },
  };
}

/** The data with x replaced by x·scale + shift per channel (what an affine input holds). */
function affined(c: Case, d: ReturnType<typeof data>): ReturnType<typeof data> {
  const plane = c.h * c.w;
  const x = d.x.map((v, k) => {
    const ch = Math.floor(k / plane) % c.cin;
    return v * (d.scale[ch] ?? 1) + (d.shift[ch] ?? 0);
  });
  return { ...d, x };
}

/** PyTorch's conv forward, dx and dW by the definition (float64 sums). */
function reference(c: Case, d: ReturnType<typeof data>) {
  const { ho, wo, cinG } = geometry(c);
  const [kh, kw] = c.attrs.kernel;
  const xAt = (n: number, i: number, y: number, x: number) => ((n * c.cin + i) * c.h + y) * c.w + x;
  const wAt = (o: number, i: number, a: number, b: number) =>
    ((o * cinG + (i % cinG)) * kh + a) * kw + b;
  const yAt = (n: number, o: number, y: number, x: number) =>
    ((n * c.attrs.out + o) * ho + y) * wo + x;
  const y = new Float64Array(c.batch * c.attrs.out * ho * wo);
  for (let n = 0; n < c.batch; n++)
    for (let o = 0; o < c.attrs.out; o++)
      for (let p = 0; p < ho * wo; p++) y[yAt(n, o, 0, 0) + p] = d.bias[o] ?? 0;
  const dx = new Float64Array(d.x.length);
  const dw = new Float64Array(d.w.length);
  forTerms(c, (n, o, i, oy, ox, a, b, iy, ix) => {
    const xv = d.x[xAt(n, i, iy, ix)] ?? 0;
    const wv = d.w[wAt(o, i, a, b)] ?? 0;
    const g = d.dy[yAt(n, o, oy, ox)] ?? 0;
    y[yAt(n, o, oy, ox)] = (y[yAt(n, o, oy, ox)] ?? 0) + xv * wv;
    dx[xAt(n, i, iy, ix)] = (dx[xAt(n, i, iy, ix)] ?? 0) + wv * g;
    dw[wAt(o, i, a, b)] = (dw[wAt(o, i, a, b)] ?? 0) + xv * g;
  });
  return { y, dx, dw };
}

/** Runs a graph of `build`'s nodes: inputs by name and shape, one output. */
async function run(
  inputs: Record<string, { data: Float32Array; shape: number[] }>,
  build: (g: OnnxGraph, t: Record<string, Tensor>) => Tensor,
): Promise<Float32Array> {
  const g = new OnnxGraph();
  const t = Object.fromEntries(
    Object.entries(inputs).map(([name, v]) => [name, { name, shape: v.shape }]),
  );
  const result = build(g, t);
  const out = g.op("Identity", [result], result.shape, [], "out");
  const model = onnx.ModelProto.create({
    irVersion: ONNX_IR_VERSION,
    opsetImport: [{ domain: "", version: TRAIN_OPSET }],
    graph: {
      name: "rule",
      node: g.nodes,
      initializer: g.initializers,
      input: Object.entries(inputs).map(([name, v]) => floatValue(name, v.shape)),
      output: [floatValue("out", out.shape)],
    },
  });
  const session = await ort.InferenceSession.create(encodeModel(model));
  const feeds = Object.fromEntries(
    Object.entries(inputs).map(([name, v]) => [name, new ort.Tensor("float32", v.data, v.shape)]),
  );
  const res = (await session.run(feeds)).out?.data as Float32Array;
  await session.release();
  return res;
}

function assertClose(actual: Float32Array, expected: Float64Array, what: string) {
  assert.equal(actual.length, expected.length, what);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    worst = Math.max(
      worst,
      Math.abs((actual[i] ?? 0) - (expected[i] ?? 0)) / Math.max(1, Math.abs(expected[i] ?? 0)),
    );
  }
  assert.ok(worst <= 1e-5, `${what}: worst difference ${worst}`);
}

function ruleTests<A>(
  family: string,
  rules: readonly Rule<A>[],
  args: (c: Case, t: Record<string, Tensor>) => A,
  expect: (r: ReturnType<typeof reference>) => Float64Array,
) {
  for (const rule of rules) {
    test(`${family} rule ${rule.name}: equals PyTorch's definition where it applies`, async () => {
      let applied = 0;
      // Each case twice: on a plain input, and on an input that is a per-channel affine of
      // another (batch norm's output, which the fold rules read through).
      for (const c of CASES)
        for (const affine of [false, true]) {
          const d = data(c, 7);
          let applies = false;
          const out = await run(graphInputs(c, d), (g, t) => {
            const x = affine
              ? g.affine(t.x as Tensor, t.scale as Tensor, t.shift as Tensor)
              : (t.x as Tensor);
            const a = args(c, { ...t, x });
            applies = rule.applies(a);
            return applies ? rule.lower(g, a) : x;
          });
          if (!applies) continue;
          applied += 1;
          const what = `${rule.name} on ${c.name}${affine ? ", affine input" : ""}`;
          assertClose(out, expect(reference(c, affine ? affined(c, d) : d)), what);
        }
      assert.ok(applied > 0, `${rule.name} applies to no case`);
    });
  }
}

ruleTests(
  "conv forward",
  CONV_FORWARD,
  (c, t) => ({
    x: t.x as Tensor,
    weight: t.w as Tensor,
    bias: t.bias as Tensor,
    attrs: c.attrs,
    outputShape: [c.batch, c.attrs.out, geometry(c).ho, geometry(c).wo],
  }),
  (r) => r.y,
);
ruleTests(
  "conv input gradient",
  CONV_INPUT_GRAD,
  (c, t) => ({
    dy: t.dy as Tensor,
    weight: t.w as Tensor,
    attrs: c.attrs,
    inputShape: [c.batch, c.cin, c.h, c.w],
  }),
  (r) => r.dx,
);
ruleTests(
  "conv filter gradient",
  CONV_FILTER_GRAD,
  (c, t) => ({
    x: t.x as Tensor,
    dy: t.dy as Tensor,
    attrs: c.attrs,
    weightShape: [c.attrs.out, c.cin / c.attrs.groups, ...c.attrs.kernel],
  }),
  (r) => r.dw,
);

/** Σ over batch and space per channel of f(n, c, k), k the index into [B, C, H, W]. */
function perChannel(c: Case, f: (k: number) => number): Float64Array {
  const plane = c.h * c.w;
  const out = new Float64Array(c.cin);
  for (let k = 0; k < c.batch * c.cin * plane; k++) {
    const ch = Math.floor(k / plane) % c.cin;
    out[ch] = (out[ch] ?? 0) + f(k);
  }
  return out;
}

// Batch norm's backward sums of its ∂L/∂y when that is a conv's input gradient, with and
// without the conv's filter gradient of the same input computed first.
for (const [family, rules, dot] of [
  ["channel sum", CHANNEL_SUM, false],
  ["channel dot", CHANNEL_DOT, true],
] as const) {
  for (const rule of rules as readonly Rule<{ a: Tensor; b?: Tensor; filterGrad?: Tensor }>[]) {
    if (rule === sumBesideFilterGrad) continue; // below: its a is a filter gradient's dy
    test(`${family} rule ${rule.name} of a conv's input gradient: equals the definition where it applies`, async () => {
      let applied = 0;
      for (const c of CASES)
        for (const withFilterGrad of [false, true]) {
          const d = data(c, 11);
          const { cinG } = geometry(c);
          let applies = false;
          const out = await run(graphInputs(c, d), (g, t) => {
            const x = t.x as Tensor;
            const dy = t.dy as Tensor;
            const a = g.convInputGrad(dy, t.w as Tensor, c.attrs, x.shape);
            const weightShape = [c.attrs.out, cinG, ...c.attrs.kernel];
            if (withFilterGrad) g.convFilterGrad(x, dy, c.attrs, weightShape);
            const args = dot ? { a, b: x, filterGrad: g.knownFilterGrad(x, dy) } : { a };
            applies = rule.applies(args);
            return applies ? rule.lower(g, args) : a;
          });
          if (!applies) continue;
          applied += 1;
          const { dx } = reference(c, d);
          const expected = perChannel(c, (k) => (dx[k] ?? 0) * (dot ? (d.x[k] ?? 0) : 1));
          assertClose(out, expected, `${rule.name} on ${c.name}`);
        }
      assert.ok(applied > 0, `${rule.name} applies to no case`);
    });
  }
}

test("max-pool gradient: dy to each window's first maximum, summed where windows overlap", async () => {
  // One 1x1x3x3 image, windows 2x2 stride 1: three windows take the 9, the last one the 10.
  const x = Float32Array.of(1, 2, 3, 4, 9, 8, 7, 6, 10);
  const dy = Float32Array.of(1, 10, 100, 1000);
  const out = await run(
    { x: { data: x, shape: [1, 1, 3, 3] }, dy: { data: dy, shape: [1, 1, 2, 2] } },
    (g, t) => {
      const [, indices] = g.node(
        "MaxPool",
        [t.x as Tensor],
        [
          [1, 1, 2, 2],
          [1, 1, 2, 2],
        ],
        [intsAttr("kernel_shape", [2, 2]), intsAttr("strides", [1, 1]), intAttr("ceil_mode", 0)],
      ) as [Tensor, Tensor];
      return maxPoolGrad(g, { dy: t.dy as Tensor, indices, inputShape: [1, 1, 3, 3] });
    },
  );
  assert.deepEqual([...out], [0, 0, 0, 0, 1 + 10 + 100, 0, 0, 0, 1000]);
});

test("average-pool gradient: dy/(kh·kw) over each window, padding counted", async () => {
  // 1x1x2x2 input, kernel 2, stride 2, padding 1: a 2x2 output, each window holds one pixel.
  const dy = Float32Array.of(4, 8, 12, 16);
  const out = await run({ dy: { data: dy, shape: [1, 1, 2, 2] } }, (g, t) =>
    avgPoolGrad(g, {
      dy: t.dy as Tensor,
      attrs: { kernel: [2, 2], stride: [2, 2], padding: [1, 1] },
      inputShape: [1, 1, 2, 2],
    }),
  );
  assert.deepEqual([...out], [1, 2, 3, 4]);
});

// Batch norm's γ/σ on its ∂L/∂y when that is a conv's input gradient: per input channel of the conv.
for (const rule of CHANNEL_SCALE) {
  test(`channel scale rule ${rule.name} of a conv's input gradient: equals the definition where it applies`, async () => {
    let applied = 0;
    for (const c of CASES)
      for (const read of [false, true]) {
        const d = data(c, 13);
        let applies = false;
        const out = await run(graphInputs(c, d), (g, t) => {
          const a = g.convInputGrad(t.dy as Tensor, t.w as Tensor, c.attrs, (t.x as Tensor).shape);
          const args = { a, k: t.scale as Tensor, read };
          applies = rule.applies(args);
          return applies ? rule.lower(g, args) : a;
        });
        if (!applies) continue;
        applied += 1;
        const { dx } = reference(c, d);
        const plane = c.h * c.w;
        const expected = dx.map((v, k) => v * (d.scale[Math.floor(k / plane) % c.cin] ?? 1));
        assertClose(out, expected, `${rule.name} on ${c.name}${read ? ", already read" : ""}`);
      }
    assert.ok(applied > 0, `${rule.name} applies to no case`);
  });
}

test("scale-into-conv: the scaled input gradient is the only one written, and not once it is read", () => {
  const g = new OnnxGraph();
  const dy = { name: "dy", shape: [2, 2, 5, 5] };
  const w = { name: "w", shape: [2, 40, 3, 3] };
  const k = { name: "k", shape: [40] };
  const a = g.convInputGrad(dy, w, conv({ out: 2, kernel: [3, 3] }), [2, 40, 7, 7]);
  const scaled = g.scaleChannels(a, k);
  const convs = (graph: OnnxGraph, names: string[]) =>
    graph.live(names).nodes.filter((n) => n.opType === "Conv" || n.opType === "ConvTranspose");
  assert.equal(convs(g, [scaled.name]).length, 1);
  // Once read (here by a ReduceSum), the gradient is written anyway: one conv, and a Mul of it.
  const h = new OnnxGraph();
  const b = h.convInputGrad(dy, w, conv({ out: 2, kernel: [3, 3] }), [2, 40, 7, 7]);
  const sum = h.reduceSum(b, [0, 2, 3], false);
  const mul = h.scaleChannels(b, k);
  assert.equal(convs(h, [sum.name, mul.name]).length, 1);
  const muls = h.live([mul.name]).nodes.filter((n) => n.opType === "Mul");
  assert.deepEqual(
    muls.map((n) => n.input?.[0]),
    [b.name],
  );
});

test("channel sum rule sum-beside-filter-grad: Σ dy per channel from the filter gradient's column of ones", async () => {
  let applied = 0;
  for (const c of CASES) {
    const d = data(c, 17);
    const { ho, wo, cinG } = geometry(c);
    let applies = false;
    const out = await run(graphInputs(c, d), (g, t) => {
      const dy = t.dy as Tensor;
      g.convFilterGrad(t.x as Tensor, dy, c.attrs, [c.attrs.out, cinG, ...c.attrs.kernel]);
      const sum = g.sumPerChannel(dy);
      applies = g
        .live([sum.name])
        .nodes.every((n) => n.opType !== "ReduceSum" || n.input?.[0] !== dy.name);
      return sum;
    });
    const plane = ho * wo;
    const expected = new Float64Array(c.attrs.out);
    d.dy.forEach((v, k) => {
      const o = Math.floor(k / plane) % c.attrs.out;
      expected[o] = (expected[o] ?? 0) + v;
    });
    assertClose(out, expected, `Σ dy on ${c.name}`);
    if (applies) applied += 1;
    // Exactly where a group has one input channel (and so patches-matmul's stack takes the ones).
    assert.equal(applies, c.cin === c.attrs.groups, c.name);
  }
  assert.ok(applied >= 2, "sum-beside-filter-grad applies to fewer than 2 cases");
});
