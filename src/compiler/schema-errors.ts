// Turning ajv's errors into diagnostics a student can act on: each is placed on the YAML node of its
// instancePath, names the layer or section it is about, and says what was expected. ajv's noise
// (the `if` behind every layer, every failing branch of an `anyOf`) is collapsed first.
import type { ErrorObject } from "ajv";
import { type Code, error } from "./codes.js";
import { datasetDef, isDatasetName } from "./datasets.js";
import type { Diagnostic } from "./diagnostics.js";
import type { OpKind } from "./ir.js";
import { BLOCK_KINDS, isBare, LAYER_KINDS, OPS } from "./ops.js";
import type { Path, SourceMap } from "./parse.js";
import { didYouMean, nearest } from "./suggest.js";

const isOp = (name: string): name is OpKind => (LAYER_KINDS as readonly string[]).includes(name);

/** A combined block's value: `{ add: conv1, layers: [...] }` (or `mul:`, `concat:`). */
const isBlockForm = (v: unknown): v is { layers: unknown[] } =>
  !!v &&
  typeof v === "object" &&
  !Array.isArray(v) &&
  Array.isArray((v as { layers?: unknown }).layers);

/**
 * Messages read paths in the list form of a block (`/layers/i/<block>/j`); a residual block keeps
 * its list under `layers` (`/layers/i/<block>/layers/j`). Between the two, both ways.
 */
function listForm(value: unknown, path: Path): Path {
  if (path[0] === "layers" && path[3] === "layers" && isBlockForm(get(value, path.slice(0, 3)))) {
    return [...path.slice(0, 3), ...path.slice(4)];
  }
  return path;
}
function writtenForm(value: unknown, path: Path): Path {
  if (path[0] === "layers" && path.length >= 4 && /^\d+$/.test(String(path[3]))) {
    if (isBlockForm(get(value, path.slice(0, 3))))
      return [...path.slice(0, 3), "layers", ...path.slice(3)];
  }
  return path;
}

