// Hostile class 6: a seeded fuzz test. Valid PNG, PGM, IDX, ONNX and checkpoint bytes are mutated
// (bytes flipped, 32-bit fields set to extremes, cut short, spans repeated) and fed to the code
// that reads them. Each result must be a correct decode or a UserError: never another exception, a
// hang (each case is timed), or a file written outside the output folder. The seed is fixed, so a
// failure names its case and replays; MNISTC_FUZZ_SEED and MNISTC_FUZZ_CASES explore further.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { deflateSync } from "node:zlib";
import { exportCheckpointToOnnx } from "../../src/cli/export-onnx.js";
import { compileSpec } from "../../src/compiler/index.js";
import { torchInitWeights } from "../../src/compiler/init.js";
import { UserError } from "../../src/errors.js";
import { parseIdxImages, parseIdxLabels } from "../../src/runtime/data/idx.js";
import { decodeImage } from "../../src/runtime/inference/image.js";
import { DigitModel } from "../../src/runtime/inference/onnx-model.js";
import { preprocessImage } from "../../src/runtime/inference/preprocess.js";
import { HttpError } from "../../src/runtime/serve/http-error.js";
import { parsePredictBody } from "../../src/runtime/serve/predict.js";
import { Rng } from "../../src/util/rng.js";
import { writeTfjsCheckpoint } from "../onnx-helpers.js";
import { gzip, idxImages, idxLabels, rawPng, squarePng } from "./bytes.js";

