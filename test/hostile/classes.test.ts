// Hostile round 2, class 5: models with many classes. `eval` on 400 classes overflowed the stack
// (Math.max(...) over the 160,000 cells of the confusion matrix) and 20,000 aborted V8. Every
// command now refuses a model over MAX_CLASSES (1,000) at load, in one line; up to it, eval
// answers (no spread over cells); `--report` draws its heatmap for at most MAX_HEATMAP_CLASSES
// (100) and refuses more before evaluating anything.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { formatConfusion } from "../../src/cli/eval.js";
import { encodeModel, onnx } from "../../src/formats/onnx-proto.js";
import { packagePath } from "../../src/paths.js";
import { MAX_CLASSES } from "../../src/runtime/inference/limits.js";
import { confusionSpec, MAX_HEATMAP_CLASSES } from "../../src/runtime/report/confusion.js";

const dir = mkdtempSync(join(tmpdir(), "mnistc-hostile-classes-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const CLI = packagePath("dist", "src", "cli.js");
const DIGIT = packagePath("test", "fixtures", "images", "mnist-test-0-label-7.png");

/**
 * An ONNX model reading MNIST's [N, 1, 28, 28] and answering `k` classes: the flattened pixels,
 * repeated to k values, then LogSoftmax. A few hundred bytes for any k.
 */
function wideModel(k: number): string {
  const T = onnx.TensorProto.DataType;
  const int64 = (name: string, v: number) => ({
    name,
    dims: [1],
    dataType: T.INT64,
    int64Data: [v],
  });
  const value = (name: string, dims: (number | string)[]) => ({
    name,
    type: {
      tensorType: {
        elemType: T.FLOAT,
        shape: {
          dim: dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })),
        },
      },
    },
  });
  const axis = { name: "axis", type: onnx.AttributeProto.AttributeType.INT, i: 1 };
  const file = join(dir, `wide${k}.onnx`);
  const bytes = encodeModel({
    irVersion: 8,
    opsetImport: [{ domain: "", version: 13 }],
    producerName: "test",
    graph: {
      name: `wide${k}`,
      initializer: [int64("start", 0), int64("end", k), int64("axis", 1)],
      node: [
        { name: "flat", opType: "Flatten", input: ["x"], output: ["f"], attribute: [axis] },
        {
          name: "repeat",
          opType: "Concat",
          input: new Array<string>(Math.ceil(k / 784)).fill("f"),
          output: ["r"],
          attribute: [axis],
        },
        { name: "cut", opType: "Slice", input: ["r", "start", "end", "axis"], output: ["z"] },
        { name: "ls", opType: "LogSoftmax", input: ["z"], output: ["y"], attribute: [axis] },
      ],
      input: [value("x", ["N", 1, 28, 28])],
      output: [value("y", ["N", k])],
    },
  });
  writeFileSync(file, bytes);
  return file;
}

const cli = (args: string[]) =>
  spawnSync(process.execPath, [CLI, ...args], {
    encoding: "utf8",
    cwd: dir,
    timeout: 60_000,
    maxBuffer: 64 << 20, // the 1,000-class matrix as JSON is several MB
  });

describe("a model with many classes", () => {
  test("eval of 400 classes prints its 400-row matrix", () => {
    const r = cli(["eval", wideModel(400), "--test-limit", "50"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^ {6}399 /m);
  });

  test(`eval of ${MAX_CLASSES} classes answers (--json)`, () => {
    const r = cli(["eval", wideModel(MAX_CLASSES), "--test-limit", "50", "--json"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { perClass: unknown[] }).perClass.length, MAX_CLASSES);
  });

  const over = MAX_CLASSES + 1;
  const refusals: [string, () => string[], RegExp][] = [
    [
      `eval of ${over} classes`,
      () => ["eval", wideModel(over)],
      /the model answers 1,001 classes; mnistc reads models of at most 1,000/,
    ],
    [`predict with ${over} classes`, () => ["predict", wideModel(over), DIGIT], /1,001 classes/],
    [
      `eval --report of ${MAX_HEATMAP_CLASSES + 1} classes`,
      () => ["eval", wideModel(MAX_HEATMAP_CLASSES + 1), "--report", join(dir, "report")],
      /--report draws confusion\.png for at most 100 classes; the model answers 101/,
    ],
  ];
  for (const [what, args, message] of refusals) {
    test(`${what}: one line, exit 1`, () => {
      const r = cli(args());
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /^\s+at /m, "a stack trace");
      assert.equal(existsSync(join(dir, "report")), false);
    });
  }

  test(`eval --report of ${MAX_HEATMAP_CLASSES} classes draws its heatmap`, () => {
    const report = join(dir, "report100");
    const r = cli([
      "eval",
      wideModel(MAX_HEATMAP_CLASSES),
      "--test-limit",
      "50",
      "--report",
      report,
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(join(report, "confusion.png")));
  });

  test("the confusion table and heatmap spec of 1,000 classes: no spread over the cells", () => {
    const n = MAX_CLASSES;
    const confusion = Array.from({ length: n }, (_, t) =>
      Array.from({ length: n }, (_, p) => (t === p ? 12345 : 0)),
    );
    const table = formatConfusion(confusion);
    assert.equal(table.split("\n").length, n + 1);
    const spec = confusionSpec("wide", confusion) as { layer: unknown[] };
    assert.equal(spec.layer.length, 1, "no counts written in cells this small");
  });
});