export function schemaDiagnostics(
  errors: ErrorObject[],
  value: unknown,
  source: SourceMap,
): Diagnostic[] {
  const out: Diagnostic[] = [];
  const seen = new Set<string>();
  for (const e of collapseAnyOf(errors)) {
    const d = describe(e, value, source);
    if (!d) continue;
    const key = `${d.code} ${d.span.line}:${d.span.col} ${d.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(d);
  }
  return out.sort((a, b) => a.span.line - b.span.line || a.span.col - b.span.col);
}

/**
 * An `anyOf` (kernel: int or [h, w]) fails with an error per branch. Keep the errors of the one
 * branch whose type matches the value (so `kernel: 0` says "must be ≥ 1"); if none matches, the
 * `anyOf` error alone stands for them (reported as a wrong type).
 */
function collapseAnyOf(errors: ErrorObject[]): ErrorObject[] {
  let result = errors;
  for (const any of errors.filter((e) => e.keyword === "anyOf")) {
    const prefix = `${any.schemaPath}/`;
    // The same schema serves every layer: a branch error belongs to this value by its path too.
    const branchErrors = result.filter(
      (e) =>
        e.schemaPath.startsWith(prefix) &&
        (e.instancePath === any.instancePath || e.instancePath.startsWith(`${any.instancePath}/`)),
    );
    const branches = new Map<string, ErrorObject[]>();
    for (const e of branchErrors) {
      const branch = e.schemaPath.slice(prefix.length).split("/")[0] ?? "";
      branches.set(branch, [...(branches.get(branch) ?? []), e]);
    }
    const fitting = [...branches.values()].filter(
      (list) =>
        !list.some(
          (e) =>
            (e.keyword === "type" || e.keyword === "const") && e.instancePath === any.instancePath,
        ),
    );
    const keep = fitting.length === 1 ? (fitting[0] ?? []) : [any];
    result = result.filter((e) => e !== any && !branchErrors.includes(e)).concat(keep);
  }
  return result;
}

function segments(pointer: string): Path {
  if (pointer === "") return [];
  return pointer
    .split("/")
    .slice(1)
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

/** The value at a path; a list-form index into a residual block reads its `layers`. */
function get(value: unknown, path: Path): unknown {
  let v = value;
  for (const s of path) {
    if (isBlockForm(v) && /^\d+$/.test(String(s))) v = v.layers[Number(s)];
    else if (Array.isArray(v)) v = v[Number(s)];
    else if (v && typeof v === "object") v = (v as Record<string, unknown>)[String(s)];
    else return undefined;
  }
  return v;
}

function onlyKey(item: unknown): string | undefined {
  if (!item || typeof item !== "object" || Array.isArray(item)) return undefined;
  const keys = Object.keys(item);
  return keys.length === 1 ? keys[0] : undefined;
}

/** What a path is about, for the start of a message: `layer conv1.0 (conv)`, `train.optimizer`. */
interface Subject {
  owner: string;
  /** The path below the owner, as written (`kernel`, `betas[1]`), if the path goes below it. */
  field: string | undefined;
}

function fieldText(path: Path): string | undefined {
  if (path.length === 0) return undefined;
  return path
    .map((s, i) => (/^\d+$/.test(String(s)) ? `[${s}]` : `${i === 0 ? "" : "."}${s}`))
    .join("");
}

function subject(value: unknown, path: Path): Subject {
  if (path[0] === "layers" && path.length >= 2) {
    const i = String(path[1]);
    const item = get(value, ["layers", i]);
    const key = typeof item === "string" ? item : onlyKey(item);
    if (key === undefined) return { owner: `layer ${i}`, field: undefined };
    if (typeof item === "string" || isOp(key)) {
      return { owner: `layer ${i} (${key})`, field: fieldText(path.slice(3)) };
    }
    if (path.length <= 3) return { owner: `block ${key}`, field: undefined };
    const j = String(path[3]);
    if (!/^\d+$/.test(j)) return { owner: `block ${key}`, field: fieldText(path.slice(3)) };
    const inner = get(value, ["layers", i, key, j]);
    const kind = typeof inner === "string" ? inner : (onlyKey(inner) ?? "?");
    return { owner: `layer ${key}.${j} (${kind})`, field: fieldText(path.slice(5)) };
  }
  if (path.length === 0) return { owner: "spec", field: undefined };
  return { owner: path.join("."), field: undefined };
}

/** `owner: ` or `owner: \`field\` ` for messages about a value. */
function about(value: unknown, path: Path): string {
  const s = subject(value, path);
  if (s.field !== undefined) return `${s.owner}: \`${s.field}\``;
  if (path.length === 0 || (path[0] === "layers" && path.length >= 2)) return `${s.owner}:`;
  return `\`${fieldText(path)}\``;
}

/** Whether `path` is a layer list item: `/layers/i`, or `/layers/i/<block>/j` inside a block. */
function isLayerItem(value: unknown, path: Path): boolean {
  if (path[0] !== "layers") return false;
  if (path.length === 2) return true;
  const block = get(value, path.slice(0, 3));
  return (
    path.length === 4 &&
    /^\d+$/.test(String(path[3])) &&
    !isOp(String(path[2])) &&
    (Array.isArray(block) || isBlockForm(block))
  );
}

const TYPE_NAMES: Record<string, string> = {
  integer: "an integer",
  number: "a number",
  boolean: "true or false",
  array: "a list",
  object: "a map",
  string: "a string",
  null: "empty",
};

function show(v: unknown): string {
  if (v === null || v === undefined) return "nothing";
  const text = typeof v === "number" ? String(v) : (JSON.stringify(v) ?? String(v));
  const kind = Array.isArray(v) ? "a list" : typeof v === "object" ? "a map" : `a ${typeof v}`;
  return `${text.length > 40 ? `${text.slice(0, 37)}...` : text} (${kind})`;
}

function expectedTypes(types: unknown): string {
  const list = (Array.isArray(types) ? types : [types]).map(String).filter((t) => t !== "null");
  return list.map((t) => TYPE_NAMES[t] ?? t).join(" or ");
}

function layerList(): string {
  return LAYER_KINDS.join(", ");
}

function unknownLayer(name: string): string {
  if (name in OPS && !isOp(name)) {
    return `\`${name}\` is not a layer: write it on a block, \`- res1: { ${name}: <earlier block>, layers: [...] }\``;
  }
  return `unknown layer type \`${name}\`${didYouMean(name, LAYER_KINDS)} (known: ${layerList()})`;
}

/**
 * What to write for a required top-level field: the spec's dataset's values where the table knows
 * them (MNIST's by default), so the line can be copied as it is.
 */
function whatToWrite(field: string, value: unknown): string {
  const named = (get(value, ["data", "dataset"]) as unknown) ?? "mnist";
  const def = typeof named === "string" && isDatasetName(named) ? datasetDef(named) : undefined;
  if (field === "input") {
    const { channels, height, width } = def?.shape ?? { channels: 1, height: 28, width: 28 };
    return `: write \`input: { channels: ${channels}, height: ${height}, width: ${width} }\` (one image, PyTorch's [C, H, W])`;
  }
  if (field === "classes") {
    return `: write \`classes: ${def?.classNames?.length ?? 10}\` (the number of classes the model tells apart)`;
  }
  if (field === "layers") return ": write `layers:` with the network's layers in order";
  return "";
}

function describe(e: ErrorObject, value: unknown, source: SourceMap): Diagnostic | undefined {
  const written = segments(e.instancePath);
  const path = listForm(value, written);
  const here = source.at(written);
  const v = get(value, written);
  const make = (code: Code, message: string, at = here) => error(code, message, at);
  const inLayers = path[0] === "layers";
  // Only sizes use anyOf (an int or an [h, w] pair): whichever branch failed, say what a size is.
  const orSame =
    Array.isArray(e.schema) && e.schema.some((b) => (b as { const?: unknown }).const === "same");
  const notASize = () =>
    make(
      "E0104",
      `${about(value, path)} must be an integer${orSame ? ", a pair [h, w] or `same`" : " or a pair [h, w]"}, got ${show(v)}`,
    );

  // `cnov: { out: 10 }`: a map under a name that is no op and no combined block (no `layers`, no
  // block op) is a misspelt layer, whatever the block form's schema says about it.
  if (inLayers && path.length >= 3 && !isOp(String(path[2]))) {
    const name = String(path[2]);
    const inner = get(value, path.slice(0, 3));
    if (
      inner &&
      typeof inner === "object" &&
      !Array.isArray(inner) &&
      !("layers" in inner) &&
      !BLOCK_KINDS.some((kind) => kind in inner)
    ) {
      return make("E0101", unknownLayer(name), source.key(path.slice(0, 2), name) ?? here);
    }
  }

  switch (e.keyword) {
    case "if":
    case "const":
      return undefined; // the branch's own errors say what is wrong
    case "pattern":
      if (e.propertyName !== undefined) return undefined; // reported with propertyNames
      if (path[0] === "layers" && (BLOCK_KINDS as unknown[]).includes(path.at(-1))) {
        return make("E0110", `${about(value, path)} must name a block (letters, digits and _)`);
      }
      return make("E0110", `${about(value, path)} may only use letters, digits, _, . and -`);
    case "propertyNames": {
      const name = String(e.params.propertyName);
      const at = source.key(writtenForm(value, path), name) ?? here;
      const inner = get(value, [...path, name]);
      if (!Array.isArray(inner)) return make("E0101", unknownLayer(name), at);
      return make(
        "E0109",
        `invalid block name \`${name}\`: use letters, digits and _, not starting with a digit or __ (it becomes a PyTorch module name)`,
        at,
      );
    }
    case "required": {
      const field = String(e.params.missingProperty);
      const s = subject(value, path);
      const owner = s.field !== undefined ? `${s.owner}: \`${s.field}\`` : s.owner;
      const name = path.length === 0 || inLayers ? owner : path.join(".");
      const write = path.length === 0 ? whatToWrite(field, value) : "";
      return make("E0102", `${name}: missing field \`${field}\`${write}`);
    }
    case "additionalProperties": {
      const field = String(e.params.additionalProperty);
      const at = source.key(writtenForm(value, path), field) ?? here;
      if (inLayers && path.length === 4) {
        // Inside a block: only ops may appear.
        const inner = get(value, [...path, field]);
        if (Array.isArray(inner)) {
          return make(
            "E0108",
            `block \`${field}\` inside block \`${String(path[2])}\`: blocks do not nest`,
            at,
          );
        }
        return make("E0101", unknownLayer(field), at);
      }
      const known = Object.keys((e.parentSchema?.properties as object | undefined) ?? {});
      const s = subject(value, path);
      const owner = inLayers ? s.owner : path.length === 0 ? "spec" : path.join(".");
      const hint = didYouMean(field, known);
      return make(
        "E0103",
        `${owner}: unknown field \`${field}\`${hint || (known.length ? ` (known: ${known.join(", ")})` : "")}`,
        at,
      );
    }
    case "type": {
      if (path.length === 0) {
        if (v === undefined || v === null) return make("E0002", "the spec is empty");
        return make(
          "E0104",
          `the spec must be a map with input, classes and layers; got ${show(v)}`,
        );
      }
      // A top-level `name: value` item whose key is no op must be a block (a list of layers).
      if (inLayers && path.length === 3 && !isOp(String(path[2]))) {
        const name = String(path[2]);
        const at = source.key(writtenForm(value, path.slice(0, -1)), name) ?? here;
        if (nearest(name, LAYER_KINDS) || (v !== null && v !== undefined)) {
          return make("E0101", unknownLayer(name), at);
        }
        return make("E0106", `block \`${name}\` has no layers`, at);
      }
      if (isLayerItem(value, path)) {
        return make(
          "E0106",
          `${subject(value, path).owner}: a layer is a name (\`relu\`) or a one-key map (\`conv: { out: 16, kernel: 3 }\`); got ${show(v)}`,
        );
      }
      return make(
        "E0104",
        `${about(value, path)} must be ${expectedTypes(e.params.type)}, got ${show(v)}`,
      );
    }
    case "anyOf":
      return notASize();
    case "minimum":
    case "exclusiveMinimum":
    case "maximum":
    case "exclusiveMaximum": {
      const op = { minimum: "≥", exclusiveMinimum: ">", maximum: "≤", exclusiveMaximum: "<" }[
        e.keyword
      ];
      return make(
        "E0105",
        `${about(value, path)} must be ${op} ${String(e.params.limit)}, got ${String(v)}`,
      );
    }
    case "enum": {
      const allowed = (e.params.allowedValues as unknown[]).map(String);
      if (isLayerItem(value, path) && typeof v === "string") {
        if (isOp(v) && !isBare(v)) {
          const needs = OPS[v].required;
          return make(
            "E0106",
            `layer \`${v}\` needs attributes: write \`${v}: { ${needs.map((n) => `${n}: ...`).join(", ")} }\``,
          );
        }
        return make("E0101", unknownLayer(v));
      }
      return make(
        "E0110",
        `${about(value, path)} must be one of ${allowed.join(", ")}; got ${show(v)}${typeof v === "string" ? didYouMean(v, allowed) : ""}`,
      );
    }
    case "minProperties":
      return make(
        "E0106",
        `${subject(value, path).owner}: empty layer; write a layer name or \`name: { ... }\``,
      );
    case "maxProperties": {
      const keys = Object.keys((v as object) ?? {});
      if (inLayers && path.length === 3 && isBlockForm(v)) {
        const ops = keys.filter((k) => k !== "layers");
        return make(
          "E0106",
          `block \`${String(path[2])}\` combines with ${ops.map((k) => `\`${k}:\``).join(" and ")}: one of ${BLOCK_KINDS.join(", ")} per block (a second block can combine the first's output)`,
        );
      }
      return make(
        "E0106",
        `${subject(value, path).owner}: one list item holds ${keys.length} layers (${keys.join(", ")}); put each in its own \`- \` item`,
      );
    }
    case "minItems":
      if (inLayers && path.length === 3)
        return make("E0106", `block \`${String(path[2])}\` has no layers`);
      if (path.length === 1 && path[0] === "layers")
        return make("E0106", "layers: the list is empty");
      if (e.schemaPath.includes("/anyOf/")) return notASize();
      return make(
        "E0104",
        `${about(value, path)} must have at least ${String(e.params.limit)} item(s)`,
      );
    case "maxItems":
      if (e.schemaPath.includes("/anyOf/")) return notASize();
      return make(
        "E0104",
        `${about(value, path)} must have at most ${String(e.params.limit)} items, got ${show(v)}`,
      );
    default:
      return make("E0104", `${about(value, path)} ${e.message ?? "is invalid"}`);
  }
}

/**
 * What the schema errors break, for the stages after it (so one part's mistake does not hide the
 * others'): top-level fields missing or wrong, and per layer item (`i`, or `i/j` inside block i)
 * whether it is broken as a whole, which of its attributes have bad values, which are unknown.
 */
export interface Damage {
  /** Top-level fields that are absent (`input`, `classes`, `layers`). */
  missing: Set<string>;
  /** Top-level fields whose value has an error (`input`, `data`, `layers` itself, ...). */
  sections: Set<string>;
  items: Map<string, ItemDamage>;
  /** Top-level items that are blocks whose combination (`add:` ...) is broken. */
  blocks: Set<number>;
}

export interface ItemDamage {
  /** Not a layer at all (unknown kind, malformed item, missing required attribute). */
  whole: boolean;
  /** Attributes with a bad value. */
  values: Set<string>;
  /** Attributes the op does not have. */
  unknown: Set<string>;
}

export function damage(errors: ErrorObject[], value: unknown): Damage {
  const result: Damage = {
    missing: new Set(),
    sections: new Set(),
    items: new Map(),
    blocks: new Set(),
  };
  const item = (key: string): ItemDamage => {
    let d = result.items.get(key);
    if (!d) {
      d = { whole: false, values: new Set(), unknown: new Set() };
      result.items.set(key, d);
    }
    return d;
  };
  /** A layer item's error, `rest` the path below the item: [kind, attr, ...]. */
  const layer = (key: string, it: unknown, rest: Path, e: ErrorObject) => {
    const kind = typeof it === "string" ? it : onlyKey(it);
    const d = item(key);
    if (kind === undefined || !isOp(kind)) d.whole = true;
    else if (rest.length >= 2) d.values.add(String(rest[1]));
    else if (rest.length === 1 && e.keyword === "additionalProperties")
      d.unknown.add(String(e.params.additionalProperty));
    else d.whole = true;
  };
  for (const e of collapseAnyOf(errors)) {
    if (e.keyword === "if" || e.keyword === "const") continue;
    if (e.keyword === "pattern" && e.propertyName !== undefined) continue;
    const path = listForm(value, segments(e.instancePath));
    if (path.length === 0) {
      if (e.keyword === "required") result.missing.add(String(e.params.missingProperty));
      else if (e.keyword !== "additionalProperties") result.sections.add("spec");
      continue;
    }
    const [section, index, , inner] = path;
    if (section !== "layers" || path.length === 1) {
      result.sections.add(String(section));
      continue;
    }
    const i = Number(index);
    const it = get(value, ["layers", i]);
    const key = typeof it === "string" ? it : onlyKey(it);
    if (typeof it === "string" || (key !== undefined && isOp(key))) {
      layer(String(i), it, path.slice(2), e);
      continue;
    }
    const block = key === undefined ? undefined : get(value, ["layers", i, key]);
    if (!Array.isArray(block) && !isBlockForm(block)) {
      item(String(i)).whole = true;
    } else if (path.length >= 4 && /^\d+$/.test(String(inner))) {
      layer(`${i}/${inner}`, get(value, path.slice(0, 4)), path.slice(4), e);
    } else if (!(path.length === 3 && e.keyword === "additionalProperties")) {
      // The block's own form (`add:`, two block ops, no layers): its output is unknown.
      result.blocks.add(i);
    }
  }
  return result;
}
