// The compiler's entry point: spec text in, a complete ModelIR or located diagnostics out.
//   parse (yaml, positions) → schema (ajv) → lower → shapes → params/MACs → receptive field → checks
// Pure and total: a user's mistake is a diagnostic; anything thrown is a compiler bug.
import { basename, extname } from "node:path";
import { budgetDiagnostic } from "./budget.js";
import type { Diagnostic } from "./diagnostics.js";
import { checkDataset, checkHead } from "./head.js";
import type { ModelIR } from "./ir.js";
import { nameDiagnostic, sizeDiagnostics, textLimits } from "./limits.js";
import { duplicateBlocks, lower } from "./lower.js";
import { countParams } from "./params.js";
import { parse } from "./parse.js";
import { receptiveFields } from "./receptive.js";
import { validate } from "./schema.js";
import { schemaDiagnostics } from "./schema-errors.js";
import { inferShapes } from "./shapes.js";

export { type BudgetVerdict, budgetVerdict, verdictLine } from "./budget.js";
export { CODES } from "./codes.js";
export { formatDiagnostic, formatDiagnostics } from "./format.js";
export { buildSchema } from "./schema.js";

export interface CompileResult {
  /** Present iff there is no error. */
  ir?: ModelIR;
  diagnostics: Diagnostic[];
}

const hasError = (ds: Diagnostic[]) => ds.some((d) => d.severity === "error");

function compile(text: string, file: string, max: number | undefined, withBudget: boolean) {
  const tooLarge = textLimits(text, file);
  if (tooLarge) return { diagnostics: [tooLarge] };
  const { parsed, diagnostics } = parse(text, file);
  if (!parsed) return { diagnostics };
  const { source, value } = parsed;
  const structural = [
    ...schemaDiagnostics(validate(value), value, source),
    ...duplicateBlocks(value, source),
  ];
  if (hasError(structural)) return { diagnostics: structural };

  const model = lower(value as Record<string, unknown>, source, basename(file, extname(file)));
  if (hasError(model.diagnostics)) return { diagnostics: model.diagnostics };
  const shapeErrors = inferShapes(model.nodes, model.input, source);
  const explicitName = typeof (value as { name?: unknown }).name === "string";
  const badName = nameDiagnostic(model.name, explicitName, source.key([], "name"), file);
  const found = [
    ...(badName ? [badName] : []),
    ...shapeErrors,
    ...checkHead(model, shapeErrors.length === 0, source),
    ...checkDataset(model, source),
  ];
  if (hasError(found)) return { diagnostics: found.sort((a, b) => a.span.line - b.span.line) };

  const totals = countParams(model.nodes);
  const tooBig = sizeDiagnostics(model.nodes, model.input, source.at(["input"]));
  if (hasError(tooBig)) return { diagnostics: tooBig };
  receptiveFields(model.nodes, model.input);
  const { diagnostics: _resolved, ...lowered } = model;
  const ir: ModelIR = { ...lowered, file, totals };
  const over = withBudget ? budgetDiagnostic(ir, source.key([], "budget"), max) : undefined;
  return { ir, diagnostics: over ? [over] : [] };
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
