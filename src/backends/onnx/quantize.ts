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
// the like where it can. Before calibration, four rewrites of the float graph keep
// onnxruntime in its fast int8 kernels (each measured with its profiler, README "Quantize"):
// - `foldConvBatchNorms`: a batch norm right after a conv goes into its weight and bias (onnxruntime
//   does that itself for a float model, not for a dequantized weight);
// - `foldPooledBatchNorms`: a batch norm between two convs has no int8 kernel and would cut the
//   chain (DQ → norm → layout change → Q: 13% of step4's int8 time); it is folded into the convs;
// - `sumTapsByConv` (`taps-by-conv`): the shifted-sum lowering's slices and Sum, which have no int8
//   kernel either, become one conv with a 0/1 kernel;
// - `padChannels` (`pad-channels`): zero channels so every conv fits MlasConvSym, onnxruntime's
//   fast int8 conv (input channels a multiple of 4, at least 16 output channels).
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

/** One batch norm `foldConvBatchNorms` folded into the conv before it. */
export interface ConvFold {
  batchNorm: string;
  into: string;
}

/**
 * `fold-conv-batchnorm`: a `Conv → BatchNormalization` whose conv output only the norm reads becomes
 * one Conv: W[o]·a[o] and (b[o] − μ[o])·a[o] + β[o], a = γ/√(σ² + ε) (any sign, any padding or
 * groups: the norm is affine per output channel). onnxruntime folds it so itself when it loads a
 * float model, but not once the weight is dequantized int8: the norm then runs alone in float between
 * a DequantizeLinear and a QuantizeLinear, with a layout change (sep7k's int8 model: 18 ms of its
 * 100, and 3x slower than the float model). Needs the weight, the bias if any and the norm's
 * parameters as initializers; a conv without a bias gets one.
 */
export function foldConvBatchNorms(model: ModelProto): { model: ModelProto; folds: ConvFold[] } {
  const q = onnx.ModelProto.decode(onnx.ModelProto.encode(model).finish());
  const graph = q.graph as GraphProto;
  const inits = new Map(graph.initializer.map((t) => [t.name ?? "", t]));
  const graphOutputs = new Set(graph.output.map((o) => o.name ?? ""));
  const values = (name: string | undefined) => {
    const t = inits.get(name ?? "");
    return t && t.dataType === DataType.FLOAT ? tensorValue(t) : undefined;
  };
  const folds: ConvFold[] = [];
  const read = readers(q);
  const producer = new Map(graph.node.flatMap((n) => (n.output ?? []).map((o) => [o, n])));
  const dropped = new Set<NodeProto>();
  for (const bn of graph.node) {
    if (bn.opType !== "BatchNormalization" || (bn.output?.length ?? 0) !== 1) continue;
    const x = bn.input?.[0] ?? "";
    const conv = producer.get(x);
    if (conv?.opType !== "Conv" || graphOutputs.has(x) || (read.get(x) ?? []).length !== 1)
      continue;
    const [gamma, beta, mean, variance] = (bn.input ?? []).slice(1).map((n) => values(n)?.data);
    const weight = values(conv.input?.[1]);
    const biasName = conv.input?.[2] ?? "";
    const bias = biasName ? values(biasName)?.data : undefined;
    if (!gamma || !beta || !mean || !variance || !weight || (biasName && !bias)) continue;
    const channels = gamma.length;
    const per = weight.data.length / channels;
    if (weight.dims[0] !== channels || !Number.isInteger(per)) continue;
    const eps = floatAttr(bn, "epsilon", 1e-5);
    const a = gamma.map((g, c) => g / Math.sqrt((variance[c] ?? 0) + eps));
    const w = weight.data.map((v, i) => v * (a[Math.floor(i / per)] ?? 1));
    const b = a.map((ac, c) => ((bias?.[c] ?? 0) - (mean[c] ?? 0)) * ac + (beta[c] ?? 0));
    // Named by the norm's output (unique): a shared weight keeps its value for its other readers.
    const out = bn.output?.[0] ?? "";
    graph.initializer.push(floatInit(`${out}/folded.weight`, weight.dims, w));
    graph.initializer.push(floatInit(`${out}/folded.bias`, [channels], b));
    conv.input = [conv.input?.[0] ?? "", `${out}/folded.weight`, `${out}/folded.bias`];
    conv.output = [out];
    dropped.add(bn);
    folds.push({ batchNorm: bn.name ?? "", into: conv.name ?? "" });
  }
  if (folds.length > 0) {
    graph.node = graph.node.filter((n) => !dropped.has(n));
    // The conv's old output is gone; its recorded shape would name a tensor nothing makes.
    prune(q);
  }
  return { model: q, folds };
}