const SEED = Number(process.env.MNISTC_FUZZ_SEED ?? 20261201);
const CASES = Number(process.env.MNISTC_FUZZ_CASES ?? 150);
const dir = mkdtempSync(join(tmpdir(), "mnistc-hostile-fuzz-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function mutate(bytes: Uint8Array, rng: Rng): Uint8Array {
  let out = Uint8Array.from(bytes);
  const pick = (n: number) => rng.nextUint32() % Math.max(1, n);
  const rounds = 1 + pick(4);
  for (let r = 0; r < rounds; r++) {
    switch (pick(5)) {
      case 0: // flip bytes
        for (let i = 0, n = 1 + pick(8); i < n; i++) out[pick(out.length)] = pick(256);
        break;
      case 1: {
        // a 32-bit field set to an extreme
        const at = pick(Math.max(1, out.length - 4));
        const v = [0, 1, 0xffffffff, 0x7fffffff, 0x10000, 65535][pick(6)] as number;
        new DataView(out.buffer).setUint32(Math.min(at, Math.max(0, out.length - 4)), v);
        break;
      }
      case 2: // cut short
        out = out.subarray(0, pick(out.length + 1));
        break;
      case 3: {
        // a span repeated
        const at = pick(out.length);
        const span = out.subarray(at, at + 1 + pick(64));
        const copy = new Uint8Array(out.length + span.length * 4);
        copy.set(out.subarray(0, at));
        for (let k = 0; k < 4; k++) copy.set(span, at + k * span.length);
        copy.set(out.subarray(at), at + 4 * span.length);
        out = copy;
        break;
      }
      default: // zero a run
        out.fill(0, pick(out.length), pick(out.length));
    }
    if (out.length < 4) break;
  }
  return out;
}

/** Runs one case: a result, or a user error; anything else (or too slow) fails with the case. */
async function expectClear(label: string, f: () => unknown, ms = 2000): Promise<void> {
  const start = performance.now();
  try {
    await f();
  } catch (err) {
    if (!(err instanceof UserError) && !(err instanceof HttpError)) {
      assert.fail(`${label}: ${(err as Error).stack ?? err}`);
    }
    assert.ok(!/\n\s+at /.test((err as Error).message), `${label}: a stack in the message`);
  }
  const took = performance.now() - start;
  assert.ok(took < ms, `${label}: took ${took.toFixed(0)} ms`);
}

const pgm = Buffer.concat([Buffer.from("P5\n# c\n16 16\n255\n"), Buffer.alloc(256, 200)]);
const pgmAscii = Buffer.from(`P2\n4 4\n15\n${"0 15 7 3 ".repeat(4)}\n`);
const png = squarePng(32);
const pngInterlaced = rawPng({
  width: 16,
  height: 16,
  interlace: 1,
  idat: deflateSync(Buffer.alloc(16 * 2 + 8 * 1 + 8 * 2 + 4 * 2 + 4 * 4 + 2 * 4 + 2 * 8 + 8 * 9)),
});

describe(`fuzz (seed ${SEED}, ${CASES} cases per format)`, () => {
  test("PNG and PGM through decodeImage, preprocessing and the server's body parser", async () => {
    const rng = new Rng(SEED);
    const seeds: [string, Uint8Array, string][] = [
      ["png", png, "image/png"],
      ["interlaced", pngInterlaced, "image/png"],
      ["pgm", pgm, "image/x-portable-graymap"],
      ["pgm-ascii", pgmAscii, "image/x-portable-graymap"],
    ];
    for (let i = 0; i < CASES; i++) {
      for (const [name, bytes, type] of seeds) {
        const m = mutate(bytes, rng);
        await expectClear(`${name} case ${i}`, () => {
          const image = decodeImage(m, "x");
          preprocessImage(image.data, image.width, image.height, "x");
        });
        await expectClear(`${name} body case ${i}`, () => parsePredictBody(type, Buffer.from(m)));
        await expectClear(`${name} sniffed case ${i}`, () =>
          parsePredictBody(undefined, Buffer.from(m)),
        );
      }
    }
  });

  test("IDX images and labels, plain and gzipped", async () => {
    const rng = new Rng(SEED + 1);
    const images = idxImages(3, 28, 28, Buffer.alloc(3 * 784, 9));
    const labels = idxLabels(3, Buffer.from([1, 2, 3]));
    for (let i = 0; i < CASES; i++) {
      for (const [name, bytes, parse] of [
        ["images", images, parseIdxImages],
        ["labels", labels, parseIdxLabels],
        ["images.gz", gzip(images), parseIdxImages],
        ["labels.gz", gzip(labels), parseIdxLabels],
      ] as const) {
        await expectClear(`${name} case ${i}`, () => parse(mutate(bytes, rng), "x"));
        // Mutated before compressing: a header that lies, inside valid gzip.
        if (name.endsWith(".gz")) {
          const raw = name.startsWith("images") ? images : labels;
          await expectClear(`${name} inner case ${i}`, () => parse(gzip(mutate(raw, rng)), "x"));
        }
      }
    }
  });

  const SPEC =
    "input: { channels: 1, height: 28, width: 28 }\nclasses: 10\nlayers:\n  - flatten\n  - linear: { out: 10 }\n  - log_softmax\n";
  const { ir } = compileSpec(SPEC, "tiny.yaml");
  assert.ok(ir);
  const ckpt = join(dir, "ckpt");
  writeTfjsCheckpoint(ckpt, ir, torchInitWeights(ir));
  const goodOnnx = join(dir, "good.onnx");
  exportCheckpointToOnnx(ir, ckpt, goodOnnx);

  test("ONNX models through DigitModel.load and a prediction", async () => {
    const rng = new Rng(SEED + 2);
    const bytes = readFileSync(goodOnnx);
    const file = join(dir, "m.onnx");
    for (let i = 0; i < Math.ceil(CASES / 3); i++) {
      writeFileSync(file, mutate(bytes, rng));
      await expectClear(`onnx case ${i}`, async () => {
        const model = await DigitModel.load(file, { threads: 1 });
        try {
          const out = await model.predictBatch(model.normalize(new Uint8Array(784), 1), 1);
          assert.ok(
            out.every((v) => !Number.isNaN(v)),
            `onnx case ${i}: NaN probabilities`,
          );
        } finally {
          await model.release();
        }
      });
    }
  });

  test("checkpoints (model.json text and weights bytes) through export, nothing written outside", async () => {
    const rng = new Rng(SEED + 3);
    const json = readFileSync(join(ckpt, "model.json"));
    const weights = readFileSync(join(ckpt, "weights.bin"));
    const work = join(dir, "work");
    for (let i = 0; i < Math.ceil(CASES / 3); i++) {
      rmSync(work, { recursive: true, force: true });
      const c = join(work, "checkpoint");
      mkdirSync(c, { recursive: true });
      const edited = i % 2 === 0;
      writeFileSync(join(c, "model.json"), edited ? mutate(json, rng) : json);
      writeFileSync(join(c, "weights.bin"), edited ? weights : mutate(weights, rng));
      const out = join(work, "out", "m.onnx");
      const before = readdirSync(dir).sort();
      await expectClear(`checkpoint case ${i}`, () => exportCheckpointToOnnx(ir, c, out));
      assert.deepEqual(readdirSync(dir).sort(), before, `checkpoint case ${i}: wrote outside`);
      const written = readdirSync(work).filter((f) => f !== "checkpoint" && f !== "out");
      assert.deepEqual(written, [], `checkpoint case ${i}: wrote ${written}`);
    }
  });
});
