// A readable account of any ONNX model (`mnistc inspect`, golden tests): versions, metadata,
// inputs/outputs with shapes, every node with its attributes, initializers and the parameter total.
// `describeModel` gives the structured form (`--json`), `formatDescription` the text.
import {
  type AttributeProto,
  floatValues,
  int64Values,
  type ModelProto,
  onnx,
  type TensorProto,
  toNumber,
  type ValueInfoProto,
} from "../../formats/onnx-proto.js";
import { sizeOf } from "../../util/shape.js";

export type Dim = number | string;

export interface TensorDescription {
  name: string;
  type: string;
  /** Symbolic axes by name (`N`), unknown axes as `?`; undefined when the rank is unknown. */
  shape: Dim[] | undefined;
}

export interface NodeDescription {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: Record<string, unknown>;
}

export interface InitializerDescription {
  name: string;
  type: string;
  shape: number[];
  size: number;
}

export interface ModelDescription {
  irVersion: number;
  opsets: { domain: string; version: number }[];
  producer: string;
  graph: string;
  docString: string;
  metadata: Record<string, string>;
  inputs: TensorDescription[];
  outputs: TensorDescription[];
  /** Declared shapes of intermediate tensors (value_info). */
  intermediates: TensorDescription[];
  nodes: NodeDescription[];
  initializers: InitializerDescription[];
  parameters: {
    total: number;
    /** BatchNorm running statistics (PyTorch buffers, not trainable). */
    buffers: number;
    trainable: number;
  };
}

const { DataType } = onnx.TensorProto;
const { AttributeType } = onnx.AttributeProto;

function typeName(elemType: number | null | undefined): string {
  const name = DataType[elemType ?? 0];
  if (name === "FLOAT") return "float32";
  if (name === "DOUBLE") return "float64";
  return typeof name === "string" ? name.toLowerCase() : `type${elemType}`;
}

/** A float32 attribute in its shortest faithful form (1e-5 rather than 0.000009999999747). */
function float32(f: number | null | undefined): number {
  return Number(Math.fround(f ?? 0).toPrecision(7));
}

/** A Constant's small tensor (a shape, slice bounds, an epsilon) as its values. */
function tensorValues(t: TensorProto | null | undefined): unknown {
  if (t?.dataType === DataType.INT64) return int64Values(t);
  if (t?.dataType === DataType.FLOAT) {
    const values = Array.from(floatValues(t), float32);
    return (t.dims ?? []).length === 0 ? values[0] : values;
  }
  return "<TENSOR>";
}

function attributeValue(a: AttributeProto): unknown {
  switch (a.type) {
    case AttributeType.INT:
      return toNumber(a.i);
    case AttributeType.INTS:
      return (a.ints ?? []).map(toNumber);
    case AttributeType.FLOAT:
      return float32(a.f);
    case AttributeType.FLOATS:
      return (a.floats ?? []).map(float32);
    case AttributeType.STRING:
      return new TextDecoder().decode(a.s ?? new Uint8Array());
    case AttributeType.STRINGS:
      return (a.strings ?? []).map((s) => new TextDecoder().decode(s));
    case AttributeType.TENSOR:
      return tensorValues(a.t);
    default:
      return `<${AttributeType[a.type ?? 0] ?? "unknown"}>`;
  }
}

function describeValue(v: ValueInfoProto): TensorDescription {
  const tensor = v.type?.tensorType;
  const dims = tensor?.shape?.dim;
  return {
    name: v.name ?? "",
    type: tensor ? typeName(tensor.elemType) : "non-tensor",
    shape: dims?.map((d) => {
      if (d.dimParam) return d.dimParam;
      if (d.dimValue !== undefined && d.dimValue !== null) return toNumber(d.dimValue);
      return "?";
    }),
  };
}

function isBuffer(name: string): boolean {
  return name.endsWith(".running_mean") || name.endsWith(".running_var");
}

