// Loading a spec for any command: read the file (naming it when it cannot be read), compile it and
// print its diagnostics to stderr. Returns undefined when the spec has errors.
import { readFile } from "node:fs/promises";
import { compileSpec, formatDiagnostic } from "../compiler/index.js";
import type { ModelIR } from "../compiler/ir.js";
import { readFailure, UserError } from "../errors.js";

/** Why a file cannot be read, in words (`no such file`), without Node's stack or errno noise. */

/** The text of a spec file; a UserError naming the file if it cannot be read. */
export async function readSpecText(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    throw new UserError(`cannot read spec ${path}: ${readFailure(err, "a spec file")}`);
  }
}

export async function loadSpec(path: string): Promise<ModelIR | undefined> {
  const { ir, diagnostics } = compileSpec(await readSpecText(path), path);
  for (const d of diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`);
  return ir;
}
