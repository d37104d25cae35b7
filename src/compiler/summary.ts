// What torchsummary and torchinfo users read under the table: total, trainable and non-trainable
// parameters, each layer's share, block subtotals, and torchsummary's memory estimate for a batch.
//
// The estimate is torchsummary's (sksq96/pytorch-summary, torchsummary.py), reproduced exactly for
// the model.py mnistc emits: a forward hook on every module that is no nn.Sequential (the root Net
// included) records its output shape with the batch size, and then, with MB = 1024² bytes,
//   Input size (MB)                 = C·H·W · batch · 4 / MB
//   Forward/backward pass size (MB) = 2 · Σ(hooked outputs' values) · 4 / MB   (×2 for gradients)
//   Params size (MB)                = Σ(weight and bias values of hooked modules) · 4 / MB
//   Estimated Total Size (MB)       = params + forward/backward + input
// Arithmetic in torchsummary's order, so the doubles are the same bits as its own.
import { sizeOf } from "../util/shape.js";
import { warning } from "./codes.js";
import type { Diagnostic, Note } from "./diagnostics.js";
import type { AnyNodeIR, ModelIR, Shape, Span } from "./ir.js";
import { opDef } from "./ops.js";
import { paramCount } from "./params.js";

const MB = 1024 ** 2;

/** Bytes of float32 per value (torchsummary assumes it). */
const FLOAT = 4;

export interface MemoryEstimate {
  /** The batch size the figures are for. */
  batchSize: number;
  inputMB: number;
  forwardBackwardMB: number;
  paramsMB: number;
  totalMB: number;
}

/**
 * Whether model.py holds the node as a module (which torchsummary hooks): every layer of a block
 * (nn.Sequential's children), and a layer with parameters outside any block (`self.add_module`);
 * parameterless layers outside blocks are functional calls (`F.relu(x)`), and `add`/`mul`/`concat`
 * are arithmetic in forward(). backends/pytorch/index.ts lays model.py out this way (a test keeps
 * the two in step).
 */
export function isTorchModule(node: AnyNodeIR): boolean {
  if (opDef(node.kind).spelling === "block") return false;
  return node.block !== undefined || node.params.length > 0;
}

/** torchsummary's four figures for `batchSize` images, on the model.py of this IR. */
export function memoryEstimate(ir: ModelIR, batchSize: number): MemoryEstimate {
  const out = ir.nodes.at(-1)?.outShape ?? [];
  // The hooked outputs: each module's, then the root Net's (the model's output).
  let totalOutput = 0;
  let totalParams = 0;
  for (const node of ir.nodes) {
    if (!isTorchModule(node)) continue;
    totalOutput += batchSize * sizeOf(node.outShape);
    totalParams += paramCount(node, true);
  }
  totalOutput += batchSize * sizeOf(out);
  const { channels, height, width } = ir.input;
  const inputMB = Math.abs((channels * height * width * batchSize * FLOAT) / MB);
  const forwardBackwardMB = Math.abs((2 * totalOutput * FLOAT) / MB);
  const paramsMB = Math.abs((totalParams * FLOAT) / MB);
  return {
    batchSize,
    inputMB,
    forwardBackwardMB,
    paramsMB,
    totalMB: paramsMB + forwardBackwardMB + inputMB,
  };
}

/** A node's share of the model's trainable parameters, in percent (0 when there are none). */
export function paramPercent(params: number, total: number): number {
  return total > 0 ? (100 * params) / total : 0;
}

/** One top-level item of the spec: a named block, or a layer outside any block. */
export interface BlockTotal {
  /** The block's name, or the layer's (its index). */
  name: string;
  /** Whether it is a named block (else a single layer outside any block). */
  block: boolean;
  layers: AnyNodeIR[];
  outputShape: Shape;
  params: number;
  buffers: number;
  macs: number;
  /** The receptive field of its output (its last node's). */
  rf: { size: number; jump: number };
}

