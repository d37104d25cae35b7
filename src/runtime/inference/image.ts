// Image files to pixels: PNG (pngjs: any color type and bit depth), PGM (P2 ASCII and P5 binary,
// maxval up to 65535) and, for datasets, JPEG (jpeg-js, pure JavaScript). `decodeImage` gives one
// luminance value per pixel for `predict`'s digit path; `decodeRgb` gives 8-bit RGB as PIL's
// `convert("RGB")` does (alpha dropped, grey replicated), what torchvision's ImageFolder reads.
//
// The limits live here, so `predict`, the server and any other caller get the same ones: an image
// may have at most MAX_IMAGE_PIXELS pixels, checked from the header before anything is allocated,
// and a PNG's compressed data may not inflate to more than its header's size says (so a small file
// cannot make the decoder inflate hundreds of megabytes: a decompression bomb stops at the limit).
import { inflateSync, constants as zlibConstants } from "node:zlib";
import jpeg from "jpeg-js";
import { PNG } from "pngjs";
import { UserError } from "../../errors.js";
import { readRegularFile } from "../../util/files.js";

/**
 * Largest image accepted, in pixels (2048x2048), whatever its shape. A 1 MB PNG can declare a far
 * larger image (zeros compress well); the limit is checked before decoding.
 */
export const MAX_IMAGE_PIXELS = 2048 * 2048;
/**
 * Longest side accepted. Decoding and preprocessing cost per row and per border pixel as well as
 * per pixel: a 1x4,194,304 PNG (inside MAX_IMAGE_PIXELS) took 2.2 s and 770 MB where a 2048x2048
 * takes 0.13 s. With both sides at most 8,192, the rows are at most 4x a square's.
 */
export const MAX_IMAGE_SIDE = 8192;
/** Largest image file read from disk (a 2048x2048 ASCII PGM of 16-bit values fits). */
export const MAX_IMAGE_FILE_BYTES = 64 * 1024 * 1024;

export interface GrayImage {
  width: number;
  height: number;
  /** Luminance 0..255 (fractional values kept from 16-bit and alpha-composited sources). */
  data: Float32Array;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function isPng(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && PNG_SIGNATURE.every((b, i) => bytes[i] === b);
}

function isPgm(bytes: Uint8Array): boolean {
  // "P2" or "P5" followed by whitespace.
  return (
    bytes.length >= 3 &&
    bytes[0] === 0x50 &&
    (bytes[1] === 0x32 || bytes[1] === 0x35) &&
    isSpace(bytes[2] ?? 0)
  );
}

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d || b === 0x0b || b === 0x0c;
}

function checkSize(width: number, height: number, file: string, kind: string): void {
  if (width <= 0 || height <= 0) {
    throw new UserError(`${file}: the image is empty (${width}x${height})`);
  }
  if (width * height > MAX_IMAGE_PIXELS) {
    throw new UserError(
      `${file}: the ${kind} image is ${width}x${height}; at most ${MAX_IMAGE_PIXELS} pixels (2048x2048) are accepted`,
    );
  }
  if (width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE) {
    throw new UserError(
      `${file}: the ${kind} image is ${width}x${height}; each side may be at most ${MAX_IMAGE_SIDE} pixels`,
    );
  }
}

/** Channels per PNG color type, and the bit depths each allows (PNG spec, table 11.1). */
const PNG_COLOR_TYPES: Record<number, { channels: number; depths: number[] }> = {
  0: { channels: 1, depths: [1, 2, 4, 8, 16] },
  2: { channels: 3, depths: [8, 16] },
  3: { channels: 1, depths: [1, 2, 4, 8] },
  4: { channels: 2, depths: [8, 16] },
  6: { channels: 4, depths: [8, 16] },
};

/** Bytes of filtered scanlines (one filter byte per row) of a w x h image, bpp bits per pixel. */
function scanlineBytes(width: number, height: number, bitsPerPixel: number): number {
  if (width === 0 || height === 0) return 0;
  return height * (1 + Math.ceil((width * bitsPerPixel) / 8));
}

