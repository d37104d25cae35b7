// `mnistc serve` for models of other datasets: a 3x8x8 colour model of 3 named classes (one name
// hostile) and a 1x28x28 Fashion-MNIST model. Pictures are resized (not centred like digits), as
// `mnistc predict` prepares them; JSON pixels are the model's C·H·W input; the answer names the
// class; GET /api/model tells the page what to offer; class names leave the server only escaped.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import jpeg from "jpeg-js";
import { DigitModel } from "../src/runtime/inference/onnx-model.js";
import { prepareImage } from "../src/runtime/inference/preprocess.js";
import { HttpError } from "../src/runtime/serve/http-error.js";
import { parsePredictBody } from "../src/runtime/serve/predict.js";
import { type RunningServer, startServer } from "../src/runtime/serve/server.js";
import { foreignModel } from "./onnx-helpers.js";
import {
  COLOUR_CLASSES,
  colourModelFile,
  encodeGrayPng,
  encodeRgbPng,
  fashionModelFile,
  quartersRgb,
} from "./serve-helpers.js";

interface Answer {
  status: number;
  text: string;
  body: Record<string, unknown>;
}

interface Served {
  model: DigitModel;
  server: RunningServer;
}

async function serve(file: string): Promise<Served> {
  const model = await DigitModel.load(file);
  const server = await startServer({ model, port: 0, log: false, decodeWorkers: 1 });
  return { model, server };
}

async function call(
  served: Served,
  path: string,
  body?: Uint8Array | string,
  type?: string,
): Promise<Answer> {
  const response = await fetch(new URL(path, served.server.url), {
    method: body === undefined ? "GET" : "POST",
    headers: type ? { "Content-Type": type } : {},
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : new Uint8Array(body) }),
  });
  const text = await response.text();
  return { status: response.status, text, body: JSON.parse(text) };
}

/** The model's own probabilities for C·H·W bytes, without the server. */
async function direct(model: DigitModel, pixels: Uint8Array): Promise<number[]> {
  const logProbs = await model.predictBatch(model.normalize(pixels, 1), 1);
  return Array.from(logProbs, Math.exp);
}

/** A 200 whose answer is for exactly `expected` input bytes, with the model's own numbers. */
async function assertAnswer(served: Served, answer: Answer, expected: Uint8Array): Promise<void> {
  assert.equal(answer.status, 200, answer.text);
  const p = answer.body as {
    class: number;
    label: string;
    probabilities: number[];
    ms: number;
    input: number[];
  };
  const { classNames } = served.model.info;
  assert.deepEqual(p.input, Array.from(expected), "the bytes the model saw");
  const probabilities = await direct(served.model, expected);
  assert.equal(p.probabilities.length, classNames.length);
  for (const [c, q] of probabilities.entries()) {
    assert.ok(Math.abs((p.probabilities[c] ?? 0) - q) < 1e-6, `class ${c}`);
  }
  assert.equal(p.class, probabilities.indexOf(Math.max(...probabilities)));
  assert.equal(p.label, classNames[p.class]);
  assert.ok(typeof p.ms === "number" && p.ms >= 0);
  assert.ok(!("digit" in p) && !("input28" in p), "digit and input28 are MNIST's only");
}