/** One shifted sum `sumTapsByConv` replaced: its 1x1 conv, and the conv now summing its taps. */
export interface TapsByConv {
  conv: string;
  into: string;
  kernel: [number, number];
}

/** A tensor's int64 values when a Constant node or an initializer holds them. */
function constantInts(model: ModelProto, name: string): number[] | undefined {
  const graph = model.graph;
  const fromNode = graph?.node?.find((n) => n.opType === "Constant" && n.output?.[0] === name);
  const t =
    fromNode?.attribute?.find((a) => a.name === "value")?.t ??
    graph?.initializer?.find((i) => i.name === name);
  if (!t || t.dataType !== DataType.INT64) return undefined;
  const raw = t.rawData;
  if (!raw || raw.length === 0) return (t.int64Data ?? []).map(Number);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  return Array.from({ length: raw.byteLength >> 3 }, (_, i) =>
    Number(view.getBigInt64(8 * i, true)),
  );
}

const sameInts = (a: readonly number[] | undefined, b: readonly number[]) =>
  a !== undefined && a.length === b.length && a.every((v, i) => v === b[i]);

/**
 * `taps-by-conv`: in the inference graph's `shifted-sum` lowering of a conv (src/backends/onnx/
 * lowering.ts: a 1x1 conv to Cout·kh·kw channels, then the taps' shifted slices and a Sum), the
 * slices and the Sum become one Conv with a 0/1 kernel: output channel c reads input channel
 * c·kh·kw + t, tap t = i·kw + j, at kernel position (i, j), and adds the Sum's bias. The same sum,
 * but an int8 kernel: onnxruntime has no int8 Slice-and-Sum, so the chain left int8 there (a
 * layout change, nine DQ'd slices and a float Sum: about 30% of step4's int8 time). Undoing the
 * rewrite instead (one 3x3 conv, 128 -> 4) was slower in int8 than the 1x1 conv and this conv
 * together (onnxruntime's int8 GEMM wastes most of its work on 4 output channels), and so was a
 * depthwise shift plus a 1x1 sum. Matches only the lowering's exact pattern: every tap once, slices
 * on axes [2, 3, 4], the Sum read only by the final Reshape, the 1x1 conv read only by it.
 */
