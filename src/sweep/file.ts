// The sweep file (`sweeps/NAME.yaml`): a base spec, a search space over spec paths, constraints,
// the metric, seeds, the number of trials, the sampler and early stopping. Parsed with the spec's
// parser (every value keeps its span), checked by ajv against SWEEP_SCHEMA, its errors worded by the
// spec's schema-errors, then checked against the base spec (each space path must name something
// there). Pure: the caller hands in the base spec's text.
import { dirname, isAbsolute, join } from "node:path";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { error } from "../compiler/codes.js";
import type { Diagnostic } from "../compiler/diagnostics.js";
import { checkSpec } from "../compiler/index.js";
import type { ModelIR } from "../compiler/ir.js";
import { type Path, parse, type SourceMap } from "../compiler/parse.js";
import { schemaDiagnostics } from "../compiler/schema-errors.js";
import { type Dim, gridSize, resolveSpecPath, type Scalar } from "./space.js";

export type SamplerKind = "grid" | "random" | "tpe";

export interface EarlyStop {
  type: "asha" | "median";
  /** Epochs at which a run is judged, ascending. */
  rungs: number[];
  /** ASHA: a run goes on only if among the best 1/eta of the runs judged at the rung. */
  eta: number;
  /** Median: judged only once this many other runs reached the rung. */
  minRuns: number;
}

export interface Sweep {
  file: string;
  /** The file's name without extension: its records go to `<dir of file>/<name>/`. */
  name: string;
  /** The base spec's path (relative to the current folder, as given to `mnistc train`). */
  base: string;
  baseText: string;
  baseIr: ModelIR;
  space: Dim[];
  constraints: { budget?: number; maxMacs?: number };
  metric: { name: "val_accuracy"; last: number };
  seeds: number[];
  /** Trials to train (rejected candidates do not count); a grid defaults to all of it. */
  trials: number;
  sampler: { type: SamplerKind; seed: number; startup: number };
  earlyStop?: EarlyStop;
  /** `mnistc train --val`: the validation images held out of the training split. */
  val: number;
  trainLimit?: number;
  epochs?: number;
}

/** `[low, high]`. */
const range = (item: object = {}) => ({
  type: "array",
  items: { type: "number", ...item },
  minItems: 2,
  maxItems: 2,
});

export const SWEEP_SCHEMA = {
  type: "object",
  additionalProperties: false,
  required: ["base", "space"],
  properties: {
    base: { type: "string", minLength: 1 },
    space: {
      type: "object",
      minProperties: 1,
      additionalProperties: {
        type: ["array", "object"],
        minItems: 1,
        items: { type: ["number", "string", "boolean"] },
        additionalProperties: false,
        minProperties: 1,
        maxProperties: 1,
        properties: {
          choice: {
            type: "array",
            minItems: 1,
            items: { type: ["number", "string", "boolean"] },
          },
          int: range({ type: "integer" }),
          uniform: range(),
          loguniform: range({ exclusiveMinimum: 0 }),
        },
      },
    },
    constraints: {
      type: "object",
      additionalProperties: false,
      properties: {
        budget: { type: "integer", minimum: 1 },
        max_macs: { type: "integer", minimum: 1 },
      },
    },
    metric: {
      type: "object",
      additionalProperties: false,
      properties: {
        name: { type: "string", enum: ["val_accuracy"] },
        last: { type: "integer", minimum: 1 },
      },
    },
    seeds: {
      type: "array",
      minItems: 1,
      items: { type: "integer", minimum: 0, maximum: 2147483647 },
    },
    trials: { type: "integer", minimum: 1, maximum: 100000 },
    sampler: {
      type: "object",
      additionalProperties: false,
      required: ["type"],
      properties: {
        type: { type: "string", enum: ["grid", "random", "tpe"] },
        seed: { type: "integer", minimum: 0, maximum: 2147483647 },
        startup: { type: "integer", minimum: 1 },
      },
    },
    early_stop: {
      type: "object",
      additionalProperties: false,
      required: ["type", "rungs"],
      properties: {
        type: { type: "string", enum: ["asha", "median"] },
        rungs: { type: "array", minItems: 1, items: { type: "integer", minimum: 1 } },
        eta: { type: "integer", minimum: 2 },
        min_runs: { type: "integer", minimum: 1 },
      },
    },
    val: { type: "integer", minimum: 1 },
    train_limit: { type: "integer", minimum: 1 },
    epochs: { type: "integer", minimum: 1, maximum: 1000 },
  },
} as const;

let validator: ValidateFunction | undefined;

function validate(value: unknown): ErrorObject[] {
  validator ??= new Ajv({
    allErrors: true,
    verbose: true,
    strict: true,
    allowUnionTypes: true,
  }).compile(SWEEP_SCHEMA);
  return validator(value) ? [] : [...(validator.errors ?? [])];
}

/** The schema's errors as diagnostics; a space value's one-key rule is worded here. */
function schemaErrors(errors: ErrorObject[], value: unknown, source: SourceMap): Diagnostic[] {
  const own: Diagnostic[] = [];
  const rest = errors.filter((e) => {
    if (e.keyword !== "minProperties" && e.keyword !== "maxProperties") return true;
    if (!e.instancePath.startsWith("/space/")) return true;
    const key = e.instancePath.slice("/space/".length).replace(/~1/g, "/").replace(/~0/g, "~");
    own.push(
      error(
        "E0106",
        `space.${key}: write a list of values or one of { choice: [...] }, { int: [low, high] }, { uniform: [low, high] }, { loguniform: [low, high] }`,
        source.at(["space", key]),
      ),
    );
    return false;
  });
  // The spec's wording names the document "spec".
  const theirs = schemaDiagnostics(rest, value, source).map((d) => ({
    ...d,
    message: d.message.replace(/^spec: /, "sweep file: "),
  }));
  return [...own, ...theirs];
}

