// The `metadata_props` contract of mnistc's ONNX files: written by the backend, read back by the
// runtime (normalization for `predict`/`serve`/`eval`) and shown by `inspect`. Values are strings:
// numbers in decimal, arrays as JSON.
import { PREPROCESS_PROFILES, type PreprocessProfile } from "../compiler/datasets.js";
import type { ModelIR } from "../compiler/ir.js";
import { nameProblem } from "../compiler/names.js";
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
  /** The dataset table's name of what the model was trained on (or is meant for). */
  dataset: "mnistc.dataset",
  /** One name per class, a JSON list of strings in label order. */
  classNames: "mnistc.class_names",
  /** How predict and serve prepare a picture: `digit` or `resize`. */
  preprocess: "mnistc.preprocess",
} as const;

/** The smallest per-channel std a model may ask to divide by. */
export const MIN_STD = 1e-6;

/** Longest class name a model may carry (a folder name is at most 255 bytes). */
export const MAX_CLASS_NAME = 255;

export function metadataFor(ir: ModelIR, trained: boolean): { key: string; value: string }[] {
  const entries: [string, string][] = [
    [META.spec, ir.name],
    [META.dataset, ir.data.dataset],
    // A spec without normalization and a dataset without defaults (untrained): none recorded.
    ...(ir.data.mean && ir.data.std
      ? ([
          [META.mean, JSON.stringify(ir.data.mean)],
          [META.std, JSON.stringify(ir.data.std)],
        ] as [string, string][])
      : []),
    ...(ir.data.classNames
      ? ([[META.classNames, JSON.stringify(ir.data.classNames)]] as [string, string][])
      : []),
    [META.preprocess, ir.data.preprocess],
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
  dataset?: string;
  classNames?: string[];
  preprocess?: PreprocessProfile;
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

function stringArray(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    if (Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === "string")) {
      return value as string[];
    }
  } catch {
    // As numberArray: treated as absent.
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
  const dataset = props.get(META.dataset);
  if (dataset) result.dataset = dataset;
  const names = stringArray(props.get(META.classNames));
  if (names) result.classNames = names;
  const preprocess = props.get(META.preprocess);
  if (PREPROCESS_PROFILES.includes(preprocess as PreprocessProfile)) {
    result.preprocess = preprocess as PreprocessProfile;
  }
  return result;
}

/**
 * What is wrong with mnistc's keys in a model, one message per bad key (none when all are well
 * formed or absent): normalization that would give NaN or infinite inputs, a class count or input
 * shape that is not a positive integer. `readMetadata` ignores a malformed value; a model about to
 * be run must not, so `DigitModel.load` refuses a model with any of these.
 */
export function metadataProblems(model: ModelProto): string[] {
  const props = new Map(model.metadataProps.map((p) => [p.key ?? "", p.value ?? ""]));
  const problems: string[] = [];
  const parse = (text: string): unknown => {
    try {
      return JSON.parse(text);
    } catch {
      return undefined;
    }
  };
  const numbers = (key: string, ok: (v: number) => boolean, expected: string): void => {
    const text = props.get(key);
    if (text === undefined) return;
    const value = parse(text);
    if (
      !Array.isArray(value) ||
      value.length === 0 ||
      !value.every((v) => typeof v === "number" && Number.isFinite(v) && ok(v))
    ) {
      problems.push(`${key} is ${JSON.stringify(text)}; expected a JSON list of ${expected}`);
    }
  };
  const spec = props.get(META.spec);
  const badName = spec === undefined ? undefined : nameProblem(spec);
  if (badName) problems.push(`${META.spec} ${JSON.stringify(spec?.slice(0, 80))}: ${badName}`);
  numbers(META.mean, () => true, "finite numbers");
  // A denormal std divides pixels into infinities: at least 1e-6, as any real dataset's is.
  numbers(META.std, (v) => v >= MIN_STD, `finite numbers of at least ${MIN_STD}`);
  const classes = props.get(META.classes);
  if (classes !== undefined && !(/^\d+$/.test(classes) && Number(classes) >= 1)) {
    problems.push(`${META.classes} is ${JSON.stringify(classes)}; expected a positive integer`);
  }
  const names = props.get(META.classNames);
  if (names !== undefined) {
    const value = parse(names);
    const count = Number(classes);
    if (
      !Array.isArray(value) ||
      !value.every((v) => typeof v === "string" && v.length <= MAX_CLASS_NAME) ||
      (classes !== undefined && value.length !== count)
    ) {
      problems.push(
        `${META.classNames} is not a JSON list of ${classes ?? "the model's"} class names of at most ${MAX_CLASS_NAME} characters`,
      );
    }
  }
  const preprocess = props.get(META.preprocess);
  if (preprocess !== undefined && !PREPROCESS_PROFILES.includes(preprocess as PreprocessProfile)) {
    problems.push(
      `${META.preprocess} is ${JSON.stringify(preprocess.slice(0, 40))}; expected ${PREPROCESS_PROFILES.join(" or ")}`,
    );
  }
  const shape = props.get(META.inputShape);
  if (shape !== undefined) {
    const value = parse(shape);
    if (
      !Array.isArray(value) ||
      value.length !== 3 ||
      !value.every((v) => Number.isSafeInteger(v) && v > 0)
    ) {
      problems.push(`${META.inputShape} is ${JSON.stringify(shape)}; expected [C, H, W]`);
    }
  }
  return problems;
}
