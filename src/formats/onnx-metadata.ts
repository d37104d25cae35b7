// The `metadata_props` contract of mnistc's ONNX files: written by the backend, read back by the
// runtime (normalization for `predict`/`serve`/`eval`) and shown by `inspect`. Values are strings:
// numbers in decimal, arrays as JSON.
import type { ModelIR } from "../compiler/ir.js";
import type { ModelProto } from "./onnx-proto.js";

export const META = {
  /** The spec's name. */
  spec: "mnistc.spec",
  /** Per-channel normalization the model expects: x' = (x/255 - mean) / std. JSON arrays. */
  mean: "mnistc.mean",
  std: "mnistc.std",
  classes: "mnistc.classes",
  /** [C,H,W] as JSON (the batch axis is the symbolic `N`). */
  inputShape: "mnistc.input_shape",
  /** Counted as PyTorch does: trainable parameters, and BN running statistics apart. */
  trainableParams: "mnistc.params.trainable",
  bufferParams: "mnistc.params.buffers",
  macs: "mnistc.macs",
  /** `trained` or `seeded-init seed=<n>`: an untrained model says so. */
  weights: "mnistc.weights",
} as const;

export function metadataFor(ir: ModelIR, trained: boolean): { key: string; value: string }[] {
  const entries: [string, string][] = [
    [META.spec, ir.name],
    [META.mean, JSON.stringify(ir.data.mean)],
    [META.std, JSON.stringify(ir.data.std)],
    [META.classes, String(ir.classes)],
    [META.inputShape, JSON.stringify([ir.input.channels, ir.input.height, ir.input.width])],
    [META.trainableParams, String(ir.totals.trainable)],
    [META.bufferParams, String(ir.totals.buffers)],
    [META.macs, String(ir.totals.macs)],
    [META.weights, trained ? "trained" : `seeded-init seed=${ir.train.seed}`],
  ];
  return entries.map(([key, value]) => ({ key, value }));
}

export interface MnistcMetadata {
  spec?: string;
  mean?: number[];
  std?: number[];
  classes?: number;
  trainableParams?: number;
  weights?: string;
}

function numberArray(text: string | undefined): number[] | undefined {
  if (text === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    if (Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === "number")) {
      return value as number[];
    }
  } catch {
    // A foreign or hand-edited value: treated as absent.
  }
  return undefined;
}

function integer(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d+$/.test(text)) return undefined;
  return Number(text);
}

/** What mnistc's keys say, each absent when missing or malformed (any ONNX model is accepted). */
export function readMetadata(model: ModelProto): MnistcMetadata {
  const props = new Map(model.metadataProps.map((p) => [p.key ?? "", p.value ?? ""]));
  const result: MnistcMetadata = {};
  const spec = props.get(META.spec);
  if (spec) result.spec = spec;
  const mean = numberArray(props.get(META.mean));
  if (mean) result.mean = mean;
  const std = numberArray(props.get(META.std));
  if (std) result.std = std;
  const classes = integer(props.get(META.classes));
  if (classes !== undefined) result.classes = classes;
  const trainable = integer(props.get(META.trainableParams));
  if (trainable !== undefined) result.trainableParams = trainable;
  const weights = props.get(META.weights);
  if (weights) result.weights = weights;
  return result;
}
