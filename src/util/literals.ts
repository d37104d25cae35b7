// Strings pasted into emitted programs. Templates render with `noEscape` (they write code, not
// HTML), so every string that reaches a program from outside (a spec's file name, its name, a
// path, a string from the spec) goes through one of these: a literal of the program's language,
// or text that cannot leave the comment or docstring it is placed in. A spec file named
// `x\nimport("child_process")…` otherwise runs its payload when `mnistc train` imports model.mjs.

const hex = (n: number, width: number) => n.toString(16).padStart(width, "0");

/**
 * A JavaScript string literal of `text`: JSON's, with U+2028 and U+2029 escaped too (JSON leaves
 * them raw; they end a `//` comment and a line in older parsers).
 */
export function jsStr(text: string): string {
  return JSON.stringify(text).replace(/[\u2028\u2029]/g, (c) => `\\u${hex(c.charCodeAt(0), 4)}`);
}

const PY_ESCAPES: Record<string, string> = {
  "\\": "\\\\",
  '"': '\\"',
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
};

/**
 * A Python str literal of `text`, double-quoted and printable ASCII only: `\\`, `\"`, `\n`, `\r`,
 * `\t`, then `\xNN`, `\uNNNN` or `\UNNNNNNNN` by code point for the rest (a lone surrogate too,
 * as Python's str holds one). Printable ASCII without `\` or `"` comes out as JSON writes it.
 */
export function pyStr(text: string): string {
  let out = '"';
  for (const ch of text) {
    const code = ch.codePointAt(0) as number;
    const short = PY_ESCAPES[ch];
    if (short !== undefined) out += short;
    else if (code >= 0x20 && code < 0x7f) out += ch;
    else if (code < 0x100) out += `\\x${hex(code, 2)}`;
    else if (code < 0x10000) out += `\\u${hex(code, 4)}`;
    else out += `\\U${hex(code, 8)}`;
  }
  return `${out}"`;
}

/**
 * `text` for a comment (`//`, `#`) or a docstring of either language, or the config's `#`
 * comments: itself when it is printable ASCII without `\` or `"`, else its Python literal
 * (printable ASCII: no line break ends the comment, no `"""` ends the docstring, and each
 * backslash starts an escape Python accepts). A template must not put it right before a
 * docstring's closing `"""` (its own closing quote would end the docstring one early).
 */
export function commentText(text: string): string {
  return /^[\x20-\x7e]*$/.test(text) && !/["\\]/.test(text) ? text : pyStr(text);
}
