// Static int8 quantization of an inference graph in QDQ form: a pure rewrite of a ModelProto, given
// the activation ranges and folded weights a calibration run measured (src/cli/quantize.ts runs it).
//
// It lives beside the lowering rules because it is one more graph-to-graph rewrite aimed at
// onnxruntime's kernels, not a file format: src/formats/ only reads and writes protos.
//
// What it writes, for every Conv and Gemm whose weight (and bias) are constant:
// - the weight as an int8 initializer, symmetric per output channel (axis 0; axis 1 for a Gemm
//   without transB): scale[c] = max|w[c]| / 127, zero point 0, values in [-127, 127], read through
//   DequantizeLinear;
// - the bias as an int32 initializer of scale in_scale · w_scale[c] (zero point 0), through
//   DequantizeLinear: the form onnxruntime's QDQ selector needs to fuse the group into QLinearConv;
// - a QuantizeLinear/DequantizeLinear pair (uint8, asymmetric) on its input, and on its output, or
//   on the output of a Relu that is the output's only reader (a Relu whose Q has zero point 0 is
//   redundant, and onnxruntime drops it). onnxruntime fuses DQ → Conv → (Relu →) Q into
//   QLinearConv only when every input is dequantized and the output is quantized; without the
//   output pair the convolution runs in float between a DQ and the next Q.
// Weights computed in the graph (a BatchNorm folded into the next convolution, the one-by-one
// rewrite's reshaped kernel) are replaced by their values, and the nodes that computed them are
// dropped. Every other node stays float: onnxruntime propagates QDQ through MaxPool, Reshape and
// the like where it can. A batch norm between two convs has no int8 kernel and would cut the chain
// (DQ → norm → layout change → Q: 13% of step4's int8 time), so `foldPooledBatchNorms` folds it
// into the convs before calibration.
import {
  type ModelProto,
  type NodeProto,
  onnx,
  type TensorProto,
  type ValueInfoProto,
} from "../../formats/onnx-proto.js";

const { DataType } = onnx.TensorProto;
type GraphProto = InstanceType<typeof onnx.GraphProto>;

/** A tensor's value: dims and float32 data. */
export interface TensorValue {
  dims: number[];
  data: Float32Array;
}

/** An activation's calibrated range. */
export interface Range {
  min: number;
  max: number;
}

/** One quantized Conv/Gemm: the tensors the rewrite needs measured or valued. */
export interface QuantTarget {
  node: string;
  opType: "Conv" | "Gemm";
  input: string;
  weight: string;
  bias?: string;
  /** The tensor whose Q/DQ pair follows the node: its output, or its sole Relu's. */
  output?: string;
  /** Axis of the weight's output channels. */
  axis: number;
}

/** Round half to even, as ONNX's QuantizeLinear does. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** uint8 asymmetric parameters of a range (widened to hold 0, so 0 is exact). */
export function activationParams(range: Range): { scale: number; zeroPoint: number } {
  const min = Math.min(range.min, 0);
  const max = Math.max(range.max, 0);
  const scale = Math.fround(max > min ? (max - min) / 255 : 1);
  const zeroPoint = Math.min(255, Math.max(0, roundHalfEven(-min / scale)));
  return { scale, zeroPoint };
}

/** QuantizeLinear's arithmetic, saturating to [lo, hi]. */
export function quantize(x: number, scale: number, zeroPoint: number, lo: number, hi: number) {
  return Math.min(hi, Math.max(lo, roundHalfEven(x / scale) + zeroPoint));
}

