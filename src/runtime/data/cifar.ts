// CIFAR-10's binary version, as torchvision's CIFAR10 gives it: data_batch_1.bin … data_batch_5.bin
// (training, in that order) and test_batch.bin, each a run of 3,073-byte records: the label byte,
// then 1,024 R, 1,024 G and 1,024 B bytes of a 32x32 image, row-major (already NCHW). Class names
// are the lines of batches.meta.txt. Every check names its file.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../../errors.js";
import { readRegularFile } from "../../util/files.js";
import { emptySplit, type ImageSplit, type LoadedData } from "./split.js";

export const CIFAR_SIDE = 32;
const IMAGE_BYTES = 3 * CIFAR_SIDE * CIFAR_SIDE;
const RECORD_BYTES = 1 + IMAGE_BYTES;
/** A batch file of the real set is 30,730,000 bytes; a larger one is refused before reading. */
export const MAX_CIFAR_FILE_BYTES = 256 * 1024 * 1024;

export const CIFAR_FILES = {
  train: [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`),
  test: ["test_batch.bin"],
  meta: "batches.meta.txt",
} as const;

export interface LoadCifarOptions {
  trainLimit?: number;
  testLimit?: number;
  train?: boolean;
  test?: boolean;
}

function readNames(dir: string): string[] {
  const file = join(dir, CIFAR_FILES.meta);
  if (!existsSync(file)) throw new UserError(`${dir}: missing ${CIFAR_FILES.meta} (class names)`);
  const text = new TextDecoder().decode(
    readRegularFile(file, { maxBytes: 1024 * 1024, what: "a class-name list" }),
  );
  const names = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
  if (names.length < 2) {
    throw new UserError(`${file}: ${names.length} class name(s); a classifier needs at least 2`);
  }
  if (names.length > 256) throw new UserError(`${file}: ${names.length} class names; at most 256`);
  return names;
}

function loadFiles(
  dir: string,
  files: readonly string[],
  limit: number | undefined,
  classes: number,
) {
  const parts: { file: string; bytes: Uint8Array }[] = [];
  let count = 0;
  for (const name of files) {
    if (limit !== undefined && count >= limit) break;
    const file = join(dir, name);
    if (!existsSync(file)) throw new UserError(`${dir}: missing ${name}`);
    const bytes = readRegularFile(file, { maxBytes: MAX_CIFAR_FILE_BYTES, what: "a CIFAR batch" });
    if (bytes.length === 0 || bytes.length % RECORD_BYTES !== 0) {
      throw new UserError(
        `${file}: ${bytes.length} bytes is not a whole number of ${RECORD_BYTES}-byte records (label + 3x32x32)`,
      );
    }
    parts.push({ file, bytes });
    count += bytes.length / RECORD_BYTES;
  }
  const total = limit === undefined ? count : Math.min(limit, count);
  const split: ImageSplit = {
    count: total,
    channels: 3,
    rows: CIFAR_SIDE,
    cols: CIFAR_SIDE,
    images: new Uint8Array(total * IMAGE_BYTES),
    labels: new Uint8Array(total),
  };
  let at = 0;
  for (const { file, bytes } of parts) {
    for (let r = 0; r < bytes.length / RECORD_BYTES && at < total; r++, at++) {
      const label = bytes[r * RECORD_BYTES] as number;
      if (label >= classes) {
        throw new UserError(
          `${file}: record ${r} has label ${label}, but ${CIFAR_FILES.meta} names ${classes} classes`,
        );
      }
      split.labels[at] = label;
      split.images.set(
        bytes.subarray(r * RECORD_BYTES + 1, (r + 1) * RECORD_BYTES),
        at * IMAGE_BYTES,
      );
    }
  }
  return split;
}

export function loadCifar10(dir: string, opts: LoadCifarOptions = {}): LoadedData {
  if (!existsSync(dir)) throw new UserError(`${dir}: no such folder`);
  const classNames = readNames(dir);
  const none = () => emptySplit(3, CIFAR_SIDE, CIFAR_SIDE);
  const train =
    opts.train === false
      ? none()
      : loadFiles(dir, CIFAR_FILES.train, opts.trainLimit, classNames.length);
  const test =
    opts.test === false
      ? none()
      : loadFiles(dir, CIFAR_FILES.test, opts.testLimit, classNames.length);
  return { dir, train, test, classNames };
}
