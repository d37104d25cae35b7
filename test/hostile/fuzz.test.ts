// Hostile class 6: a seeded fuzz test. Valid PNG, PGM, JPEG, IDX, CIFAR-10, ImageFolder, ONNX,
// checkpoint (tfjs and safetensors with EMA) bytes and sweep-file text are mutated (bytes flipped,
// 32-bit fields set to extremes, cut short, spans repeated; YAML tokens swapped in) and fed to the
// code that reads them. Each result must be a correct decode or a UserError (diagnostics for the
// sweep file) naming the file at fault: never another exception, a hang (each case is timed), or a
// file written outside the output folder. The seed is fixed, so a failure names its case and
// replays; MNISTC_FUZZ_SEED and MNISTC_FUZZ_CASES explore further.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { deflateSync } from "node:zlib";
import jpeg from "jpeg-js";
import { exportCheckpointToOnnx } from "../../src/cli/export-onnx.js";
import { compileSpec, formatDiagnostic } from "../../src/compiler/index.js";
import { torchInitWeights } from "../../src/compiler/init.js";
import { UserError } from "../../src/errors.js";
import { packagePath } from "../../src/paths.js";
import { CIFAR_FILES, loadCifar10 } from "../../src/runtime/data/cifar.js";
import { loadImageFolder } from "../../src/runtime/data/folder.js";
import { parseIdxImages, parseIdxLabels } from "../../src/runtime/data/idx.js";
import { decodeImage, decodeRgb } from "../../src/runtime/inference/image.js";
import { DigitModel } from "../../src/runtime/inference/onnx-model.js";
import { preprocessImage } from "../../src/runtime/inference/preprocess.js";
import { HttpError } from "../../src/runtime/serve/http-error.js";
import { parsePredictBody, type ServeProfile } from "../../src/runtime/serve/predict.js";
import { readCheckpoint, writeCheckpoint } from "../../src/runtime/train/checkpoint.js";
import type { TrainingState } from "../../src/runtime/train/state.js";
import { parseSweep } from "../../src/sweep/file.js";
import { Rng } from "../../src/util/rng.js";
import { writeTfjsCheckpoint } from "../onnx-helpers.js";
import { gzip, idxImages, idxLabels, rawPng, squarePng } from "./bytes.js";

const CLI = packagePath("dist", "src", "cli.js");
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

/** What JavaScript says of a bug (a property of undefined, a call of a non-function). */
const INTERNAL =
  /properties of (undefined|null)|is not a function|is not iterable|Invalid array length/;

/**
 * Runs one case: a result, or a user error; anything else (or too slow) fails with the case. The
 * error, if any, is returned for the caller to check what it names.
 */
async function expectClear(
  label: string,
  f: () => unknown,
  ms = 2000,
): Promise<UserError | HttpError | undefined> {
  const start = performance.now();
  let caught: UserError | HttpError | undefined;
  try {
    await f();
  } catch (err) {
    if (!(err instanceof UserError) && !(err instanceof HttpError)) {
      assert.fail(`${label}: ${(err as Error).stack ?? err}`);
    }
    assert.ok(!/\n\s+at /.test((err as Error).message), `${label}: a stack in the message`);
    // A library's internal failure wrapped in a UserError still tells the user nothing.
    assert.ok(!INTERNAL.test(err.message), `${label}: an internal error: ${err.message}`);
    caught = err;
  }
  const took = performance.now() - start;
  assert.ok(took < ms, `${label}: took ${took.toFixed(0)} ms`);
  return caught;
}

/** As `expectClear`, and an error must name `name` (the file at fault). */
async function expectNamed(label: string, name: string, f: () => unknown): Promise<void> {
  const err = await expectClear(label, f);
  if (err)
    assert.ok(err.message.includes(name), `${label}: "${err.message}" does not name ${name}`);
}

/** Text mutants: the byte mutations (as UTF-8, lossy), or YAML tokens deleted, swapped or added. */
const YAML_TOKENS = [
  ...["{", "}", "[", "]", ",", ":", ": ", "- ", "\n", "\n  ", "\t", "#", "'", '"', "|", ">"],
  ...["&a ", "*a", "<<: *a", "!!binary ", "!!str ", "? ", "---\n", "...\n", "%YAML 1.2\n"],
  ...["~", "null", "true", "-1", "0", "1e999", "-.inf", ".nan", "0x7fffffff", "4294967296"],
  ...["1.5", "\u0000", "\u202e", "\ud83d\ude00", "space", "base", "choice", "int", "uniform"],
  ...["loguniform", "layers.conv4.1.out", "train.lr", "__proto__", "constructor", "x".repeat(300)],
];
function mutateText(text: string, rng: Rng): string {
  const pick = (n: number) => rng.nextUint32() % Math.max(1, n);
  if (pick(3) === 0) return Buffer.from(mutate(Buffer.from(text), rng)).toString("utf8");
  const parts = text.split(/(\s+|[{}[\],:-])/);
  for (let r = 0, rounds = 1 + pick(4); r < rounds; r++) {
    const at = pick(parts.length);
    const token = YAML_TOKENS[pick(YAML_TOKENS.length)] as string;
    const op = pick(3);
    if (op === 0) parts.splice(at, 1);
    else if (op === 1) parts[at] = token;
    else parts.splice(at, 0, token);
  }
  return parts.join("");
}

