// Sizes a spec may ask for, checked at `check` time so that a model too large to allocate is a
// located diagnostic naming the limit, not an out-of-memory crash (or a hang) when training or
// exporting: a spec text too large or nested too deeply to parse, a weight tensor, a whole model's
// parameters, and one image's activations at any layer.
import { error } from "./codes.js";
import type { Diagnostic } from "./diagnostics.js";
import type { AnyNodeIR, InputIR, Span } from "./ir.js";
import { nameProblem } from "./names.js";

/** A spec file is a few hundred bytes; 1 MiB is far more than any needs. */
export const MAX_SPEC_BYTES = 1024 * 1024;
/** Nesting of YAML collections; a spec needs 4 or 5. */
export const MAX_SPEC_DEPTH = 64;
/** Values in one weight tensor (float32: 1 GiB). */
export const MAX_TENSOR_VALUES = 2 ** 28;
/** Trainable parameters plus buffers of the whole model (float32: 1 GiB). */
export const MAX_MODEL_VALUES = 2 ** 28;
/** Values of one image's activation at any layer, input included (float32: 64 MiB per image). */
export const MAX_ACTIVATION_VALUES = 2 ** 24;
/**
 * The largest ONNX file `eval`, `predict`, `serve` and `inspect` read (ours are about 100 KB; ONNX
 * keeps big weights in external files, which mnistc never reads). `check` refuses a spec whose
 * model would not fit (E0303), so that no spec passes `check` and then makes an unreadable model.
 */
export const MAX_MODEL_BYTES = 512 * 1024 * 1024;
/**
 * What an ONNX file holds beside its float32 weights: the graph, names and metadata (a few KB for
 * ours; 256 class names of 255 bytes are 64 KB). Kept apart so a model at the limit is refused by
 * `check`, not by `eval` after an hour of training.
 */
export const ONNX_OVERHEAD_BYTES = 1024 * 1024;

const n = (x: number): string => x.toLocaleString("en-US");
const size = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

function fileSpan(file: string): Span {
  return { file, line: 1, col: 1, endLine: 1, endCol: 1 };
}

/** Where a character offset sits, 1-based. */
function spanAt(text: string, offset: number, file: string): Span {
  let line = 1;
  let col = 1;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      col = 1;
    } else col++;
  }
  return { file, line, col, endLine: line, endCol: col };
}

/**
 * Whether the quote at `i` starts a quoted scalar. Inside a plain scalar (`name: it's`, `a-'b`) a
 * quote is a character like any other: taking it for a quote would hide everything up to the next
 * one, nesting included, from the depth count. A quoted scalar starts a line or a flow item, follows
 * an indicator (`key: `, `- `, `? `) or a tag or anchor (`!!str "x"`, `&a 'x'`).
 */
function opensQuote(text: string, i: number): boolean {
  let j = i - 1;
  while (j >= 0 && (text[j] === " " || text[j] === "\t")) j--;
  const before = text[j];
  if (before === undefined || before === "\n" || before === "\r") return true;
  if (before === "[" || before === "{" || before === ",") return true;
  if (j === i - 1) return false; // no space between: part of a plain scalar
  if (before === ":" || before === "-" || before === "?") return true;
  let k = j;
  while (k >= 0 && !/\s/.test(text[k] ?? " ")) k--;
  return text[k + 1] === "!" || text[k + 1] === "&";
}

/**
 * Before parsing: the text's size, and how deeply its collections nest. The YAML parser recurses
 * per level, so thousands of `[` or `{` (or indentation levels) would overflow its stack. Flow
 * nesting is counted outside quotes and comments; block nesting by the indentation levels open.
 */
