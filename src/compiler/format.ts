// The one text form of a diagnostic, as compilers print them (editors and terminals link it):
//   file:line:col: error E0101: message
//   file:line:col: note: message
// File names, keys and layer names come from the user's files: every line is made printable, so
// an escape sequence in a name never reaches the terminal raw (and a newline never splits a line).
import { printable } from "../util/text.js";
import type { Diagnostic } from "./diagnostics.js";
import type { Span } from "./ir.js";

/** Line 0 means the whole file (E0000: it could not be read), printed without line and column. */
const place = (span: Span): string =>
  printable(span.line > 0 ? `${span.file}:${span.line}:${span.col}` : span.file);

export function formatDiagnostic(d: Diagnostic): string {
  const lines = [`${place(d.span)}: ${d.severity} ${d.code}: ${printable(d.message)}`];
  for (const note of d.notes) {
    lines.push(`${place(note.span ?? d.span)}: note: ${printable(note.message)}`);
  }
  return lines.join("\n");
}

/**
 * Diagnostics shown for one spec at the most: 60,000 unknown keys are 60,000 lines that nobody
 * reads; the rest is counted (`and N more`).
 */
export const MAX_SHOWN_DIAGNOSTICS = 100;

/** The text of a spec's diagnostics, one per line, at most MAX_SHOWN_DIAGNOSTICS of them. */
export function formatDiagnostics(ds: readonly Diagnostic[], max = MAX_SHOWN_DIAGNOSTICS): string {
  const shown = ds.slice(0, max).map(formatDiagnostic);
  const more = ds.length - shown.length;
  const file = ds[0]?.span.file;
  if (more > 0 && file !== undefined) {
    shown.push(`${printable(file)}: and ${more.toLocaleString("en-US")} more`);
  }
  return shown.join("\n");
}
