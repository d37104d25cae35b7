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
  type Pair,
  parseDocument,
  visit,
  type YAMLMap,
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
    const pair = pairOf(map, name);
    return isScalar(pair?.key) && pair.key.range ? this.nodeSpan(pair.key) : undefined;
  }
}

function isNodeLike(value: unknown): value is Node {
  return isMap(value) || isSeq(value) || isScalar(value);
}

// Each map's pairs by their keys' text, built on first use: a diagnostic per key of a map of 60,000
// unknown keys would otherwise search the map once each (quadratic: 53 s).
const pairIndex = new WeakMap<YAMLMap, Map<string, Pair>>();

function pairOf(map: YAMLMap, name: string): Pair | undefined {
  let index = pairIndex.get(map);
  if (!index) {
    index = new Map();
    for (const p of map.items) {
      const text = isPair(p) && isScalar(p.key) ? String(p.key.value) : undefined;
      if (text !== undefined && !index.has(text)) index.set(text, p as Pair);
    }
    pairIndex.set(map, index);
  }
  return index.get(name);
}

function child(node: unknown, segment: string | number): unknown {
  if (isMap(node)) return pairOf(node, String(segment))?.value ?? undefined;
  if (isSeq(node)) return node.items[Number(segment)];
  return undefined;
}

/**
 * Duplicate keys, found with one set per map. The yaml package's own check (`uniqueKeys`) compares
 * each key with every earlier one of its map: quadratic in the keys. Same rule: scalar keys whose
 * values are strictly equal; the message is the package's.
 */
function duplicateKeys(doc: Document.Parsed): { offset: number; message: string }[] {
  const found: { offset: number; message: string }[] = [];
  visit(doc, {
    Map(_, map) {
      const seen = new Set<unknown>();
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue;
        if (seen.has(pair.key.value)) {
          found.push({ offset: pair.key.range?.[0] ?? 0, message: "Map keys must be unique" });
        }
        seen.add(pair.key.value);
      }
    },
  });
  return found;
}

export interface Parsed {
  source: SourceMap;
  /** The document as plain data (undefined for an empty document). */
  value: unknown;
}

/** Parse YAML text; on any syntax error, return only the diagnostics. Never throws. */
export function parse(text: string, file: string): { parsed?: Parsed; diagnostics: Diagnostic[] } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false });
  const source = new SourceMap(file, doc, lines);
  const problems = [
    ...doc.errors.map((e) => ({
      offset: e.pos[0],
      end: e.pos[1],
      message:
        e.code === "MULTIPLE_DOCS"
          ? "a spec is one YAML document, this file has several (`---`)"
          : firstLine(e.message),
    })),
    ...duplicateKeys(doc).map((d) => ({ ...d, end: d.offset + 1 })),
  ].sort((a, b) => a.offset - b.offset);
  const diagnostics = problems.map((p) => error("E0001", p.message, source.span(p.offset, p.end)));
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
