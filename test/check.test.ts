// `mnistc check`: every diagnostic has its own fixture under test/fixtures/specs/bad/, its expected
// codes and first location here (checkable by opening the fixture), and its full text as a golden
// file under test/golden/check/.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import type { Backend } from "../src/backends/backend.js";
import { onnxBackend } from "../src/backends/onnx/index.js";
import { pytorchBackend } from "../src/backends/pytorch/index.js";
import { tfjsBackend } from "../src/backends/tfjs/index.js";
import { checkFile } from "../src/cli/check.js";
import { BACKEND_CODES } from "../src/compiler/codes.js";
import { CODES, compileSpec, formatDiagnostic } from "../src/compiler/index.js";
import { torchInitWeights } from "../src/compiler/init.js";
import { OP_KINDS, type WeightMap } from "../src/compiler/ir.js";
import { OPS } from "../src/compiler/ops.js";
import { packagePath, packageRoot } from "../src/paths.js";
import { expectGolden } from "./helpers/golden.js";

const bad = (name: string) => `test/fixtures/specs/bad/${name}.yaml`;

// [fixture, codes in output order, line:col of the first diagnostic]
const CASES: [string, string[], string][] = [
  ["syntax", ["E0001", "E0001"], "2:1"],
  ["empty", ["E0002"], "1:1"],
  ["too-deep", ["E0003"], "4:72"],
  ["not-a-map", ["E0104"], "1:1"],
  ["unknown-layer", ["E0101", "E0101", "E0101", "E0101"], "5:5"],
  ["missing-field", ["E0102", "E0102", "E0102"], "1:8"],
  ["unknown-field", ["E0103", "E0103", "E0103"], "3:1"],
  ["wrong-type", ["E0104", "E0104", "E0104", "E0104", "E0104"], "4:18"],
  ["non-positive", ["E0105", "E0105", "E0105", "E0105", "E0105", "E0105"], "1:31"],
  ["malformed-layer", ["E0106", "E0106", "E0106", "E0106"], "4:5"],
  ["duplicate-block", ["E0107"], "6:5"],
  ["nested-block", ["E0108"], "6:9"],
  ["block-name", ["E0109", "E0109"], "4:5"],
  ["bad-value", ["E0110", "E0110"], "9:22"],
  ["dataset", ["E0111", "E0111", "E0111", "E0111"], "1:8"],
  ["add-unknown-block", ["E0112", "E0112", "E0112"], "7:12"],
  ["combine-unknown-block", ["E0112", "E0112"], "7:12"],
  ["block-ops", ["E0106", "E0110"], "7:7"],
  ["residual-form", ["E0102", "E0103", "E0110", "E0104", "E0101"], "6:11"],
  ["distill", ["E0104", "E0105", "E0105"], "8:24"],
  ["name-path", ["E0113"], "2:1"],
  ["kernel-too-large", ["E0201"], "7:5"],
  ["size-collapses", ["E0201"], "6:5"],
  ["linear-without-flatten", ["E0203"], "5:5"],
  ["image-op-on-vector", ["E0204"], "5:5"],
  ["head-shape", ["E0205"], "6:5"],
  ["head-classes", ["E0205"], "6:5"],
  ["no-log-softmax", ["E0206"], "6:5"],
  ["add-shape-mismatch", ["E0207"], "7:12"],
  ["mul-shape-mismatch", ["E0211"], "7:12"],
  ["concat-shape-mismatch", ["E0212"], "7:15"],
  ["groups-divide", ["E0208"], "7:9"],
  ["same-stride", ["E0209"], "4:5"],
  ["pool-padding", ["E0210"], "5:5"],
  ["over-budget", ["E0301"], "6:5"],
  ["too-large", ["E0302"], "6:5"],
  // Every diagnostic in one pass: five errors of different kinds in different layers.
  ["five-errors", ["E0103", "E0207", "E0301", "E0201", "E0105"], "6:40"],
  ["missing-input", ["E0102", "E0102", "E0201"], "2:1"],
  // Warnings only: the spec compiles (ok), but is larger than the stated sizes.
  ["large-model", ["W0303", "W0304", "W0305"], "9:5"],
  ["onnx-too-large", ["E0303"], "3:8"],
];

for (const [name, codes, at] of CASES) {
  test(`check ${name}: ${codes.join(", ")} at ${at}`, async () => {
    process.chdir(packageRoot);
    const result = await checkFile(bad(name));
    assert.equal(result.ok, !codes.some((c) => c.startsWith("E")));
    assert.deepEqual(
      result.diagnostics.map((d) => d.code),
      codes,
    );
    const first = result.diagnostics[0];
    assert.equal(`${first?.span.line}:${first?.span.col}`, at);
    expectGolden(`check/${name}.txt`, `${result.diagnostics.map(formatDiagnostic).join("\n")}\n`);
  });
}

test("the README lists every compiler code, every op kind and the block ops' spelling", () => {
  const readme = readFileSync(packagePath("README.md"), "utf8");
  const codes = readme.slice(readme.indexOf("Codes: E0000"), readme.indexOf("## Errors"));
  assert.deepEqual(
    Object.keys(CODES).filter((c) => !codes.includes(c)),
    [],
    "codes missing from the README's list",
  );
  const table = readme.slice(readme.indexOf("| layer | attributes"), readme.indexOf("Each means"));
  const blocks = readme.slice(readme.indexOf("**Combined blocks.**"), readme.indexOf("`train`"));
  assert.deepEqual(
    OP_KINDS.filter((k) =>
      OPS[k].spelling === "layer" ? !table.includes(`\`${k}\``) : !blocks.includes(`${k}:`),
    ),
    [],
    "op kinds missing from the README's layer table or its combined blocks",
  );
});

