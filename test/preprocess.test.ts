import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { UserError } from "../src/errors.js";
import { packagePath } from "../src/paths.js";
import { loadMnist } from "../src/runtime/data/mnist.js";
import { decodeImage, readImage } from "../src/runtime/inference/image.js";
import {
  DIGIT_BOX,
  MNIST_SIDE,
  preprocessImage,
  resize,
} from "../src/runtime/inference/preprocess.js";
import {
  encodePgmP2,
  encodePgmP5,
  encodePng,
  fixtureFiles,
  SEVEN,
  sevenInk,
  toGray,
} from "./preprocess-helpers.js";

const fixtures = packagePath("test", "fixtures", "images");

/** Bounding box and center of mass of the nonzero pixels of a 28x28 image. */
function measure(img: Uint8Array) {
  let x0 = 99;
  let y0 = 99;
  let x1 = -1;
  let y1 = -1;
  let mass = 0;
  let mx = 0;
  let my = 0;
  for (let y = 0; y < MNIST_SIDE; y++) {
    for (let x = 0; x < MNIST_SIDE; x++) {
      const v = img[y * MNIST_SIDE + x] ?? 0;
      if (v === 0) continue;
      x0 = Math.min(x0, x);
      x1 = Math.max(x1, x);
      y0 = Math.min(y0, y);
      y1 = Math.max(y1, y);
      mass += v;
      mx += v * x;
      my += v * y;
    }
  }
  return {
    width: x1 - x0 + 1,
    height: y1 - y0 + 1,
    cx: mx / mass,
    cy: my / mass,
    max: Math.max(...img),
  };
}

function userErrorMatching(pattern: RegExp) {
  return (err: unknown) => err instanceof UserError && pattern.test(err.message);
}

describe("resize", () => {
  test("bilinear enlargement of [0, 255] to 4 samples", () => {
    assert.deepEqual(
      Array.from(resize(Float32Array.from([0, 255]), 2, 1, 4, 1)),
      [0, 63.75, 191.25, 255],
    );
  });
  test("area shrinking averages whole and partial pixels", () => {
    // 3 → 2: output 0 covers pixels [0, 1.5), output 1 covers [1.5, 3).
    const out = Array.from(resize(Float32Array.from([30, 60, 90]), 3, 1, 2, 1));
    assert.deepEqual(
      out.map((v) => Math.round(v * 1000) / 1000),
      [40, 80],
    );
  });
  test("a constant image stays constant both ways", () => {
    const flat = new Float32Array(35).fill(100);
    for (const [w, h] of [
      [2, 3],
      [20, 20],
      [5, 7],
    ] as const) {
      for (const v of resize(flat, 5, 7, w, h)) assert.ok(Math.abs(v - 100) < 1e-3);
    }
  });
});

describe("preprocessImage", () => {
  const ink = sevenInk();
  const { width, height } = SEVEN;

  test("a black-on-white 7 in 100x60 lands inverted, 20 high and centered in 28x28", () => {
    const out = preprocessImage(toGray(ink, true), width, height);
    assert.equal(out.length, 784);
    const m = measure(out);
    assert.equal(out[0], 0, "background is black");
    assert.equal(m.max, 255, "ink is white at full contrast");
    assert.equal(m.height, DIGIT_BOX, "the longer side is 20");
    assert.ok(m.width < DIGIT_BOX && m.width >= 12, `width ${m.width}`);
    assert.ok(Math.abs(m.cx - 14) <= 0.5, `center of mass x ${m.cx}`);
    assert.ok(Math.abs(m.cy - 14) <= 0.5, `center of mass y ${m.cy}`);
  });

  test("the same digit in either polarity gives the same 28x28 (to rounding)", () => {
    const a = preprocessImage(toGray(ink, true), width, height);
    const b = preprocessImage(toGray(ink, false), width, height);
    assert.ok(a.every((v, i) => Math.abs(v - (b[i] ?? 0)) <= 1));
  });

  test("a digit on gray paper is stretched to full contrast", () => {
    const paper = Uint8Array.from(ink, (a) => Math.round(200 - 120 * a));
    const out = preprocessImage(paper, width, height);
    assert.equal(out[0], 0);
    assert.equal(Math.max(...out), 255);
  });

  test("MNIST digits survive the round trip through paper (3x, inverted)", () => {
    const { test: split } = loadMnist({ trainLimit: 0, testLimit: 20 });
    for (let i = 0; i < 20; i++) {
      const original = split.images.subarray(i * 784, (i + 1) * 784);
      const side = 84;
      const paper = new Uint8Array(side * side);
      for (let y = 0; y < side; y++) {
        for (let x = 0; x < side; x++) {
          paper[y * side + x] = 255 - (original[Math.floor(y / 3) * 28 + Math.floor(x / 3)] ?? 0);
        }
      }
      const out = preprocessImage(paper, side, side);
      // Pearson correlation with the original: the same digit in (nearly) the same place.
      const mean = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v, 0) / a.length;
      const ma = mean(original);
      const mb = mean(out);
      let sab = 0;
      let saa = 0;
      let sbb = 0;
      for (let p = 0; p < 784; p++) {
        const a = (original[p] ?? 0) - ma;
        const b = (out[p] ?? 0) - mb;
        sab += a * b;
        saa += a * a;
        sbb += b * b;
      }
      const r = sab / Math.sqrt(saa * sbb);
      assert.ok(r > 0.98, `test image ${i}: correlation ${r.toFixed(3)}`);
    }
  });

  const errors: [string, () => unknown, RegExp][] = [
    [
      "0x0",
      () => preprocessImage(new Uint8Array(0), 0, 0, "x.png"),
      /x\.png: the image is empty \(0x0\)/,
    ],
    [
      "blank white",
      () => preprocessImage(new Uint8Array(100).fill(255), 10, 10, "w.png"),
      /w\.png: no digit found/,
    ],
    ["blank black", () => preprocessImage(new Uint8Array(100), 10, 10), /no digit found/],
    [
      "faint noise",
      () =>
        preprocessImage(
          Uint8Array.from({ length: 100 }, (_, i) => 250 - (i % 7)),
          10,
          10,
        ),
      /no digit found/,
    ],
    [
      "wrong pixel count",
      () => preprocessImage(new Uint8Array(5), 2, 2),
      /5 pixels for a 2x2 image/,
    ],
  ];
  for (const [name, run, pattern] of errors) {
    test(`error: ${name}`, () => assert.throws(run, userErrorMatching(pattern)));
  }
});

