// The dataset table and its loaders: ImageFolder layouts (grey and RGB, PNG and JPEG), CIFAR-10's
// binary format, Fashion-MNIST when Debian's package is installed, PIL's resize and luma, the
// per-channel statistics, crop and flip, and every bad input a user can give a loader.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import jpeg from "jpeg-js";
import { PNG } from "pngjs";
import { DATASET_NAMES, DATASETS } from "../src/compiler/datasets.js";
import { compileSpec } from "../src/compiler/index.js";
import { UserError } from "../src/errors.js";
import { augmentImage } from "../src/runtime/data/augment.js";
import { loadCifar10 } from "../src/runtime/data/cifar.js";
import { loadImageFolder } from "../src/runtime/data/folder.js";
import { resizeBilinear, rgbToPlanes } from "../src/runtime/data/resize.js";
import { datasetDir, loadDataset } from "../src/runtime/data/sources.js";
import { channelStats, type ImageSplit } from "../src/runtime/data/split.js";
import { Rng } from "../src/util/rng.js";

const root = mkdtempSync(join(tmpdir(), "mnistc-datasets-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** An RGB PNG of `side`×`side` filled with one color. */
function solidPng(side: number, [r, g, b]: [number, number, number]): Buffer {
  const png = new PNG({ width: side, height: side });
  for (let i = 0; i < side * side; i++) png.data.set([r, g, b, 255], 4 * i);
  return PNG.sync.write(png);
}

function solidJpeg(side: number, [r, g, b]: [number, number, number]): Buffer {
  const data = Buffer.alloc(4 * side * side);
  for (let i = 0; i < side * side; i++) data.set([r, g, b, 255], 4 * i);
  return jpeg.encode({ width: side, height: side, data }, 100).data;
}

/** ROOT/<class>/<n>.png for each class and count. */
function folder(name: string, classes: Record<string, Buffer[]>): string {
  const dir = join(root, name);
  for (const [cls, files] of Object.entries(classes)) {
    mkdirSync(join(dir, cls), { recursive: true });
    files.forEach((bytes, i) => {
      const jpg = bytes[0] === 0xff;
      writeFileSync(join(dir, cls, `${String(i).padStart(3, "0")}.${jpg ? "jpg" : "png"}`), bytes);
    });
  }
  return dir;
}

function userError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UserError, `not a UserError: ${e}`);
    assert.match(e.message, pattern);
    return true;
  });
}

const RED: [number, number, number] = [255, 0, 0];
const GREEN: [number, number, number] = [0, 255, 0];
const BLUE: [number, number, number] = [0, 0, 255];

describe("the dataset table", () => {
  test("the schema accepts exactly the table's names", () => {
    for (const name of DATASET_NAMES) {
      const text = `input: { channels: ${DATASETS[name].channels[0]}, height: 32, width: 32 }\nclasses: 10\nlayers: [flatten, { linear: { out: 10 } }, log_softmax]\ndata: { dataset: ${name}, mean: [${new Array(DATASETS[name].channels[0]).fill(0.5).join(", ")}], std: [${new Array(DATASETS[name].channels[0]).fill(0.5).join(", ")}] }\n`;
      const { diagnostics } = compileSpec(text, "t.yaml");
      const codes = diagnostics.map((d) => d.code);
      assert.ok(!codes.includes("E0110"), `${name}: ${codes}`);
    }
    const { diagnostics } = compileSpec(
      "input: { channels: 1, height: 28, width: 28 }\nclasses: 10\nlayers: [flatten, { linear: { out: 10 } }, log_softmax]\ndata: { dataset: imagenet }\n",
      "t.yaml",
    );
    assert.ok(diagnostics.some((d) => d.code === "E0110"));
  });

  test("a fixed shape or class count that the spec contradicts is E0111 naming both sides", () => {
    const spec = (input: string, classes: number, data: string) =>
      compileSpec(
        `input: ${input}\nclasses: ${classes}\nlayers: [flatten, { linear: { out: ${classes} } }, log_softmax]\ndata: ${data}\n`,
        "t.yaml",
      ).diagnostics.filter((d) => d.code === "E0111");
    const cifar = spec("{ channels: 1, height: 32, width: 32 }", 10, "{ dataset: cifar10 }");
    assert.match(cifar[0]?.message ?? "", /input is 1x32x32, but cifar10 images are 3x32x32/);
    const fashion = spec("{ channels: 1, height: 28, width: 28 }", 5, "{ dataset: fashion-mnist }");
    assert.match(fashion[0]?.message ?? "", /classes is 5, but fashion-mnist has 10/);
    const grey4 = spec(
      "{ channels: 4, height: 16, width: 16 }",
      3,
      "{ dataset: folder, path: x, mean: [0, 0, 0, 0], std: [1, 1, 1, 1] }",
    );
    assert.match(grey4[0]?.message ?? "", /4 channel\(s\), but folder images are read with 1 or 3/);
    const meanLength = spec(
      "{ channels: 3, height: 16, width: 16 }",
      3,
      "{ dataset: folder, path: x, mean: [0.5], std: [0.5, 0.5, 0.5] }",
    );
    assert.match(meanLength[0]?.message ?? "", /data.mean has 1 value\(s\) but the input has 3/);
    // A folder of any size and class count passes check: the files decide at load.
    assert.deepEqual(spec("{ channels: 3, height: 16, width: 16 }", 7, "{ dataset: folder }"), []);
  });

  test("a missing default folder says how to install the dataset", () => {
    assert.equal(datasetDir({ dataset: "idx", path: "/x/y" }), "/x/y");
    userError(() => datasetDir({ dataset: "folder" }), /no default folder: give data.path/);
  });
});

