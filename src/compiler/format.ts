// The one text form of a diagnostic, as compilers print them (editors and terminals link it):
//   file:line:col: error E0101: message
//   file:line:col: note: message
import type { Diagnostic } from "./diagnostics.js";
import type { Span } from "./ir.js";

/** Line 0 means the whole file (E0000: it could not be read), printed without line and column. */
const place = (span: Span): string =>
  span.line > 0 ? `${span.file}:${span.line}:${span.col}` : span.file;

export function formatDiagnostic(d: Diagnostic): string {
  const lines = [`${place(d.span)}: ${d.severity} ${d.code}: ${d.message}`];
  for (const note of d.notes) lines.push(`${place(note.span ?? d.span)}: note: ${note.message}`);
  return lines.join("\n");
}
