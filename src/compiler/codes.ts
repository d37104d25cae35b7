// Every diagnostic code mnistc can report, in one place: tests, the README and users key on these,
// so a code never changes meaning once shipped. `CODES` are the compiler's (what `check` reports,
// each with a fixture in test/check.test.ts); `BACKEND_CODES` come from a backend at emit time,
// when the spec compiled but what it was asked to emit cannot be.
import type { Diagnostic, Note } from "./diagnostics.js";
import type { Span } from "./ir.js";

export const CODES = {
  E0000: "cannot read the spec file",
  E0001: "YAML syntax error",
  E0002: "empty spec",
  E0003: "spec too large or nested too deeply to parse",
  E0101: "unknown layer type",
  E0102: "missing field",
  E0103: "unknown field",
  E0104: "wrong type",
  E0105: "value out of range (e.g. a non-positive size)",
  E0106: "malformed layer",
  E0107: "duplicate block name",
  E0108: "nested block",
  E0109: "invalid block name",
  E0110: "unknown value",
  E0111: "spec does not fit its dataset",
  E0112: "a block's add:, mul: or concat: names no earlier block",
  E0113: "model name cannot be a folder name",
  E0201: "kernel or pool window larger than its input (the spatial size would collapse)",
  E0203: "linear on an image without flatten",
  E0204: "layer needs an image input",
  E0205: "output is not [classes]",
  E0206: "last layer is not log_softmax",
  E0207: "add of two different shapes",
  E0208: "conv groups do not divide the channels",
  E0209: "padding: same with a stride other than 1",
  E0210: "pool padding more than half its window",
  E0211: "mul of shapes that do not broadcast",
  E0212: "concat of maps of different spatial sizes (or of an image and a vector)",
  E0301: "over the parameter budget",
  E0302: "layer or model too large to allocate",
  E0303: "model too large for the ONNX file eval, predict and serve read",
  W0303: "more than 10,000,000 trainable parameters",
  W0304: "estimated training memory over 2 GiB (torchsummary's estimate at the spec's batch size)",
  W0305: "more than 1,000,000,000 MACs per image",
} as const;

export const BACKEND_CODES = {
  E0801: "onnx: a weight of the spec is missing from the given weights",
  E0802: "onnx: a given weight has another shape than the spec's",
  E0901: "tfjs: weights given (its program initializes and trains its own)",
  E0902: "pytorch: a block name that cannot be an nn.Module attribute",
  E0903: "pytorch: weights given (model.py loads them at run time)",
  W0904: "pytorch: train.py leaves out the spec's distillation (its teachers are ONNX models)",
} as const;

/** What `mnistc sweep` reports about a sweep file (its YAML and schema errors use the codes above). */
export const SWEEP_CODES = {
  E1001: "sweep: a search-space path names nothing in the base spec",
  E1002: "sweep: an empty or reversed range",
  E1003: "sweep: the grid sampler over a continuous range",
  E1004: "sweep: the base spec cannot be read or does not compile",
  E1005: "sweep: over the MAC limit (constraints.max_macs)",
} as const;

export type Code = keyof typeof CODES;
export type SweepCode = keyof typeof SWEEP_CODES;

export function error(
  code: Code | SweepCode,
  message: string,
  span: Span,
  notes: Note[] = [],
): Diagnostic {
  return { code, severity: "error", message, span, notes };
}

export function warning(code: Code, message: string, span: Span, notes: Note[] = []): Diagnostic {
  return { code, severity: "warning", message, span, notes };
}