/** The spec's top-level items in order, each with the subtotals of its layers. */
export function blockTotals(nodes: AnyNodeIR[]): BlockTotal[] {
  const items: AnyNodeIR[][] = [];
  for (const node of nodes) {
    const last = items.at(-1);
    if (node.block !== undefined && last?.[0]?.block === node.block) last.push(node);
    else items.push([node]);
  }
  return items.map((layers) => {
    const first = layers[0] as AnyNodeIR;
    const lastNode = layers.at(-1) as AnyNodeIR;
    const sum = (f: (n: AnyNodeIR) => number) => layers.reduce((s, n) => s + f(n), 0);
    return {
      name: first.block ?? first.name,
      block: first.block !== undefined,
      layers,
      outputShape: lastNode.outShape,
      params: sum((n) => paramCount(n, true)),
      buffers: sum((n) => paramCount(n, false)),
      macs: sum((n) => n.macs),
      rf: lastNode.rf,
    };
  });
}

/**
 * Where `check` warns, for a tool whose shipped nets have 4k-17k parameters and train on two CPU
 * cores: 10 M parameters (ResNet-18's size, 600 times the seed's net), 2 GiB of torchsummary's
 * estimate at the training batch size (PyTorch's real peak is higher still: gradients of the
 * weights, optimizer slots, autograd's saved tensors), 1 G MACs per image (an epoch of 60,000
 * images is then 1.8e14 multiply-adds forward and backward: over half an hour even at this
 * machine's 90 G/s MatMul peak).
 */
export const WARN_PARAMS = 10_000_000;
export const WARN_MEMORY_MB = 2048;
export const WARN_MACS = 1_000_000_000;

const n = (x: number): string => x.toLocaleString("en-US");
const largest = (nodes: AnyNodeIR[], by: (n: AnyNodeIR) => number): AnyNodeIR | undefined =>
  nodes.reduce<AnyNodeIR | undefined>(
    (best, n) => (!best || by(n) > by(best) ? n : best),
    undefined,
  );

/** W0303-W0305: a model that compiles but is larger than this tool's users expect. */
export function sizeWarnings(ir: ModelIR, top: Span, batchAt: Span | undefined): Diagnostic[] {
  const found: Diagnostic[] = [];
  const at = (node: AnyNodeIR | undefined) => node?.span ?? top;
  const trainable = ir.totals.trainable;
  if (trainable > WARN_PARAMS) {
    const big = largest(ir.nodes, (x) => paramCount(x, true));
    found.push(
      warning(
        "W0303",
        `${n(trainable)} trainable parameters, more than ${n(WARN_PARAMS)}${big ? `; the largest is layer ${big.name} (${big.kind}) with ${n(paramCount(big, true))}` : ""}`,
        at(big),
      ),
    );
  }
  const memory = memoryEstimate(ir, ir.train.batchSize);
  if (memory.totalMB > WARN_MEMORY_MB) {
    const big = largest(ir.nodes, (x) => (isTorchModule(x) ? sizeOf(x.outShape) : 0));
    const notes: Note[] = [
      {
        message: `the batch size of ${ir.train.batchSize} ${batchAt ? "is set here" : "is the default"}; \`mnistc params --batch-size N\` shows the estimate for another`,
        ...(batchAt ? { span: batchAt } : {}),
      },
    ];
    found.push(
      warning(
        "W0304",
        `estimated training memory ${n(Math.round(memory.totalMB))} MB at batch ${ir.train.batchSize} (torchsummary's estimate), more than ${n(WARN_MEMORY_MB)} MB${big ? `; the largest output is layer ${big.name} (${big.kind}), ${n(sizeOf(big.outShape))} values per image` : ""}`,
        at(big),
        notes,
      ),
    );
  }
  if (ir.totals.macs > WARN_MACS) {
    const big = largest(ir.nodes, (x) => x.macs);
    found.push(
      warning(
        "W0305",
        `${n(ir.totals.macs)} MACs per image, more than ${n(WARN_MACS)}${big ? `; the most is layer ${big.name} (${big.kind}) with ${n(big.macs)}` : ""}`,
        at(big),
      ),
    );
  }
  return found;
}
