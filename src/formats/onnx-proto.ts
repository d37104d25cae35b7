// The one place that touches `onnx-proto` (a CommonJS protobufjs build): the `onnx` namespace, small
// constructors for the messages the backend writes, and a decoder that turns "not ONNX" into a
// `UserError` naming the file.
import type { onnx as O } from "onnx-proto";
import onnxProto from "onnx-proto";
import { UserError } from "../errors.js";

export const { onnx } = onnxProto;

export type ModelProto = O.ModelProto;
export type NodeProto = O.INodeProto;
export type AttributeProto = O.IAttributeProto;
export type TensorProto = O.ITensorProto;
export type ValueInfoProto = O.IValueInfoProto;

/** The ONNX IR version and default-domain opset the backend writes (see index.ts for why). */
export const ONNX_IR_VERSION = 8;
export const ONNX_OPSET = 13;

const { AttributeType } = onnx.AttributeProto;
const { DataType } = onnx.TensorProto;

export function intAttr(name: string, i: number): AttributeProto {
  return { name, type: AttributeType.INT, i };
}

export function intsAttr(name: string, ints: number[]): AttributeProto {
  return { name, type: AttributeType.INTS, ints };
}

export function tensorAttr(name: string, t: TensorProto): AttributeProto {
  return { name, type: AttributeType.TENSOR, t };
}

export function floatAttr(name: string, f: number): AttributeProto {
  return { name, type: AttributeType.FLOAT, f };
}

/** A float32 initializer; raw data is written little-endian whatever the host's byte order. */
export function floatTensor(name: string, shape: number[], data: Float32Array): TensorProto {
  const raw = new Uint8Array(data.length * 4);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i] ?? 0, true);
  return { name, dims: shape, dataType: DataType.FLOAT, rawData: raw };
}

/** A float32 tensor's values: its raw little-endian bytes, or `floatData` when it has none. */
export function floatValues(t: TensorProto): Float32Array {
  const raw = t.rawData;
  if (!raw || raw.length === 0) return Float32Array.from(t.floatData ?? []);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  return Float32Array.from({ length: raw.byteLength >> 2 }, (_, i) => view.getFloat32(4 * i, true));
}

/** An int64 tensor's values (raw little-endian; every one mnistc writes is small). */
export function int64Values(t: TensorProto): number[] {
  const raw = t.rawData ?? new Uint8Array();
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  return Array.from({ length: raw.byteLength >> 3 }, (_, i) =>
    Number(view.getBigInt64(8 * i, true)),
  );
}

/** A float32 tensor value with a symbolic batch axis `N` in front of `shape`. */
export function batchedFloatValue(name: string, shape: number[]): ValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: DataType.FLOAT,
        shape: { dim: [{ dimParam: "N" }, ...shape.map((d) => ({ dimValue: d }))] },
      },
    },
  };
}

export function encodeModel(model: O.IModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

/** protobufjs decodes int64 fields as `Long` objects (or numbers); every one we read is small. */
export function toNumber(v: unknown): number {
  if (typeof v === "number") return v;
  if (v && typeof (v as { toNumber?: unknown }).toNumber === "function") {
    return (v as { toNumber(): number }).toNumber();
  }
  return Number(v);
}

/**
 * Decode an ONNX file's bytes. Protobuf happily decodes many non-ONNX byte strings, so a model
 * without a graph, an IR version or a default-domain opset is rejected as "not an ONNX model" too.
 */
export function decodeModel(bytes: Uint8Array, file: string): ModelProto {
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch {
    throw new UserError(`${file} is not an ONNX model (it does not parse as an ONNX ModelProto)`);
  }
  const hasDefaultOpset = model.opsetImport.some((o) => !o.domain || o.domain === "ai.onnx");
  if (!model.graph || toNumber(model.irVersion) <= 0 || !hasDefaultOpset) {
    throw new UserError(
      `${file} is not an ONNX model (no graph, IR version or opset in it after decoding)`,
    );
  }
  return model;
}

export function stringAttr(name: string, s: string): AttributeProto {
  return { name, type: AttributeType.STRING, s: new TextEncoder().encode(s) };
}

/** An int64 initializer (shapes, axes, indices), raw little-endian. */
export function int64Tensor(name: string, shape: number[], values: number[]): TensorProto {
  const raw = new Uint8Array(values.length * 8);
  const view = new DataView(raw.buffer);
  values.forEach((v, i) => {
    view.setBigInt64(i * 8, BigInt(v), true);
  });
  return { name, dims: shape, dataType: DataType.INT64, rawData: raw };
}

/** A float32 tensor value of a fixed shape (the training step is built for one batch size). */
export function floatValue(name: string, shape: number[]): ValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: DataType.FLOAT,
        shape: { dim: shape.map((d) => ({ dimValue: d })) },
      },
    },
  };
}

export const FLOAT = DataType.FLOAT;