describe("decodeImage", () => {
  const ink = sevenInk();
  const { width, height } = SEVEN;
  const gray = toGray(ink, true);

  test("PGM P2 with comments, maxval 15", () => {
    const bytes = Buffer.from("P2\n# a comment\n3 2 # trailing comment\n15\n0 15 3\n 5 10\n15\n");
    const img = decodeImage(bytes, "t.pgm");
    assert.deepEqual([img.width, img.height], [3, 2]);
    assert.deepEqual(Array.from(img.data), [0, 255, 51, 85, 170, 255]);
  });

  test("PGM P5 8-bit and 16-bit (big-endian)", () => {
    const p5 = decodeImage(encodePgmP5([0, 128, 255, 7], 2, 2, 255), "a.pgm");
    assert.deepEqual(Array.from(p5.data), [0, 128, 255, 7]);
    const p16 = decodeImage(encodePgmP5([0, 1000, 65535, 257], 2, 2, 65535), "b.pgm");
    assert.deepEqual(
      Array.from(p16.data, (v) => Math.round(v * 100) / 100),
      [0, 3.89, 255, 1],
    );
  });

  test("PNG RGB, 16-bit gray, transparent RGBA, PGM: the same 7 gives the same 28x28", () => {
    const reference = preprocessImage(gray, width, height);
    const variants: [string, Uint8Array][] = [
      ["rgb.png", encodePng(gray, width, height, "rgb")],
      ["gray16.png", encodePng(toGray(ink, false), width, height, "gray16")],
      ["transparent.png", encodePng(gray, width, height, "transparent", ink)],
      ["p2.pgm", encodePgmP2(gray, width, height, 255)],
    ];
    for (const [name, bytes] of variants) {
      const img = decodeImage(bytes, name);
      assert.deepEqual([img.width, img.height], [width, height], name);
      const out = preprocessImage(img.data, img.width, img.height, name);
      const diff = out.reduce((m, v, i) => Math.max(m, Math.abs(v - (reference[i] ?? 0))), 0);
      assert.ok(diff <= 1, `${name}: differs by ${diff}`);
    }
  });

  const errors: [string, Uint8Array, RegExp][] = [
    ["text file", Buffer.from("hello world\n"), /x: not a PNG or PGM image/],
    ["empty file", new Uint8Array(0), /x: the file is empty/],
    ["0x0 PGM", Buffer.from("P5\n0 0\n255\n"), /x: the image is empty \(0x0\)/],
    [
      "truncated P5",
      Buffer.from("P5\n4 4\n255\nabc"),
      /x: PGM data is truncated \(3 of 16 bytes\)/,
    ],
    [
      "truncated P2",
      Buffer.from("P2\n2 2\n255\n1 2 3\n"),
      /x: PGM data is truncated or malformed at pixel 3/,
    ],
    [
      "P2 sample above maxval",
      Buffer.from("P2\n1 1\n15\n16\n"),
      /x: pixel 0 is 16, above maxval 15/,
    ],
    ["maxval 0", Buffer.from("P2\n1 1\n0\n0\n"), /maxval 0 is outside 1\.\.65535/],
    [
      "broken PNG",
      Buffer.from("\x89PNG\r\n\x1a\n\0\0\0\rIHDRjunk", "latin1"),
      /x: not a readable PNG image/,
    ],
  ];
  for (const [name, bytes, pattern] of errors) {
    test(`error: ${name}`, () =>
      assert.throws(() => decodeImage(bytes, "x"), userErrorMatching(pattern)));
  }

  test("readImage names a missing file", async () => {
    await assert.rejects(
      readImage("/nonexistent/d.png"),
      userErrorMatching(/\/nonexistent\/d\.png: no such file/),
    );
  });
});

describe("fixtures", () => {
  test("test/fixtures/images match their recipe (UPDATE_GOLDEN=1 rewrites them)", () => {
    const { test: split } = loadMnist({ trainLimit: 0, testLimit: 10 });
    const update = process.env.UPDATE_GOLDEN === "1" && process.env.CI !== "true";
    if (update) mkdirSync(fixtures, { recursive: true });
    for (const { name, bytes } of fixtureFiles(split)) {
      const file = join(fixtures, name);
      if (update) writeFileSync(file, bytes());
      assert.ok(existsSync(file), `${file} is missing: run with UPDATE_GOLDEN=1`);
      assert.deepEqual(new Uint8Array(readFileSync(file)), new Uint8Array(bytes()), name);
    }
  });
});
