// The parameter budget: the spec's `budget:` or a `--max` given on the command line (which wins).
// Kept out of `compileSpec` on purpose: an over-budget model is still a model, and `params` must be
// able to show where its parameters are; `check` and `params` report the verdict.

import { sizeOf } from "../util/shape.js";
import { error } from "./codes.js";
import type { Diagnostic, Note } from "./diagnostics.js";
import type { AnyNodeIR, ModelIR, Span } from "./ir.js";

export interface BudgetVerdict {
  /** The limit in trainable parameters, if any. */
  limit: number | undefined;
  source: "spec" | "--max" | undefined;
  trainable: number;
  ok: boolean;
  /** limit − trainable (negative when over); undefined without a limit. */
  spare: number | undefined;
}

export function budgetVerdict(ir: ModelIR, max?: number): BudgetVerdict {
  const limit = max ?? ir.budget;
  const source = max !== undefined ? "--max" : ir.budget !== undefined ? "spec" : undefined;
  const trainable = ir.totals.trainable;
  return {
    limit,
    source,
    trainable,
    ok: limit === undefined || trainable <= limit,
    spare: limit === undefined ? undefined : limit - trainable,
  };
}

export const thousands = (n: number): string => n.toLocaleString("en-US");

/** `budget: 16,478 / 16,500 trainable parameters — OK (22 to spare)`. */
export function verdictLine(v: BudgetVerdict): string {
  if (v.limit === undefined || v.spare === undefined) {
    return `budget: none set — ${thousands(v.trainable)} trainable parameters (set \`budget:\` or --max)`;
  }
  const from = v.source === "--max" ? " (--max)" : "";
  const head = `budget${from}: ${thousands(v.trainable)} / ${thousands(v.limit)} trainable parameters`;
  return v.ok
    ? `${head} — OK (${thousands(v.spare)} to spare)`
    : `${head} — OVER by ${thousands(-v.spare)}`;
}

/** E0301 when over budget: on the largest layer (where to cut), with a note at `budget:`. */
export function budgetDiagnostic(
  ir: ModelIR,
  budgetSpan: Span | undefined,
  max?: number,
  /** Some layers' shapes are unknown: `ir` counts the others, a lower bound. */
  partial = false,
): Diagnostic | undefined {
  const v = budgetVerdict(ir, max);
  if (v.ok || v.limit === undefined || v.spare === undefined) return undefined;
  const biggest = [...ir.nodes].sort((a, b) => trainableOf(b) - trainableOf(a))[0];
  const at = biggest?.span ??
    budgetSpan ?? { file: ir.file, line: 1, col: 1, endLine: 1, endCol: 1 };
  const largest = biggest
    ? `; the largest is layer ${biggest.name} (${biggest.kind}) with ${thousands(trainableOf(biggest))}`
    : "";
  const note: Note =
    v.source === "--max" || !budgetSpan
      ? { message: `the budget of ${thousands(v.limit)} comes from --max` }
      : { message: `the budget of ${thousands(v.limit)} is set here`, span: budgetSpan };
  return error(
    "E0301",
    partial
      ? `at least ${thousands(v.trainable)} trainable parameters (layers of unknown shape not counted), over the budget of ${thousands(v.limit)}${largest}`
      : `${thousands(v.trainable)} trainable parameters, over the budget of ${thousands(v.limit)} by ${thousands(-v.spare)}${largest}`,
    at,
    [note],
  );
}

function trainableOf(node: AnyNodeIR): number {
  return node.params.filter((p) => p.trainable).reduce((s, p) => s + sizeOf(p.shape), 0);
}
