// Parsing: YAML text to a document that remembers where every node came from, so that every later
// diagnostic can point at a line and column. Syntax errors become E0001 diagnostics.
import {
  type Document,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseDocument,
} from "yaml";
import { error } from "./codes.js";
import type { Diagnostic } from "./diagnostics.js";
import type { Span } from "./ir.js";

/** A path into the spec value, as ajv's instancePath segments: map keys and list indices. */
export type Path = (string | number)[];

/** A parsed spec: its plain value plus the means to locate any path in the file. */
export class SourceMap {
  constructor(
    readonly file: string,
    private readonly doc: Document.Parsed,
    private readonly lines: LineCounter,
  ) {}

  /** Span of byte offsets [start, end) in the file. */
  span(start: number, end: number): Span {
    const from = this.lines.linePos(start);
    const to = this.lines.linePos(Math.max(start, end));
    return { file: this.file, line: from.line, col: from.col, endLine: to.line, endCol: to.col };
  }

  /** Span of the start of the file, for problems with no better place. */
  top(): Span {
    const node = this.doc.contents;
    return node?.range ? this.nodeSpan(node) : this.span(0, 0);
  }

  nodeSpan(node: Node): Span {
    const range = node.range;
    return range ? this.span(range[0], range[1]) : this.span(0, 0);
  }

  /** The YAML node at `path`, or the deepest existing ancestor's when the path does not exist. */
  node(path: Path): Node | undefined {
    let node: unknown = this.doc.contents;
    for (const segment of path) {
      const next = child(node, segment);
      if (next === undefined) break;
      node = next;
    }
    return isNodeLike(node) ? node : undefined;
  }

  /** Where `path` sits: its value, else its key (for `conv:` with nothing after), else the file. */
  at(path: Path): Span {
    const value = this.node(path);
    if (value?.range && value.range[1] > value.range[0]) return this.nodeSpan(value);
    const last = path[path.length - 1];
    if (typeof last === "string") {
      const key = this.key(path.slice(0, -1), last);
      if (key) return key;
    }
    return value ? this.nodeSpan(value) : this.top();
  }

  /** Where key `name` of the map at `path` is written, if it is. */
  key(path: Path, name: string): Span | undefined {
    const map = this.node(path);
    if (!isMap(map)) return undefined;
    for (const pair of map.items) {
      if (isScalar(pair.key) && String(pair.key.value) === name && pair.key.range) {
        return this.nodeSpan(pair.key);
      }
    }
    return undefined;
  }
}

function isNodeLike(value: unknown): value is Node {
  return isMap(value) || isSeq(value) || isScalar(value);
}

function child(node: unknown, segment: string | number): unknown {
  if (isMap(node)) {
    const pair = node.items.find(
      (p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(segment),
    );
    return pair ? (pair.value ?? undefined) : undefined;
  }
  if (isSeq(node)) return node.items[Number(segment)];
  return undefined;
}

export interface Parsed {
  source: SourceMap;
  /** The document as plain data (undefined for an empty document). */
  value: unknown;
}

/** Parse YAML text; on any syntax error, return only the diagnostics. Never throws. */
export function parse(text: string, file: string): { parsed?: Parsed; diagnostics: Diagnostic[] } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const source = new SourceMap(file, doc, lines);
  const diagnostics = doc.errors.map((e) =>
    error(
      "E0001",
      e.code === "MULTIPLE_DOCS"
        ? "a spec is one YAML document, this file has several (`---`)"
        : firstLine(e.message),
      source.span(e.pos[0], e.pos[1]),
    ),
  );
  if (diagnostics.length > 0) return { diagnostics };
  try {
    return {
      parsed: { source, value: doc.toJS({ maxAliasCount: 100 }) ?? undefined },
      diagnostics,
    };
  } catch (e) {
    // toJS refuses alias bombs and the like: still the user's text, so still a diagnostic.
    return { diagnostics: [error("E0001", firstLine(String((e as Error).message)), source.top())] };
  }
}

function firstLine(message: string): string {
  const line = message.split("\n")[0] ?? message;
  return line.replace(/\s+at line \d+, column \d+:?$/, "");
}