describe("PIL's resize and luma", () => {
  test("bilinear 4 -> 2 averages with a widened triangle (PIL: 71 and 213)", () => {
    // Output 0: centre 1.0, support 2, taps 0..2 weighted 0.75, 0.75, 0.25 (normalized by 1.75):
    // (0·0.75 + 100·0.75 + 200·0.25) / 1.75 = 71.43 -> 71. Output 1: taps 1..3 weighted 0.25,
    // 0.75, 0.75: (100·0.25 + 200·0.75 + 255·0.75) / 1.75 = 209.3 -> 209.
    const out = resizeBilinear(Uint8Array.from([0, 100, 200, 255]), 1, 1, 4, 1, 2);
    assert.deepEqual([...out], [71, 209]);
  });

  test("enlarging interpolates; the same size copies", () => {
    // 2 -> 4: centres 0.25, 0.75, 1.25, 1.75 between samples at 0.5 and 1.5.
    assert.deepEqual(
      [...resizeBilinear(Uint8Array.from([0, 200]), 1, 1, 2, 1, 4)],
      [0, 50, 150, 200],
    );
    const same = Uint8Array.from([1, 2, 3, 4]);
    assert.deepEqual([...resizeBilinear(same, 1, 2, 2, 2, 2)], [1, 2, 3, 4]);
  });

  test("luma is ITU-R 601-2 in PIL's fixed point (red 76, green 150, blue 29)", () => {
    const rgb = Uint8Array.from([...RED, ...GREEN, ...BLUE, 255, 255, 255]);
    assert.deepEqual([...rgbToPlanes(rgb, 4, 1)], [76, 150, 29, 255]);
    assert.deepEqual([...rgbToPlanes(rgb, 4, 3)], [255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255]);
  });
});