export function textLimits(text: string, file: string): Diagnostic | undefined {
  if (text.length > MAX_SPEC_BYTES) {
    return error(
      "E0003",
      `the spec is ${n(text.length)} characters long; at most ${n(MAX_SPEC_BYTES)} are accepted`,
      fileSpan(file),
    );
  }
  let flow = 0;
  let quote: string | undefined;
  let comment = false;
  let lineStart = true;
  let indent = 0;
  const blocks: number[] = [];
  const tooDeep = (offset: number, depth: number): Diagnostic =>
    error(
      "E0003",
      `the spec nests ${depth} levels deep here; at most ${MAX_SPEC_DEPTH} are accepted`,
      spanAt(text, offset, file),
    );
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "\n") {
      comment = false;
      lineStart = true;
      indent = 0;
      if (quote === "'" || quote === '"') continue; // a quoted scalar may span lines
      continue;
    }
    if (comment) continue;
    if (quote) {
      if (c === "\\" && quote === '"') i++;
      else if (c === quote) quote = undefined;
      continue;
    }
    if (lineStart) {
      if (c === " " || c === "-") {
        // `- - - x` opens a sequence per dash, like deeper indentation.
        indent++;
        continue;
      }
      lineStart = false;
      if (c !== "#" && flow === 0) {
        while (blocks.length > 0 && (blocks[blocks.length - 1] ?? 0) >= indent) blocks.pop();
        blocks.push(indent);
        if (blocks.length > MAX_SPEC_DEPTH) return tooDeep(i, blocks.length);
      }
    }
    if (c === "#" && (i === 0 || /\s/.test(text[i - 1] ?? ""))) comment = true;
    else if ((c === "'" || c === '"') && opensQuote(text, i)) quote = c;
    else if (c === "[" || c === "{") {
      flow++;
      if (flow + blocks.length > MAX_SPEC_DEPTH) return tooDeep(i, flow + blocks.length);
    } else if (c === "]" || c === "}") flow = Math.max(0, flow - 1);
  }
  return undefined;
}

/** E0113 when the model's name cannot be a folder name (see names.ts). */
export function nameDiagnostic(
  name: string,
  explicit: boolean,
  span: Span | undefined,
  file: string,
): Diagnostic | undefined {
  const problem = nameProblem(name);
  if (!problem) return undefined;
  const from = explicit ? "" : " (taken from the file name; set `name:` to choose one)";
  return error(
    "E0113",
    `model name ${JSON.stringify(name)}${from} cannot be a folder name: ${problem}`,
    span ?? fileSpan(file),
  );
}

/** E0302 for each layer whose weights or activations are too large, and for a model too large. */
export function sizeDiagnostics(nodes: AnyNodeIR[], input: InputIR, top: Span): Diagnostic[] {
  const found: Diagnostic[] = [];
  const inputValues = input.channels * input.height * input.width;
  if (inputValues > MAX_ACTIVATION_VALUES) {
    found.push(
      error(
        "E0302",
        `the input ${input.channels}x${input.height}x${input.width} has ${n(inputValues)} values per image; at most ${n(MAX_ACTIVATION_VALUES)} are accepted`,
        top,
      ),
    );
  }
  let total = 0;
  for (const node of nodes) {
    for (const p of node.params) {
      const values = size(p.shape);
      total += values;
      if (values > MAX_TENSOR_VALUES) {
        found.push(
          error(
            "E0302",
            `layer ${node.name} (${node.kind}): ${p.name} [${p.shape.join(", ")}] has ${n(values)} values; at most ${n(MAX_TENSOR_VALUES)} per tensor can be allocated`,
            node.span,
          ),
        );
      }
    }
    const out = size(node.outShape);
    if (out > MAX_ACTIVATION_VALUES) {
      found.push(
        error(
          "E0302",
          `layer ${node.name} (${node.kind}): its output [${node.outShape.join(", ")}] has ${n(out)} values per image; at most ${n(MAX_ACTIVATION_VALUES)} are accepted`,
          node.span,
        ),
      );
    }
  }
  if (total > MAX_MODEL_VALUES && found.length === 0) {
    found.push(
      error(
        "E0302",
        `the model has ${n(total)} parameter values; at most ${n(MAX_MODEL_VALUES)} can be allocated`,
        top,
      ),
    );
  }
  // Every parameter and buffer is a float32 initializer of the ONNX file (and of each checkpoint
  // file: Adam's two slots make optimizer.safetensors twice that, inside its 1 GiB limit).
  const onnxBytes = 4 * total + ONNX_OVERHEAD_BYTES;
  if (onnxBytes > MAX_MODEL_BYTES && found.length === 0) {
    const mib = (b: number) => `${n(Math.ceil(b / 1024 / 1024))} MiB`;
    found.push(
      error(
        "E0303",
        `the model has ${n(total)} parameter values: its ONNX file would be about ${mib(onnxBytes)}; eval, predict and serve read at most ${mib(MAX_MODEL_BYTES)} (about ${n((MAX_MODEL_BYTES - ONNX_OVERHEAD_BYTES) / 4)} values)`,
        top,
      ),
    );
  }
  return found;
}
