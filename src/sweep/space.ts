// The search space over spec paths: how a dotted path (`layers.conv2.1.out`) finds its place in
// the base spec, how a point of the space becomes a candidate spec's text (the base spec's YAML with
// those values set, comments and layout kept), and the grid and random samplers.
import { dirname, isAbsolute, relative, resolve } from "node:path";
import { type Document, isSeq, parseDocument } from "yaml";
import type { Path } from "../compiler/parse.js";
import { Rng } from "../util/rng.js";

export type Scalar = number | string | boolean;

/** One dimension of the search space, keyed by its spec path (`layers.conv1.conv.out`). */
export type Dim =
  | { path: string; at: Path; kind: "choice"; values: Scalar[] }
  | { path: string; at: Path; kind: "int" | "uniform" | "loguniform"; low: number; high: number };

/** Number of points of a grid (choices times int ranges). */
export function gridSize(space: Dim[]): number {
  return space.reduce((n, d) => n * dimValues(d).length, 1);
}

/** The values of a discrete dimension, in order (an int range, every integer in it). */
export function dimValues(d: Dim): Scalar[] {
  if (d.kind === "choice") return d.values;
  if (d.kind === "int") return Array.from({ length: d.high - d.low + 1 }, (_, i) => d.low + i);
  throw new Error(`dimValues: ${d.kind} is continuous`);
}

/** A point of the space: a value per dimension path. */
export type Params = Record<string, Scalar>;

const isMap = (v: unknown): v is Record<string, unknown> =>
  !!v && typeof v === "object" && !Array.isArray(v);
const oneKey = (v: unknown): string | undefined =>
  isMap(v) && Object.keys(v).length === 1
    ? Object.keys(v)[0]
    : typeof v === "string"
      ? v
      : undefined;

/**
 * The YAML path of a dotted spec path, or why it names nothing. In a list of layers a segment is an
 * index, a block's name or a layer's kind (when only one layer of that kind is there); a layer's
 * attribute may follow its kind or its index directly (`conv2.1.out`, `conv1.conv.out`); a
 * combined block's (`add:`) layers are reached the same way. The last segment may name a field the
 * base spec leaves out (`train.optimizer.weight_decay`).
 */
export function resolveSpecPath(spec: unknown, dotted: string): Path | string {
  const segs = dotted.split(".");
  const out: Path = [];
  let node: unknown = spec;
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i] as string;
    const last = i === segs.length - 1;
    const where = out.length === 0 ? "the spec" : `\`${out.join(".")}\``;
    // A list item reached by its index (`{ conv: {...} }`, `{ conv1: [...] }`): go inside it.
    if (isMap(node) && !(seg in node) && typeof out.at(-1) === "number") {
      const key = oneKey(node);
      if (key !== undefined) {
        out.push(key);
        node = node[key];
      }
    }
    // A combined block's map: an index or a layer goes into its layers.
    if (isMap(node) && !(seg in node) && Array.isArray(node.layers)) {
      out.push("layers");
      node = node.layers;
    }
    if (Array.isArray(node)) {
      let index: number;
      if (/^\d+$/.test(seg)) {
        index = Number(seg);
        if (index >= node.length) return `${where} has ${node.length} item(s), no item ${index}`;
      } else {
        const hits = node.flatMap((item, k) => (oneKey(item) === seg ? [k] : []));
        if (hits.length === 0) return `no block or layer \`${seg}\` in ${where}`;
        if (hits.length > 1)
          return `${where} has ${hits.length} layers \`${seg}\`: name one by its index (\`${[...out, hits[0]].join(".")}\`)`;
        index = hits[0] as number;
      }
      out.push(index);
      node = node[index];
      if (!/^\d+$/.test(seg) && isMap(node)) {
        out.push(seg);
        node = node[seg];
      }
      continue;
    }
    if (isMap(node)) {
      if (!(seg in node) && !last) return `\`${seg}\` is not in ${where}`;
      out.push(seg);
      node = node[seg];
      continue;
    }
    if (typeof node === "string" && oneKey(node) !== undefined) {
      return `layer \`${node}\` in ${where} is written bare; write \`${node}: {}\` in the base spec to set its attributes`;
    }
    return `${where} is a value, it has no \`${seg}\``;
  }
  if (isMap(node) || Array.isArray(node))
    return `\`${dotted}\` is a ${Array.isArray(node) ? "list" : "map"}: name one of its values`;
  return out;
}

