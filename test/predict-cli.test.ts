// `mnistc predict` end to end on the image fixtures.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { onnxBackend } from "../src/backends/onnx/index.js";
import { packagePath } from "../src/paths.js";
import { defaultModelFile } from "../src/runtime/inference/onnx-model.js";
import { assertUserError, foreignModel, linearIR, runCli } from "./onnx-helpers.js";

const dir = mkdtempSync(join(tmpdir(), "mnistc-predict-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const image = (name: string) => packagePath("test", "fixtures", "images", name);
const model = join(dir, "linear.onnx");
writeFileSync(model, onnxBackend.emit(linearIR(), {}).files[0]?.contents ?? "");

describe("mnistc predict", () => {
  test("--json: one {file, digit, probabilities} per image, PNG and PGM", () => {
    const files = [
      image("seven-black-on-white.png"),
      image("seven-p2.pgm"),
      image("seven-p5-16bit.pgm"),
    ];
    const r = runCli(["predict", model, ...files, "--json"]);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { file: string; digit: number; probabilities: number[] }[];
    assert.deepEqual(
      out.map((p) => p.file),
      files,
    );
    for (const p of out) {
      assert.equal(p.probabilities.length, 10);
      assert.ok(Math.abs(p.probabilities.reduce((a, b) => a + b, 0) - 1) < 1e-5);
      assert.equal(p.digit, p.probabilities.indexOf(Math.max(...p.probabilities)));
    }
    // The same 7 in three files and encodings: the same answer.
    assert.equal(new Set(out.map((p) => p.digit)).size, 1);
  });

  test("text: the digit and every probability", () => {
    const r = runCli(["predict", model, image("seven-transparent.png")]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stdout,
      /seven-transparent\.png: \d {2}\(p=0\.\d{3}\)\n {2}0 0\.\d{3} {2}1 0\.\d{3}/,
    );
  });

  const errors: [string, string[], RegExp][] = [
    ["no image", [model], /no image given/],
    [
      "not an image",
      [model, image("not-an-image.txt")],
      /not-an-image\.txt: not a PNG or PGM image/,
    ],
    ["a blank image", [model, image("blank.png")], /blank\.png: no digit found/],
    ["a missing image", [model, join(dir, "gone.png")], /gone\.png: no such file/],
    [
      "a missing model",
      [join(dir, "absent.onnx"), image("blank.png")],
      /absent\.onnx: no such file/,
    ],
  ];
  for (const [name, args, pattern] of errors) {
    test(`error: ${name}`, () => assertUserError(runCli(["predict", ...args]), pattern));
  }

  test("a bad image among good ones: each reported, the others still answered, exit 1", () => {
    const good = image("seven-p2.pgm");
    const r = runCli(["predict", model, image("blank.png"), good, join(dir, "gone.png"), "--json"]);
    assert.equal(r.status, 1);
    const out = JSON.parse(r.stdout) as { file: string }[];
    assert.deepEqual(
      out.map((p) => p.file),
      [good],
    );
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 2, r.stderr);
    assert.match(lines[0] ?? "", /^mnistc: error: .*blank\.png: no digit found/);
    assert.match(lines[1] ?? "", /^mnistc: error: .*gone\.png: no such file/);
  });

  test("error: a model file with text in it, and a model that does not read images", () => {
    const fake = join(dir, "fake.onnx");
    writeFileSync(fake, "not a model");
    assertUserError(
      runCli(["predict", fake, image("seven-p2.pgm")]),
      /fake\.onnx is not an ONNX model/,
    );
    const vector = join(dir, "vector.onnx");
    writeFileSync(vector, foreignModel(["N", 784], ["N", 784]));
    assertUserError(
      runCli(["predict", vector, image("seven-p2.pgm")]),
      /vector\.onnx: not an image model/,
    );
  });

  test("the default model reads MNIST digits drawn on paper (when models/step4.onnx exists)", () => {
    const digits = Array.from({ length: 10 }, (_, i) => i);
    const labels = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9];
    const files = digits.map((i) => image(`mnist-test-${i}-label-${labels[i]}.png`));
    const r = runCli(["predict", ...files, "--json"]);
    if (!existsSync(defaultModelFile())) {
      assertUserError(r, /no model given/);
      return;
    }
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { digit: number }[];
    const right = out.filter((p, i) => p.digit === labels[i]).length;
    assert.ok(right >= 9, `${right}/10 right: ${out.map((p) => p.digit)}`);
  });
});
