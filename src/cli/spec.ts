// Loading a spec for any command: read the file (naming it when it cannot be read), compile it and
// print its diagnostics to stderr. Returns undefined when the spec has errors.
import { existsSync } from "node:fs";
import { isAbsolute } from "node:path";
import { compileSpec, formatDiagnostics } from "../compiler/index.js";
import type { ModelIR } from "../compiler/ir.js";
import { MAX_SPEC_BYTES } from "../compiler/limits.js";
import { readFailure, UserError } from "../errors.js";
import { packagePath } from "../paths.js";
import { readRegularFile, readStdin } from "../util/files.js";

/** `-` names standard input (`mnistc check -`); diagnostics then say `stdin`. */
export const STDIN = "-";
// Also the default model name of a spec read from standard input (a valid folder name).
export const STDIN_NAME = "stdin";

/**
 * A spec argument as a path: the file if it exists; else, for `NAME`, `NAME.yaml` or
 * `specs/NAME.yaml` naming a spec shipped with mnistc, that spec (so `mnistc train step4` works from
 * any folder, and from an installed package); else the argument, for the read to report.
 */
export function resolveSpecArg(arg: string): string {
  if (arg === STDIN || existsSync(arg) || isAbsolute(arg)) return arg;
  const m = /^(?:specs[\\/])?([A-Za-z0-9_.-]+?)(\.ya?ml)?$/.exec(arg);
  if (!m) return arg;
  const shipped = packagePath("specs", `${m[1]}${m[2] ?? ".yaml"}`);
  return existsSync(shipped) ? shipped : arg;
}

/** The file name diagnostics use for `path`. */
export function specLabel(path: string): string {
  return path === STDIN ? STDIN_NAME : path;
}

/**
 * A spec's text: a regular file (a FIFO, device or folder is refused, never read), or standard
 * input for `-`; at most MAX_SPEC_BYTES. Throws a UserError whose message is the reason only.
 */
export async function readSpecSource(path: string): Promise<string> {
  if (path === STDIN) return (await readStdin(MAX_SPEC_BYTES, "a spec")).toString("utf8");
  try {
    return readRegularFile(path, { maxBytes: MAX_SPEC_BYTES, what: "a spec file" }).toString(
      "utf8",
    );
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    const prefix = `${path}: `;
    throw new UserError(
      err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message,
    );
  }
}

/** The text of a spec file; a UserError naming the file if it cannot be read. */
export async function readSpecText(path: string): Promise<string> {
  try {
    return await readSpecSource(path);
  } catch (err) {
    throw new UserError(`cannot read spec ${specLabel(path)}: ${readFailure(err, "a spec file")}`);
  }
}

export async function loadSpec(path: string): Promise<ModelIR | undefined> {
  const { ir, diagnostics } = compileSpec(await readSpecText(path), specLabel(path));
  if (diagnostics.length > 0) process.stderr.write(`${formatDiagnostics(diagnostics)}\n`);
  return ir;
}
