// The contract every backend implements. Emitters are pure: IR (and weights) in, files and
// diagnostics out; the CLI decides where the files go.
import type { Diagnostic } from "../compiler/diagnostics.js";
import type { ModelIR, NodeIR, OpKind, WeightMap } from "../compiler/ir.js";

export interface EmittedFile {
  /** Relative to the output directory (for `output: "dir"`), or "" for the single file. */
  path: string;
  contents: string | Uint8Array;
}

export interface EmitOptions {
  /** Trained weights in PyTorch layout; without them a backend uses seeded initialization. */
  weights?: WeightMap;
  /** Module specifier the emitted tfjs program imports the runtime from. */
  runtimeImport?: string;
  /**
   * onnx: apply the inference graph's rewrites (`backends/onnx/lowering.ts`; default true). false
   * writes one plain node per op: the reference the rewrites are tested against.
   */
  rewrites?: boolean;
}

export interface EmitResult {
  files: EmittedFile[];
  diagnostics: Diagnostic[];
}

export interface Backend {
  /** `--target` name. */
  name: string;
  description: string;
  /** Whether `-o` names a directory or a single file. */
  output: "dir" | "file";
  emit(ir: ModelIR, options: EmitOptions): EmitResult;
}

/**
 * A backend's per-op table: one entry per op kind, so `tsc` fails when a backend misses an op.
 * `R` is what the backend produces for one node, `C` its emission context.
 */
export type OpTable<R, C> = { [K in OpKind]: (node: NodeIR<K>, ctx: C) => R };