/** Symmetric int8 per-channel quantization of `w` along `axis` (values in [-127, 127]). */
export function quantizeWeight(
  w: TensorValue,
  axis: number,
): { scales: Float32Array; values: Int8Array } {
  const channels = w.dims[axis] ?? 1;
  const inner = w.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const channelOf = (i: number) => Math.floor(i / inner) % channels;
  const maxAbs = new Float64Array(channels);
  w.data.forEach((v, i) => {
    const c = channelOf(i);
    maxAbs[c] = Math.max(maxAbs[c] ?? 0, Math.abs(v));
  });
  const scales = Float32Array.from(maxAbs, (m) => (m > 0 ? m / 127 : 1));
  const values = Int8Array.from(w.data, (v, i) =>
    quantize(v, scales[channelOf(i)] ?? 1, 0, -127, 127),
  );
  return { scales, values };
}

/** int32 bias of scale inScale · wScale[c]. */
export function quantizeBias(
  b: Float32Array,
  inScale: number,
  wScales: Float32Array,
): { scales: Float32Array; values: Int32Array } {
  const scales = Float32Array.from(b, (_, c) => inScale * (wScales[c] ?? 1));
  const values = Int32Array.from(b, (v, c) =>
    quantize(v, scales[c] ?? 1, 0, -(2 ** 31), 2 ** 31 - 1),
  );
  return { scales, values };
}

function attrInt(node: NodeProto, name: string): number | undefined {
  const a = node.attribute?.find((x) => x.name === name);
  return a ? Number(a.i ?? 0) : undefined;
}

/** Names computable from initializers and Constant nodes alone. */
export function constantNames(model: ModelProto): Set<string> {
  const graph = model.graph;
  const constant = new Set<string>((graph?.initializer ?? []).map((t) => t.name ?? ""));
  constant.add("");
  for (const node of graph?.node ?? []) {
    if ((node.input ?? []).every((i) => constant.has(i))) {
      for (const o of node.output ?? []) constant.add(o);
    }
  }
  return constant;
}

function readers(model: ModelProto): Map<string, NodeProto[]> {
  const map = new Map<string, NodeProto[]>();
  for (const node of model.graph?.node ?? []) {
    for (const i of node.input ?? []) map.set(i, [...(map.get(i) ?? []), node]);
  }
  return map;
}

/**
 * The Conv and Gemm nodes to quantize (those with a constant weight and bias, reading a
 * non-constant input), with the tensors each needs. `quantizeOutputs` false leaves outputs float.
 */
export function quantTargets(model: ModelProto, quantizeOutputs = true): QuantTarget[] {
  const constant = constantNames(model);
  const graphOutputs = new Set((model.graph?.output ?? []).map((o) => o.name ?? ""));
  const read = readers(model);
  const targets: QuantTarget[] = [];
  for (const node of model.graph?.node ?? []) {
    const opType = node.opType;
    if (opType !== "Conv" && opType !== "Gemm") continue;
    const [input = "", weight = "", bias = ""] = node.input ?? [];
    if (constant.has(input) || !constant.has(weight) || !constant.has(bias)) continue;
    // Gemm: only the plain y = x·Wᵀ + b (or x·W + b) onnxruntime's QDQ Gemm fuses.
    if (opType === "Gemm" && (attrInt(node, "transA") ?? 0) !== 0) continue;
    const axis = opType === "Gemm" && (attrInt(node, "transB") ?? 0) === 0 ? 1 : 0;
    let output: string | undefined = node.output?.[0];
    const next = read.get(output ?? "") ?? [];
    const relu = next.length === 1 && next[0]?.opType === "Relu" ? next[0] : undefined;
    if (relu && !graphOutputs.has(output ?? "")) output = relu.output?.[0];
    if (!quantizeOutputs || graphOutputs.has(output ?? "")) output = undefined;
    targets.push({
      node: node.name || `${opType}:${node.output?.[0]}`,
      opType,
      input,
      weight,
      ...(bias ? { bias } : {}),
      ...(output ? { output } : {}),
      axis,
    });
  }
  return targets;
}

/** One batch norm `foldPooledBatchNorms` removed: the convs it went into. */
export interface PooledFold {
  batchNorm: string;
  into: string;
  shiftInto: string;
  /** Relu nodes after the pool that became redundant and were dropped. */
  relus: string[];
}

