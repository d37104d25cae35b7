// Loading a spec for any command: read the file (naming it when it cannot be read), compile it and
// print its diagnostics to stderr. Returns undefined when the spec has errors.
import { readFile } from "node:fs/promises";
import { compileSpec, formatDiagnostic } from "../compiler/index.js";
import type { ModelIR } from "../compiler/ir.js";
import { UserError } from "../errors.js";

/** Why a file cannot be read, in words (`no such file`), without Node's stack or errno noise. */
export function readFailure(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case "ENOENT":
      return "no such file";
    case "EISDIR":
      return "is a directory, not a spec file";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    default:
      return (err as Error).message ?? String(err);
  }
}

/** The text of a spec file; a UserError naming the file if it cannot be read. */
export async function readSpecText(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    throw new UserError(`cannot read spec ${path}: ${readFailure(err)}`);
  }
}

export async function loadSpec(path: string): Promise<ModelIR | undefined> {
  const { ir, diagnostics } = compileSpec(await readSpecText(path), path);
  for (const d of diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`);
  return ir;
}
