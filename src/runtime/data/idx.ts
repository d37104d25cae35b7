// IDX files (the MNIST container format): a big-endian header, then unsigned bytes. Files may be
// gzipped (detected by the gzip magic bytes, whatever their name). Every check names the file, so
// a truncated download or a foreign file is a one-line `UserError`, never a crash later on.
import { gunzipSync } from "node:zlib";
import { UserError } from "../../errors.js";

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

/** The raw bytes of an IDX file, gunzipped when they carry the gzip magic. */
export function decompressIdx(bytes: Uint8Array, file: string): Uint8Array {
  if (!isGzip(bytes)) return bytes;
  try {
    return new Uint8Array(gunzipSync(bytes));
  } catch (err) {
    throw new UserError(`${file}: corrupt gzip data (${(err as Error).message})`);
  }
}

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
  const bytes = decompressIdx(raw, file);
  const view = header(bytes, file, 4, IDX_IMAGES_MAGIC, "images");
  const count = view.getUint32(4);
  const rows = view.getUint32(8);
  const cols = view.getUint32(12);
  if (rows === 0 || cols === 0) throw new UserError(`${file}: images of size ${rows}x${cols}`);
  checkLength(bytes, file, 16, count * rows * cols);
  return { count, rows, cols, pixels: bytes.subarray(16) };
}

export function parseIdxLabels(raw: Uint8Array, file: string): IdxLabels {
  const bytes = decompressIdx(raw, file);
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