test("every compiler code has a fixture (E0000 is the CLI's unreadable file)", () => {
  const tested = new Set(CASES.flatMap(([, codes]) => codes));
  const untested = Object.keys(CODES).filter((c) => c !== "E0000" && !tested.has(c));
  assert.deepEqual(untested, []);
});

test("every backend code is what its backend emits, and no code is listed twice", () => {
  const path = packagePath("specs", "step1.yaml");
  const { ir } = compileSpec(readFileSync(path, "utf8"), path);
  assert.ok(ir);
  const missing = torchInitWeights(ir);
  missing.delete("fc.1.bias");
  const wrong = torchInitWeights(ir);
  wrong.set("fc.1.bias", { shape: [3], data: new Float32Array(3) });
  const codes = (backend: Backend, weights?: WeightMap, spec = ir) =>
    backend.emit(spec, weights ? { weights } : {}).diagnostics.map((d) => d.code);
  const trainBlock = compileSpec(
    readFileSync(path, "utf8").replace(/^ {2}- conv1:/m, "  - train:"),
    path,
  ).ir;
  assert.ok(trainBlock);
  const distilling = compileSpec(
    `${readFileSync(path, "utf8")}train:\n  distill: { teachers: [t.onnx] }\n`,
    path,
  ).ir;
  assert.ok(distilling?.train.distill);
  assert.deepEqual(
    [
      ...codes(onnxBackend, missing),
      ...codes(onnxBackend, wrong),
      ...codes(tfjsBackend, torchInitWeights(ir)),
      ...codes(pytorchBackend, undefined, trainBlock),
      ...codes(pytorchBackend, torchInitWeights(ir)),
      ...codes(pytorchBackend, undefined, distilling),
    ],
    Object.keys(BACKEND_CODES),
  );
  const compilerCodes = new Set(Object.keys(CODES));
  assert.deepEqual(
    Object.keys(BACKEND_CODES).filter((c) => compilerCodes.has(c)),
    [],
  );
});

test("notes point where the cause sits", async () => {
  process.chdir(packageRoot);
  const notes = async (name: string) =>
    (await checkFile(bad(name))).diagnostics.flatMap((d) =>
      d.notes.map((n) => `${n.span?.line}:${n.span?.col} ${n.message}`),
    );
  assert.deepEqual(await notes("kernel-too-large"), [
    "6:9 the 13x13 input comes from layer block1.1 (maxpool)",
    "7:5 shapes after it are not checked: its output shape is unknown",
  ]);
  assert.deepEqual(await notes("duplicate-block"), [
    "4:5 block `conv1` is first defined here",
    "6:5 shapes after block conv1 are not checked: its output shape is unknown",
  ]);
  // What was skipped, and why: a broken layer stops the shapes after it, not those before.
  assert.deepEqual(await notes("five-errors"), [
    "7:76 the 16x26x26 input comes from layer res1.1 (relu)",
    "6:55 the 8x26x26 input comes from layer conv1.1 (relu)",
    "7:18 shapes after it are checked with its output taken as 16x26x26",
    "4:1 the budget of 1,000 is set here",
    "8:12 the 13x13 input comes from layer pool.0 (maxpool)",
    "9:13 shapes after it are not checked: its output shape is unknown",
  ]);
  assert.deepEqual(await notes("over-budget"), ["3:1 the budget of 1,000 is set here"]);
  assert.deepEqual(await notes("head-shape"), ["2:1 classes: 10 is set here"]);
});

function cli(...args: string[]) {
  const run = spawnSync(process.execPath, ["dist/src/cli.js", ...args], {
    cwd: packageRoot,
    encoding: "utf8",
  });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

test("mnistc check: all errors of all files, an unreadable file named, exit 1, no stack trace", () => {
  const run = cli(
    "check",
    "specs/step4.yaml",
    bad("unknown-layer"),
    "test/fixtures/no-such-spec.yaml",
    bad("over-budget"),
    "specs",
  );
  assert.equal(run.code, 1);
  assert.equal(run.stdout, "specs/step4.yaml: ok (16,478 trainable parameters)\n");
  assert.doesNotMatch(run.stderr, /\n\s+at |Error:/);
  expectGolden("check/cli-several.txt", run.stderr);
});

test("mnistc check on the shipped specs: exit 0", () => {
  const run = cli(
    "check",
    "specs/step1.yaml",
    "specs/step2.yaml",
    "specs/step3.yaml",
    "specs/step4.yaml",
  );
  assert.equal(run.stderr, "");
  assert.equal(run.code, 0);
  assert.equal(run.stdout.split("\n").filter((l) => l.endsWith("trainable parameters)")).length, 4);
});

test("mnistc check --json: one result per file", () => {
  const run = cli("check", "--json", "specs/step4.yaml", bad("nested-block"));
  assert.equal(run.code, 1);
  const results = JSON.parse(run.stdout) as {
    file: string;
    ok: boolean;
    trainable: number | null;
    diagnostics: { code: string; span: { line: number } }[];
  }[];
  assert.deepEqual(
    results.map((r) => [
      r.file,
      r.ok,
      r.trainable,
      r.diagnostics.map((d) => `${d.code}@${d.span.line}`),
    ]),
    [
      ["specs/step4.yaml", true, 16478, []],
      [bad("nested-block"), false, null, ["E0108@6"]],
    ],
  );
});