describe("ImageFolder", () => {
  const rgb = folder("rgb", {
    blue: [solidPng(4, BLUE), solidJpeg(4, BLUE), solidPng(4, BLUE)],
    red: [solidPng(4, RED), solidPng(4, RED), solidPng(4, RED)],
    green: [solidPng(8, GREEN), solidPng(8, GREEN), solidPng(8, GREEN)],
  });
  writeFileSync(join(rgb, "red", "notes.txt"), "not an image\n");

  test("classes in sorted order, RGB planes, resized, a seeded fifth held out", () => {
    const lines: string[] = [];
    const data = loadImageFolder(rgb, {
      channels: 3,
      height: 4,
      width: 4,
      log: (l) => lines.push(l),
    });
    assert.deepEqual(data.classNames, ["blue", "green", "red"]);
    // Of 3 images per class, round(3 · 0.2) = 1 is held out.
    assert.equal(data.train.count, 6);
    assert.equal(data.test.count, 3);
    assert.deepEqual([...data.train.labels], [0, 0, 1, 1, 2, 2]);
    assert.match(lines.join("\n"), /skipped 1 file\(s\)/);
    // Every image is its class's color in every pixel: green's 8x8 resized to 4x4 too.
    const plane = 16;
    for (let i = 0; i < data.train.count; i++) {
      const label = data.train.labels[i] as number;
      const color = [BLUE, GREEN, RED][label] as number[];
      for (let c = 0; c < 3; c++) {
        const start = i * 3 * plane + c * plane;
        const values = [...data.train.images.subarray(start, start + plane)];
        // A JPEG of a flat color decodes within a level or two of it.
        assert.ok(
          values.every((v) => Math.abs(v - (color[c] as number)) <= 2),
          `${i}/${c}: ${values}`,
        );
      }
    }
    // The hold-out is the same every time.
    const again = loadImageFolder(rgb, { channels: 3, height: 4, width: 4 });
    assert.deepEqual(again.test.labels, data.test.labels);
    assert.deepEqual(again.test.images, data.test.images);
  });

  test("grey: PIL's convert('L') of each color", () => {
    const data = loadImageFolder(rgb, { channels: 1, height: 2, width: 2 });
    const red = data.train.labels.indexOf(2);
    assert.deepEqual([...data.train.images.subarray(red * 4, red * 4 + 4)], [76, 76, 76, 76]);
  });

  test("train/ and test/ folders are the splits", () => {
    const split = join(root, "split");
    for (const part of ["train", "test"]) {
      for (const [cls, color] of [
        ["a", RED],
        ["b", GREEN],
      ] as const) {
        mkdirSync(join(split, part, cls), { recursive: true });
        writeFileSync(join(split, part, cls, "0.png"), solidPng(2, color));
      }
    }
    const data = loadImageFolder(split, { channels: 3, height: 2, width: 2 });
    assert.equal(data.testNote, undefined);
    assert.equal(data.train.count, 2);
    assert.equal(data.test.count, 2);
    assert.deepEqual(data.classNames, ["a", "b"]);
  });

  test("ImageFolder's order: names by code point, sorted(os.walk()) within a class", () => {
    // Python sorts by code point: U+FF5A before U+1F600 (JavaScript's `<` puts the emoji's
    // surrogate pair first). A class folder's own files come first, then its subfolders sorted
    // by path: "sub", "sub-x", "sub/deep" ("-" is 0x2D, "/" 0x2F), not depth first.
    const order = join(root, "order");
    const white: [number, number, number] = [255, 255, 255];
    const files: [string, [number, number, number]][] = [
      ["z.png", RED],
      ["sub/b.png", GREEN],
      ["sub/deep/c.png", BLUE],
      ["sub-x/d.png", white],
    ];
    for (const part of ["train", "test"]) {
      for (const cls of ["\u{1F600}", "\uFF5A"]) {
        for (const [file, color] of files) {
          mkdirSync(join(order, part, cls, file, ".."), { recursive: true });
          writeFileSync(join(order, part, cls, file), solidPng(1, color));
        }
      }
    }
    const data = loadImageFolder(order, { channels: 3, height: 1, width: 1 });
    assert.deepEqual(data.classNames, ["\uFF5A", "\u{1F600}"]);
    assert.deepEqual([...data.train.labels], [0, 0, 0, 0, 1, 1, 1, 1]);
    assert.deepEqual([...data.train.images.subarray(0, 12)], [...RED, ...GREEN, ...white, ...BLUE]);
  });

  test("a spec whose classes disagree with the folders is an error naming both", () => {
    userError(
      () =>
        loadDataset(
          {
            dataset: "folder",
            path: rgb,
            preprocess: "resize",
            mean: [0.5, 0.5, 0.5],
            std: [1, 1, 1],
          },
          { input: { channels: 3, height: 4, width: 4 }, classes: 5 },
          "spec t",
        ),
      /spec t: classes is 5, but .*rgb has 3 \(blue, green, red\)/,
    );
  });

  test("normalization absent: computed per channel from the training split", () => {
    const data = loadDataset(
      { dataset: "folder", path: rgb, preprocess: "resize" },
      { input: { channels: 3, height: 4, width: 4 }, classes: 3 },
      "spec t",
    );
    assert.equal(data.computed, true);
    // Two images of each color: each channel is 255 in a third of the pixels.
    for (const m of data.mean) assert.ok(Math.abs(m - 1 / 3) < 0.01, `${data.mean}`);
    for (const s of data.std) assert.ok(Math.abs(s - Math.sqrt(2) / 3) < 0.01, `${data.std}`);
  });

  const bad = (name: string, make: (dir: string) => void, pattern: RegExp) =>
    test(`bad input: ${name}`, () => {
      const dir = join(root, `bad-${name.replace(/\W+/g, "-")}`);
      mkdirSync(dir, { recursive: true });
      make(dir);
      userError(() => loadImageFolder(dir, { channels: 3, height: 4, width: 4 }), pattern);
    });
  const cls = (dir: string, name: string, files: Record<string, Buffer | string>) => {
    mkdirSync(join(dir, name), { recursive: true });
    for (const [file, bytes] of Object.entries(files)) writeFileSync(join(dir, name, file), bytes);
  };
  bad("no class folders", () => {}, /no class folders/);
  bad(
    "one class",
    (d) => cls(d, "only", { "a.png": solidPng(2, RED) }),
    /one class folder \(only\)/,
  );
  bad(
    "a class without images",
    (d) => {
      cls(d, "a", { "a.png": solidPng(2, RED) });
      cls(d, "b", { "readme.txt": "x" });
    },
    /no images .* in class folder\(s\) b/,
  );
  bad(
    "a corrupt PNG",
    (d) => {
      cls(d, "a", { "a.png": solidPng(2, RED) });
      cls(d, "b", { "broken.png": solidPng(2, RED).subarray(0, 40) });
    },
    /broken\.png: not a readable PNG/,
  );
  bad(
    "a truncated JPEG",
    (d) => {
      cls(d, "a", { "a.png": solidPng(2, RED) });
      cls(d, "b", { "cut.jpg": solidJpeg(16, RED).subarray(0, 200) });
    },
    /cut\.jpg: not a readable JPEG/,
  );
  bad(
    "a text file named .png",
    (d) => {
      cls(d, "a", { "a.png": solidPng(2, RED) });
      cls(d, "b", { "b.png": "hello" });
    },
    /b\.png: not a PNG, JPEG or PGM image/,
  );
  bad(
    "a link out of the folder",
    (d) => {
      cls(d, "a", { "a.png": solidPng(2, RED) });
      symlinkSync(root, join(d, "b"));
    },
    /a symbolic link out of the dataset folder/,
  );
  bad(
    "a loop of links",
    (d) => {
      cls(d, "a", { "a.png": solidPng(2, RED) });
      symlinkSync(".", join(d, "a", "again"));
    },
    /a loop of symbolic links/,
  );
});

