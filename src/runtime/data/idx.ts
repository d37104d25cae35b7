// IDX files (the MNIST container format): a big-endian header, then unsigned bytes. Files may be
// gzipped (detected by the gzip magic bytes, whatever their name). Every check names the file, so
// a truncated download or a foreign file is a one-line `UserError`, never a crash later on.
//
// Limits, checked before anything large is allocated: the header is read first (from the first
// bytes of a gzipped file), the size it declares must be at most MAX_IDX_BYTES, and a gzipped file
// is inflated with that size as a hard stop: a file that decompresses to more than its header
// declares (a decompression bomb) is refused as soon as it passes it. Memory: the file's bytes plus
// the declared size, once (no copy).
import { gunzipSync, constants as zlibConstants } from "node:zlib";
import { UserError } from "../../errors.js";
import { formatBytes } from "../../util/files.js";

/** Largest decompressed IDX file accepted (MNIST's training images are 47 MB). */
export const MAX_IDX_BYTES = 1024 * 1024 * 1024;

/** Magic numbers: 0x0000 0x08 (unsigned byte) then the number of dimensions. */
export const IDX_IMAGES_MAGIC = 2051;
export const IDX_LABELS_MAGIC = 2049;

export interface IdxImages {
  count: number;
  rows: number;
  cols: number;
  /** count·rows·cols bytes, row-major, 0 = background. */
  pixels: Uint8Array;
}

export interface IdxLabels {
  count: number;
  labels: Uint8Array;
}

function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

function corrupt(file: string, err: unknown): UserError {
  return new UserError(`${file}: corrupt gzip data (${(err as Error).message})`);
}

/**
 * At least the first `need` decompressed bytes of a gzipped file (fewer only when the whole file
 * holds fewer), inflating only a short prefix of it: a header is read without inflating the rest.
 */
function gunzipHead(bytes: Uint8Array, need: number, file: string): Uint8Array {
  for (const prefix of [256, 4096, 65536]) {
    const input = bytes.subarray(0, Math.min(prefix, bytes.length));
    let out: Uint8Array;
    try {
      out = gunzipSync(input, { finishFlush: zlibConstants.Z_SYNC_FLUSH });
    } catch (err) {
      throw corrupt(file, err);
    }
    if (out.length >= need || input.length === bytes.length) return out;
  }
  throw new UserError(`${file}: no IDX header in the first 64 KiB of gzip data`);
}

/**
 * The raw bytes of an IDX file, gunzipped when they carry the gzip magic, never more than
 * `headerBytes + bodyBytes(header)` (what the header declares) and never more than MAX_IDX_BYTES.
 */
function idxBytes(
  raw: Uint8Array,
  file: string,
  words: number,
  magic: number,
  what: string,
  bodyBytes: (view: DataView) => number,
): Uint8Array {
  const gz = isGzip(raw);
  const head = gz ? gunzipHead(raw, 4 * words, file) : raw;
  const expected = 4 * words + bodyBytes(header(head, file, words, magic, what));
  if (expected > MAX_IDX_BYTES) {
    throw new UserError(
      `${file}: the header declares ${expected} bytes of data; at most ${formatBytes(MAX_IDX_BYTES)} are accepted`,
    );
  }
  if (!gz) return raw;
  try {
    // One output chunk one byte larger than the declared size: zlib inflates straight into it and
    // hands back a view of it, where its default 16 KiB chunks are concatenated at the end (twice
    // the size at the peak), and a file that inflates past the size stops with that one byte. The
    // Buffer is kept as it is (copying it into a new Uint8Array made a third copy: a 1 MB file
    // declaring 1.37 M images peaked at 3.2 GB).
    const limit = Math.max(1, expected);
    return gunzipSync(raw, { maxOutputLength: limit, chunkSize: Math.max(64, limit + 1) });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
      throw new UserError(
        `${file}: decompresses to more than the ${expected} bytes its header declares`,
      );
    }
    throw corrupt(file, err);
  }
}

const imagesBody = (view: DataView): number =>
  view.getUint32(4) * view.getUint32(8) * view.getUint32(12);
const labelsBody = (view: DataView): number => view.getUint32(4);

/** The header of `words` 32-bit words, after checking the magic number (a foreign file first). */
function header(
  bytes: Uint8Array,
  file: string,
  words: number,
  magic: number,
  what: string,
): DataView {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length >= 4 && view.getUint32(0) !== magic) {
    throw new UserError(
      `${file}: not an IDX ${what} file (magic number ${view.getUint32(0)}, expected ${magic})`,
    );
  }
  if (bytes.length < 4 * words) {
    throw new UserError(
      `${file}: truncated IDX header (${bytes.length} bytes, expected at least ${4 * words})`,
    );
  }
  return view;
}

function checkLength(bytes: Uint8Array, file: string, headerBytes: number, body: number): void {
  const expected = headerBytes + body;
  if (bytes.length < expected) {
    throw new UserError(
      `${file}: truncated (${bytes.length} bytes, header says ${expected}); download it again`,
    );
  }
  if (bytes.length > expected) {
    throw new UserError(`${file}: ${bytes.length - expected} unexpected bytes after the data`);
  }
}

export function parseIdxImages(raw: Uint8Array, file: string): IdxImages {
  const bytes = idxBytes(raw, file, 4, IDX_IMAGES_MAGIC, "images", imagesBody);
  const view = header(bytes, file, 4, IDX_IMAGES_MAGIC, "images");
  const count = view.getUint32(4);
  const rows = view.getUint32(8);
  const cols = view.getUint32(12);
  if (rows === 0 || cols === 0) throw new UserError(`${file}: images of size ${rows}x${cols}`);
  checkLength(bytes, file, 16, count * rows * cols);
  return { count, rows, cols, pixels: bytes.subarray(16) };
}

export function parseIdxLabels(raw: Uint8Array, file: string): IdxLabels {
  const bytes = idxBytes(raw, file, 2, IDX_LABELS_MAGIC, "labels", labelsBody);
  const view = header(bytes, file, 2, IDX_LABELS_MAGIC, "labels");
  const count = view.getUint32(4);
  checkLength(bytes, file, 8, count);
  return { count, labels: bytes.subarray(8) };
}

/** An IDX file's bytes (for tests and tools that write data sets). */
export function encodeIdxImages(images: IdxImages): Uint8Array {
  const out = new Uint8Array(16 + images.pixels.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, IDX_IMAGES_MAGIC);
  view.setUint32(4, images.count);
  view.setUint32(8, images.rows);
  view.setUint32(12, images.cols);
  out.set(images.pixels, 16);
  return out;
}

export function encodeIdxLabels(labels: IdxLabels): Uint8Array {
  const out = new Uint8Array(8 + labels.labels.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, IDX_LABELS_MAGIC);
  view.setUint32(4, labels.count);
  out.set(labels.labels, 8);
  return out;
}