export function sumTapsByConv(model: ModelProto): {
  model: ModelProto;
  merged: TapsByConv[];
} {
  const q = onnx.ModelProto.decode(onnx.ModelProto.encode(model).finish());
  const graph = q.graph as GraphProto;
  const graphOutputs = new Set(graph.output.map((o) => o.name ?? ""));
  const merged: TapsByConv[] = [];
  for (const sum of [...graph.node]) {
    if (sum.opType !== "Sum") continue;
    const read = readers(q);
    const producer = new Map(graph.node.flatMap((n) => (n.output ?? []).map((o) => [o, n])));
    const soleReader = (tensor: string) => {
      const r = read.get(tensor) ?? [];
      return r.length === 1 && !graphOutputs.has(tensor) ? r[0] : undefined;
    };
    const final = soleReader(sum.output?.[0] ?? "");
    if (final?.opType !== "Reshape") continue;
    const parts = (sum.input ?? []).map((i) => producer.get(i));
    const slices = parts.filter((n) => n?.opType === "Slice") as NodeProto[];
    const others = parts.filter((n) => n?.opType !== "Slice");
    if (slices.length < 2 || others.length > 1) continue;
    const z5 = slices[0]?.input?.[0] ?? "";
    const reshape5 = producer.get(z5);
    const conv1x1 = producer.get(reshape5?.input?.[0] ?? "");
    if (reshape5?.opType !== "Reshape" || conv1x1?.opType !== "Conv") continue;
    if ((read.get(z5) ?? []).length !== slices.length) continue;
    if ((read.get(conv1x1.output?.[0] ?? "") ?? []).length !== 1) continue;
    const shape5 = constantInts(q, reshape5.input?.[1] ?? "");
    if (shape5?.length !== 5 || shape5[0] !== 0) continue;
    const [, cout = 0, kk = 0, hp = 0, wp = 0] = shape5;
    // The 1x1 conv: kernel [1, 1] and nothing else but default attributes.
    const plain1x1 = (conv1x1.attribute ?? []).every((a) =>
      a.name === "kernel_shape"
        ? sameInts((a.ints ?? []).map(Number), [1, 1])
        : (a.name === "strides" || a.name === "dilations") &&
          (a.ints ?? []).every((v) => Number(v) === 1),
    );
    if (!plain1x1 || (conv1x1.input?.[2] ?? "") !== "") continue;
    // Every tap once: slice t = i·kw + j starts at [t, i, j] and ends at [t + 1, i + ho, j + wo].
    const taps = slices.map((s) => ({
      data: s.input?.[0],
      starts: constantInts(q, s.input?.[1] ?? ""),
      ends: constantInts(q, s.input?.[2] ?? ""),
      axes: constantInts(q, s.input?.[3] ?? ""),
      steps: s.input?.[4],
    }));
    const kh = Math.max(...taps.map((t) => (t.starts?.[1] ?? 0) + 1));
    const kw = Math.max(...taps.map((t) => (t.starts?.[2] ?? 0) + 1));
    const [ho, wo] = [hp - kh + 1, wp - kw + 1];
    const seen = new Set<number>();
    const tapsOk = taps.every(({ data, starts, ends, axes, steps }) => {
      const [t = -1, i = -1, j = -1] = starts ?? [];
      const ok =
        data === z5 &&
        (steps ?? "") === "" &&
        sameInts(axes, [2, 3, 4]) &&
        starts?.length === 3 &&
        t === i * kw + j &&
        i >= 0 &&
        j >= 0 &&
        !seen.has(t) &&
        sameInts(ends, [t + 1, i + ho, j + wo]);
      seen.add(t);
      return ok;
    });
    if (!tapsOk || kh * kw !== kk || seen.size !== kk || ho < 1 || wo < 1) continue;
    // The bias: a Reshape of a [Cout] tensor to [1, Cout, 1, 1, 1].
    const biasNode = others[0];
    let bias = "";
    if (biasNode) {
      if (
        biasNode.opType !== "Reshape" ||
        !sameInts(constantInts(q, biasNode.input?.[1] ?? ""), [1, cout, 1, 1, 1])
      )
        continue;
      bias = biasNode.input?.[0] ?? "";
    }
    if (!sameInts(constantInts(q, final.input?.[1] ?? ""), [0, cout, ho, wo])) continue;
    // One conv sums the kk taps of each output channel c: input channel c·kk + t (tap t = i·kw + j)
    // at kernel position (i, j), a 0/1 kernel.
    const base = conv1x1.name || `Conv:${conv1x1.output?.[0]}`;
    const weight = `${base}/taps.weight`;
    const kernel = new Float32Array(cout * cout * kk * kk);
    for (let c = 0; c < cout; c++)
      for (let t = 0; t < kk; t++) kernel[(c * cout * kk + c * kk + t) * kk + t] = 1;
    graph.initializer.push(floatInit(weight, [cout, cout * kk, kh, kw], kernel));
    const into = final.name || `${base}/taps`;
    const replacement: NodeProto[] = [
      {
        name: into,
        opType: "Conv",
        input: bias
          ? [conv1x1.output?.[0] ?? "", weight, bias]
          : [conv1x1.output?.[0] ?? "", weight],
        output: [final.output?.[0] ?? ""],
        attribute: [
          { name: "kernel_shape", type: onnx.AttributeProto.AttributeType.INTS, ints: [kh, kw] },
        ],
      },
    ];
    const at = graph.node.indexOf(final);
    graph.node = [...graph.node.slice(0, at), ...replacement, ...graph.node.slice(at + 1)];
    merged.push({ conv: base, into, kernel: [kh, kw] });
  }
  if (merged.length > 0) prune(q);
  return { model: q, merged };
}

