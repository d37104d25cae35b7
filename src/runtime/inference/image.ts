// Image files to grayscale: PNG (pngjs: any color type and bit depth) and PGM (P2 ASCII and P5
// binary, maxval up to 65535). The result is one luminance value per pixel, 0..255, row-major.
import { readFile } from "node:fs/promises";
import { PNG } from "pngjs";
import { cannotRead, UserError } from "../../errors.js";

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

function checkSize(width: number, height: number, file: string): void {
  if (width <= 0 || height <= 0) {
    throw new UserError(`${file}: the image is empty (${width}x${height})`);
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
function decodePng(bytes: Uint8Array, file: string): GrayImage {
  let png: PNG;
  try {
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (err) {
    throw new UserError(`${file}: not a readable PNG image (${(err as Error).message})`);
  }
  const { width, height, data } = png;
  checkSize(width, height, file);
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
    return Number(new TextDecoder().decode(b.subarray(start, this.pos)));
  }
}

function decodePgm(bytes: Uint8Array, file: string): GrayImage {
  const binary = bytes[1] === 0x35;
  const header = new PgmHeader(bytes, file);
  const width = header.int("width");
  const height = header.int("height");
  const maxval = header.int("maxval");
  checkSize(width, height, file);
  if (maxval < 1 || maxval > 65535) {
    throw new UserError(`${file}: PGM maxval ${maxval} is outside 1..65535`);
  }
  const count = width * height;
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

export async function readImage(file: string): Promise<GrayImage> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw cannotRead(file, err, "an image");
  }
  return decodeImage(bytes, file);
}
