// Hostile class 1a: limits live in the decoders. Every case feeds bytes that lie about their size
// and asserts a one-line UserError, fast, before anything large is allocated — for PNG, PGM and
// (gzipped) IDX, through the same functions `predict`, `eval --data`, `train --data` and the
// server call.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { after, describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import { createGzip, deflateSync } from "node:zlib";
import { UserError } from "../../src/errors.js";
import { MAX_IDX_BYTES, parseIdxImages, parseIdxLabels } from "../../src/runtime/data/idx.js";
import { loadMnist, MNIST_FILES } from "../../src/runtime/data/mnist.js";
import {
  decodeImage,
  MAX_IMAGE_PIXELS,
  MAX_IMAGE_SIDE,
  readImage,
} from "../../src/runtime/inference/image.js";
import { preprocessImage } from "../../src/runtime/inference/preprocess.js";
import { gzip, idxImages, idxLabels, rawPng, squarePng, zeroBomb } from "./bytes.js";

const dir = mkdtempSync(join(tmpdir(), "mnistc-hostile-dec-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `f`, which must throw a UserError matching `pattern` within `ms`. */
function refusedFast(f: () => unknown, pattern: RegExp, ms = 200): void {
  const start = performance.now();
  assert.throws(f, (err: unknown) => err instanceof UserError && pattern.test(err.message));
  const took = performance.now() - start;
  assert.ok(took < ms, `took ${took.toFixed(1)} ms, expected under ${ms}`);
}

const bomb = zeroBomb(40); // 40 MiB of zeros in about 40 KiB

/** Gray 8-bit PNG rows (filter byte 0) with a diagonal stroke of ink. */
function inkRows(width: number, height: number): Buffer {
  const rows = Buffer.alloc((width + 1) * height);
  for (let y = 0; y < height; y++) rows[(width + 1) * y + 1 + (((y * width) / height) | 0)] = 255;
  return rows;
}

describe("PNG", () => {
  const cases: [string, Buffer, RegExp][] = [
    [
      "interlaced, header within the limit, data inflating to 40 MiB",
      rawPng({ width: 2048, height: 2048, interlace: 1, idat: bomb }),
      /inflates to more than the 4198144 bytes its 2048x2048 header declares/,
    ],
    [
      "a 1x1 header over a bomb",
      rawPng({ width: 1, height: 1, interlace: 1, idat: bomb }),
      /inflates to more than the 2 bytes its 1x1 header declares/,
    ],
    [
      "non-interlaced bomb",
      rawPng({ width: 64, height: 64, idat: bomb }),
      /inflates to more than the 4160 bytes/,
    ],
    [
      "a header declaring 100000x100000",
      rawPng({ width: 100000, height: 100000, idat: bomb }),
      /100000x100000; at most 4194304 pixels/,
    ],
    [
      "a header declaring 4097x1024 (one pixel row over the limit's area)",
      rawPng({ width: 4097, height: 1024, idat: bomb }),
      /4097x1024; at most/,
    ],
    [
      "16-bit RGBA 2048x2048 whose data is short",
      rawPng({ width: 2048, height: 2048, depth: 16, colorType: 6, idat: zeroBomb(1) }),
      /inflates to 1048576 bytes; its 2048x2048 header declares/,
    ],
    [
      "a tall PNG, 1x4194304: inside the pixel limit, but 4 M rows to decode (issue 23, item 11)",
      rawPng({ width: 1, height: 4194304, idat: deflateSync(Buffer.alloc(2 * 4194304)) }),
      /1x4194304; each side may be at most 8192 pixels/,
    ],
    [
      "a wide PNG, 4194304x1",
      rawPng({ width: 4194304, height: 1, idat: deflateSync(Buffer.alloc(4194305)) }),
      /4194304x1; each side may be at most 8192/,
    ],
    ["bad bit depth", rawPng({ width: 8, height: 8, depth: 3, idat: bomb }), /bit depth 3/],
    [
      "a chunk longer than the file",
      (() => {
        const png = rawPng({ width: 8, height: 8, idat: bomb });
        png.writeUInt32BE(0x7fffffff, 33); // the IDAT length
        return png;
      })(),
      /runs past the end/,
    ],
  ];
  for (const [name, bytes, pattern] of cases) {
    test(name, () => refusedFast(() => decodeImage(bytes, "x.png"), pattern));
  }

  test("the largest image accepted still decodes (2048x2048)", () => {
    const image = decodeImage(squarePng(2048), "big.png");
    assert.equal(image.width * image.height, MAX_IMAGE_PIXELS);
  });

  test("the longest side accepted (512x8192) decodes and preprocesses like a square", () => {
    const png = rawPng({
      width: 512,
      height: MAX_IMAGE_SIDE,
      idat: deflateSync(inkRows(512, 8192)),
    });
    const start = performance.now();
    const image = decodeImage(png, "tall.png");
    const digit = preprocessImage(image.data, image.width, image.height);
    const took = performance.now() - start;
    assert.equal(digit.length, 784);
    // A 2048x2048 takes about 0.3 s here; the 1x4194304 took 3.9 s before the side limit.
    assert.ok(took < 3000, `took ${took.toFixed(0)} ms`);
  });

  test("readImage (predict) refuses the same bomb from a file", async () => {
    const file = join(dir, "bomb.png");
    writeFileSync(file, rawPng({ width: 2048, height: 2048, interlace: 1, idat: bomb }));
    await assert.rejects(
      readImage(file),
      /bomb\.png: not a readable PNG image \(its data inflates/,
    );
  });
});

describe("PGM", () => {
  const cases: [string, string, RegExp][] = [
    ["P5 declaring 99999x99999", "P5 99999 99999 255\n\0\0", /99999x99999; at most 4194304/],
    [
      "P5 declaring 1x4194304",
      "P5 1 4194304 255\n\0\0",
      /1x4194304; each side may be at most 8192/,
    ],
    ["P5 declaring 2000x2000 with 2 bytes", "P5 2000 2000 255\n\0\0", /truncated \(2 of 4000000/],
    ["P2 declaring 2000x2000 with 3 pixels", "P2 2000 2000 255\n0 0 0", /cannot hold 4000000/],
    ["a 20-digit width", "P2 99999999999999999999 1 255\n0", /width has 20 digits/],
    ["a 16-bit P5 that is short", "P5 1000 1000 65535\n\0\0\0", /of 2000000 bytes/],
  ];
  for (const [name, text, pattern] of cases) {
    test(name, () => refusedFast(() => decodeImage(Buffer.from(text, "latin1"), "x.pgm"), pattern));
  }
});

describe("IDX", () => {
  test("a gzipped file that inflates past its header stops at the header's size", () => {
    const bytes = gzip(idxImages(1, 28, 28, Buffer.alloc(100 * 1024 * 1024)));
    refusedFast(
      () => parseIdxImages(bytes, "x.gz"),
      /decompresses to more than the 800 bytes its header declares/,
    );
  });
  test("a gzipped IDX is inflated once: memory is the declared size, not three times it", async () => {
    // 408,000 28x28 images of zeros (320 MB) in about 300 KB of gzip, parsed in a child process
    // that reports its peak RSS. Before: the inflated chunks, their concatenation and a copy of it
    // (3.2 GB for 1.37 M images).
    const count = 408_000;
    const file = join(dir, "many-images-idx3-ubyte.gz");
    const zeros = Buffer.alloc(784 * 1000);
    await pipeline(
      (function* () {
        yield idxImages(count, 28, 28, new Uint8Array(0));
        for (let i = 0; i < count / 1000; i++) yield zeros;
      })(),
      createGzip({ level: 1 }),
      createWriteStream(file),
    );
    const url = pathToFileURL(join(import.meta.dirname, "../../src/runtime/data/idx.js")).href;
    const child = spawnSync(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `import { readFileSync } from "node:fs";
         const { parseIdxImages } = await import(${JSON.stringify(url)});
         const before = process.resourceUsage().maxRSS;
         const images = parseIdxImages(readFileSync(${JSON.stringify(file)}), "f");
         console.log(JSON.stringify({ count: images.count, before, peak: process.resourceUsage().maxRSS }));`,
      ],
      { encoding: "utf8", timeout: 20_000 },
    );
    assert.equal(child.status, 0, child.stderr);
    const { count: parsed, before, peak } = JSON.parse(child.stdout) as Record<string, number>;
    assert.equal(parsed, count);
    const grew = ((peak ?? 0) - (before ?? 0)) * 1024;
    const declared = count * 784;
    assert.ok(
      grew < 1.4 * declared,
      `peak RSS grew by ${(grew / 1e6).toFixed(0)} MB for ${(declared / 1e6).toFixed(0)} MB of images`,
    );
  });

  test("a header declaring 4 billion images is refused before inflating", () => {
    const bytes = gzip(idxImages(0xffffffff, 28, 28, Buffer.alloc(16)));
    refusedFast(() => parseIdxImages(bytes, "x.gz"), /at most 1 GiB are accepted/);
    assert.equal(MAX_IDX_BYTES, 1024 ** 3);
  });
  test("labels: more bytes than the header declares, plain and gzipped", () => {
    const plain = idxLabels(2, Buffer.alloc(10));
    refusedFast(() => parseIdxLabels(plain, "l"), /8 unexpected bytes after the data/);
    refusedFast(() => parseIdxLabels(gzip(plain), "l.gz"), /more than the 10 bytes/);
  });
  test("fewer bytes than declared: truncated", () => {
    refusedFast(
      () => parseIdxImages(gzip(idxImages(3, 28, 28, Buffer.alloc(784))), "t.gz"),
      /truncated/,
    );
  });

  test("train --data / eval --data read through the same limits (a bomb in a data folder)", () => {
    const data = join(dir, "data");
    mkdirSync(data, { recursive: true });
    const write = (name: string, bytes: Uint8Array) => writeFileSync(join(data, name), bytes);
    write(
      `${MNIST_FILES.testImages}.gz`,
      gzip(idxImages(2, 28, 28, Buffer.alloc(50 * 1024 * 1024))),
    );
    write(MNIST_FILES.testLabels, idxLabels(2, Buffer.from([1, 2])));
    refusedFast(
      () => loadMnist({ dir: data, train: false }),
      /decompresses to more than the 1584 bytes/,
    );
  });

  test("eval --data DIR with only the two test files works", () => {
    const data = join(dir, "test-only");
    mkdirSync(data, { recursive: true });
    writeFileSync(join(data, MNIST_FILES.testImages), idxImages(2, 28, 28, Buffer.alloc(2 * 784)));
    writeFileSync(join(data, MNIST_FILES.testLabels), idxLabels(2, Buffer.from([3, 4])));
    const loaded = loadMnist({ dir: data, train: false });
    assert.equal(loaded.test.count, 2);
    assert.equal(loaded.train.count, 0);
  });
});
