// JSON as a reader would lay it out: objects one key per line, arrays of plain values on one line.
// (JSON.stringify(v, null, 2) puts every number of `[0.9, 0.999]` on its own line.) Strings are
// JavaScript literals (jsStr): the spec's strings (teacher paths) are pasted into model.mjs.
import { jsStr } from "../../util/literals.js";

export function jsonLiteral(value: unknown, indent = ""): string {
  if (Array.isArray(value)) {
    if (value.every((v) => v === null || typeof v !== "object")) {
      return `[${value.map((v) => scalar(v)).join(", ")}]`;
    }
    const inner = `${indent}  `;
    return `[\n${value.map((v) => inner + jsonLiteral(v, inner)).join(",\n")}\n${indent}]`;
  }
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return "{}";
    const inner = `${indent}  `;
    const lines = entries.map(([k, v]) => `${inner}${jsStr(k)}: ${jsonLiteral(v, inner)}`);
    return `{\n${lines.join(",\n")}\n${indent}}`;
  }
  return scalar(value);
}

const scalar = (v: unknown): string => (typeof v === "string" ? jsStr(v) : JSON.stringify(v));