export interface BaseSource {
  text?: string;
  /** Why it could not be read. */
  problem?: string;
}

export interface SweepParse {
  sweep?: Sweep;
  diagnostics: Diagnostic[];
}

/**
 * Parse and check a sweep file. `readBase` reads the base spec (a path relative to the current
 * folder); its diagnostics are returned as they are (located in the base spec).
 */
export function parseSweep(
  text: string,
  file: string,
  name: string,
  readBase: (path: string) => BaseSource,
): SweepParse {
  const { parsed, diagnostics } = parse(text, file);
  if (!parsed) return { diagnostics };
  const { source, value } = parsed;
  if (value === undefined || value === null)
    return { diagnostics: [error("E0002", "the sweep file is empty", source.top())] };
  const structural = schemaErrors(validate(value), value, source);
  if (structural.length > 0) return { diagnostics: structural };
  const v = value as RawSweep;

  const base = isAbsolute(v.base) ? v.base : join(dirname(file), v.base);
  const read = readBase(base);
  if (read.text === undefined) {
    const why = read.problem ?? "cannot be read";
    return { diagnostics: [error("E1004", `base: ${base}: ${why}`, source.at(["base"]))] };
  }
  const checked = checkSpec(read.text, base, v.constraints?.budget);
  const baseErrors = checked.diagnostics.filter(
    (d) => d.severity === "error" && d.code !== "E0301",
  );
  if (!checked.ir || baseErrors.length > 0) {
    return {
      diagnostics: [
        error("E1004", `base: ${base} does not compile`, source.at(["base"])),
        ...baseErrors,
      ],
    };
  }
  const baseParsed = parse(read.text, base).parsed;
  const sampler = v.sampler?.type ?? "random";
  const found: Diagnostic[] = [];
  const space: Dim[] = [];
  for (const [path, raw] of Object.entries(v.space)) {
    const here = source.at(["space", path]);
    const key = source.key(["space"], path) ?? here;
    const at = resolveSpecPath(baseParsed?.value, path);
    if (typeof at === "string") {
      found.push(error("E1001", `space.${path}: ${at}`, key));
      continue;
    }
    const dim = toDim(path, at, raw);
    if (dim.kind !== "choice") {
      if (!(dim.low < dim.high) && !(dim.kind === "int" && dim.low === dim.high)) {
        found.push(
          error("E1002", `space.${path}: the range [${dim.low}, ${dim.high}] is empty`, here),
        );
        continue;
      }
      if (sampler === "grid" && dim.kind !== "int") {
        found.push(
          error(
            "E1003",
            `space.${path}: the grid sampler needs a list of values or an int range, not ${dim.kind}`,
            here,
          ),
        );
        continue;
      }
    }
    space.push(dim);
  }
  const rungs = v.early_stop?.rungs ?? [];
  if (rungs.some((r, i) => i > 0 && r <= (rungs[i - 1] ?? 0))) {
    found.push(
      error(
        "E1002",
        "early_stop.rungs: the rungs must be ascending epochs",
        source.at(["early_stop", "rungs"]),
      ),
    );
  }
  if (found.length > 0) return { diagnostics: found };

  const trials = v.trials ?? (sampler === "grid" ? gridSize(space) : 10);
  const sweep: Sweep = {
    file,
    name,
    base,
    baseText: read.text,
    baseIr: checked.ir,
    space,
    constraints: {
      ...(v.constraints?.budget !== undefined ? { budget: v.constraints.budget } : {}),
      ...(v.constraints?.max_macs !== undefined ? { maxMacs: v.constraints.max_macs } : {}),
    },
    metric: { name: "val_accuracy", last: v.metric?.last ?? 1 },
    seeds: v.seeds ?? [checked.ir.train.seed],
    trials,
    sampler: {
      type: sampler,
      seed: v.sampler?.seed ?? 1,
      startup: v.sampler?.startup ?? Math.max(2, Math.min(10, Math.ceil(trials / 3))),
    },
    val: v.val ?? 10000,
    ...(v.train_limit !== undefined ? { trainLimit: v.train_limit } : {}),
    ...(v.epochs !== undefined ? { epochs: v.epochs } : {}),
  };
  if (v.early_stop) {
    sweep.earlyStop = {
      type: v.early_stop.type,
      rungs,
      eta: v.early_stop.eta ?? 3,
      minRuns: v.early_stop.min_runs ?? 3,
    };
  }
  return { sweep, diagnostics: [] };
}

interface RawSweep {
  base: string;
  space: Record<string, Scalar[] | Record<string, unknown>>;
  constraints?: { budget?: number; max_macs?: number };
  metric?: { name?: string; last?: number };
  seeds?: number[];
  trials?: number;
  sampler?: { type: SamplerKind; seed?: number; startup?: number };
  early_stop?: { type: "asha" | "median"; rungs: number[]; eta?: number; min_runs?: number };
  val?: number;
  train_limit?: number;
  epochs?: number;
}

function toDim(path: string, at: Path, raw: Scalar[] | Record<string, unknown>): Dim {
  if (Array.isArray(raw)) return { path, at, kind: "choice", values: raw };
  const [kind, arg] = Object.entries(raw)[0] as [string, unknown];
  if (kind === "choice") return { path, at, kind, values: arg as Scalar[] };
  const [low, high] = arg as [number, number];
  return { path, at, kind: kind as "int" | "uniform" | "loguniform", low, high };
}
