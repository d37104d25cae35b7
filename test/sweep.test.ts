// The sweep file and the decisions a sweep makes, table-driven: parsing and its located errors,
// spec paths, candidate specs, the grid, random and TPE samplers, constraints and early stopping.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { parse } from "yaml";
import { checkSpec, formatDiagnostic } from "../src/compiler/index.js";
import { packagePath } from "../src/paths.js";
import { parseSweep, SWEEP_SCHEMA, type Sweep } from "../src/sweep/file.js";
import {
  candidateText,
  type Dim,
  gridPoint,
  gridSize,
  randomPoint,
  resolveSpecPath,
} from "../src/sweep/space.js";
import { parzen, parzenDensity, tpePoint } from "../src/sweep/tpe.js";
import {
  checkCandidate,
  leaderboardPage,
  propose,
  runMetric,
  type SweepState,
  stopsAt,
} from "../src/sweep/trials.js";
import { Rng } from "../src/util/rng.js";

const sep4kFile = packagePath("specs", "sep4k.yaml");
const sep4k = readFileSync(sep4kFile, "utf8");
const sep4kValue = parse(sep4k) as unknown;

function sweepOf(body: string) {
  return parseSweep(`base: sep4k.yaml\n${body}`, "s/x.yaml", "x", (path) =>
    path === "s/sep4k.yaml" ? { text: sep4k } : { problem: "no such file" },
  );
}
const errorsOf = (body: string) => sweepOf(body).diagnostics.map(formatDiagnostic);
const mustParse = (body: string): Sweep => {
  const { sweep, diagnostics } = sweepOf(body);
  assert.ok(sweep, diagnostics.map(formatDiagnostic).join("\n"));
  return sweep;
};

test("spec paths: blocks by name, layers by kind or index, a combined block's layers", () => {
  const cases: [string, (string | number)[] | RegExp][] = [
    ["layers.conv1.conv.out", ["layers", 0, "conv1", 0, "conv", "out"]],
    ["layers.conv2.1.out", ["layers", 1, "conv2", 1, "conv", "out"]],
    ["layers.res1.1.out", ["layers", 2, "res1", "layers", 1, "conv", "out"]],
    ["layers.res1.add", ["layers", 2, "res1", "add"]],
    ["layers.head.linear.out", ["layers", 5, "head", 2, "linear", "out"]],
    ["train.optimizer.lr", ["train", "optimizer", "lr"]],
    // The last segment may be a field the base leaves out.
    ["train.optimizer.weight_decay", ["train", "optimizer", "weight_decay"]],
    ["layers.conv2.conv.out", /has 2 layers `conv`: name one by its index \(`layers.1.conv2.0`\)/],
    ["layers.conv9.conv.out", /no block or layer `conv9` in `layers`/],
    ["layers.conv1.batchnorm.eps", /written bare/],
    ["train.nothing.lr", /`nothing` is not in `train`/],
    ["layers.conv1", /is a list: name one of its values/],
    ["layers.conv1.7.out", /has 3 item\(s\), no item 7/],
  ];
  for (const [path, want] of cases) {
    const got = resolveSpecPath(sep4kValue, path);
    if (want instanceof RegExp) assert.match(String(got), want, path);
    else assert.deepEqual(got, want, path);
  }
});

test("sweep files: what parses, and each mistake located as file:line:col", () => {
  const ok = mustParse(
    "space:\n  layers.conv1.conv.out: [8, 12]\n  train.optimizer.lr: { loguniform: [0.01, 0.2] }\n  train.batch_size: { int: [32, 64] }\nseeds: [1, 2]\ntrials: 5\nsampler: { type: tpe, seed: 3 }\nearly_stop: { type: asha, rungs: [2, 4] }\n",
  );
  assert.deepEqual(
    ok.space.map((d) => d.kind),
    ["choice", "loguniform", "int"],
  );
  assert.equal(ok.trials, 5);
  assert.deepEqual(ok.seeds, [1, 2]);
  assert.equal(ok.earlyStop?.eta, 3);
  assert.equal(ok.val, 10000);
  const cases: [string, string][] = [
    ["space: { train.optimizer.lr: { normal: [1, 2] } }", "s/x.yaml:2:32: error E0103"],
    ["space: { train.optimizer.lr: {} }", "s/x.yaml:2:30: error E0106: space.train.optimizer.lr"],
    ["space: { train.optimizer.lr: { uniform: [0.2, 0.1] } }", "E1002: space.train.optimizer.lr"],
    ["space: { train.optimizer.lr: { loguniform: [0, 0.1] } }", "error E0105"],
    ["space: { train.epochs: { int: [1.5, 3] } }", "error E0104"],
    ["space: { layers.conv9.out: [1] }", "s/x.yaml:2:10: error E1001: space.layers.conv9.out"],
    ["space: { train.optimizer.lr: { uniform: [0.1, 0.2] } }\nsampler: { type: grid }", "E1003"],
    ["space: { train.epochs: [1] }\nsampler: { type: bayes }", "error E0110"],
    ["space: { train.epochs: [1] }\nearly_stop: { type: asha, rungs: [4, 2] }", "E1002"],
    [
      "space: { train.epochs: [1] }\ntrails: 3",
      "s/x.yaml:3:1: error E0103: sweep file: unknown field `trails`; did you mean `trials`?",
    ],
  ];
  for (const [body, want] of cases) {
    const errors = errorsOf(body);
    assert.ok(
      errors.some((e) => e.includes(want)),
      `${body}\n  wanted ${want}\n  got ${errors.join("\n")}`,
    );
  }
  const missing = parseSweep("base: gone.yaml\nspace: { a: [1] }", "x.yaml", "x", () => ({
    problem: "no such file",
  }));
  assert.match(
    formatDiagnostic(missing.diagnostics[0] ?? ({} as never)),
    /x.yaml:1:7: error E1004/,
  );
});