export function describeModel(model: ModelProto): ModelDescription {
  const graph = model.graph ?? {};
  const initializers = (graph.initializer ?? []).map((t) => {
    const shape = (t.dims ?? []).map(toNumber);
    return {
      name: t.name ?? "",
      type: typeName(t.dataType),
      shape,
      size: sizeOf(shape),
    };
  });
  const total = initializers.reduce((s, t) => s + t.size, 0);
  const buffers = initializers.filter((t) => isBuffer(t.name)).reduce((s, t) => s + t.size, 0);
  return {
    irVersion: toNumber(model.irVersion),
    opsets: model.opsetImport.map((o) => ({
      domain: o.domain || "ai.onnx",
      version: toNumber(o.version),
    })),
    producer: [model.producerName, model.producerVersion].filter(Boolean).join(" "),
    graph: graph.name ?? "",
    docString: model.docString,
    metadata: Object.fromEntries(model.metadataProps.map((p) => [p.key ?? "", p.value ?? ""])),
    inputs: (graph.input ?? []).map(describeValue),
    outputs: (graph.output ?? []).map(describeValue),
    intermediates: (graph.valueInfo ?? []).map(describeValue),
    nodes: (graph.node ?? []).map((n) => ({
      name: n.name ?? "",
      opType: n.opType ?? "",
      domain: n.domain || "ai.onnx",
      inputs: n.input ?? [],
      outputs: n.output ?? [],
      attributes: Object.fromEntries((n.attribute ?? []).map((a) => [a.name, attributeValue(a)])),
    })),
    initializers,
    parameters: { total, buffers, trainable: total - buffers },
  };
}

function shapeText(shape: Dim[] | undefined): string {
  return shape ? `[${shape.join(", ")}]` : "[?]";
}

function attributeText(value: unknown): string {
  if (Array.isArray(value)) return `[${value.join(", ")}]`;
  if (typeof value === "string") return JSON.stringify(value);
  return String(value);
}

function padEnd(text: string, width: number): string {
  return text.length >= width ? text : text + " ".repeat(width - text.length);
}

export function formatDescription(d: ModelDescription): string {
  const lines: string[] = [];
  const opsets = d.opsets.map((o) => `${o.domain} ${o.version}`).join(", ");
  lines.push(`model: ir_version ${d.irVersion}, opset ${opsets}, producer ${d.producer || "-"}`);
  lines.push(`graph: ${d.graph || "-"}`);
  if (d.docString) lines.push(`doc: ${d.docString}`);

  const meta = Object.entries(d.metadata);
  lines.push(`metadata (${meta.length}):`);
  const keyWidth = Math.max(0, ...meta.map(([k]) => k.length));
  for (const [key, value] of meta) lines.push(`  ${padEnd(key, keyWidth)}  ${value}`);

  const tensorLine = (t: TensorDescription) => `  ${t.name}: ${t.type} ${shapeText(t.shape)}`;
  lines.push(`inputs (${d.inputs.length}):`, ...d.inputs.map(tensorLine));
  lines.push(`outputs (${d.outputs.length}):`, ...d.outputs.map(tensorLine));

  // A node's outputs are shown with their declared shapes, wherever the graph declares them.
  const shapes = new Map<string, Dim[] | undefined>();
  for (const t of [...d.intermediates, ...d.outputs]) shapes.set(t.name, t.shape);
  lines.push(`nodes (${d.nodes.length}):`);
  const nameWidth = Math.max(0, ...d.nodes.map((n) => n.name.length));
  const opWidth = Math.max(0, ...d.nodes.map((n) => n.opType.length));
  for (const n of d.nodes) {
    const outputs = n.outputs
      .map((o) => (shapes.has(o) ? `${o} ${shapeText(shapes.get(o))}` : o))
      .join(", ");
    const op = n.domain === "ai.onnx" ? n.opType : `${n.domain}.${n.opType}`;
    lines.push(
      `  ${padEnd(n.name, nameWidth)}  ${padEnd(op, opWidth)}  (${n.inputs.join(", ")}) -> ${outputs}`,
    );
    const attrs = Object.entries(n.attributes);
    if (attrs.length > 0) {
      lines.push(
        `  ${" ".repeat(nameWidth + opWidth + 4)}${attrs.map(([k, v]) => `${k}=${attributeText(v)}`).join(" ")}`,
      );
    }
  }

  lines.push(`initializers (${d.initializers.length}):`);
  const initWidth = Math.max(0, ...d.initializers.map((t) => t.name.length));
  const shapeWidth = Math.max(0, ...d.initializers.map((t) => shapeText(t.shape).length));
  for (const t of d.initializers) {
    lines.push(
      `  ${padEnd(t.name, initWidth)}  ${t.type} ${padEnd(shapeText(t.shape), shapeWidth)}  ${String(t.size).padStart(7)}`,
    );
  }
  const p = d.parameters;
  lines.push(
    `parameters: ${p.total} in initializers (${p.trainable} trainable, ${p.buffers} BatchNorm running statistics)`,
  );
  return `${lines.join("\n")}\n`;
}
