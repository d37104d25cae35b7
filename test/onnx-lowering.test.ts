// The inference graph's rewrites (src/backends/onnx/lowering.ts) one by one: which batch norms
// `fold-batchnorm-into-conv` folds and which it must leave, which conv rule each conv takes, and
// that every rewritten graph computes what the plain graph (one ORT node per op) computes, on
// weights whose batch norms really act (test/helpers/weights.ts).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ort from "onnxruntime-node";
import { onnxBackend } from "../src/backends/onnx/index.js";
import { CONV_RULES, foldBatchNorms, pickConvRule } from "../src/backends/onnx/lowering.js";
import { compileSpec } from "../src/compiler/index.js";
import type { ModelIR, NodeIR } from "../src/compiler/ir.js";
import { Rng } from "../src/util/rng.js";
import { testWeights } from "./helpers/weights.js";

function spec(layers: string): ModelIR {
  const text = `name: t\ninput: { channels: 1, height: 28, width: 28 }\nclasses: 10\nlayers:\n${layers}`;
  const { ir, diagnostics } = compileSpec(text, "t.yaml");
  assert.ok(ir, diagnostics.map((d) => d.message).join("; "));
  return ir;
}

const HEAD = `  - conv: { out: 10, kernel: 1 }\n  - gap\n  - flatten\n  - log_softmax\n`;

// [case, layers, expected folds: conv node → batch norm node]
const FOLDS: [string, string, Record<string, string>][] = [
  [
    "bn then a valid conv: folded",
    `  - conv: { out: 8, kernel: 3 }\n  - relu\n  - batchnorm\n  - conv: { out: 4, kernel: 3 }\n${HEAD}`,
    { "3": "2" },
  ],
  [
    "through dropout (the identity at inference): folded",
    `  - conv: { out: 8, kernel: 3 }\n  - batchnorm\n  - dropout: { p: 0.1 }\n  - conv: { out: 4, kernel: 3, stride: 2, dilation: 2 }\n${HEAD}`,
    { "3": "1" },
  ],
  [
    "a padded conv: not folded (its zeros would need the shift)",
    `  - conv: { out: 8, kernel: 3 }\n  - batchnorm\n  - conv: { out: 4, kernel: 3, padding: 1 }\n${HEAD}`,
    {},
  ],
  [
    "a grouped conv: not folded",
    `  - conv: { out: 8, kernel: 3 }\n  - batchnorm\n  - conv: { out: 8, kernel: 3, groups: 8 }\n${HEAD}`,
    {},
  ],
  [
    "a pool in between: not folded",
    `  - conv: { out: 8, kernel: 3 }\n  - batchnorm\n  - maxpool: { kernel: 2 }\n  - conv: { out: 4, kernel: 3 }\n${HEAD}`,
    {},
  ],
  [
    "read by a residual add too: not folded",
    `  - c1:\n      - conv: { out: 8, kernel: 3 }\n      - batchnorm\n  - r:\n      add: c1\n      layers:\n        - conv: { out: 8, kernel: 1 }\n${HEAD}`,
    {},
  ],
];

describe("fold-batchnorm-into-conv", () => {
  for (const [name, layers, expected] of FOLDS) {
    test(name, () => {
      const folds = Object.fromEntries(
        [...foldBatchNorms(spec(layers))].map(([conv, bn]) => [conv, bn.name]),
      );
      assert.deepEqual(folds, expected);
    });
  }
});

// [conv, expected rule]: shifted-sum only where Cout·kk < Cin, stride and dilation 1, no groups.
const RULES: [string, string, string][] = [
  ["32 → 2, 3x3", "conv: { out: 2, kernel: 3 }", "shifted-sum"],
  ["32 → 2, 3x3 padded", "conv: { out: 2, kernel: 3, padding: 1 }", "shifted-sum"],
  ["32 → 4, 3x3: 36 > 32", "conv: { out: 4, kernel: 3 }", "conv"],
  ["32 → 2, 3x3 stride 2", "conv: { out: 2, kernel: 3, stride: 2 }", "conv"],
  ["32 → 32, 1x1", "conv: { out: 32, kernel: 1 }", "conv"],
];

describe("conv rules", () => {
  for (const [name, conv, rule] of RULES) {
    test(`${name}: ${rule}`, () => {
      const ir = spec(`  - conv: { out: 32, kernel: 3 }\n  - ${conv}\n${HEAD}`);
      const node = ir.nodes[1] as NodeIR<"conv">;
      assert.equal(pickConvRule(node).name, rule);
    });
  }
  test("every rule is exercised by the table", () => {
    const used = new Set(RULES.map(([, , r]) => r));
    assert.deepEqual(
      CONV_RULES.map((r) => r.name).filter((r) => !used.has(r)),
      [],
    );
  });
});

// Specs where the rewrites apply, alone and together; the outputs must match the plain graph's.
const NUMERIC: [string, string][] = [
  [
    "shifted-sum with bias and padding",
    `  - conv: { out: 32, kernel: 3 }\n  - relu\n  - conv: { out: 3, kernel: 3, padding: [1, 0] }\n${HEAD}`,
  ],
  [
    "shifted-sum without bias, after a folded batch norm",
    `  - conv: { out: 40, kernel: 3 }\n  - relu\n  - batchnorm\n  - conv: { out: 4, kernel: 3, bias: false }\n${HEAD}`,
  ],
  [
    "folded into a strided, dilated plain conv, through dropout",
    `  - conv: { out: 6, kernel: 3 }\n  - relu\n  - batchnorm\n  - dropout: { p: 0.2 }\n  - conv: { out: 8, kernel: 3, stride: 2, dilation: 2 }\n${HEAD}`,
  ],
];

async function run(ir: ModelIR, rewrites: boolean, x: Float32Array, n: number) {
  const bytes = onnxBackend.emit(ir, { weights: testWeights(ir), rewrites }).files[0]?.contents;
  assert.ok(bytes instanceof Uint8Array);
  const session = await ort.InferenceSession.create(bytes);
  const out = await session.run({ input: new ort.Tensor("float32", x, [n, 1, 28, 28]) });
  await session.release();
  return { data: out.log_probs?.data as Float32Array, nodes: bytes.length };
}

describe("rewritten graphs compute what the plain graph computes", () => {
  for (const [name, layers] of NUMERIC) {
    test(name, async () => {
      const ir = spec(layers);
      const rng = new Rng(9);
      const n = 3;
      const x = Float32Array.from({ length: n * 784 }, () => rng.uniform(-1, 2));
      const plain = await run(ir, false, x, n);
      const rewritten = await run(ir, true, x, n);
      assert.notEqual(plain.nodes, rewritten.nodes, "the rewrite changed the graph");
      let worst = 0;
      plain.data.forEach((v, i) => {
        worst = Math.max(worst, Math.abs(v - (rewritten.data[i] ?? Number.NaN)));
      });
      assert.ok(worst < 1e-4, `max |plain - rewritten| ${worst}`);
    });
  }
});