/** Where a candidate's spec is read from, as against where its base spec was. */
export interface Relocation {
  /** The base spec's path (its relative `data.path` and teachers start at its folder). */
  base: string;
  /** The candidate spec's path; absent: those paths become absolute. */
  candidate?: string;
}

/**
 * The candidate spec: the base spec's text with each dimension's value set at its path, and the
 * sweep's budget as its own `budget:` (so the compiler's verdict points there). Written in another
 * folder (`relocate`), its relative file paths (`data.path`, `train.distill.teachers`, a space's
 * value for them included) are rewritten to name the same files from there.
 */
export function candidateText(
  baseText: string,
  space: Dim[],
  params: Params,
  budget?: number,
  relocate?: Relocation,
): string {
  const doc = parseDocument(baseText);
  if (budget !== undefined) doc.set("budget", budget);
  for (const dim of space) {
    const v = params[dim.path];
    if (v === undefined) throw new Error(`candidateText: no value for ${dim.path}`);
    doc.setIn(dim.at, v);
  }
  if (relocate) relocatePaths(doc, relocate);
  return doc.toString();
}

/** The spec's file paths, relative to its folder (as src/compiler/lower.ts resolves them). */
function relocatePaths(doc: Document, { base, candidate }: Relocation): void {
  const move = (p: unknown): unknown => {
    if (typeof p !== "string" || isAbsolute(p)) return p;
    const target = resolve(dirname(base), p);
    return candidate === undefined ? target : relative(resolve(dirname(candidate)), target) || ".";
  };
  const data = doc.getIn(["data", "path"]);
  if (data !== undefined) doc.setIn(["data", "path"], move(data));
  const teachers = doc.getIn(["train", "distill", "teachers"], true);
  if (isSeq(teachers)) {
    teachers.items.forEach((_, i) => {
      teachers.set(i, move(teachers.get(i)));
    });
  }
}

/** The grid's `index`-th point: the first dimension changes slowest. */
export function gridPoint(space: Dim[], index: number, values: (d: Dim) => Scalar[]): Params {
  const params: Params = {};
  let rest = index;
  for (let i = space.length - 1; i >= 0; i--) {
    const d = space[i] as Dim;
    const vs = values(d);
    params[d.path] = vs[rest % vs.length] as Scalar;
    rest = Math.floor(rest / vs.length);
  }
  return Object.fromEntries(space.map((d) => [d.path, params[d.path] as Scalar]));
}

/** The random stream of proposal `index` of a sweep seeded `seed` (the same after a resume). */
export function proposalRng(seed: number, index: number): Rng {
  return new Rng((Math.imul(seed, 0x9e3779b1) + Math.imul(index + 1, 0x85ebca6b)) >>> 0);
}

/** One value of a dimension drawn from its prior (uniform; log-uniform; uniform over choices). */
export function drawPrior(d: Dim, rng: Rng): Scalar {
  switch (d.kind) {
    case "choice":
      return d.values[rng.int(d.values.length)] as Scalar;
    case "int":
      return d.low + rng.int(d.high - d.low + 1);
    case "uniform":
      return rng.uniform(d.low, d.high);
    case "loguniform":
      return Math.exp(rng.uniform(Math.log(d.low), Math.log(d.high)));
  }
}

export function randomPoint(space: Dim[], rng: Rng): Params {
  return Object.fromEntries(space.map((d) => [d.path, drawPrior(d, rng)]));
}

/** A value as the trial table shows it: numbers with at most 4 significant digits past the point. */
export function showValue(v: Scalar): string {
  if (typeof v !== "number" || Number.isInteger(v)) return String(v);
  return String(Number(v.toPrecision(4)));
}