/** The inflated size of a PNG's image data: one pass, or Adam7's seven passes when interlaced. */
function pngDataBytes(width: number, height: number, bpp: number, interlaced: boolean): number {
  if (!interlaced) return scanlineBytes(width, height, bpp);
  // Adam7: [x0, y0, dx, dy] per pass.
  const passes = [
    [0, 0, 8, 8],
    [4, 0, 8, 8],
    [0, 4, 4, 8],
    [2, 0, 4, 4],
    [0, 2, 2, 4],
    [1, 0, 2, 2],
    [0, 1, 1, 2],
  ] as const;
  let total = 0;
  for (const [x0, y0, dx, dy] of passes) {
    const w = Math.ceil(Math.max(0, width - x0) / dx);
    const h = Math.ceil(Math.max(0, height - y0) / dy);
    total += scanlineBytes(w, h, bpp);
  }
  return total;
}

/**
 * Checks a PNG's structure and sizes before pngjs allocates anything: IHDR first and well formed,
 * the pixel limit, every chunk inside the file, and the image data inflating to exactly the size
 * the header implies (inflation stops as soon as it would exceed it).
 */
function checkPng(bytes: Uint8Array, file: string): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bad = (why: string) => new UserError(`${file}: not a readable PNG image (${why})`);
  const type = (at: number) =>
    String.fromCharCode(bytes[at] ?? 0, bytes[at + 1] ?? 0, bytes[at + 2] ?? 0, bytes[at + 3] ?? 0);
  if (bytes.length < 8 + 12 + 13 || view.getUint32(8) !== 13 || type(12) !== "IHDR") {
    throw bad("it does not start with an IHDR header");
  }
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  const depth = bytes[24] ?? 0;
  const colorType = bytes[25] ?? 0;
  const interlace = bytes[28] ?? 0;
  const color = PNG_COLOR_TYPES[colorType];
  if (!color) throw bad(`color type ${colorType}`);
  if (!color.depths.includes(depth)) throw bad(`bit depth ${depth} with color type ${colorType}`);
  if ((bytes[26] ?? 0) !== 0 || (bytes[27] ?? 0) !== 0 || interlace > 1) {
    throw bad("unknown compression, filter or interlace method");
  }
  checkSize(width, height, file, "PNG");

  const idat: Uint8Array[] = [];
  let pos = 8;
  let ended = false;
  while (pos + 12 <= bytes.length) {
    const length = view.getUint32(pos);
    if (length > bytes.length - pos - 12) throw bad(`chunk ${type(pos + 4)} runs past the end`);
    const chunkType = type(pos + 4);
    if (chunkType === "IDAT") idat.push(bytes.subarray(pos + 8, pos + 8 + length));
    pos += 12 + length;
    if (chunkType === "IEND") {
      ended = true;
      break;
    }
  }
  if (idat.length === 0) throw bad("no image data");
  if (!ended) throw bad("truncated: no IEND chunk");
  const expected = pngDataBytes(width, height, depth * color.channels, interlace === 1);
  let inflated: Buffer;
  try {
    inflated = inflateSync(Buffer.concat(idat), {
      maxOutputLength: expected,
      finishFlush: zlibConstants.Z_SYNC_FLUSH,
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
      throw bad(
        `its data inflates to more than the ${expected} bytes its ${width}x${height} header declares`,
      );
    }
    throw bad(`corrupt compressed data: ${(err as Error).message}`);
  }
  if (inflated.length !== expected) {
    throw bad(
      `its data inflates to ${inflated.length} bytes; its ${width}x${height} header declares ${expected}`,
    );
  }
}

/** Rec. 601 luma, as PIL's "L" mode and most tools compute it. */
function luma(r: number, g: number, b: number): number {
  return 0.299 * r + 0.587 * g + 0.114 * b;
}

/**
 * Transparent pixels are composited on a background that contrasts with what is painted: a dark
 * stroke on a transparent canvas lands on white, a light one on black. Either way the strokes
 * stay visible as ink, whatever the drawing tool left in the transparent pixels' color.
 */
/** A PNG as 8-bit RGBA, after `checkPng`'s limits. */
function readPng(bytes: Uint8Array, file: string): PNG {
  checkPng(bytes, file);
  let png: PNG;
  try {
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (err) {
    throw new UserError(`${file}: not a readable PNG image (${(err as Error).message})`);
  }
  checkSize(png.width, png.height, file, "PNG");
  return png;
}

function decodePng(bytes: Uint8Array, file: string): GrayImage {
  const { width, height, data } = readPng(bytes, file);
  const count = width * height;
  let paintedLuma = 0;
  let paintedAlpha = 0;
  let transparent = false;
  for (let i = 0; i < count; i++) {
    const a = (data[4 * i + 3] ?? 255) / 255;
    if (a < 1) transparent = true;
    paintedLuma += a * luma(data[4 * i] ?? 0, data[4 * i + 1] ?? 0, data[4 * i + 2] ?? 0);
    paintedAlpha += a;
  }
  const background = paintedAlpha > 0 && paintedLuma / paintedAlpha > 127.5 ? 0 : 255;
  const gray = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const l = luma(data[4 * i] ?? 0, data[4 * i + 1] ?? 0, data[4 * i + 2] ?? 0);
    const a = transparent ? (data[4 * i + 3] ?? 255) / 255 : 1;
    gray[i] = a * l + (1 - a) * background;
  }
  return { width, height, data: gray };
}

