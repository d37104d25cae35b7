// `mnistc check SPEC... [--json]`: every problem of every spec, each located as file:line:col (with
// notes where the cause sits elsewhere), including an over-budget model. Exit 1 on any error.
import type { Diagnostic } from "../compiler/diagnostics.js";
import { checkSpec, formatDiagnostics } from "../compiler/index.js";
import { readFailure } from "../errors.js";
import { printable } from "../util/text.js";
import { readSpecSource, specLabel } from "./spec.js";

export interface CheckOptions {
  json?: boolean;
}

export interface FileResult {
  file: string;
  ok: boolean;
  /** Trainable parameters, when the spec compiled. */
  trainable: number | null;
  diagnostics: Diagnostic[];
}

/** Check one file; an unreadable file is an E0000 diagnostic on the whole file (line 0). */
export async function checkFile(path: string): Promise<FileResult> {
  const file = specLabel(path);
  let text: string;
  try {
    text = await readSpecSource(path);
  } catch (err) {
    const span = { file, line: 0, col: 0, endLine: 0, endCol: 0 };
    const d: Diagnostic = {
      code: "E0000",
      severity: "error",
      message: `cannot read spec: ${readFailure(err, "a spec file")}`,
      span,
      notes: [],
    };
    return { file, ok: false, trainable: null, diagnostics: [d] };
  }
  const { ir, diagnostics } = checkSpec(text, file);
  const ok = !diagnostics.some((d) => d.severity === "error");
  return { file, ok, trainable: ir?.totals.trainable ?? null, diagnostics };
}

export async function check(specs: string[], options: CheckOptions = {}): Promise<number> {
  const results: FileResult[] = [];
  for (const file of specs) results.push(await checkFile(file));
  if (options.json) {
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  } else {
    for (const r of results) {
      if (r.diagnostics.length > 0) process.stderr.write(`${formatDiagnostics(r.diagnostics)}\n`);
      if (r.ok)
        process.stdout.write(
          `${printable(r.file)}: ok (${(r.trainable ?? 0).toLocaleString("en-US")} trainable parameters)\n`,
        );
    }
    const errors = results.reduce(
      (s, r) => s + r.diagnostics.filter((d) => d.severity === "error").length,
      0,
    );
    if (errors > 0)
      process.stderr.write(
        `${errors} error${errors === 1 ? "" : "s"} in ${results.filter((r) => !r.ok).length} of ${results.length} file(s)\n`,
      );
  }
  return results.every((r) => r.ok) ? 0 : 1;
}
