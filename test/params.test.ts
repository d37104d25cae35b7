// `mnistc params`: the table and the JSON of every shipped spec as golden files, the budget verdict
// (spec budget, --max wins, over budget exits 1) and the default spec list.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { TORCH_OPS, type TorchCode } from "../src/backends/pytorch/ops.js";
import { defaultSpecs, paramsJson, renderTable } from "../src/cli/params.js";
import { budgetVerdict, compileSpec, verdictLine } from "../src/compiler/index.js";
import type { AnyNodeIR, ModelIR } from "../src/compiler/ir.js";
import { isTorchModule } from "../src/compiler/summary.js";
import { packagePath, packageRoot } from "../src/paths.js";
import { expectGolden } from "./helpers/golden.js";

const SHIPPED = [
  "distill7k",
  "fashion16k",
  "mobile8k",
  "se8k",
  "sep4k",
  "sep7k",
  "sepres",
  "step1",
  "step2",
  "step3",
  "step4",
];

function load(name: string): ModelIR {
  const file = name.includes("/") ? name : `specs/${name}.yaml`;
  const { ir } = compileSpec(readFileSync(packagePath(file), "utf8"), file);
  assert.ok(ir, file);
  return ir;
}

function cli(args: string[], cwd = packageRoot) {
  const run = spawnSync(process.execPath, [packagePath("dist", "src", "cli.js"), ...args], {
    cwd,
    encoding: "utf8",
  });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

for (const name of SHIPPED) {
  test(`params table and JSON of specs/${name}.yaml`, () => {
    const ir = load(name);
    const verdict = budgetVerdict(ir);
    expectGolden(`params/${name}.txt`, renderTable(ir, verdict));
    expectGolden(`params/${name}.json`, `${JSON.stringify(paramsJson(ir, verdict), null, 2)}\n`);
  });
}

test("step4: 16,478 within the 16,500 budget", () => {
  const run = cli(["params", "specs/step4.yaml"]);
  assert.equal(run.code, 0);
  assert.equal(run.stderr, "");
  assert.match(run.stdout, /^Trainable params: 16,478$/m);
  assert.match(run.stdout, /^Buffer values: 384 /m);
  assert.match(run.stdout, /^budget: 16,478 \/ 16,500 trainable parameters — OK \(22 to spare\)$/m);
  assert.match(
    run.stdout,
    /^conv1\.0 +conv 3x3 +\[-1, 128, 26, 26\] +1,280 +7\.77% +778,752 +3\/1$/m,
  );
});

test("verdicts: OK, over, --max wins over the spec, no budget", () => {
  const ir = load("step4");
  assert.equal(
    verdictLine(budgetVerdict(ir)),
    "budget: 16,478 / 16,500 trainable parameters — OK (22 to spare)",
  );
  assert.equal(
    verdictLine(budgetVerdict(ir, 16000)),
    "budget (--max): 16,478 / 16,000 trainable parameters — OVER by 478",
  );
  assert.deepEqual(budgetVerdict(ir, 16478), {
    limit: 16478,
    source: "--max",
    trainable: 16478,
    ok: true,
    spare: 0,
  });
  const none = { ...ir, budget: undefined };
  assert.deepEqual(budgetVerdict(none), {
    limit: undefined,
    source: undefined,
    trainable: 16478,
    ok: true,
    spare: undefined,
  });
});

test("--max under the count: the table still prints, E0301 on stderr, exit 1", () => {
  const run = cli(["params", "specs/step4.yaml", "--max", "16000"]);
  assert.equal(run.code, 1);
  assert.match(run.stdout, /OVER by 478/);
  assert.equal(
    run.stderr,
    "specs/step4.yaml:30:9: error E0301: 16,478 trainable parameters, over the budget of 16,000 by 478; the largest is layer conv4.0 (conv) with 4,640\n" +
      "specs/step4.yaml:30:9: note: the budget of 16,000 comes from --max\n",
  );
});

test("--json: one object per spec, one per line (JSON Lines), in argument order", () => {
  const run = cli(["params", "--json", "specs/step4.yaml", "specs/step1.yaml"]);
  assert.equal(run.code, 0);
  const lines = run.stdout.trimEnd().split("\n");
  assert.equal(lines.length, 2);
  const [step4, step1] = lines.map((l) => JSON.parse(l));
  assert.equal(step4.name, "step4");
  assert.deepEqual(step4.totals, {
    total: 16478,
    trainable: 16478,
    nonTrainable: 0,
    buffers: 384,
    macs: 4127744,
  });
  // torchsummary's figures at the spec's batch size (128); `npm run ref:torch` checks them.
  assert.deepEqual(
    {
      ...step4.memory,
      forwardBackwardMB: step4.memory.forwardBackwardMB.toFixed(2),
      totalMB: step4.memory.totalMB.toFixed(2),
    },
    {
      formula: "torchsummary",
      batchSize: 128,
      inputMB: (784 * 128 * 4) / 2 ** 20,
      forwardBackwardMB: "288.68",
      paramsMB: (16478 * 4) / 2 ** 20,
      totalMB: "289.13",
    },
  );
  assert.deepEqual(step4.blocks[0], {
    name: "conv1",
    block: true,
    layers: ["conv1.0", "conv1.1", "conv1.2"],
    outputShape: [128, 26, 26],
    params: 1536,
    paramPercent: (100 * 1536) / 16478,
    buffers: 256,
    macs: 778752,
    rf: { size: 3, jump: 1 },
  });
  assert.deepEqual(step4.budget, {
    limit: 16500,
    source: "spec",
    trainable: 16478,
    ok: true,
    spare: 22,
  });
  assert.deepEqual(step4.layers[0], {
    name: "conv1.0",
    type: "conv",
    block: "conv1",
    inputShape: [1, 28, 28],
    outputShape: [128, 26, 26],
    params: 1280,
    paramPercent: (100 * 1280) / 16478,
    buffers: 0,
    macs: 778752,
    rf: { size: 3, jump: 1 },
    parameters: [
      { name: "conv1.0.weight", shape: [128, 1, 3, 3], trainable: true },
      { name: "conv1.0.bias", shape: [128], trainable: true },
    ],
  });
  assert.equal(step1.name, "step1");
});

test("--depth 1: one row per block with its subtotals; --batch-size scales the estimate", () => {
  const run = cli(["params", "specs/step4.yaml", "--depth", "1", "--batch-size", "1"]);
  assert.equal(run.code, 0);
  assert.match(run.stdout, /^conv1 +3 layers +\[-1, 128, 26, 26\] +1,536 +9\.32% +778,752 +3\/1$/m);
  assert.match(run.stdout, /^3 +relu +\[-1, 16, 11, 11\] +0 +-- +0 +8\/2$/m);
  assert.doesNotMatch(run.stdout, /^conv1\.0 /m);
  assert.match(
    run.stdout,
    /^Total params: 16,478\nTrainable params: 16,478\nNon-trainable params: 0$/m,
  );
  assert.match(run.stdout, /^Input size \(MB\): 0\.00$/m);
  assert.match(run.stdout, /^Forward\/backward pass size \(MB\): 2\.26$/m);
  assert.match(run.stdout, /^Estimated Total Size \(MB\): 2\.32$/m);
  assert.match(run.stdout, /for a batch of 1 \(--batch-size\)/);
});

test("which layers torchsummary hooks is how model.py lays them out (modules, not calls)", () => {
  const every = "test/fixtures/specs/good/every-op.yaml";
  for (const ir of [...SHIPPED.map(load), load(every)]) {
    for (const node of ir.nodes) {
      const code = (TORCH_OPS[node.kind] as (n: AnyNodeIR, c: object) => TorchCode)(node, {});
      const module = node.block !== undefined ? code.module !== undefined : !code.call;
      assert.equal(isTorchModule(node), module, `${ir.name}: ${node.name}`);
    }
  }
});

test("a spec with errors: the table up to its first broken layer, then the errors, exit 1", () => {
  const run = cli(["params", "test/fixtures/specs/bad/kernel-too-large.yaml"]);
  assert.equal(run.code, 1);
  assert.match(run.stdout, /^block1\.1 +maxpool 2 +\[-1, 8, 13, 13\] /m);
  assert.match(run.stdout, /^stops before layer 1 \(conv\): the spec has errors \(below\)/m);
  assert.doesNotMatch(run.stdout, /^Total params/m);
  assert.match(run.stderr, /error E0201: layer 1 \(conv\)/);
});

test("a spec with errors: its diagnostics on stderr, the others still reported, exit 1", () => {
  const run = cli(["params", "test/fixtures/specs/bad/nested-block.yaml", "specs/step2.yaml"]);
  assert.equal(run.code, 1);
  assert.match(run.stderr, /^test\/fixtures\/specs\/bad\/nested-block\.yaml:6:9: error E0108: /);
  assert.match(run.stdout, /^step2 \(specs\/step2\.yaml\)$/m);
  const missing = cli(["params", "no/such.yaml"]);
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr, "mnistc: error: cannot read spec no/such.yaml: no such file\n");
});

