// The compiler's entry point: spec text in, a complete ModelIR or located diagnostics out.
//   parse (yaml, positions) → schema (ajv) → lower → shapes → params/MACs → receptive field → checks
// Pure and total: a user's mistake is a diagnostic; anything thrown is a compiler bug.
import { basename, extname } from "node:path";
import { budgetDiagnostic } from "./budget.js";
import { datasetDef } from "./datasets.js";
import type { Diagnostic } from "./diagnostics.js";
import { checkDataset, checkHead } from "./head.js";
import { GRAPH_INPUT, type InputIR, type ModelIR, type Span } from "./ir.js";
import { nameDiagnostic, sizeDiagnostics, textLimits } from "./limits.js";
import { duplicateBlocks, lower } from "./lower.js";
import { countParams } from "./params.js";
import { parse } from "./parse.js";
import { receptiveFields } from "./receptive.js";
import { validate } from "./schema.js";
import { damage, schemaDiagnostics } from "./schema-errors.js";
import { describeNode, inferShapes } from "./shapes.js";
import { sizeWarnings } from "./summary.js";

export { type BudgetVerdict, budgetVerdict, verdictLine } from "./budget.js";
export { CODES } from "./codes.js";
export { formatDiagnostic, formatDiagnostics } from "./format.js";
export { buildSchema } from "./schema.js";

export interface CompileResult {
  /** Present iff there is no error. */
  ir?: ModelIR;
  diagnostics: Diagnostic[];
  /**
   * With errors: the model up to its first broken layer (every node before it has its shapes,
   * parameters and receptive field), and that layer's name; absent when no shape is known.
   */
  partial?: { ir: ModelIR; stopsAt: string | undefined };
}

const hasError = (ds: Diagnostic[]) => ds.some((d) => d.severity === "error");
const before = (a: Span, b: Span) => a.line < b.line || (a.line === b.line && a.col < b.col);
const inside = (s: Span, outer: Span) =>
  !before(s, { ...outer }) &&
  (s.line < outer.endLine || (s.line === outer.endLine && s.col <= outer.endCol));
const byPlace = (a: Diagnostic, b: Diagnostic) =>
  a.span.line - b.span.line || a.span.col - b.span.col;

/** Adds `note` to the first diagnostic placed inside `within` (or to `fallback`). */
function noteOn(
  found: Diagnostic[],
  within: Span | undefined,
  note: string,
  fallback?: Diagnostic,
) {
  const d = (within && found.find((x) => inside(x.span, within))) ?? fallback;
  d?.notes.push({ message: note, span: d.span });
}

/** An unknown name as the spec writes it: `layer conv1.0`, `block res1`. */
function unknownLabel(name: string): string {
  const dup = /^(.*)#\d+$/.exec(name);
  if (dup) return `block ${dup[1]}`;
  const combine = /^(.*)\.(add|mul|concat)$/.exec(name);
  return combine ? `block ${combine[1]}` : `layer ${name}`;
}