function floatAttr(node: NodeProto, name: string, fallback: number): number {
  const a = node.attribute?.find((x) => x.name === name);
  return a?.f ?? fallback;
}

/**
 * Folds every `Conv → Relu → BatchNormalization [→ MaxPool | Relu]… → Conv` chain's batch norm
 * into the two convolutions, so onnxruntime runs the whole chain in int8 (QLinearConv with its Relu,
 * then MaxPool on uint8): a batch norm has no int8 kernel, and in float it costs a DequantizeLinear,
 * the norm, a layout change and a QuantizeLinear. Exact in real arithmetic when every channel's
 * scale a = γ/√(σ²+ε) is positive and the second conv has no padding:
 *   a·relu(z) + b = relu(a·z) + b, and a per-channel shift commutes with MaxPool; a Relu after the
 *   pool gives relu(relu(a·m) + b) = relu(a·m + min(b, 0)) + max(b, 0), so min(b, 0) goes into the
 *   first conv's bias (before its Relu) and max(b, 0) into the second conv's bias through its
 *   weights, and the Relu goes (its input is already ≥ 0).
 * Needs the convs' weights and biases and the norm's parameters as initializers, and every tensor in
 * the chain read once. Returns a rewritten copy and what it folded; a chain that does not qualify is
 * left as it is.
 */