test("no argument: specs/*.yaml of the current directory, else the package's", () => {
  const dir = mkdtempSync(join(tmpdir(), "mnistc-params-"));
  try {
    assert.deepEqual(
      defaultSpecs(dir),
      SHIPPED.map((s) => packagePath("specs", `${s}.yaml`)),
    );
    mkdirSync(join(dir, "specs"));
    writeFileSync(
      join(dir, "specs", "mine.yaml"),
      readFileSync(packagePath("test", "fixtures", "specs", "good", "minimal.yaml")),
    );
    assert.deepEqual(defaultSpecs(dir), [join("specs", "mine.yaml")]);
    const run = cli(["params"], dir);
    assert.equal(run.code, 0);
    assert.match(run.stdout, /^mine \(specs\/mine\.yaml\)$/m);
    assert.match(run.stdout, /budget: none set — 7,850 trainable parameters/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const all = cli(["params"]);
  assert.equal(all.code, 0);
  assert.deepEqual(
    all.stdout.split("\n").filter((l) => l.startsWith("budget:")),
    [
      "budget: 7,034 / 8,000 trainable parameters — OK (966 to spare)",
      "budget: 15,146 / 16,500 trainable parameters — OK (1,354 to spare)",
      "budget: 7,850 / 8,000 trainable parameters — OK (150 to spare)",
      "budget: 7,858 / 8,000 trainable parameters — OK (142 to spare)",
      "budget: 3,994 / 4,000 trainable parameters — OK (6 to spare)",
      "budget: 7,034 / 8,000 trainable parameters — OK (966 to spare)",
      "budget: 3,762 / 8,000 trainable parameters — OK (4,238 to spare)",
      "budget: 17,418 / 20,000 trainable parameters — OK (2,582 to spare)",
      "budget: 7,554 / 8,000 trainable parameters — OK (446 to spare)",
      "budget: 6,630 / 8,000 trainable parameters — OK (1,370 to spare)",
      "budget: 16,478 / 16,500 trainable parameters — OK (22 to spare)",
    ],
  );
});
