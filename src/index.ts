// Library entry: the compiler and the backends, for programs that embed mnistc.

export { BACKENDS, findBackend } from "./backends/index.js";
export type { Diagnostic, Note } from "./compiler/diagnostics.js";
export { checkSpec, compileSpec, formatDiagnostic } from "./compiler/index.js";
export type * from "./compiler/ir.js";