const pgm = Buffer.concat([Buffer.from("P5\n# c\n16 16\n255\n"), Buffer.alloc(256, 200)]);
const pgmAscii = Buffer.from(`P2\n4 4\n15\n${"0 15 7 3 ".repeat(4)}\n`);
const png = squarePng(32);
const pngInterlaced = rawPng({
  width: 16,
  height: 16,
  interlace: 1,
  // Adam7's seven passes of 16x16 8-bit grey, a filter byte per row: 6+6+10+20+36+72+136 bytes.
  // (It was 176 until the fuzz test grew to folders: a seed checkPng refused, so its mutants never
  // reached an interlaced decode.)
  idat: deflateSync(Buffer.alloc(286)),
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
    for (const [name, bytes] of seeds) assert.ok(decodeImage(bytes, name).width > 0, name);
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

  /** A w x h RGBA picture: a gradient with a bright square, the same every run. */
  const picture = (w: number, h: number): Uint8Array => {
    const rgba = new Uint8Array(4 * w * h);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const at = 4 * (y * w + x);
        const ink = x > w / 4 && x < (3 * w) / 4 && y > h / 4 && y < (3 * h) / 4;
        rgba.set([ink ? 250 : (x * 13) % 256, ink ? 240 : (y * 29) % 256, (x * y) % 256, 255], at);
      }
    }
    return rgba;
  };
  const jpegOf = (w: number, h: number, quality: number): Buffer =>
    Buffer.from(jpeg.encode({ width: w, height: h, data: picture(w, h) }, quality).data);
  // 16x16 is whole MCUs; 20x12 at a low quality has partial ones and other tables.
  const jpegs: [string, Buffer][] = [
    ["jpeg", jpegOf(16, 16, 90)],
    ["jpeg-odd", jpegOf(20, 12, 40)],
  ];
  const RESIZE: ServeProfile = {
    input: { channels: 3, height: 8, width: 8 },
    preprocess: "resize",
  };

  test("JPEG through decodeRgb and the server's body parser (a resize model's)", async () => {
    const rng = new Rng(SEED + 4);
    for (const [name, bytes] of jpegs) assert.ok(decodeRgb(bytes, name).width > 0, name);
    for (let i = 0; i < CASES; i++) {
      for (const [name, bytes] of jpegs) {
        const m = mutate(bytes, rng);
        await expectNamed(`${name} case ${i}`, "x.jpg", () => decodeRgb(m, "x.jpg"));
        await expectClear(`${name} body case ${i}`, () =>
          parsePredictBody("image/jpeg", Buffer.from(m), RESIZE),
        );
        await expectClear(`${name} sniffed case ${i}`, () =>
          parsePredictBody(undefined, Buffer.from(m), RESIZE),
        );
      }
    }
  });

  test("JPEG through `mnistc predict`: each broken file named on one line, no stack trace", () => {
    const rng = new Rng(SEED + 5);
    const folder = join(dir, "predict");
    mkdirSync(folder);
    const files: string[] = [];
    for (let i = 0; i < 12; i++) {
      const [, bytes] = jpegs[i % jpegs.length] as [string, Buffer];
      const file = join(folder, `m${String(i).padStart(2, "0")}.jpg`);
      writeFileSync(file, mutate(bytes, rng));
      files.push(file);
    }
    const r = spawnSync(
      process.execPath,
      [CLI, "predict", goodOnnx, ...files, "--preprocess", "resize", "--json"],
      { encoding: "utf8", timeout: 60_000, stdio: ["ignore", "pipe", "pipe"] },
    );
    const where = `stderr: ${r.stderr}`;
    assert.equal(r.signal, null, `killed (a hang?); ${where}`);
    assert.ok(r.status === 0 || r.status === 1, `exit ${r.status}; ${where}`);
    assert.doesNotMatch(r.stderr, /^\s+at /m, `a stack trace; ${where}`);
    const answered = (JSON.parse(r.stdout) as { file: string }[]).map((p) => p.file);
    const refused = r.stderr
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => {
        const named = files.find((f) => line.startsWith(`mnistc: error: ${f}: `));
        assert.ok(named, `a line naming no file: ${line}`);
        return named;
      });
    // Every file either answered or refused, once; exit 1 exactly when one was refused.
    assert.deepEqual([...answered, ...refused].sort(), files);
    assert.equal(r.status, refused.length > 0 ? 1 : 0, where);
  });

  test("CIFAR-10 batches and batches.meta.txt through loadCifar10, the broken file named", async () => {
    const rng = new Rng(SEED + 6);
    const cifar = join(dir, "cifar");
    mkdirSync(cifar);
    const names = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";
    const good = new Map<string, Buffer>([[CIFAR_FILES.meta, Buffer.from(names)]]);
    for (const [b, name] of [...CIFAR_FILES.train, ...CIFAR_FILES.test].entries()) {
      const records = Buffer.alloc(2 * 3073);
      for (let r = 0; r < 2; r++) {
        records[r * 3073] = (2 * b + r) % 10;
        for (let k = 1; k < 3073; k++) records[r * 3073 + k] = (k * (b + 3) + r) % 256;
      }
      good.set(name, records);
    }
    for (const [name, bytes] of good) writeFileSync(join(cifar, name), bytes);
    assert.equal(loadCifar10(cifar).train.count, 10);
    const victims = [...good.keys()];
    for (let i = 0; i < CASES; i++) {
      const name = victims[i % victims.length] as string;
      writeFileSync(join(cifar, name), mutate(good.get(name) as Buffer, rng));
      const opts = i % 3 === 0 ? { trainLimit: 3 } : {};
      await expectNamed(`cifar ${name} case ${i}`, name, () => loadCifar10(cifar, opts));
      writeFileSync(join(cifar, name), good.get(name) as Buffer);
    }
  });

  test("an ImageFolder tree of PNG, JPEG and PGM files, one mutated: the broken file named", async () => {
    const rng = new Rng(SEED + 7);
    const root = join(dir, "folder");
    const good = new Map<string, Uint8Array>();
    for (const [c, cls] of ["ink", "paper"].entries()) {
      mkdirSync(join(root, cls, "sub"), { recursive: true });
      good.set(join(cls, "0.png"), squarePng(12 + 4 * c));
      good.set(join(cls, "1.jpg"), (jpegs[c] as [string, Buffer])[1]);
      good.set(join(cls, "2.pgm"), c === 0 ? pgm : pgmAscii);
      good.set(join(cls, "sub", "3.png"), c === 0 ? pngInterlaced : png);
    }
    for (const [name, bytes] of good) writeFileSync(join(root, name), bytes);
    const whole = loadImageFolder(root, { channels: 1, height: 8, width: 8 });
    assert.equal(whole.train.count + whole.test.count, good.size);
    const victims = [...good.keys()];
    for (let i = 0; i < CASES; i++) {
      const name = victims[i % victims.length] as string;
      writeFileSync(join(root, name), mutate(good.get(name) as Uint8Array, rng));
      const opts = { channels: i % 2 === 0 ? 1 : 3, height: 8, width: 8 };
      await expectNamed(`folder ${name} case ${i}`, name, () => loadImageFolder(root, opts));
      writeFileSync(join(root, name), good.get(name) as Uint8Array);
    }
  });

  test("sweep files: mutated YAML gives located diagnostics, never a throw", async () => {
    const rng = new Rng(SEED + 8);
    const base = readFileSync(packagePath("specs", "sep4k.yaml"), "utf8");
    const text = [
      "base: sep4k.yaml",
      "space:",
      "  layers.conv4.1.out: [16, 24]",
      "  train.scheduler.max_lr: { loguniform: [0.01, 0.2] }",
      "  train.epochs: { int: [1, 3] }",
      "constraints: { budget: 4000, max_macs: 2000000 }",
      "metric: { name: val_accuracy, last: 2 }",
      "seeds: [1, 2]",
      "trials: 6",
      "sampler: { type: tpe, seed: 3, startup: 2 }",
      "early_stop: { type: asha, rungs: [1, 2], eta: 3 }",
      "val: 500",
      "train_limit: 3500",
      "epochs: 2",
      "",
    ].join("\n");
    const files = ["s/x.yaml", "s/sep4k.yaml"];
    const read = (path: string) =>
      path === "s/sep4k.yaml" ? { text: base } : { problem: "no such file" };
    const seed = parseSweep(text, "s/x.yaml", "x", read);
    assert.ok(seed.sweep, seed.diagnostics.map(formatDiagnostic).join("\n"));
    for (let i = 0; i < CASES; i++) {
      const m = mutateText(text, rng);
      const label = `sweep case ${i}: ${JSON.stringify(m.slice(0, 400))}`;
      await expectClear(label, () => {
        const { sweep, diagnostics } = parseSweep(m, "s/x.yaml", "x", read);
        const errors = diagnostics.filter((d) => d.severity === "error");
        assert.ok(sweep ? errors.length === 0 : errors.length > 0, `${label}: ${diagnostics}`);
        for (const d of diagnostics) {
          const { file, line, col } = d.span;
          assert.ok(files.includes(file) && line >= 1 && col >= 1, `${label}: at ${file}:${line}`);
          assert.ok(/^[EW]\d{4}$/.test(d.code) && d.message !== "", `${label}: ${d.code}`);
          assert.doesNotMatch(formatDiagnostic(d), /\n\s+at /, `${label}: a stack`);
        }
      });
    }
  });

  const options = {
    epochs: 3,
    batchSize: 4,
    lr: 0.1,
    seed: 1,
    data: "mnist-data",
    out: dir,
    resume: false,
  };
  /** A run of `tiny` with train.ema, two epochs in. */
  const state: TrainingState = {
    spec: ir.name,
    epoch: 2,
    rng: [1, 2, 3, 4],
    weights: torchInitWeights(ir),
    optimizer: { type: "sgd", step: 7, slots: new Map() },
    dropout: {},
    options,
    metrics: {
      spec: ir.name,
      engine: "onnxruntime",
      backend: "onnx",
      options,
      trainExamples: 8,
      testExamples: 4,
      epochs: [],
    },
    ema: { decay: 0.9, updates: 14, weights: torchInitWeights(ir, 5) },
  };

  test("checkpoints with EMA (safetensors, training.json) through export and resume, the file named", async () => {
    const rng = new Rng(SEED + 9);
    const good = join(dir, "ema-good");
    writeCheckpoint(good, state);
    assert.deepEqual(readCheckpoint(good, {}), state);
    const work = join(dir, "ema-work");
    const victims = ["ema.safetensors", "ema.safetensors", "training.json", "weights.safetensors"];
    for (let i = 0; i < CASES; i++) {
      const name = victims[i % victims.length] as string;
      rmSync(work, { recursive: true, force: true });
      const c = join(work, "checkpoint");
      cpSync(good, c, { recursive: true });
      writeFileSync(join(c, name), mutate(readFileSync(join(good, name)), rng));
      const before = readdirSync(dir).sort();
      await expectNamed(`ema ${name} export case ${i}`, name, () =>
        exportCheckpointToOnnx(ir, c, join(work, "out", "m.onnx")),
      );
      await expectNamed(`ema ${name} resume case ${i}`, name, () => readCheckpoint(c, {}));
      assert.deepEqual(readdirSync(dir).sort(), before, `ema case ${i}: wrote outside`);
      const written = readdirSync(work).filter((f) => f !== "checkpoint" && f !== "out");
      assert.deepEqual(written, [], `ema case ${i}: wrote ${written}`);
    }
  });

  test("found while fuzzing: an ema.safetensors of other shapes is refused at resume, named", () => {
    // It was read unchecked: `train --resume` trained an epoch, then failed to build the
    // evaluation model from it with a stack trace ("onnx backend emitted no model").
    const c = join(dir, "ema-other");
    const other = new Map(
      [...state.weights].map(([name, t]) => [name, { ...t, shape: [...t.shape].reverse() }]),
    );
    writeCheckpoint(c, { ...state, ema: { decay: 0.9, updates: 14, weights: other } });
    assert.throws(
      () => readCheckpoint(c, {}),
      (err: Error) =>
        err instanceof UserError &&
        err.message ===
          `${join(c, "ema.safetensors")}: weight 1.weight has shape [784,10], the model needs [10,784]`,
    );
  });
});

describe("found by the fuzz test", () => {
  test("a JPEG whose scan uses Huffman tables it never defines: the file named, no internals", () => {
    const w = 16;
    const whole = Buffer.from(
      jpeg.encode({ width: w, height: w, data: new Uint8Array(4 * w * w).fill(200) }, 90).data,
    );
    // Every segment before the scan but the DHTs (FFC4); jpeg-js then reads a table of undefined.
    const parts = [whole.subarray(0, 2)];
    let at = 2;
    while (whole[at] === 0xff && whole[at + 1] !== 0xda) {
      const end = at + 2 + whole.readUInt16BE(at + 2);
      if (whole[at + 1] !== 0xc4) parts.push(whole.subarray(at, end));
      at = end;
    }
    parts.push(whole.subarray(at));
    assert.throws(
      () => decodeRgb(Buffer.concat(parts), "x.jpg"),
      (err: Error) =>
        err instanceof UserError &&
        err.message ===
          "x.jpg: not a readable JPEG image (corrupt data: a table or marker is missing or malformed)",
    );
  });
});
