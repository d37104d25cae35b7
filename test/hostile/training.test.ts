// Hostile round 2 (issue 23, item 15), training: a NaN loss names its likely cause from the run's
// own inputs (a normalization that blows pixels up, a teacher answering infinity) rather than
// always the learning rate; `--resume` with another spec fails before the run's program/ changes.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { encodeModel, onnx } from "../../src/formats/onnx-proto.js";
import { packagePath } from "../../src/paths.js";
import { assertUserError } from "../onnx-helpers.js";

const dir = mkdtempSync(join(tmpdir(), "mnistc-hostile-training-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const CLI = packagePath("dist", "src", "cli.js");
const SMALL = ["--train-limit", "512", "--test-limit", "32", "--batch-size", "32", "--epochs", "1"];

const cli = (args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: "utf8",
    cwd: dir,
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
};

const spec = (data: string, train = "", layers = "  - flatten\n  - linear: { out: 10 }\n") =>
  `input: { channels: 1, height: 28, width: 28 }\nclasses: 10\n${data}layers:\n${layers}  - log_softmax\n${train}`;

/** [N, 1, 28, 28] -> Flatten -> MatMul (1e30 into class 0) -> squared: +infinity for any ink. */
function infiniteTeacher(): Uint8Array {
  const FLOAT = onnx.TensorProto.DataType.FLOAT;
  const value = (name: string, dims: (number | string)[]) => ({
    name,
    type: {
      tensorType: {
        elemType: FLOAT,
        shape: {
          dim: dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })),
        },
      },
    },
  });
  const w = new Array(784 * 10).fill(0);
  for (let i = 0; i < 784; i++) w[i * 10] = 1e30;
  return encodeModel({
    irVersion: 8,
    opsetImport: [{ domain: "", version: 13 }],
    producerName: "test",
    graph: {
      name: "inf",
      node: [
        {
          name: "flat",
          opType: "Flatten",
          input: ["x"],
          output: ["f"],
          attribute: [{ name: "axis", type: onnx.AttributeProto.AttributeType.INT, i: 1 }],
        },
        { name: "mm", opType: "MatMul", input: ["f", "w"], output: ["m"] },
        { name: "sq", opType: "Mul", input: ["m", "m"], output: ["y"] },
      ],
      initializer: [{ name: "w", dims: [784, 10], dataType: FLOAT, floatData: w }],
      input: [value("x", ["N", 1, 28, 28])],
      output: [value("y", ["N", 10])],
    },
  } as Parameters<typeof encodeModel>[0]);
}

describe("a NaN loss names its likely cause", () => {
  test("a std of 1e-6: the normalization, not the learning rate", () => {
    writeFileSync(
      join(dir, "std.yaml"),
      spec(
        "data: { dataset: mnist, mean: [0.5], std: [0.000001] }\n",
        "",
        "  - conv: { out: 8, kernel: 3 }\n  - relu\n  - flatten\n  - linear: { out: 10 }\n",
      ),
    );
    const r = cli(["train", "std.yaml", "--out", "std", "--quiet", ...SMALL]);
    assertUserError(
      r,
      /the loss is NaN: normalization makes pixels as large as 500000 \(data\.mean \[0\.5\], data\.std \[0\.000001\]\); check data\.mean and data\.std/,
    );
    assert.doesNotMatch(r.stderr, /learning rate/);
  });

  test("a mean of 1e30: the normalization", () => {
    writeFileSync(
      join(dir, "mean.yaml"),
      spec("data: { dataset: mnist, mean: [1e30], std: [0.000001] }\n"),
    );
    const r = cli(["train", "mean.yaml", "--out", "mean", "--quiet", ...SMALL]);
    assertUserError(r, /the loss is NaN: normalization makes pixels as large as 1e\+36/);
  });

  test("a teacher answering infinity: the teachers, named", () => {
    writeFileSync(join(dir, "inf.onnx"), infiniteTeacher());
    writeFileSync(
      join(dir, "distill.yaml"),
      spec(
        "data: { dataset: mnist, mean: [0.1307], std: [0.3081] }\n",
        "train:\n  distill: { teachers: [inf.onnx], weight: 0.5 }\n",
      ),
    );
    const r = cli(["train", "distill.yaml", "--out", "distill", "--quiet", ...SMALL]);
    assertUserError(
      r,
      /the loss is NaN: the teachers' probabilities are not finite .*check the teachers: .*inf\.onnx/,
    );
  });

  test("a learning rate of 1e37 is still the learning rate", () => {
    writeFileSync(join(dir, "lr.yaml"), spec(""));
    const r = cli(["train", "lr.yaml", "--out", "lr", "--quiet", "--lr", "1e37", ...SMALL]);
    assertUserError(r, /the loss is (NaN|Infinity); lower the learning rate \(--lr\)/);
  });
});

describe("--resume with another spec", () => {
  test("fails before the run's program/ changes", () => {
    writeFileSync(join(dir, "a.yaml"), spec(""));
    const first = cli(["train", "a.yaml", "--out", "run", "--quiet", ...SMALL]);
    assert.equal(first.status, 0, first.stderr);
    const program = () =>
      Object.fromEntries(
        readdirSync(join(dir, "run", "program")).map((f) => [
          f,
          readFileSync(join(dir, "run", "program", f), "utf8"),
        ]),
      );
    const before = program();
    // Another spec of the same name (the checkpoint's shapes differ), then one of another name.
    mkdirSync(join(dir, "other"), { recursive: true });
    writeFileSync(
      join(dir, "other", "a.yaml"),
      spec("", "", "  - flatten\n  - linear: { out: 32 }\n  - relu\n  - linear: { out: 10 }\n"),
    );
    assertUserError(
      cli(["train", "other/a.yaml", "--out", "run", "--resume", "--quiet"]),
      /weight 1\.weight has shape \[10,784\], the model needs \[32,784\]/,
    );
    assert.deepEqual(program(), before);
    writeFileSync(join(dir, "b.yaml"), spec(""));
    assertUserError(
      cli(["train", "b.yaml", "--out", "run", "--resume", "--quiet"]),
      /the checkpoint is of spec "a", not "b"/,
    );
    assert.deepEqual(program(), before);
  });
});