describe("CIFAR-10's binary format", () => {
  const dir = join(root, "cifar");
  mkdirSync(dir);
  /** `n` records, record i labelled i % 3 with R = i, G = 100 + i, B = 200 + i everywhere. */
  const batch = (n: number, offset: number) => {
    const out = Buffer.alloc(n * 3073);
    for (let i = 0; i < n; i++) {
      const at = i * 3073;
      out[at] = (offset + i) % 3;
      out.fill(offset + i, at + 1, at + 1025);
      out.fill(100 + offset + i, at + 1025, at + 2049);
      out.fill(200 + offset + i, at + 2049, at + 3073);
    }
    return out;
  };
  for (let f = 1; f <= 5; f++)
    writeFileSync(join(dir, `data_batch_${f}.bin`), batch(2, 2 * (f - 1)));
  writeFileSync(join(dir, "test_batch.bin"), batch(3, 40));
  writeFileSync(join(dir, "batches.meta.txt"), "cat\ndog\nship\n\n");

  test("records in file order, planes R G B, names from batches.meta.txt", () => {
    const data = loadCifar10(dir);
    assert.deepEqual(data.classNames, ["cat", "dog", "ship"]);
    assert.equal(data.train.count, 10);
    assert.equal(data.test.count, 3);
    assert.deepEqual([...data.train.labels], [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]);
    const image = (i: number) => data.train.images.subarray(i * 3072, (i + 1) * 3072);
    assert.deepEqual(
      [image(7)[0], image(7)[1024], image(7)[2048], image(7)[3071]],
      [7, 107, 207, 207],
    );
    assert.equal(data.train.channels, 3);
  });

  test("bad files: a length that is no whole number of records, a label past the names", () => {
    const broken = join(root, "cifar-broken");
    mkdirSync(broken);
    for (let f = 1; f <= 5; f++) writeFileSync(join(broken, `data_batch_${f}.bin`), batch(1, 0));
    writeFileSync(join(broken, "test_batch.bin"), batch(1, 0).subarray(0, 3000));
    writeFileSync(join(broken, "batches.meta.txt"), "a\nb\nc\n");
    userError(
      () => loadCifar10(broken),
      /test_batch\.bin: 3000 bytes is not a whole number of 3073-byte records/,
    );
    writeFileSync(join(broken, "test_batch.bin"), batch(1, 0));
    writeFileSync(join(broken, "batches.meta.txt"), "a\nb\n");
    writeFileSync(join(broken, "data_batch_1.bin"), batch(3, 0));
    userError(
      () => loadCifar10(broken),
      /record 2 has label 2, but batches\.meta\.txt names 2 classes/,
    );
  });
});