test("candidate specs keep the base's layout, with each value and the sweep's budget set", () => {
  const sweep = mustParse("space: { layers.conv4.1.out: [16, 48], train.optimizer.lr: [0.02] }");
  const text = candidateText(
    sweep.baseText,
    sweep.space,
    { "layers.conv4.1.out": 48, "train.optimizer.lr": 0.02 },
    3000,
  );
  assert.match(text, /- conv: \{ out: 48, kernel: 1, bias: false \}/);
  assert.match(text, /optimizer: \{ type: sgd, lr: 0.02, momentum: 0.9 \}/);
  assert.match(text, /^budget: 3000$/m);
  assert.match(text, /# sep4k: the attempt/); // comments kept
});

test("candidate specs written in another folder name the base's data and teachers from there", () => {
  const base = [
    "input: { channels: 1, height: 28, width: 28 }",
    "classes: 10",
    "layers: [ { conv: { out: 10, kernel: 28 } }, flatten, log_softmax ]",
    "train: { distill: { teachers: [t/a.onnx, /abs/b.onnx] } }",
    "data: { dataset: mnist, path: ../data/mnist }   # kept",
    "",
  ].join("\n");
  const baseFile = join("specs", "base.yaml");
  const candidate = join("sweeps", "s", "trials", "t001", "spec.yaml");
  const text = candidateText(base, [], {}, undefined, { base: baseFile, candidate });
  assert.match(text, /teachers: \[ \.\.\/\.\.\/\.\.\/\.\.\/specs\/t\/a\.onnx, \/abs\/b\.onnx \]/);
  assert.match(text, /path: \.\.\/\.\.\/\.\.\/\.\.\/data\/mnist \} # kept/);
  // The compiler resolves both specs' paths to the same files.
  const resolved = (t: string, file: string) => {
    const ir = checkSpec(t, file).ir;
    assert.ok(ir, t);
    return [ir.data.path, ...(ir.train.distill?.teachers ?? [])].map((p) => resolve(p ?? ""));
  };
  assert.deepEqual(resolved(text, candidate), resolved(base, baseFile));
  assert.deepEqual(resolved(base, baseFile), [
    resolve("data/mnist"),
    resolve("specs/t/a.onnx"),
    "/abs/b.onnx",
  ]);
  // No candidate folder (the Optuna study's base): absolute.
  const absolute = candidateText(base, [], {}, undefined, { base: baseFile });
  assert.match(absolute, new RegExp(`path: ${resolve("data/mnist")} \\}`));
  assert.deepEqual(resolved(absolute, "elsewhere/x.yaml"), resolved(base, baseFile));
});

const space: Dim[] = [
  { path: "a", at: ["a"], kind: "choice", values: ["x", "y"] },
  { path: "b", at: ["b"], kind: "int", low: 1, high: 3 },
];

test("the grid: the first dimension slowest, every point once", () => {
  const values = (d: Dim) =>
    d.kind === "choice" ? d.values : d.kind === "int" ? [1, 2, 3] : ([] as never);
  assert.equal(gridSize(space), 6);
  const points = Array.from({ length: 6 }, (_, i) => gridPoint(space, i, values));
  assert.deepEqual(points.map((p) => `${p.a}${p.b}`).join(" "), "x1 x2 x3 y1 y2 y3");
});

test("random points stay in their ranges; log-uniform spreads over decades", () => {
  const dims: Dim[] = [
    { path: "lr", at: [], kind: "loguniform", low: 0.001, high: 0.1 },
    { path: "n", at: [], kind: "int", low: 2, high: 4 },
    { path: "p", at: [], kind: "uniform", low: -1, high: 1 },
  ];
  const rng = new Rng(7);
  const pts = Array.from({ length: 2000 }, () => randomPoint(dims, rng));
  const lrs = pts.map((p) => p.lr as number);
  assert.ok(lrs.every((x) => x >= 0.001 && x < 0.1));
  // Half the draws below the geometric middle 0.01 (a uniform draw would put 9% there).
  const below = lrs.filter((x) => x < 0.01).length / lrs.length;
  assert.ok(below > 0.45 && below < 0.55, `${below}`);
  assert.deepEqual([...new Set(pts.map((p) => p.n))].sort(), [2, 3, 4]);
  assert.ok(pts.every((p) => (p.p as number) >= -1 && (p.p as number) < 1));
});

test("TPE: Parzen densities integrate to 1, and proposals move towards the good region", () => {
  const p = parzen([0.2, 0.25, 0.8], 0, 1);
  let integral = 0;
  for (let i = 0; i < 10000; i++) integral += parzenDensity(p, (i + 0.5) / 10000) / 10000;
  assert.ok(Math.abs(integral - 1) < 1e-3, `${integral}`);
  // Each dimension on its own (TPE models them independently): x best at 0.3, choice "b" best.
  const x: Dim[] = [{ path: "x", at: [], kind: "uniform", low: 0, high: 1 }];
  const c: Dim[] = [{ path: "c", at: [], kind: "choice", values: ["a", "b", "c"] }];
  const share = (
    dims: Dim[],
    f: (p: Record<string, unknown>) => number,
    hit: (p: Record<string, unknown>) => boolean,
  ) => {
    const rng = new Rng(1);
    const history = Array.from({ length: 20 }, () => {
      const params = randomPoint(dims, rng);
      return { params, value: f(params) };
    });
    return Array.from({ length: 40 }, () => tpePoint(dims, history, rng)).filter(hit).length;
  };
  // Random draws would put 30% within 0.15 of 0.3, and a third on "b".
  const near = share(
    x,
    (p) => -Math.abs((p.x as number) - 0.3),
    (p) => Math.abs((p.x as number) - 0.3) < 0.15,
  );
  assert.ok(near >= 28, `${near} of 40 near 0.3`);
  const bs = share(
    c,
    (p) => (p.c === "b" ? 1 : 0),
    (p) => p.c === "b",
  );
  assert.ok(bs >= 28, `${bs} of 40 on b`);
});

test("proposals: the same after a resume (seeded by index), grid used up, TPE after its startup", () => {
  const sweep = mustParse(
    "space: { train.optimizer.lr: { loguniform: [0.01, 0.2] } }\nsampler: { type: random, seed: 4 }",
  );
  const state: SweepState = { version: 1, sweep: "", fingerprint: "", proposals: 3, trials: [] };
  assert.deepEqual(propose(sweep, state), propose(sweep, { ...state }));
  assert.notDeepEqual(propose(sweep, state), propose(sweep, { ...state, proposals: 4 }));
  const grid = mustParse("space: { train.epochs: [1, 2] }\nsampler: { type: grid }");
  assert.equal(grid.trials, 2);
  assert.deepEqual(propose(grid, { ...state, proposals: 1 }), { "train.epochs": 2 });
  assert.equal(propose(grid, { ...state, proposals: 2 }), undefined);
});

test("constraints: the compiler's verdict, the budget and max_macs", () => {
  const sweep = mustParse(
    "space: { layers.conv4.1.out: [16, 48], layers.conv1.conv.out: [8, 16] }\nconstraints: { budget: 4000, max_macs: 700000 }",
  );
  const verdict = (out4: number, out1: number) => {
    const params = { "layers.conv4.1.out": out4, "layers.conv1.conv.out": out1 };
    const text = candidateText(sweep.baseText, sweep.space, params, 4000);
    const v = checkCandidate(sweep, text, "c.yaml");
    return [v.ok, v.trainable, v.diagnostics.map((d) => d.code).join(",")];
  };
  assert.deepEqual(verdict(16, 16), [true, 3642, ""]);
  assert.deepEqual(verdict(48, 16), [false, 5050, "E0301"]);
  // 8 channels into conv2's 16 groups: a shape error, never trained.
  assert.deepEqual(verdict(16, 8), [false, undefined, "E0208"]);
  const macs = mustParse("space: { layers.conv4.1.out: [16] }\nconstraints: { max_macs: 100000 }");
  const text = candidateText(macs.baseText, macs.space, { "layers.conv4.1.out": 16 });
  assert.deepEqual(
    checkCandidate(macs, text, "c.yaml").diagnostics.map((d) => d.code),
    ["E1005"],
  );
});

test("early stopping: ASHA keeps the best 1/eta at a rung, median the ones not below it", () => {
  const asha = { type: "asha" as const, rungs: [1], eta: 3, minRuns: 3 };
  const median = { type: "median" as const, rungs: [2], eta: 3, minRuns: 3 };
  // [rule, the run's accuracies, the others', rung, stops]
  const cases: [typeof asha | typeof median, number[], number[][], number, boolean][] = [
    [asha, [0.5], [], 1, false], // alone: the best
    [asha, [0.5], [[0.6]], 1, true], // two runs: only the best goes on
    [asha, [0.6], [[0.5], [0.7]], 1, true], // three: one goes on
    [asha, [0.7], [[0.5], [0.6]], 1, false],
    [asha, [0.6], [[0.5], [0.7], [0.4], [0.3], [0.2]], 1, false], // six: two go on
    [median, [0.5, 0.5], [[0.9, 0.9]], 2, false], // too few others
    [
      median,
      [0.5, 0.5],
      [
        [0.9, 0.9],
        [0.1, 0.1],
        [0.6, 0.6],
      ],
      2,
      true,
    ],
    [
      median,
      [0.5, 0.7],
      [
        [0.9, 0.9],
        [0.1, 0.1],
        [0.6, 0.6],
      ],
      2,
      false,
    ], // 0.7 at epoch 2
    [median, [0.5, 0.5], [[0.9], [0.1, 0.1], [0.6, 0.6]], 2, false], // one has not reached it
  ];
  for (const [rule, run, others, rung, stops] of cases) {
    assert.equal(
      stopsAt(rule, 1, run, others, rung),
      stops,
      `${rule.type} ${run} ${JSON.stringify(others)}`,
    );
  }
  assert.equal(runMetric([0.1, 0.2, 0.3, 0.4], 3), 0.3);
  assert.equal(runMetric([0.4], 3), 0.4);
});

test("the leaderboard ranks finished trials and lists the rejected with their diagnostic", () => {
  const sweep = mustParse("space: { layers.conv4.1.out: [16, 48] }\nsampler: { type: grid }");
  const run = (metric: number) => ({
    seed: 1,
    out: "o",
    command: [],
    status: "done" as const,
    valAccuracy: [metric],
    metric,
    starts: 1,
  });
  const state: SweepState = {
    version: 1,
    sweep: "s/x.yaml",
    fingerprint: "",
    proposals: 3,
    trials: [
      {
        id: "t001",
        params: { "layers.conv4.1.out": 16 },
        status: "done",
        spec: "trials/t001/spec.yaml",
        trainable: 3642,
        macs: 1,
        runs: [run(0.98)],
        objective: 0.98,
      },
      {
        id: "t002",
        params: { "layers.conv4.1.out": 48 },
        status: "rejected",
        spec: "trials/t002/spec.yaml",
        rejected: ["c.yaml:3:1: error E0301: over\nc.yaml:1:1: note: here"],
        runs: [],
      },
      {
        id: "t003",
        params: { "layers.conv4.1.out": 16 },
        status: "done",
        spec: "trials/t003/spec.yaml",
        trainable: 3642,
        macs: 1,
        runs: [run(0.99)],
        objective: 0.99,
      },
    ],
  };
  const page = leaderboardPage(sweep, state);
  assert.match(
    page,
    /\| 1 \| \[t003\]\(trials\/t003\/spec.yaml\) \| 16 \| 3,642 \| 1 \| 99.00 \| 99.00 \|/,
  );
  assert.match(page, /\| 2 \| \[t001\]/);
  assert.match(page, /## Rejected by the compiler \(1, never trained\)/);
  assert.match(page, /t002.*E0301: over \/ c.yaml:1:1: note: here/);
});

test("schema/sweep.schema.json is SWEEP_SCHEMA (editors validate sweep files with it)", () => {
  const file = packagePath("schema", "sweep.schema.json");
  const text = `${JSON.stringify({ $schema: "http://json-schema.org/draft-07/schema#", title: "mnistc sweep file", ...SWEEP_SCHEMA }, null, 2)}\n`;
  if (process.env.UPDATE_GOLDEN === "1" && process.env.CI !== "true") writeFileSync(file, text);
  assert.equal(
    readFileSync(file, "utf8"),
    text,
    "run the tests with UPDATE_GOLDEN=1 to regenerate it",
  );
});