export function foldPooledBatchNorms(model: ModelProto): {
  model: ModelProto;
  folds: PooledFold[];
} {
  const q = onnx.ModelProto.decode(onnx.ModelProto.encode(model).finish());
  const graph = q.graph as GraphProto;
  const inits = new Map(graph.initializer.map((t) => [t.name ?? "", t]));
  const graphOutputs = new Set(graph.output.map((o) => o.name ?? ""));
  const folds: PooledFold[] = [];
  const values = (name: string | undefined) => {
    const t = inits.get(name ?? "");
    return t && t.dataType === DataType.FLOAT ? tensorValue(t).data : undefined;
  };
  for (const bn of [...graph.node]) {
    if (bn.opType !== "BatchNormalization") continue;
    const read = readers(q);
    const producer = new Map(graph.node.flatMap((n) => (n.output ?? []).map((o) => [o, n])));
    const sole = (tensor: string | undefined) => {
      const r = read.get(tensor ?? "") ?? [];
      return r.length === 1 && !graphOutputs.has(tensor ?? "") ? r[0] : undefined;
    };
    const relu = producer.get(bn.input?.[0] ?? "");
    const conv = producer.get(relu?.input?.[0] ?? "");
    if (relu?.opType !== "Relu" || conv?.opType !== "Conv") continue;
    if (sole(conv.output?.[0]) !== relu || sole(relu.output?.[0]) !== bn) continue;
    // Through MaxPools and Relus to the next Conv, whose data input the chain is.
    const path: NodeProto[] = [];
    let at = sole(bn.output?.[0]);
    while (at && (at.opType === "MaxPool" || at.opType === "Relu")) {
      if ((at.output?.length ?? 0) !== 1) break;
      path.push(at);
      at = sole(at.output?.[0]);
    }
    const next = at;
    const into = path.at(-1)?.output?.[0] ?? bn.output?.[0];
    if (next?.opType !== "Conv" || next.input?.[0] !== into) continue;
    // Padding would add zeros the shift never reached (mnistc writes explicit pads, never auto_pad).
    const padded = (next.attribute ?? []).some(
      (a) =>
        a.name === "auto_pad" || (a.name === "pads" && (a.ints ?? []).some((p) => Number(p) !== 0)),
    );
    if (padded) continue;
    const [gamma, beta, mean, variance] = (bn.input ?? []).slice(1).map(values);
    const [w1, b1, w2, b2] = [
      conv.input?.[1],
      conv.input?.[2],
      next.input?.[1],
      next.input?.[2],
    ].map(values);
    if (!gamma || !beta || !mean || !variance || !w1 || !b1 || !w2 || !b2) continue;
    const eps = floatAttr(bn, "epsilon", 1e-5);
    const a = gamma.map((g, c) => g / Math.sqrt((variance[c] ?? 0) + eps));
    if (a.some((x) => !(x > 0))) continue;
    const channels = a.length;
    const b = beta.map((v, c) => v - (mean[c] ?? 0) * (a[c] ?? 0));
    const reluAfter = path.some((n) => n.opType === "Relu");
    const inner = b.map((v) => (reluAfter ? Math.min(v, 0) : 0));
    const outer = b.map((v, c) => v - (inner[c] ?? 0));
    const per1 = w1.length / channels;
    const outs2 = b2.length;
    const per2 = w2.length / outs2 / channels;
    if (b1.length !== channels || !Number.isInteger(per1) || !Number.isInteger(per2)) continue;
    // A shared initializer would change other readers: give the folded values their own names.
    const owned = (name: string, data: Float32Array, dims: number[]) => {
      const fresh = `${name}/folded`;
      graph.initializer.push(floatInit(fresh, dims, data));
      inits.set(fresh, graph.initializer.at(-1) as TensorProto);
      return fresh;
    };
    const dims = (name: string | undefined) => (inits.get(name ?? "")?.dims ?? []).map(Number);
    const [w1n = "", b1n = "", b2n = ""] = [conv.input?.[1], conv.input?.[2], next.input?.[2]];
    const folded1 = w1.map((v, i) => v * (a[Math.floor(i / per1)] ?? 1));
    const bias1 = b1.map((v, c) => (a[c] ?? 1) * v + (inner[c] ?? 0));
    const bias2 = b2.map((v, o) => {
      let s = v;
      for (let c = 0; c < channels; c++)
        for (let k = 0; k < per2; k++)
          s += (w2[(o * channels + c) * per2 + k] ?? 0) * (outer[c] ?? 0);
      return s;
    });
    conv.input = [
      conv.input?.[0] ?? "",
      owned(w1n, folded1, dims(w1n)),
      owned(b1n, bias1, dims(b1n)),
    ];
    next.input = [next.input?.[0] ?? "", next.input?.[1] ?? "", owned(b2n, bias2, dims(b2n))];
    // Drop the norm and the Relus; each dropped node's reader reads its input.
    const dropped = [bn, ...path.filter((n) => n.opType === "Relu")];
    for (const d of dropped) {
      const from = d.input?.[0] ?? "";
      const to = d.output?.[0] ?? "";
      for (const n of graph.node) n.input = (n.input ?? []).map((i) => (i === to ? from : i));
    }
    graph.node = graph.node.filter((n) => !dropped.includes(n));
    folds.push({
      batchNorm: bn.name ?? "",
      into: conv.name ?? "",
      shiftInto: next.name ?? "",
      relus: path.filter((n) => n.opType === "Relu").map((n) => n.name ?? ""),
    });
  }
  if (folds.length > 0) prune(q);
  return { model: q, folds };
}

/** The activations to calibrate: every target's input and output, each once. */
export function activationNames(targets: QuantTarget[]): string[] {
  const names = new Set<string>();
  for (const t of targets) {
    names.add(t.input);
    if (t.output) names.add(t.output);
  }
  return [...names];
}

/** Weights and biases the graph computes rather than holds: their values come from a run. */
export function computedConstants(model: ModelProto, targets: QuantTarget[]): string[] {
  const held = new Set((model.graph?.initializer ?? []).map((t) => t.name ?? ""));
  const names = new Set<string>();
  for (const t of targets) {
    for (const n of [t.weight, t.bias]) if (n && !held.has(n)) names.add(n);
  }
  return [...names];
}

