// The ONNX backend: an inference graph (a `ModelProto`) of the IR, written with onnx-proto.
//
// IR version 8 with default-domain opset 13: opset 13 is the newest set in which every op we use
// has its final inference form (Gemm-13, Flatten-13, LogSoftmax-13 with a single axis, Relu-13,
// BatchNormalization-9 which later sets changed only for training mode), it is what PyTorch's
// exporter has long defaulted to, and every ONNX runtime of the last years loads it.
//
// The graph reads `input` float32 [N, C, H, W] (N symbolic) and writes `log_probs` [N, classes];
// no op ever drops the batch axis. Initializers carry the IR's PyTorch parameter names, node names
// are the IR node names and each intermediate tensor is `<node>.out`. Emission is pure and
// deterministic: the same IR and weights give the same bytes.
import type { Diagnostic } from "../../compiler/diagnostics.js";
import { torchInitWeights } from "../../compiler/init.js";
import { type AnyNodeIR, GRAPH_INPUT, type ModelIR, type WeightMap } from "../../compiler/ir.js";
import { metadataFor } from "../../formats/onnx-metadata.js";
import {
  batchedFloatValue,
  encodeModel,
  floatTensor,
  type ModelProto,
  type NodeProto,
  ONNX_IR_VERSION,
  ONNX_OPSET,
  onnx,
  type TensorProto,
  type ValueInfoProto,
} from "../../formats/onnx-proto.js";
import { sizeOf } from "../../util/shape.js";
import type { Backend, EmitResult } from "../backend.js";
import { foldBatchNorms } from "./lowering.js";
import { type OnnxOpContext, onnxOps } from "./ops.js";

export const ONNX_INPUT_NAME = "input";
export const ONNX_OUTPUT_NAME = "log_probs";

function emitNode(node: AnyNodeIR, ctx: OnnxOpContext): NodeProto[] {
  const rule = onnxOps[node.kind] as (n: AnyNodeIR, c: OnnxOpContext) => NodeProto[];
  return rule(node, ctx);
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Trained weights must cover every parameter of the IR with its exact PyTorch shape. */
function checkWeights(ir: ModelIR, weights: WeightMap): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  for (const node of ir.nodes) {
    for (const param of node.params) {
      const given = weights.get(param.name);
      const size = sizeOf(param.shape);
      let problem: string | undefined;
      if (!given) problem = `weight ${param.name} is missing`;
      else if (!sameShape(given.shape, param.shape) || given.data.length !== size) {
        problem = `weight ${param.name} has shape [${given.shape.join(", ")}] but the spec needs [${param.shape.join(", ")}]`;
      }
      if (problem) {
        diagnostics.push({
          code: given ? "E0802" : "E0801",
          severity: "error",
          message: `layer ${node.name} (${node.kind}): ${problem}`,
          span: node.span,
          notes: [],
        });
      }
    }
  }
  return diagnostics;
}

/** The `ModelProto` of an IR with the given weights (PyTorch layout), already checked. */
export function buildOnnxModel(
  ir: ModelIR,
  weights: WeightMap,
  trained: boolean,
  rewrites = true,
): ModelProto {
  const nodes: NodeProto[] = [];
  const intermediates: { name: string; shape: number[] }[] = [];
  // The tensor each IR node's output is; a node the graph omits (dropout) is its input's.
  const tensors = new Map<string, string>([[GRAPH_INPUT, ONNX_INPUT_NAME]]);
  const tensorOf = (name: string): string => {
    const tensor = tensors.get(name);
    if (!tensor) throw new Error(`onnx backend: ${name} is read before it is written`);
    return tensor;
  };
  let current = ONNX_INPUT_NAME;
  const folds = rewrites ? foldBatchNorms(ir) : new Map<string, AnyNodeIR>();
  const folded = new Set([...folds.values()].map((bn) => bn.name));
  for (const node of ir.nodes) {
    const output = `${node.name}.out`;
    const inputs = node.inputs.map(tensorOf);
    const foldedInput = folds.get(node.name);
    const emitted = folded.has(node.name)
      ? []
      : emitNode(node, {
          inputs,
          input: inputs[0] ?? ONNX_INPUT_NAME,
          output,
          plain: !rewrites,
          ...(foldedInput ? { foldedInput } : {}),
        });
    tensors.set(node.name, emitted.length > 0 ? output : (inputs[0] ?? ONNX_INPUT_NAME));
    if (emitted.length === 0) continue;
    nodes.push(...emitted);
    intermediates.push({ name: output, shape: node.outShape });
  }
  const last = ir.nodes.at(-1);
  current = last ? tensorOf(last.name) : ONNX_INPUT_NAME;
  const outShape = last?.outShape ?? [ir.input.channels, ir.input.height, ir.input.width];
  const producer = nodes.find((n) => n.output?.[0] === current);
  if (producer) {
    producer.output = [ONNX_OUTPUT_NAME];
    const at = intermediates.findIndex((t) => t.name === current);
    intermediates.splice(at, 1);
    for (const n of nodes)
      n.input = (n.input ?? []).map((i) => (i === current ? ONNX_OUTPUT_NAME : i));
  } else {
    nodes.push({
      name: "identity",
      opType: "Identity",
      input: [current],
      output: [ONNX_OUTPUT_NAME],
    });
  }

  const initializer: TensorProto[] = [];
  for (const node of ir.nodes) {
    for (const param of node.params) {
      const w = weights.get(param.name);
      if (!w) throw new Error(`onnx backend: weight ${param.name} missing after checking`);
      initializer.push(floatTensor(param.name, param.shape, w.data));
    }
  }

  const input: ValueInfoProto = batchedFloatValue(ONNX_INPUT_NAME, [
    ir.input.channels,
    ir.input.height,
    ir.input.width,
  ]);
  return onnx.ModelProto.create({
    irVersion: ONNX_IR_VERSION,
    opsetImport: [{ domain: "", version: ONNX_OPSET }],
    producerName: "mnistc",
    docString: `mnistc inference graph of spec ${ir.name}`,
    graph: {
      name: ir.name,
      node: nodes,
      initializer,
      input: [input],
      output: [batchedFloatValue(ONNX_OUTPUT_NAME, outShape)],
      valueInfo: intermediates.map((t) => batchedFloatValue(t.name, t.shape)),
    },
    metadataProps: metadataFor(ir, trained),
  });
}

export const onnxBackend: Backend = {
  name: "onnx",
  description: "ONNX inference graph (IR v8, opset 13) with trained or seeded weights",
  output: "file",
  emit(ir, options): EmitResult {
    if (options.weights) {
      const diagnostics = checkWeights(ir, options.weights);
      if (diagnostics.length > 0) return { files: [], diagnostics };
    }
    const weights = options.weights ?? torchInitWeights(ir);
    const model = buildOnnxModel(ir, weights, options.weights !== undefined, options.rewrites);
    return { files: [{ path: "", contents: encodeModel(model) }], diagnostics: [] };
  },
};
