// safetensors (the format of Hugging Face's `safetensors` package, which PyTorch users save
// state_dicts in): an 8-byte little-endian header length N, N bytes of JSON
// `{"__metadata__": {str: str}, "<name>": {"dtype", "shape", "data_offsets": [begin, end]}, ...}`
// (padded with spaces), then the tensors' bytes, little-endian, row-major, offsets relative to the
// end of the header. No npm package reads it offline and is kept up (`safetensors` on npm is an
// abandoned 0.0.1; `@huggingface/hub` parses headers fetched from the Hub), so this is the format,
// read with every bound checked as the reference (Rust) loader checks it: header size and limit,
// JSON shape, known dtypes, byte sizes that match the shapes, offsets inside the buffer, and
// tensors that tile the buffer exactly (no gap, no overlap, nothing after). Pure: bytes in and out.

/** What the reference loader refuses above (100 MB): a header is names and shapes, never big. */
export const SAFETENSORS_MAX_HEADER = 100_000_000;

/** Bytes per element of each dtype safetensors defines. */
export const SAFETENSORS_DTYPES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
} as const;
export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPES;

export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** The tensor's bytes (a view into the file's bytes). */
  bytes: Uint8Array;
}

export interface SafetensorsFile {
  metadata: Record<string, string>;
  /** In the order of their offsets in the file. */
  tensors: SafetensorsEntry[];
}

/** A malformed file; the message says what is wrong without the file name (callers add it). */
export class SafetensorsError extends Error {
  override name = "SafetensorsError";
}

const isDtype = (v: unknown): v is SafetensorsDtype =>
  typeof v === "string" && Object.hasOwn(SAFETENSORS_DTYPES, v);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** Parses and checks a whole safetensors file. Throws `SafetensorsError`. */
export function parseSafetensors(bytes: Uint8Array): SafetensorsFile {
  if (bytes.length < 8) {
    throw new SafetensorsError(
      `not a safetensors file: ${bytes.length} bytes, shorter than the 8-byte header length`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = view.getBigUint64(0, true);
  if (length > BigInt(SAFETENSORS_MAX_HEADER)) {
    throw new SafetensorsError(
      `not a safetensors file: header length ${length} is over the ${SAFETENSORS_MAX_HEADER}-byte limit`,
    );
  }
  const headerLength = Number(length);
  if (8 + headerLength > bytes.length) {
    throw new SafetensorsError(
      `truncated: the header is ${headerLength} bytes but the file has ${bytes.length - 8} after the length`,
    );
  }
  let header: unknown;
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(
      bytes.subarray(8, 8 + headerLength),
    );
    if (!text.startsWith("{")) throw new Error("it does not start with {");
    header = JSON.parse(text);
  } catch (err) {
    throw new SafetensorsError(
      `not a safetensors file: the header is not a JSON object (${(err as Error).message})`,
    );
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    throw new SafetensorsError("not a safetensors file: the header is not a JSON object");
  }
  const buffer = bytes.subarray(8 + headerLength);
  const metadata: Record<string, string> = {};
  const placed: { entry: SafetensorsEntry; begin: number; end: number }[] = [];
  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (value === null || typeof value !== "object" || Array.isArray(value)) {
        throw new SafetensorsError("__metadata__ is not an object of strings");
      }
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== "string") throw new SafetensorsError(`__metadata__.${k} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const info = (value ?? {}) as Record<string, unknown>;
    const { dtype, shape, data_offsets: offsets } = info;
    if (!isDtype(dtype)) {
      throw new SafetensorsError(`tensor ${name}: unknown dtype ${JSON.stringify(dtype)}`);
    }
    if (!Array.isArray(shape) || !shape.every(isCount)) {
      throw new SafetensorsError(
        `tensor ${name}: shape ${JSON.stringify(shape)} is not a list of sizes`,
      );
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
      throw new SafetensorsError(
        `tensor ${name}: data_offsets ${JSON.stringify(offsets)} is not [begin, end]`,
      );
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end || end > buffer.length) {
      throw new SafetensorsError(
        `tensor ${name}: data_offsets [${begin}, ${end}] lie outside the ${buffer.length}-byte data`,
      );
    }
    const elements = (shape as number[]).reduce((a, b) => a * b, 1);
    const expected = elements * SAFETENSORS_DTYPES[dtype];
    if (end - begin !== expected) {
      throw new SafetensorsError(
        `tensor ${name}: ${end - begin} bytes for ${dtype} [${(shape as number[]).join(", ")}], which needs ${expected}`,
      );
    }
    placed.push({
      entry: { name, dtype, shape: [...(shape as number[])], bytes: buffer.subarray(begin, end) },
      begin,
      end,
    });
  }
  placed.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const { entry, begin, end } of placed) {
    if (begin !== at) {
      throw new SafetensorsError(
        begin < at
          ? `tensor ${entry.name}: its bytes [${begin}, ${end}] overlap another tensor's`
          : `tensor ${entry.name}: ${begin - at} bytes before it belong to no tensor`,
      );
    }
    at = end;
  }
  if (at !== buffer.length) {
    throw new SafetensorsError(`${buffer.length - at} bytes after the last tensor belong to none`);
  }
  return { metadata, tensors: placed.map((p) => p.entry) };
}

/** IEEE half precision to a number. */
function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** The floating-point dtypes `toFloat32` converts (F32 exactly; the others as float32 rounds). */
export const FLOAT_DTYPES: readonly SafetensorsDtype[] = ["F32", "F64", "F16", "BF16"];

/** A float tensor's values as float32 (copied, so aligned and independent of the file). */
export function toFloat32(entry: SafetensorsEntry): Float32Array {
  const { bytes, dtype } = entry;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = bytes.length / SAFETENSORS_DTYPES[dtype];
  const out = new Float32Array(size);
  switch (dtype) {
    case "F32":
      for (let i = 0; i < size; i++) out[i] = view.getFloat32(4 * i, true);
      return out;
    case "F64":
      for (let i = 0; i < size; i++) out[i] = view.getFloat64(8 * i, true);
      return out;
    case "F16":
      for (let i = 0; i < size; i++) out[i] = halfToNumber(view.getUint16(2 * i, true));
      return out;
    case "BF16": {
      const word = new DataView(new ArrayBuffer(4));
      for (let i = 0; i < size; i++) {
        word.setUint32(0, view.getUint16(2 * i, true) << 16);
        out[i] = word.getFloat32(0);
      }
      return out;
    }
    default:
      throw new SafetensorsError(`tensor ${entry.name} is ${dtype}, not a floating-point tensor`);
  }
}

export interface Float32Tensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/**
 * A safetensors file of float32 tensors, in the given order, as the reference writer lays it out:
 * compact JSON padded with spaces to a multiple of 8 bytes, then the tensors back to back.
 */
export function encodeSafetensors(
  tensors: readonly Float32Tensor[],
  metadata: Record<string, string> = {},
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (size !== t.data.length) {
      throw new Error(`safetensors: ${t.name} has ${t.data.length} values for [${t.shape}]`);
    }
    header[t.name] = {
      dtype: "F32",
      shape: t.shape,
      data_offsets: [offset, offset + 4 * size],
    };
    offset += 4 * size;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const text = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20);
  text.set(json);
  const out = new Uint8Array(8 + text.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  let at = 8 + text.length;
  for (const t of tensors) {
    for (let i = 0; i < t.data.length; i++) view.setFloat32(at + 4 * i, t.data[i] as number, true);
    at += 4 * t.data.length;
  }
  return out;
}