/** A copy of `model` that also outputs `names` (float tensors of any shape), for calibration. */
export function withExtraOutputs(model: ModelProto, names: string[]): ModelProto {
  const copy = onnx.ModelProto.decode(onnx.ModelProto.encode(model).finish());
  const graph = copy.graph as GraphProto;
  const have = new Set(graph.output.map((o) => o.name));
  for (const name of names) {
    if (have.has(name)) continue;
    graph.output.push(
      onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: DataType.FLOAT } } }),
    );
  }
  return copy;
}

function floatInit(name: string, dims: number[], data: Float32Array): TensorProto {
  const raw = new Uint8Array(data.length * 4);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(4 * i, data[i] ?? 0, true);
  return { name, dims, dataType: DataType.FLOAT, rawData: raw };
}

function int8Init(name: string, dims: number[], data: Int8Array): TensorProto {
  return { name, dims, dataType: DataType.INT8, rawData: new Uint8Array(data.buffer.slice(0)) };
}

function uint8Init(name: string, dims: number[], data: number[]): TensorProto {
  return { name, dims, dataType: DataType.UINT8, rawData: Uint8Array.from(data) };
}

function int32Init(name: string, dims: number[], data: Int32Array): TensorProto {
  const raw = new Uint8Array(data.length * 4);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < data.length; i++) view.setInt32(4 * i, data[i] ?? 0, true);
  return { name, dims, dataType: DataType.INT32, rawData: raw };
}

/** A float initializer's value (raw little-endian or float_data). */
export function tensorValue(t: TensorProto): TensorValue {
  const dims = (t.dims ?? []).map(Number);
  const raw = t.rawData;
  if (!raw || raw.length === 0) return { dims, data: Float32Array.from(t.floatData ?? []) };
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  return {
    dims,
    data: Float32Array.from({ length: raw.length >> 2 }, (_, i) => view.getFloat32(4 * i, true)),
  };
}

export interface QuantizeInputs {
  targets: QuantTarget[];
  /** Calibrated range of every `activationNames(targets)` tensor. */
  ranges: Map<string, Range>;
  /** Values of every `computedConstants` tensor. */
  constants: Map<string, TensorValue>;
  /** Metadata entries to add (the float model's are kept). */
  metadata?: { key: string; value: string }[];
}