describe("augmentation: crop and flip (torchvision's RandomCrop, RandomHorizontalFlip)", () => {
  const split: ImageSplit = {
    count: 1,
    channels: 2,
    rows: 2,
    cols: 3,
    images: Uint8Array.from([1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16]),
    labels: Uint8Array.from([0]),
  };
  const recipe = { rotate: 0, translate: 0, scale: [1, 1] as [number, number] };

  test("a flip mirrors every channel the same way", () => {
    // Find a seed whose single draw flips.
    let seed = 0;
    while (new Rng(seed).next() >= 0.5) seed++;
    const out = new Float32Array(12);
    augmentImage(split, 0, { ...recipe, hflip: true }, new Rng(seed), out);
    assert.deepEqual([...out], [3, 2, 1, 6, 5, 4, 13, 12, 11, 16, 15, 14]);
  });

  test("a crop shifts in the zero padding by the drawn offsets", () => {
    const rng = new Rng(5);
    const probe = new Rng(5);
    const top = probe.int(3) - 1;
    const left = probe.int(3) - 1;
    const out = new Float32Array(12);
    augmentImage(split, 0, { ...recipe, crop: 1 }, rng, out);
    for (let c = 0; c < 2; c++) {
      for (let y = 0; y < 2; y++) {
        for (let x = 0; x < 3; x++) {
          const sy = y + top;
          const sx = x + left;
          const inside = sy >= 0 && sy < 2 && sx >= 0 && sx < 3;
          const expected = inside ? (split.images[c * 6 + sy * 3 + sx] as number) : 0;
          assert.equal(
            out[c * 6 + y * 3 + x],
            expected,
            `c${c} y${y} x${x} (top ${top}, left ${left})`,
          );
        }
      }
    }
  });
});

describe("per-channel statistics", () => {
  test("mean and population std of x/255 per channel", () => {
    const split: ImageSplit = {
      count: 2,
      channels: 2,
      rows: 1,
      cols: 2,
      // channel 0: 0, 255, 0, 255 -> mean 0.5, std 0.5; channel 1: all 51 -> 0.2, flat -> 1.
      images: Uint8Array.from([0, 255, 51, 51, 0, 255, 51, 51]),
      labels: Uint8Array.from([0, 1]),
    };
    assert.deepEqual(channelStats(split), { mean: [0.5, 0.2], std: [0.5, 1] });
  });
});

describe("Fashion-MNIST (Debian's dataset-fashion-mnist)", () => {
  const installed = (() => {
    try {
      datasetDir({ dataset: "fashion-mnist" });
      return true;
    } catch {
      return false;
    }
  })();
  test("60,000 and 10,000 images, the table's class names and normalization", {
    skip: !installed && "not installed",
  }, () => {
    const data = loadDataset(
      { dataset: "fashion-mnist", preprocess: "resize", mean: [0.286], std: [0.353] },
      { input: { channels: 1, height: 28, width: 28 }, classes: 10 },
      "spec t",
    );
    assert.equal(data.train.count, 60000);
    assert.equal(data.test.count, 10000);
    assert.equal(data.classNames[9], "Ankle boot");
    // The table's mean/std are the training split's, rounded.
    const stats = channelStats(data.train);
    assert.ok(Math.abs((stats.mean[0] as number) - 0.286) < 5e-4, `${stats.mean}`);
    assert.ok(Math.abs((stats.std[0] as number) - 0.353) < 5e-4, `${stats.std}`);
  });
});
