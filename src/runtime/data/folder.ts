// The user's own images in torchvision's ImageFolder layout: ROOT/<class>/**/*.png|jpg|jpeg|pgm,
// classes in sorted folder-name order (a class's index is its position in that order). When ROOT
// holds `train/` and `test/` folders, those are the splits (with the same class folders);
// otherwise a seeded fifth of each class is held out as the test split, the same every run.
//
// Each image is decoded once per run as ImageFolder's loader does (PIL, converted to RGB), then
// made what `Compose([Grayscale(), Resize((h, w)), ToTensor()])` gives for a 1-channel spec, or
// `Compose([Resize((h, w)), ToTensor()])` for 3 channels: `resize.ts` reproduces PIL's bilinear
// resize and luma. Files with other extensions are skipped, as ImageFolder skips them, and counted
// in a warning; an image file that does not decode is an error naming it. Nothing outside ROOT is
// read: a symbolic link leading out of it, or a loop of links, is an error.
import { type Dirent, existsSync, readdirSync, realpathSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { UserError } from "../../errors.js";
import { readRegularFile } from "../../util/files.js";
import { Rng } from "../../util/rng.js";
import { decodeRgb, MAX_IMAGE_FILE_BYTES } from "../inference/image.js";
import { resizeBilinear, rgbToPlanes } from "./resize.js";
import type { ImageSplit, LoadedData } from "./split.js";

export const IMAGE_EXTENSIONS = [".png", ".jpg", ".jpeg", ".pgm"] as const;
/** At most this many image files in a folder dataset (every one is decoded into memory). */
export const MAX_FOLDER_IMAGES = 1_000_000;
/** At most this many bytes of decoded images in memory; beyond it train with `--target pytorch`. */
export const MAX_DATASET_BYTES = 4 * 1024 ** 3;
/** The share of each class held out as the test split when ROOT has no train/ and test/. */
export const HOLD_OUT = 0.2;
/** The seed of that hold-out (fixed: the same split for every run and every training seed). */
export const HOLD_OUT_SEED = 0;

export interface FolderOptions {
  channels: number;
  height: number;
  width: number;
  trainLimit?: number;
  testLimit?: number;
  train?: boolean;
  test?: boolean;
  /** Told of skipped files and progress (one line each). */
  log?: (line: string) => void;
}

interface Listing {
  classes: string[];
  /** Files per class index, sorted, as paths. */
  files: string[][];
  skipped: number;
}

const isImage = (name: string) => {
  const lower = name.toLowerCase();
  return IMAGE_EXTENSIONS.some((ext) => lower.endsWith(ext));
};

/** What a directory entry is, following a link only when it stays under `root`. */
function entryKind(path: string, entry: Dirent, root: string): "dir" | "file" | "other" {
  if (entry.isDirectory()) return "dir";
  if (entry.isFile()) return "file";
  if (!entry.isSymbolicLink()) return "other";
  let real: string;
  try {
    real = realpathSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ELOOP") throw new UserError(`${path}: a loop of symbolic links`);
    throw new UserError(`${path}: a broken symbolic link`);
  }
  if (real !== root && !real.startsWith(root + sep)) {
    throw new UserError(`${path}: a symbolic link out of the dataset folder (to ${real})`);
  }
  const stats = statSync(real);
  return stats.isDirectory() ? "dir" : stats.isFile() ? "file" : "other";
}

/**
 * Python's order of strings (by code point), which `sorted()` uses: JavaScript's `<` compares
 * UTF-16 code units, which puts a name beyond U+FFFF (an emoji) before one in U+E000..U+FFFF.
 * UTF-8's byte order is code-point order.
 */
function byCodePoint(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/**
 * The image files of `dir` and of every folder under it, one entry per folder: what `os.walk`
 * yields (ImageFolder then sorts those by folder path, `listClasses` too).
 */
function walk(
  dir: string,
  root: string,
  seen: Set<string>,
  out: { path: string; files: string[] }[],
  counts: { images: number; skipped: number },
) {
  const real = realpathSync(dir);
  if (seen.has(real)) throw new UserError(`${dir}: a loop of symbolic links (back to ${real})`);
  seen.add(real);
  const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
    byCodePoint(a.name, b.name),
  );
  const files: string[] = [];
  out.push({ path: dir, files });
  for (const entry of entries) {
    const path = join(dir, entry.name);
    const kind = entryKind(path, entry, root);
    if (kind === "dir") walk(path, root, seen, out, counts);
    else if (kind === "file" && isImage(entry.name)) {
      files.push(path);
      counts.images += 1;
      if (counts.images > MAX_FOLDER_IMAGES) {
        throw new UserError(
          `${root}: more than ${MAX_FOLDER_IMAGES} images; train a dataset this large with --target pytorch (train.py streams from disk)`,
        );
      }
    } else counts.skipped += 1;
  }
  seen.delete(real);
}

/**
 * A class folder's image files in ImageFolder's order, `sorted(os.walk(dir))`: the folder's own
 * files first (sorted), then each subfolder's, the subfolders sorted by path as strings, so
 * `sub-x/` comes before `sub/deep/` ("-" sorts before "/").
 */
function classFiles(dir: string, root: string, counts: { images: number; skipped: number }) {
  const folders: { path: string; files: string[] }[] = [];
  walk(dir, root, new Set(), folders, counts);
  return folders.sort((a, b) => byCodePoint(a.path, b.path)).flatMap((f) => f.files);
}

/** The class folders of `dir` and their image files. */
function listClasses(dir: string, root: string): Listing {
  const entries = readdirSync(dir, { withFileTypes: true });
  const classes = entries
    .filter((e) => entryKind(join(dir, e.name), e, root) === "dir")
    .map((e) => e.name)
    .sort(byCodePoint);
  const counts = { images: 0, skipped: 0 };
  const files = classes.map((name) => classFiles(join(dir, name), root, counts));
  return { classes, files, skipped: counts.skipped };
}

function checkClasses(dir: string, listing: Listing): void {
  if (listing.classes.length === 0) {
    throw new UserError(`${dir}: no class folders (expected ${dir}/<class>/<image>.png)`);
  }
  if (listing.classes.length === 1) {
    throw new UserError(
      `${dir}: one class folder (${listing.classes[0]}); a classifier needs at least 2`,
    );
  }
  if (listing.classes.length > 256) {
    throw new UserError(`${dir}: ${listing.classes.length} class folders; at most 256`);
  }
  const empty = listing.classes.filter((_, i) => listing.files[i]?.length === 0);
  if (empty.length > 0) {
    throw new UserError(
      `${dir}: no images (${IMAGE_EXTENSIONS.join(", ")}) in class folder(s) ${empty.join(", ")}`,
    );
  }
}

/** Decodes the listed files into one split, in class order then file order. */
function decodeSplit(
  items: { file: string; label: number }[],
  opts: FolderOptions,
  root: string,
): ImageSplit {
  const { channels, height, width } = opts;
  const size = channels * height * width;
  if (items.length * size > MAX_DATASET_BYTES) {
    throw new UserError(
      `${root}: ${items.length} images of ${channels}x${height}x${width} need ${(items.length * size) / 1024 ** 3} GiB in memory, over the ${MAX_DATASET_BYTES / 1024 ** 3} GiB limit; train it with --target pytorch (train.py streams from disk)`,
    );
  }
  const split: ImageSplit = {
    count: items.length,
    channels,
    rows: height,
    cols: width,
    images: new Uint8Array(items.length * size),
    labels: new Uint8Array(items.length),
  };
  items.forEach(({ file, label }, i) => {
    const shown = relative(".", file) || file;
    const bytes = readRegularFile(file, { maxBytes: MAX_IMAGE_FILE_BYTES, what: "an image" });
    const image = decodeRgb(bytes, shown);
    const planes = rgbToPlanes(image.data, image.width * image.height, channels === 1 ? 1 : 3);
    split.images.set(
      resizeBilinear(planes, channels, image.height, image.width, height, width),
      i * size,
    );
    split.labels[i] = label;
  });
  return split;
}

/** Seeded per-class hold-out: the last `HOLD_OUT` of each class's shuffled files are test. */
function holdOut(listing: Listing): {
  train: { file: string; label: number }[];
  test: { file: string; label: number }[];
} {
  const train: { file: string; label: number }[] = [];
  const test: { file: string; label: number }[] = [];
  const rng = new Rng(HOLD_OUT_SEED);
  listing.files.forEach((files, label) => {
    const order = rng.shuffle(Uint32Array.from(files.keys()));
    const held = files.length < 2 ? 0 : Math.max(1, Math.round(files.length * HOLD_OUT));
    const testIndex = new Set(Array.from(order.subarray(files.length - held)));
    files.forEach((file, i) => {
      (testIndex.has(i) ? test : train).push({ file, label });
    });
  });
  return { train, test };
}

const items = (listing: Listing) =>
  listing.files.flatMap((files, label) => files.map((file) => ({ file, label })));

export function loadImageFolder(dir: string, opts: FolderOptions): LoadedData {
  if (!existsSync(dir)) throw new UserError(`${dir}: no such folder`);
  if (!statSync(dir).isDirectory()) throw new UserError(`${dir}: not a folder`);
  const root = realpathSync(dir);
  const trainDir = join(dir, "train");
  const testDir = join(dir, "test");
  const split = existsSync(trainDir) && existsSync(testDir);
  let classNames: string[];
  let trainItems: { file: string; label: number }[];
  let testItems: { file: string; label: number }[];
  let skipped: number;
  if (split) {
    const train = listClasses(trainDir, root);
    const test = listClasses(testDir, root);
    checkClasses(trainDir, train);
    if (test.classes.join("\n") !== train.classes.join("\n")) {
      throw new UserError(
        `${testDir}: its class folders (${test.classes.join(", ")}) differ from ${trainDir}'s (${train.classes.join(", ")})`,
      );
    }
    classNames = train.classes;
    trainItems = items(train);
    testItems = items(test);
    skipped = train.skipped + test.skipped;
  } else {
    const listing = listClasses(dir, root);
    checkClasses(dir, listing);
    classNames = listing.classes;
    ({ train: trainItems, test: testItems } = holdOut(listing));
    skipped = listing.skipped;
  }
  if (skipped > 0) {
    opts.log?.(
      `warning: skipped ${skipped} file(s) under ${dir} that are not ${IMAGE_EXTENSIONS.join(", ")} images (as ImageFolder does)`,
    );
  }
  const take = (list: typeof trainItems, limit?: number) =>
    limit === undefined ? list : list.slice(0, limit);
  const none: typeof trainItems = [];
  const wanted = {
    train: opts.train === false ? none : take(trainItems, opts.trainLimit),
    test: opts.test === false ? none : take(testItems, opts.testLimit),
  };
  const started = Date.now();
  const train = decodeSplit(wanted.train, opts, root);
  const test = decodeSplit(wanted.test, opts, root);
  const count = wanted.train.length + wanted.test.length;
  if (count >= 1000) {
    opts.log?.(`decoded ${count} images in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  return {
    dir,
    ...(split ? {} : { testNote: `a seeded ${HOLD_OUT * 100}% of each class, held out` }),
    train,
    test,
    classNames,
  };
}