/** The QDQ int8 model. Throws when a range or constant is missing (a bug in the caller). */
export function quantizeModel(model: ModelProto, inputs: QuantizeInputs): ModelProto {
  const q = onnx.ModelProto.decode(onnx.ModelProto.encode(model).finish());
  if (!q.graph) throw new Error("quantizeModel: no graph");
  const graph = q.graph as GraphProto;
  const inits = new Map(graph.initializer.map((t) => [t.name ?? "", t]));
  const valueNamed = (name: string): TensorValue => {
    const computed = inputs.constants.get(name);
    if (computed) return computed;
    const t = inits.get(name);
    if (!t || t.dataType !== DataType.FLOAT) throw new Error(`quantizeModel: no value of ${name}`);
    return tensorValue(t);
  };
  const newInits: TensorProto[] = [];
  const headNodes: NodeProto[] = [];
  // Activations: one Q/DQ pair each, every reader rewired to the dequantized name.
  const act = new Map<string, { scale: string; zp: string; dq: string; scaleValue: number }>();
  for (const name of activationNames(inputs.targets)) {
    const range = inputs.ranges.get(name);
    if (!range) throw new Error(`quantizeModel: no range of ${name}`);
    const { scale, zeroPoint } = activationParams(range);
    const base = `${name}/quant`;
    newInits.push(floatInit(`${base}.scale`, [], Float32Array.of(scale)));
    newInits.push(uint8Init(`${base}.zero_point`, [], [zeroPoint]));
    act.set(name, {
      scale: `${base}.scale`,
      zp: `${base}.zero_point`,
      dq: `${name}/dequantized`,
      scaleValue: scale,
    });
  }
  // Weights and biases: int8/int32 initializers read through DequantizeLinear.
  const rename = new Map<string, Map<number, string>>(); // node name -> input index -> new name
  for (const t of inputs.targets) {
    const w = valueNamed(t.weight);
    const { scales, values } = quantizeWeight(w, t.axis);
    const base = `${t.node}/weight`;
    newInits.push(int8Init(`${base}.int8`, w.dims, values));
    newInits.push(floatInit(`${base}.scale`, [scales.length], scales));
    newInits.push(int8Init(`${base}.zero_point`, [scales.length], new Int8Array(scales.length)));
    headNodes.push({
      name: `${base}/DequantizeLinear`,
      opType: "DequantizeLinear",
      input: [`${base}.int8`, `${base}.scale`, `${base}.zero_point`],
      output: [`${base}.dequantized`],
      attribute: [{ name: "axis", type: onnx.AttributeProto.AttributeType.INT, i: t.axis }],
    });
    const inputs2 = new Map<number, string>([[1, `${base}.dequantized`]]);
    if (t.bias) {
      const inAct = act.get(t.input);
      if (!inAct) throw new Error(`quantizeModel: no range of ${t.input}`);
      const b = valueNamed(t.bias);
      const qb = quantizeBias(b.data, inAct.scaleValue, scales);
      const bb = `${t.node}/bias`;
      newInits.push(int32Init(`${bb}.int32`, b.dims, qb.values));
      newInits.push(floatInit(`${bb}.scale`, [qb.scales.length], qb.scales));
      newInits.push(
        int32Init(`${bb}.zero_point`, [qb.scales.length], new Int32Array(qb.scales.length)),
      );
      headNodes.push({
        name: `${bb}/DequantizeLinear`,
        opType: "DequantizeLinear",
        input: [`${bb}.int32`, `${bb}.scale`, `${bb}.zero_point`],
        output: [`${bb}.dequantized`],
        attribute: [{ name: "axis", type: onnx.AttributeProto.AttributeType.INT, i: 0 }],
      });
      inputs2.set(2, `${bb}.dequantized`);
    }
    rename.set(t.node, inputs2);
  }
  const qdq = (name: string): NodeProto[] => {
    const a = act.get(name);
    if (!a) return [];
    return [
      {
        name: `${name}/QuantizeLinear`,
        opType: "QuantizeLinear",
        input: [name, a.scale, a.zp],
        output: [`${name}/quantized`],
      },
      {
        name: `${name}/DequantizeLinear`,
        opType: "DequantizeLinear",
        input: [`${name}/quantized`, a.scale, a.zp],
        output: [a.dq],
      },
    ];
  };
  const targetNode = new Map(inputs.targets.map((t) => [t.node, t]));
  const body: NodeProto[] = [];
  for (const input of graph.input) body.push(...qdq(input.name ?? ""));
  for (const node of graph.node) {
    const key = node.name || `${node.opType}:${node.output?.[0]}`;
    const byIndex = targetNode.has(key) ? rename.get(key) : undefined;
    node.input = (node.input ?? []).map((i, k) => byIndex?.get(k) ?? act.get(i)?.dq ?? i);
    body.push(node);
    for (const o of node.output ?? []) body.push(...qdq(o));
  }
  graph.node = [...headNodes, ...body];
  graph.initializer.push(...newInits);
  prune(q);
  q.metadataProps.push(...(inputs.metadata ?? []));
  return q;
}

/** Drops nodes no graph output needs, and initializers nothing reads. */
function prune(model: ModelProto): void {
  const graph = model.graph as GraphProto;
  const needed = new Set(graph.output.map((o) => o.name ?? ""));
  const kept: NodeProto[] = [];
  for (const node of [...graph.node].reverse()) {
    if ((node.output ?? []).some((o) => needed.has(o))) {
      kept.push(node);
      for (const i of node.input ?? []) needed.add(i);
    }
  }
  graph.node = kept.reverse();
  graph.initializer = graph.initializer.filter((t) => needed.has(t.name ?? ""));
  graph.valueInfo = graph.valueInfo.filter((v: ValueInfoProto) => needed.has(v.name ?? ""));
}