/** Reads PGM header tokens, skipping whitespace and `#` comments. */
class PgmHeader {
  pos = 2;
  constructor(
    private readonly bytes: Uint8Array,
    private readonly file: string,
  ) {}

  int(what: string): number {
    const b = this.bytes;
    for (;;) {
      while (this.pos < b.length && isSpace(b[this.pos] ?? 0)) this.pos++;
      if (b[this.pos] !== 0x23) break;
      while (this.pos < b.length && b[this.pos] !== 0x0a && b[this.pos] !== 0x0d) this.pos++;
    }
    const start = this.pos;
    while (this.pos < b.length && (b[this.pos] ?? 0) >= 0x30 && (b[this.pos] ?? 0) <= 0x39) {
      this.pos++;
    }
    if (start === this.pos) throw new UserError(`${this.file}: bad PGM header (no ${what})`);
    // Nothing in a PGM needs more than 10 digits; a longer run is not a number we can use.
    if (this.pos - start > 10) {
      throw new UserError(`${this.file}: bad PGM header (${what} has ${this.pos - start} digits)`);
    }
    return Number(new TextDecoder().decode(b.subarray(start, this.pos)));
  }
}

function decodePgm(bytes: Uint8Array, file: string): GrayImage {
  const binary = bytes[1] === 0x35;
  const header = new PgmHeader(bytes, file);
  const width = header.int("width");
  const height = header.int("height");
  checkSize(width, height, file, "PGM");
  const maxval = header.int("maxval");
  if (maxval < 1 || maxval > 65535) {
    throw new UserError(`${file}: PGM maxval ${maxval} is outside 1..65535`);
  }
  const count = width * height;
  // Before allocating: the data must be able to hold `count` pixels (P5: 1 or 2 bytes each; P2:
  // at least a digit each), so a short file cannot declare a large image.
  const available = Math.max(0, bytes.length - header.pos - 1);
  const need = binary ? count * (maxval > 255 ? 2 : 1) : count;
  if (available < need) {
    throw new UserError(
      binary
        ? `${file}: PGM data is truncated (${available} of ${need} bytes)`
        : `${file}: PGM data is truncated (${available} bytes cannot hold ${count} pixels)`,
    );
  }
  const gray = new Float32Array(count);
  const scale = 255 / maxval;
  const sample = (v: number, i: number): number => {
    if (v > maxval) throw new UserError(`${file}: pixel ${i} is ${v}, above maxval ${maxval}`);
    return v * scale;
  };
  if (binary) {
    // Exactly one whitespace byte separates maxval from the raster; 2 bytes big-endian above 255.
    const start = header.pos + 1;
    const wide = maxval > 255;
    const need = count * (wide ? 2 : 1);
    if (bytes.length - start < need) {
      throw new UserError(
        `${file}: PGM data is truncated (${Math.max(0, bytes.length - start)} of ${need} bytes)`,
      );
    }
    for (let i = 0; i < count; i++) {
      const v = wide
        ? ((bytes[start + 2 * i] ?? 0) << 8) | (bytes[start + 2 * i + 1] ?? 0)
        : (bytes[start + i] ?? 0);
      gray[i] = sample(v, i);
    }
  } else {
    for (let i = 0; i < count; i++) {
      let v: number;
      try {
        v = header.int(`pixel ${i}`);
      } catch {
        throw new UserError(
          `${file}: PGM data is truncated or malformed at pixel ${i} of ${count}`,
        );
      }
      gray[i] = sample(v, i);
    }
  }
  return { width, height, data: gray };
}