describe("a 3x8x8 colour model of a folder's 3 classes", () => {
  let served: Served;
  const input = { channels: 3, height: 8, width: 8 };
  const rgb = quartersRgb(20, 14);
  const png = encodeRgbPng(rgb, 20, 14);
  const rgba = Buffer.alloc(20 * 14 * 4, 255);
  for (let i = 0; i < 20 * 14; i++) rgba.set(rgb.subarray(3 * i, 3 * i + 3), 4 * i);
  const jpg = Buffer.from(jpeg.encode({ width: 20, height: 14, data: rgba }, 90).data);

  before(async () => {
    served = await serve(colourModelFile());
  });
  after(async () => {
    await served.server.close();
    await served.model.release();
  });

  test("GET /api/model says what the page needs: classes, shape, preprocessing", async () => {
    const { status, body } = await call(served, "/api/model");
    assert.equal(status, 200);
    assert.equal(body.name, "colours");
    assert.equal(body.dataset, "folder");
    assert.deepEqual(body.classNames, COLOUR_CLASSES);
    assert.deepEqual(body.inputShape, [3, 8, 8]);
    assert.equal(body.preprocess, "resize");
    assert.equal(body.classes, 3);
  });

  test("a hostile class name is escaped in JSON: no markup in the text, the same string parsed", async () => {
    for (const answer of [
      await call(served, "/api/model"),
      await call(served, "/api/predict", JSON.stringify({ pixels: new Array(192).fill(0) })),
    ]) {
      assert.doesNotMatch(answer.text, /[<>]/);
      assert.equal(answer.status, 200);
    }
    const { text } = await call(served, "/api/model");
    assert.match(text, /\\u003cimg src=x onerror=\\"window.pwned=1\\"\\u003e/);
  });

  test("a PNG is resized to 8x8 as `mnistc predict` does, and answered by class and label", async () => {
    const answer = await call(served, "/api/predict", png, "image/png");
    await assertAnswer(served, answer, prepareImage(png, "x", input, "resize"));
  });

  test("a JPEG, declared or sniffed, is decoded and resized the same way", async () => {
    const expected = prepareImage(jpg, "x", input, "resize");
    await assertAnswer(served, await call(served, "/api/predict", jpg, "image/jpeg"), expected);
    const form = "application/x-www-form-urlencoded";
    await assertAnswer(served, await call(served, "/api/predict", jpg, form), expected);
  });

  test("a grey PGM becomes three equal planes", async () => {
    const gray = Buffer.from(Array.from({ length: 64 }, (_, i) => i * 4));
    const pgm = Buffer.concat([Buffer.from("P5\n8 8\n255\n"), gray]);
    const answer = await call(served, "/api/predict", pgm, "image/x-portable-graymap");
    await assertAnswer(served, answer, Buffer.concat([gray, gray, gray]));
  });

  test('JSON pixels are the 3x8x8 input, NCHW, fed as is (also with "preprocess": true)', async () => {
    const pixels = Uint8Array.from({ length: 192 }, (_, i) => (i * 37) % 256);
    for (const extra of [{}, { preprocess: true }]) {
      const body = JSON.stringify({ pixels: Array.from(pixels), ...extra });
      await assertAnswer(
        served,
        await call(served, "/api/predict", body, "application/json"),
        pixels,
      );
    }
  });

  const errors: [string, () => [string | Uint8Array, string], number, RegExp][] = [
    [
      "JSON pixels of MNIST's length",
      () => [JSON.stringify({ pixels: new Array(784).fill(0) }), "application/json"],
      400,
      /"pixels" has 784 values; expected 192 \(3x8x8, NCHW: 3 planes of 8x8, row-major\)/,
    ],
    [
      "JSON that is not an object",
      () => ["[1]", "application/json"],
      400,
      /expected a JSON object \{"pixels": \[192 integers 0-255\]\}/,
    ],
    [
      "a broken JPEG",
      () => [jpg.subarray(0, 40), "image/jpeg"],
      400,
      /the JPEG body: not a readable JPEG image/,
    ],
    [
      "a JPEG declaring 30000x30000 pixels, before decoding",
      () => {
        const huge = Buffer.from(jpg);
        const sof = huge.indexOf(Buffer.from([0xff, 0xc0]));
        huge.writeUInt16BE(30000, sof + 5);
        huge.writeUInt16BE(30000, sof + 7);
        return [huge, "image/jpeg"];
      },
      400,
      /JPEG image is 30000x30000; at most 4194304 pixels/,
    ],
    [
      "a body that is no image",
      () => ["hello", "text/plain"],
      400,
      /is neither a PNG, JPEG or PGM image nor JSON \{"pixels": \[192 numbers\]\}/,
    ],
  ];
  for (const [name, make, status, pattern] of errors) {
    test(`${name} → ${status} with a message`, async () => {
      const [body, type] = make();
      const answer = await call(served, "/api/predict", body, type);
      assert.equal(answer.status, status, answer.text);
      assert.match(String(answer.body.error), pattern);
      assert.doesNotMatch(String(answer.body.error), /\n\s+at /, "no stack");
    });
  }

  test("the page is served for it (no markup is ever built from a class name)", async () => {
    const page = await fetch(new URL("/", served.server.url));
    assert.equal(page.status, 200);
    assert.match(await page.text(), /id="file"[^>]*type="file"|type="file"[^>]*id="file"/s);
    const script = await (await fetch(new URL("/page.js", served.server.url))).text();
    assert.doesNotMatch(script, /innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
  });
});

describe("a 1x28x28 Fashion-MNIST model", () => {
  let served: Served;
  before(async () => {
    served = await serve(fashionModelFile());
  });
  after(async () => {
    await served.server.close();
    await served.model.release();
  });

  test("answers with the dataset's class names and resizes a picture instead of centring it", async () => {
    const model = (await call(served, "/api/model")).body;
    assert.equal(model.preprocess, "resize");
    assert.equal((model.classNames as string[])[9], "Ankle boot");
    // A small light square in a corner: digit preprocessing would crop and centre it.
    const gray = new Uint8Array(56 * 56);
    for (let y = 0; y < 12; y++) gray.fill(255, y * 56, y * 56 + 12);
    const png = encodeGrayPng(gray, 56, 56);
    const expected = prepareImage(png, "x", { channels: 1, height: 28, width: 28 }, "resize");
    assert.equal(expected[0], 255, "the corner stays where it was");
    await assertAnswer(served, await call(served, "/api/predict", png, "image/png"), expected);
  });
});

test("a foreign 1x30x30 model of 900 outputs is served: resized pictures, numbered classes", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mnistc-serve-foreign-"));
  const file = join(dir, "m30.onnx");
  // A flatten of its input: 900 classes, under the 1,000-class limit of every command.
  writeFileSync(file, foreignModel(["N", 1, 30, 30], ["N", 900]));
  const served = await serve(file);
  try {
    const about = (await call(served, "/api/model")).body;
    assert.equal(about.preprocess, "resize");
    assert.equal(about.dataset, null);
    assert.equal((about.classNames as string[])[899], "899");
    const png = encodeRgbPng(quartersRgb(40, 40), 40, 40);
    const expected = prepareImage(png, "x", { channels: 1, height: 30, width: 30 }, "resize");
    await assertAnswer(served, await call(served, "/api/predict", png, "image/png"), expected);
  } finally {
    await served.server.close();
    await served.model.release();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a digit model refuses a JPEG with 415: its preprocessing reads PNG or PGM, as predict's does", () => {
  const rgba = Buffer.alloc(8 * 8 * 4, 255);
  const jpg = Buffer.from(jpeg.encode({ width: 8, height: 8, data: rgba }, 90).data);
  for (const type of ["image/jpeg", undefined]) {
    assert.throws(
      () => parsePredictBody(type, jpg),
      (err: unknown) =>
        err instanceof HttpError && err.status === 415 && /send a PNG/.test(err.message),
    );
  }
});
