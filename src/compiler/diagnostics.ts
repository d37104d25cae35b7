// Diagnostics are collected, never thrown: a user's mistake is data. Compiler bugs throw.
import type { Span } from "./ir.js";

export interface Note {
  message: string;
  span?: Span;
}

export interface Diagnostic {
  /** Stable code, e.g. `E0101`; tests and users may key on it. */
  code: string;
  severity: "error" | "warning";
  /** Names the layer it is about (e.g. `layer conv1.0 (conv)`). */
  message: string;
  span: Span;
  notes: Note[];
}