/** Decode PNG or PGM bytes; `file` names the source in errors. */
export function decodeImage(bytes: Uint8Array, file: string): GrayImage {
  if (bytes.length === 0) throw new UserError(`${file}: the file is empty`);
  if (isPng(bytes)) return decodePng(bytes, file);
  if (isPgm(bytes)) return decodePgm(bytes, file);
  throw new UserError(`${file}: not a PNG or PGM image`);
}

/** Reads and decodes an image file; a FIFO, device or folder is refused, never read. */
export async function readImage(file: string): Promise<GrayImage> {
  const bytes = readRegularFile(file, { maxBytes: MAX_IMAGE_FILE_BYTES, what: "an image" });
  return decodeImage(bytes, file);
}

export interface RgbImage {
  width: number;
  height: number;
  /** 3 bytes per pixel, R G B, row-major. */
  data: Uint8Array;
}

function isJpeg(bytes: Uint8Array): boolean {
  return bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
}

/** The size a JPEG's first start-of-frame marker declares, read before decoding anything. */
function jpegSize(bytes: Uint8Array, file: string): { width: number; height: number } {
  let pos = 2;
  while (pos + 4 <= bytes.length) {
    if (bytes[pos] !== 0xff) break;
    const marker = bytes[pos + 1] as number;
    const length = ((bytes[pos + 2] as number) << 8) | (bytes[pos + 3] as number);
    // SOF0..SOF15 but DHT (C4), JPG (C8) and DAC (CC).
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (pos + 9 > bytes.length) break;
      return {
        height: ((bytes[pos + 5] as number) << 8) | (bytes[pos + 6] as number),
        width: ((bytes[pos + 7] as number) << 8) | (bytes[pos + 8] as number),
      };
    }
    pos += 2 + length;
  }
  throw new UserError(`${file}: not a readable JPEG image (no frame header)`);
}

/** RGBA bytes to RGB, dropping alpha as PIL's convert("RGB") does. */
function rgbaToRgb(rgba: Uint8Array, count: number): Uint8Array {
  const rgb = new Uint8Array(3 * count);
  for (let i = 0; i < count; i++) {
    rgb[3 * i] = rgba[4 * i] as number;
    rgb[3 * i + 1] = rgba[4 * i + 1] as number;
    rgb[3 * i + 2] = rgba[4 * i + 2] as number;
  }
  return rgb;
}

function decodeJpeg(bytes: Uint8Array, file: string): RgbImage {
  const { width, height } = jpegSize(bytes, file);
  checkSize(width, height, file, "JPEG");
  let decoded: { width: number; height: number; data: Uint8Array };
  try {
    decoded = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: true,
      // A truncated or corrupt file is an error naming it, not a half-grey picture.
      tolerantDecoding: false,
      maxResolutionInMP: MAX_IMAGE_PIXELS / 1e6,
      maxMemoryUsageInMB: 256,
    });
  } catch (err) {
    // jpeg-js's own checks throw an Error that says what is wrong; a TypeError or RangeError is
    // it tripping over data it did not check (a table a scan names but the file never defined).
    const why =
      err instanceof TypeError || err instanceof RangeError
        ? "corrupt data: a table or marker is missing or malformed"
        : (err as Error).message;
    throw new UserError(`${file}: not a readable JPEG image (${why})`);
  }
  checkSize(decoded.width, decoded.height, file, "JPEG");
  return {
    width: decoded.width,
    height: decoded.height,
    data: rgbaToRgb(decoded.data, decoded.width * decoded.height),
  };
}

/** PNG, JPEG or PGM bytes as 8-bit RGB; `file` names the source in errors. */
export function decodeRgb(bytes: Uint8Array, file: string): RgbImage {
  if (bytes.length === 0) throw new UserError(`${file}: the file is empty`);
  if (isPng(bytes)) {
    const png = readPng(bytes, file);
    return {
      width: png.width,
      height: png.height,
      data: rgbaToRgb(png.data, png.width * png.height),
    };
  }
  if (isJpeg(bytes)) return decodeJpeg(bytes, file);
  if (isPgm(bytes)) {
    const gray = decodePgm(bytes, file);
    const count = gray.width * gray.height;
    const data = new Uint8Array(3 * count);
    for (let i = 0; i < count; i++) {
      const v = Math.round(gray.data[i] as number);
      data[3 * i] = v;
      data[3 * i + 1] = v;
      data[3 * i + 2] = v;
    }
    return { width: gray.width, height: gray.height, data };
  }
  throw new UserError(`${file}: not a PNG, JPEG or PGM image`);
}
