// `mnistc compile SPEC [--target NAME] [-o OUT] [--weights WEIGHTS]`: emit a backend's output
// and write it (a directory for tfjs and pytorch, one file for onnx; WEIGHTS: a checkpoint
// directory or a safetensors file). Without flags: the tfjs training program
// into out/<spec name>/tfjs/, and the path is printed.
import { statSync } from "node:fs";
import { dirname, join } from "node:path";
import { BACKENDS, findBackend } from "../backends/index.js";
import { runtimeImportFor } from "../backends/tfjs/runtime-import.js";
import { formatDiagnostics } from "../compiler/index.js";
import { UserError } from "../errors.js";
import { checkNotAnInput, writeFileAtomic } from "../util/files.js";
import { loadSpec } from "./spec.js";
import { loadWeights } from "./weights.js";

export interface CompileOptions {
  target: string;
  /** Default: `out/<spec name>/<target>/` for a directory target, `out/<spec name>/<name>.<target>` for a file. */
  out?: string;
  weights?: string;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

export async function compile(spec: string, opts: CompileOptions): Promise<number> {
  const backend = findBackend(opts.target);
  if (!backend) {
    const known = BACKENDS.map((b) => b.name).join(", ");
    throw new UserError(`unknown target "${opts.target}" (known targets: ${known})`);
  }
  if (opts.weights && backend.name === "tfjs") {
    throw new UserError(
      "--weights is not supported for --target tfjs: the tfjs program initializes and trains its own weights (use it with --target onnx)",
    );
  }
  if (opts.weights && backend.name === "pytorch") {
    throw new UserError(
      "--weights is not supported for --target pytorch: model.py loads weights when it runs (load_weights; mnistc export --format safetensors turns a checkpoint into a weights file)",
    );
  }
  const ir = await loadSpec(spec);
  if (!ir) return 1;
  const out =
    opts.out ??
    (backend.output === "dir"
      ? join("out", ir.name, backend.name)
      : join("out", ir.name, `${ir.name}.${backend.name}`));
  if (backend.output === "file" && isDirectory(out)) {
    throw new UserError(`${out}: is a directory; --target ${backend.name} writes one file`);
  }

  const weights = opts.weights ? loadWeights(opts.weights, ir) : undefined;
  const outDir = backend.output === "dir" ? out : dirname(out);
  const result = backend.emit(ir, { weights, runtimeImport: runtimeImportFor(outDir) });
  if (result.diagnostics.length > 0)
    process.stderr.write(`${formatDiagnostics(result.diagnostics)}\n`);
  if (result.diagnostics.some((d) => d.severity === "error")) return 1;

  const paths = result.files.map((file) => (backend.output === "dir" ? join(out, file.path) : out));
  // All checked before any is written: no half-written program over an input.
  for (const path of paths) checkNotAnInput(path);
  const written: string[] = [];
  result.files.forEach((file, i) => {
    const path = paths[i] as string;
    writeFileAtomic(path, file.contents);
    written.push(path);
  });
  const what = weights ? "trained weights" : "seeded initial weights";
  const note = backend.name === "onnx" ? ` (${what})` : "";
  process.stderr.write(`mnistc: ${ir.name} -> ${written.join(", ")}${note}\n`);
  if (backend.name === "tfjs") {
    const { tfjsNeeded } = await import("../runtime/tfjs/available.js");
    const needed = tfjsNeeded("running train.mjs");
    if (needed) process.stderr.write(`mnistc: note: ${needed}\n`);
  }
  return 0;
}