/** One conv `padChannels` widened with zero channels. */
export interface PaddedConv {
  node: string;
  /** Input channels before and after (the input and the weight padded with zeros). */
  inputs?: [number, number];
  /** Output channels before and after (weight and bias padded; the reader's weight too). */
  outputs?: [number, number];
  reader?: string;
}

/** Input channels of a quantized conv: a multiple of this for onnxruntime's fast int8 kernel. */
export const INPUT_CHANNEL_ALIGN = 4;
/** Output channels of a quantized conv: at least this many for the fast kernel. */
export const MIN_OUTPUT_CHANNELS = 16;

const roundUp = (n: number, to: number) => Math.ceil(n / to) * to;

/**
 * `pad-channels`: widens convs with zero channels so onnxruntime runs them with its fast symmetric
 * int8 kernel (MlasConvSym: input channels a multiple of 4, at least 16 output channels, each a
 * multiple of 4); otherwise QLinearConv falls back to im2col and a GEMM that is slower than the
 * float conv for step4's first layer (1 input channel) and its 4-channel 3x3 conv.
 * - input side: a group-1 conv reading a graph input (the image), with a constant 4-D weight whose
 *   input channels are not a multiple of INPUT_CHANNEL_ALIGN, gets its input and weight zero-padded
 *   on axis 1 (a Pad on the float image, before its Q: a zero channel times a zero weight adds
 *   nothing). Inside the graph a Pad would sit between int8 convs, so other convs are left as they
 *   are on this side;
 * - output side: a group-1 conv with fewer than MIN_OUTPUT_CHANNELS outputs (or not a multiple of 4),
 *   whose output is read, through Relus and MaxPools only, by one group-1 conv (its data input) and
 *   by nothing else, gets zero output channels (weight and bias), and the reader zero input weights
 *   for them: the extra channels are 0 through Relu and MaxPool and meet zero weights.
 * Exact in real arithmetic (the zeros quantize exactly). Pads are Pad nodes before the conv, so a
 * computed weight or bias is padded too (calibration reads its value).
 */
