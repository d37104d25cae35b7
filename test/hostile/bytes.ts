// Hostile bytes for the hostile suite and `npm run bench:hostile`: PNG files whose header lies
// about their data, decompression bombs, PGM and IDX headers that claim more than the file holds.
// Everything is built in memory from a few parameters, so a test says exactly what it feeds.
import { crc32, deflateSync, gzipSync } from "node:zlib";

export function pngChunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "latin1");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export interface PngParts {
  width: number;
  height: number;
  depth?: number;
  colorType?: number;
  interlace?: number;
  /** The compressed image data (one IDAT chunk). */
  idat: Uint8Array;
}

/** A PNG with the given header and IDAT, CRCs correct: only the sizes lie. */
export function rawPng(p: PngParts): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(p.width, 0);
  ihdr.writeUInt32BE(p.height, 4);
  ihdr[8] = p.depth ?? 8;
  ihdr[9] = p.colorType ?? 0;
  ihdr[12] = p.interlace ?? 0;
  return Buffer.concat([
    PNG_SIGNATURE,
    pngChunk("IHDR", ihdr),
    pngChunk("IDAT", p.idat),
    pngChunk("IEND", new Uint8Array(0)),
  ]);
}

/** Zeros deflated: `mb` MiB of inflated data in about mb KiB. */
export function zeroBomb(mb: number): Buffer {
  return deflateSync(Buffer.alloc(mb * 1024 * 1024), { level: 9 });
}

/** A well-formed 8-bit gray PNG of a white square on black (a "digit"), non-interlaced. */
export function squarePng(side: number): Buffer {
  const rows: Buffer[] = [];
  for (let y = 0; y < side; y++) {
    const row = Buffer.alloc(side + 1);
    for (let x = 0; x < side; x++) {
      const ink = x > side / 4 && x < (3 * side) / 4 && y > side / 4 && y < (3 * side) / 4;
      row[x + 1] = ink ? 255 : 0;
    }
    rows.push(row);
  }
  return rawPng({ width: side, height: side, idat: deflateSync(Buffer.concat(rows)) });
}

/** An IDX images file: header fields as given, `body` bytes after them, optionally gzipped. */
export function idxImages(count: number, rows: number, cols: number, body: Uint8Array): Buffer {
  const head = Buffer.alloc(16);
  head.writeUInt32BE(2051, 0);
  head.writeUInt32BE(count, 4);
  head.writeUInt32BE(rows, 8);
  head.writeUInt32BE(cols, 12);
  return Buffer.concat([head, body]);
}

export function idxLabels(count: number, body: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(2049, 0);
  head.writeUInt32BE(count, 4);
  return Buffer.concat([head, body]);
}

export const gzip = (bytes: Uint8Array): Buffer => gzipSync(bytes);
