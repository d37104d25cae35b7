// `mnistc export`, `eval` and `inspect` end to end (the built CLI), including users' mistakes.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import * as ort from "onnxruntime-node";
import { describeModel, formatDescription } from "../src/backends/onnx/dump.js";
import { compileSpec } from "../src/compiler/index.js";
import { torchInitWeights } from "../src/compiler/init.js";
import type { ModelIR } from "../src/compiler/ir.js";
import { decodeModel } from "../src/formats/onnx-proto.js";
import { packagePath } from "../src/paths.js";
import { defaultModelFile } from "../src/runtime/inference/onnx-model.js";
import { expectGolden } from "./helpers/golden.js";
import { assertUserError, foreignModel, runCli, writeTfjsCheckpoint } from "./onnx-helpers.js";

const dir = mkdtempSync(join(tmpdir(), "mnistc-onnx-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const spec = (name: string) => packagePath("specs", `${name}.yaml`);

function compile(name: string): ModelIR {
  const { ir } = compileSpec(readFileSync(spec(name), "utf8"), spec(name));
  assert.ok(ir);
  return ir;
}

const step1 = compile("step1");
const checkpoint1 = join(dir, "ckpt-step1");
writeTfjsCheckpoint(checkpoint1, step1, torchInitWeights(step1, 5));
const exported = join(dir, "out", "step1.onnx");
const notOnnx = join(dir, "notes.onnx");
writeFileSync(notOnnx, "these are my notes, not a model\n");
const vectorModel = join(dir, "vector.onnx");
writeFileSync(vectorModel, foreignModel(["N", 784], ["N", 784]));

describe("mnistc export", () => {
  test("a checkpoint becomes an ONNX file with its weights in PyTorch layout", async () => {
    const r = runCli(["export", spec("step1"), "--weights", checkpoint1, "-o", exported]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /wrote .*step1\.onnx/);
    const model = decodeModel(readFileSync(exported), exported);
    const expected = torchInitWeights(step1, 5);
    for (const t of model.graph?.initializer ?? []) {
      const values = new Float32Array(Uint8Array.from(t.rawData ?? []).buffer);
      assert.deepEqual(values, expected.get(t.name ?? "")?.data, t.name ?? "");
    }
    assert.equal(
      Object.fromEntries(model.metadataProps.map((p) => [p.key, p.value]))["mnistc.weights"],
      "trained",
    );
    const session = await ort.InferenceSession.create(exported);
    await session.release();
  });

  test("a checkpoint of another spec: the first weight that differs, with both shapes", () => {
    const r = runCli([
      "export",
      spec("step2"),
      "--weights",
      checkpoint1,
      "-o",
      join(dir, "x.onnx"),
    ]);
    assertUserError(
      r,
      /ckpt-step1: checkpoint does not fit spec: \S+ is \[[\d,]+\] in the spec but \[[\d,]+\] in the checkpoint/,
    );
    assert.ok(!existsSync(join(dir, "x.onnx")));
  });

  test("a missing checkpoint", () => {
    assertUserError(
      runCli(["export", spec("step1"), "--weights", join(dir, "nope"), "-o", join(dir, "y.onnx")]),
      /nope/,
    );
  });
});

describe("mnistc eval", () => {
  test("--json: accuracy, loss, count, per-class, confusion, speed", () => {
    const r = runCli(["eval", exported, "--test-limit", "300", "--json"]);
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.count, 300);
    assert.ok(report.accuracy >= 0 && report.accuracy <= 1);
    assert.ok(report.loss > 0 && Number.isFinite(report.loss));
    assert.equal(report.perClass.length, 10);
    assert.equal(
      report.confusion.flat().reduce((a: number, b: number) => a + b, 0),
      300,
    );
    const correct = report.confusion.reduce(
      (s: number, row: number[], i: number) => s + (row[i] ?? 0),
      0,
    );
    assert.equal(report.accuracy, correct / 300);
    assert.ok(report.imagesPerSecond > 0);
    assert.equal(report.model.name, "step1");
  });

  test("text: a readable report with a 10x10 confusion matrix", () => {
    const r = runCli(["eval", exported, "--test-limit", "100"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^accuracy +\d+\.\d\d% \(\d+\/100\)$/m);
    assert.match(r.stdout, /^loss +\d+\.\d{4} \(mean NLL\)$/m);
    const table = r.stdout.slice(r.stdout.indexOf("true\\pred"));
    assert.equal(table.trim().split("\n").length, 11);
  });

  test("--report DIR: report.json with every mistake, a confusion heatmap, a grid of the mistakes", () => {
    const out = join(dir, "report");
    const r = runCli(["eval", exported, "--test-limit", "200", "--report", out]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^report +.*report\.json, .*confusion\.png, .*misclassified\.png$/m);
    const report = JSON.parse(readFileSync(join(out, "report.json"), "utf8"));
    const wrong =
      200 - report.confusion.reduce((s: number, row: number[], i: number) => s + (row[i] ?? 0), 0);
    assert.equal(report.misclassified.length, wrong);
    assert.ok(wrong > 0, "an untrained step1 gets some wrong");
    const confidences = report.misclassified.map((m: { confidence: number }) => m.confidence);
    assert.deepEqual(
      confidences,
      [...confidences].sort((a, b) => b - a),
      "most confident first",
    );
    for (const m of report.misclassified) {
      assert.notEqual(m.label, m.predicted);
      assert.equal(report.confusion[m.label][m.predicted] > 0, true);
    }
    for (const png of ["confusion.png", "misclassified.png"]) {
      const bytes = readFileSync(join(out, png));
      assert.deepEqual([...bytes.subarray(1, 4)], [0x50, 0x4e, 0x47], `${png} is a PNG`);
      assert.ok(bytes.length > 5000, `${png}: ${bytes.length} bytes`);
    }
    // A file in the way of the folder is a one-line error.
    assertUserError(
      runCli(["eval", exported, "--test-limit", "10", "--report", notOnnx]),
      /notes\.onnx: cannot create the folder/,
    );
  });

  test("errors: not ONNX, not an image model, no such data folder", () => {
    assertUserError(runCli(["eval", notOnnx]), /notes\.onnx is not an ONNX model/);
    assertUserError(runCli(["eval", vectorModel]), /vector\.onnx: not an image model/);
    assertUserError(
      runCli(["eval", exported, "--data", join(dir, "no-data")]),
      /no-data: no such folder/,
    );
  });

  test("the default model: models/step4.onnx, or a clear error when it is absent", () => {
    const r = runCli(["eval", "--test-limit", "1000", "--json"]);
    if (!existsSync(defaultModelFile())) {
      assertUserError(
        r,
        /no model given and the default model .*models\/step4\.onnx does not exist/,
      );
    } else {
      assert.equal(r.status, 0, r.stderr);
      const report = JSON.parse(r.stdout);
      assert.ok(report.accuracy > 0.97, `models/step4.onnx: accuracy ${report.accuracy}`);
    }
  });
});

describe("mnistc inspect", () => {
  test("the text dump of the seeded step4 model equals its golden file", () => {
    const file = join(dir, "step4.onnx");
    const c = runCli(["compile", spec("step4"), "--target", "onnx", "-o", file]);
    assert.equal(c.status, 0, c.stderr);
    const r = runCli(["inspect", file]);
    assert.equal(r.status, 0, r.stderr);
    expectGolden("onnx/step4.txt", r.stdout);
    const json = JSON.parse(runCli(["inspect", file, "--json"]).stdout);
    assert.equal(json.parameters.trainable, 16478);
    assert.equal(json.opsets[0].version, 13);
    assert.equal(formatDescription(describeModel(decodeModel(readFileSync(file), file))), r.stdout);
  });

  test("any ONNX model can be inspected", () => {
    const r = runCli(["inspect", vectorModel]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^ {2}x: float32 \[N, 784\]$/m);
  });

  test("errors: missing file, not ONNX", () => {
    assertUserError(runCli(["inspect", join(dir, "missing.onnx")]), /missing\.onnx: no such file/);
    assertUserError(runCli(["inspect", notOnnx]), /notes\.onnx is not an ONNX model/);
  });
});