export function padChannels(model: ModelProto): { model: ModelProto; padded: PaddedConv[] } {
  const q = onnx.ModelProto.decode(onnx.ModelProto.encode(model).finish());
  const graph = q.graph as GraphProto;
  const graphOutputs = new Set(graph.output.map((o) => o.name ?? ""));
  const constant = constantNames(q);
  const graphInputs = new Set(graph.input.map((i) => i.name ?? ""));
  const dims = new Map(graph.initializer.map((t) => [t.name ?? "", (t.dims ?? []).map(Number)]));
  const padded: PaddedConv[] = [];
  const groupOne = (n: NodeProto) => (attrInt(n, "group") ?? 1) === 1;
  // Pad nodes go just before the node reading them (its inputs exist by then).
  const before = new Map<NodeProto, NodeProto[]>();
  const made = new Set<string>();
  const pad = (at: NodeProto, tensor: string, pads: number[]): string => {
    const name = `${tensor}/padded${pads.join("_")}`;
    if (made.has(name)) return name;
    made.add(name);
    const from = dims.get(tensor);
    const half = pads.length / 2;
    if (from)
      dims.set(
        name,
        from.map((d, i) => d + (pads[i] ?? 0) + (pads[i + half] ?? 0)),
      );
    graph.initializer.push(int64Init(`${name}.pads`, [pads.length], pads));
    before.set(at, [
      ...(before.get(at) ?? []),
      { name, opType: "Pad", input: [tensor, `${name}.pads`], output: [name] },
    ]);
    return name;
  };
  for (const conv of [...graph.node]) {
    if (conv.opType !== "Conv" || !groupOne(conv)) continue;
    const [x = "", w = "", b = ""] = conv.input ?? [];
    const wd = dims.get(w);
    if (constant.has(x) || wd?.length !== 4) continue;
    const [cout = 0, cin = 0] = wd;
    const entry: PaddedConv = { node: conv.name ?? "" };
    let weight = w;
    if (cin % INPUT_CHANNEL_ALIGN !== 0 && graphInputs.has(x)) {
      const extra = roundUp(cin, INPUT_CHANNEL_ALIGN) - cin;
      conv.input = [pad(conv, x, [0, 0, 0, 0, 0, extra, 0, 0]), ...(conv.input ?? []).slice(1)];
      weight = pad(conv, weight, [0, 0, 0, 0, 0, extra, 0, 0]);
      entry.inputs = [cin, cin + extra];
    }
    if (cout < MIN_OUTPUT_CHANNELS || cout % INPUT_CHANNEL_ALIGN !== 0) {
      const read = readers(q);
      const sole = (t: string) => {
        const r = read.get(t) ?? [];
        return r.length === 1 && !graphOutputs.has(t) ? r[0] : undefined;
      };
      let at = sole(conv.output?.[0] ?? "");
      let into = conv.output?.[0] ?? "";
      const widened = [into];
      while (at && (at.opType === "Relu" || at.opType === "MaxPool")) {
        into = at.output?.[0] ?? "";
        widened.push(into);
        at = (at.output?.length ?? 0) === 1 ? sole(into) : undefined;
      }
      const rw = at?.input?.[1] ?? "";
      const rd = dims.get(rw);
      if (at?.opType === "Conv" && groupOne(at) && at.input?.[0] === into && rd?.[1] === cout) {
        const extra = Math.max(MIN_OUTPUT_CHANNELS, roundUp(cout, INPUT_CHANNEL_ALIGN)) - cout;
        weight = pad(conv, weight, [0, 0, 0, 0, extra, 0, 0, 0]);
        const bias = b ? pad(conv, b, [0, extra]) : "";
        at.input = [into, pad(at, rw, [0, 0, 0, 0, 0, extra, 0, 0]), ...(at.input ?? []).slice(2)];
        conv.input = [conv.input?.[0] ?? "", weight, ...(bias ? [bias] : [])];
        entry.outputs = [cout, cout + extra];
        entry.reader = at.name ?? "";
        // Their recorded shapes name the old channel count.
        graph.valueInfo = graph.valueInfo.filter((v) => !widened.includes(v.name ?? ""));
      }
    }
    if (weight !== w && !entry.outputs)
      conv.input = [conv.input?.[0] ?? "", weight, ...(b ? [b] : [])];
    if (entry.inputs || entry.outputs) padded.push(entry);
  }
  graph.node = graph.node.flatMap((n) => [...(before.get(n) ?? []), n]);
  if (padded.length > 0) prune(q);
  return { model: q, padded };
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

function int64Init(name: string, dims: number[], data: number[]): TensorProto {
  const raw = new Uint8Array(data.length * 8);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < data.length; i++) view.setBigInt64(8 * i, BigInt(data[i] ?? 0), true);
  return { name, dims, dataType: DataType.INT64, rawData: raw };
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