function compile(text: string, file: string, max: number | undefined, withBudget: boolean) {
  const tooLarge = textLimits(text, file);
  if (tooLarge) return { diagnostics: [tooLarge] };
  const { parsed, diagnostics } = parse(text, file);
  if (!parsed) return { diagnostics };
  const { source, value } = parsed;
  const errors = validate(value);
  const structural = [
    ...schemaDiagnostics(errors, value, source),
    ...duplicateBlocks(value, source),
  ];
  if (!value || typeof value !== "object" || Array.isArray(value)) {
    return { diagnostics: structural };
  }
  // Everything that can be checked is: a part the schema rejects is left out of what reads it.
  const hurt = damage(errors, value);
  const model = lower(
    value as Record<string, unknown>,
    source,
    basename(file, extname(file)),
    errors.length > 0 ? hurt : undefined,
  );
  const found = [...structural, ...model.diagnostics];
  const dataOk = !hurt.sections.has("data");
  const def = datasetDef(model.data.dataset);
  const missingInput = found.find((d) => d.code === "E0102" && d.message.includes("`input`"));
  const missingClasses = found.find((d) => d.code === "E0102" && d.message.includes("`classes`"));
  let input: InputIR | undefined = model.input;
  if (hurt.missing.has("input")) {
    input = dataOk && def.shape ? { ...def.shape } : undefined;
    const s = input && `${input.channels}x${input.height}x${input.width}`;
    missingInput?.notes.push({
      span: missingInput.span,
      message: input
        ? `shapes are checked with the ${model.data.dataset} dataset's ${s} images`
        : "shapes are not checked: the input shape is unknown",
    });
  } else if (hurt.sections.has("input")) {
    input = undefined;
    noteOn(found, source.at(["input"]), "shapes are not checked: the input shape is unknown");
  }
  let classes: number | undefined = model.classes;
  if (hurt.missing.has("classes")) {
    classes = dataOk && def.classNames ? def.classNames.length : undefined;
    missingClasses?.notes.push({
      span: missingClasses.span,
      message:
        classes !== undefined
          ? `the output is checked against the ${model.data.dataset} dataset's ${classes} classes`
          : "the output size is not checked: the number of classes is unknown",
    });
  } else if (hurt.sections.has("classes")) {
    classes = undefined;
  }
  const shapes = inferShapes(model.nodes, input, source, model.unknown);
  // Where shapes stop being known: an unknown layer that reads a known shape and is read.
  const isKnown = (name: string) =>
    name === GRAPH_INPUT
      ? input !== undefined
      : !model.unknown.has(name) && !shapes.unknown.has(name);
  for (const [name, { span, input: from }] of model.unknown) {
    if (name !== model.output && isKnown(from)) {
      noteOn(
        found,
        span,
        `shapes after ${unknownLabel(name)} are not checked: its output shape is unknown`,
      );
    }
  }

  const explicitName = typeof (value as { name?: unknown }).name === "string";
  const badName = hurt.sections.has("name")
    ? undefined
    : nameDiagnostic(model.name, explicitName, source.key([], "name"), file);
  const outputKnown =
    input !== undefined && !model.unknown.has(model.output) && !shapes.unknown.has(model.output);
  const withClasses = { ...model, classes: classes ?? model.classes };
  const fits = dataOk && !hurt.sections.has("input") && !hurt.sections.has("classes");
  const known = model.nodes.filter((n) => !shapes.unknown.has(n.name));
  const totals = countParams(known);
  found.push(
    ...(badName ? [badName] : []),
    ...shapes.diagnostics,
    ...(model.unknown.has(model.output)
      ? []
      : checkHead(withClasses, outputKnown && classes !== undefined, source)),
    ...(fits && !hurt.missing.has("input") && !hurt.missing.has("classes")
      ? checkDataset(model, source)
      : []),
    ...(input ? sizeDiagnostics(known, input, source.at(["input"])) : []),
  );
  const complete = model.unknown.size === 0 && shapes.unknown.size === 0;
  const { diagnostics: _resolved, unknown: _u, damaged, output: _o, ...lowered } = model;
  const base = { ...lowered, classes: classes ?? model.classes, file };

  if (hasError(found) || !input) {
    if (!input) return { diagnostics: found.sort(byPlace) };
    // The budget still counts what is known: a lower bound when some layers are not.
    const budgetOk = !hurt.sections.has("budget");
    const over =
      withBudget && budgetOk
        ? budgetDiagnostic(
            { ...base, input, nodes: known, totals },
            source.key([], "budget"),
            max,
            !complete,
          )
        : undefined;
    if (over) found.push(over);
    // The table stops at the first broken layer, in the order the spec writes them.
    const broken = [
      ...model.nodes
        .filter(
          (n) => shapes.unknown.has(n.name) || shapes.failed.has(n.name) || damaged.has(n.name),
        )
        .map((n) => ({ span: n.span, label: describeNode(n) })),
      ...[...model.unknown].map(([name, { span }]) => ({ span, label: unknownLabel(name) })),
    ].sort((a, b) => (before(a.span, b.span) ? -1 : before(b.span, a.span) ? 1 : 0));
    const cut = broken[0];
    const prefix = cut ? model.nodes.filter((n) => before(n.span, cut.span)) : model.nodes;
    receptiveFields(prefix, input);
    const partial: ModelIR = { ...base, input, nodes: prefix, totals: countParams(prefix) };
    return { diagnostics: found.sort(byPlace), partial: { ir: partial, stopsAt: cut?.label } };
  }

  receptiveFields(model.nodes, input);
  const ir: ModelIR = { ...base, input, totals };
  const over = withBudget ? budgetDiagnostic(ir, source.key([], "budget"), max) : undefined;
  const large = withBudget
    ? sizeWarnings(ir, source.at(["input"]), source.key(["train"], "batch_size"))
    : [];
  return { ir, diagnostics: [...(over ? [over] : []), ...large] };
}

/** Compile a spec. An over-budget model still compiles (`checkSpec` reports the budget). */
export function compileSpec(text: string, file: string): CompileResult {
  return compile(text, file, undefined, false);
}

/**
 * Everything `mnistc check` reports: compileSpec's diagnostics plus E0301 when the model is over its
 * budget (`max`, from --max, wins over the spec's). `ir` is present whenever the model compiled.
 */
export function checkSpec(text: string, file: string, max?: number): CompileResult {
  return compile(text, file, max, true);
}
