// Text from files a user did not write (class names in a model's metadata, folder names) shown on
// a terminal: control characters, escape sequences among them, are shown as \u escapes, never
// sent to the terminal raw.

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

export function printable(text: string): string {
  return text.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** `1 epoch`, `2 epochs`: a count and its noun, plural unless the count is 1. */
export function counted(n: number, noun: string, plural = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : plural}`;
}

/** Class `c` for a terminal: its number, then its name when it has one besides the number. */
export function classLabel(classNames: readonly string[], c: number): string {
  const name = printable(classNames[c] ?? String(c));
  return name === String(c) ? name : `${c} ${name}`;
}

/** Text for SVG (or any XML) content and attribute values. */
export function escapeXml(text: string): string {
  return text.replace(
    /[&<>"]/g,
    (c) => `&${{ "&": "amp", "<": "lt", ">": "gt", '"': "quot" }[c]};`,
  );
}
