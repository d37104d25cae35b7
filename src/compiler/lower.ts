// Lowering: a schema-valid spec value to the graph IR — nodes with PyTorch module names, source
// spans and the names of the nodes they read — and the training and data sections with every
// default applied. Shapes, parameters, MACs and receptive fields are left for the passes.
import { dirname, isAbsolute, join, normalize } from "node:path";
import { error } from "./codes.js";
import { type DatasetName, datasetDef, isDatasetName } from "./datasets.js";
import type { Diagnostic } from "./diagnostics.js";
import {
  type AnyNodeIR,
  type AugmentIR,
  type DataIR,
  type DistillIR,
  GRAPH_INPUT,
  type InputIR,
  type OpKind,
  type OptimizerIR,
  type SchedulerIR,
  type Span,
  type TrainIR,
} from "./ir.js";
import { BLOCK_KINDS, LAYER_KINDS, opDef } from "./ops.js";
import type { SourceMap } from "./parse.js";
import type { Damage, ItemDamage } from "./schema-errors.js";
import { didYouMean } from "./suggest.js";

type Raw = Record<string, unknown>;

export interface Lowered {
  name: string;
  input: InputIR;
  classes: number;
  budget: number | undefined;
  nodes: AnyNodeIR[];
  train: TrainIR;
  data: DataIR;
  /** References `add:`, `mul:` or `concat:` could not resolve (E0112). */
  diagnostics: Diagnostic[];
  /**
   * Layers (and block outputs) that could not be lowered: a schema error broke them, or a block
   * name clashes or names no earlier block. Keyed by the node name they would have had (later
   * nodes read that name), with where they are written and what they read. Their output shape is
   * unknown.
   */
  unknown: Map<string, { span: Span; input: string }>;
  /** Nodes lowered despite a schema error in them (an unknown attribute left out, a bad value defaulted). */
  damaged: Set<string>;
  /** The name the model's output is read from (a node, or an `unknown` name). */
  output: string;
}

/** The seed's recipe, used where PyTorch has no default (epochs, batch size, optimizer, seed). */
export const SEED_RECIPE = {
  epochs: 15,
  batchSize: 128,
  seed: 1,
  optimizer: { type: "sgd", lr: 0.01, momentum: 0.9, weightDecay: 0, nesterov: false },
} as const satisfies Omit<TrainIR, "scheduler" | "augment" | "labelSmoothing">;

const obj = (v: unknown): Raw =>
  v && typeof v === "object" && !Array.isArray(v) ? (v as Raw) : {};
const num = (v: unknown, fallback: number): number => (typeof v === "number" ? v : fallback);

const isLayerKind = (k: string | undefined): k is OpKind =>
  k !== undefined && (LAYER_KINDS as readonly string[]).includes(k);

/**
 * One layer item (`relu` or `conv: {...}`) as a node without analysis results; undefined when its
 * schema errors leave no layer to lower. An unknown attribute is left out. A bad value is left to
 * its default only in an op without required attributes (activations, batchnorm, dropout: none of
 * theirs changes a shape); elsewhere it could be what sets the shape, so the layer is unknown.
 */
function node(
  item: unknown,
  name: string,
  block: string | undefined,
  span: Span,
  inputs: string[],
  hurt?: ItemDamage,
): AnyNodeIR | undefined {
  const key = typeof item === "string" ? item : Object.keys(obj(item))[0];
  if (!isLayerKind(key) || hurt?.whole) return undefined;
  const kind = key;
  const raw = { ...(typeof item === "string" ? {} : obj(obj(item)[kind])) };
  const op = opDef(kind);
  if (hurt) {
    if (hurt.values.size > 0 && op.required.length > 0) return undefined;
    for (const attr of [...hurt.values, ...hurt.unknown]) delete raw[attr];
    if (op.required.some((r) => !(r in raw))) return undefined;
  }
  return analysisless(name, kind, op.normalize(raw), block, span, inputs);
}

function analysisless(
  name: string,
  kind: OpKind,
  attrs: unknown,
  block: string | undefined,
  span: Span,
  inputs: string[],
): AnyNodeIR {
  return {
    name,
    kind,
    attrs,
    block,
    span,
    inputs,
    inShapes: [],
    inShape: [],
    outShape: [],
    params: [],
    macs: 0,
    rf: { size: 1, jump: 1 },
  } as AnyNodeIR;
}

/** A top-level item that is a named block: `conv1: [...]` or `res1: { add: conv1, layers: [...] }`. */
interface BlockItem {
  name: string;
  layers: unknown[];
  /** Path of the layer list in the spec (for spans). */
  path: (string | number)[];
  /** The block op (`add:`, `mul:`, `concat:`) and the earlier block it combines, if any. */
  combine?: { kind: OpKind; from: string; path: (string | number)[] };
}

function blockItem(item: unknown, i: number): BlockItem | undefined {
  const [name, inner] = Object.entries(obj(item))[0] ?? [];
  if (name === undefined) return undefined;
  if (Array.isArray(inner)) return { name, layers: inner, path: ["layers", i, name] };
  const form = obj(inner);
  if (typeof inner !== "object" || inner === null || !Array.isArray(form.layers)) return undefined;
  const kind = BLOCK_KINDS.find((k) => typeof form[k] === "string");
  return {
    name,
    layers: form.layers,
    path: ["layers", i, name, "layers"],
    ...(kind
      ? { combine: { kind, from: String(form[kind]), path: ["layers", i, name, kind] } }
      : {}),
  };
}

/**
 * Duplicate block names: the one structural mistake the schema cannot see. Runs on any spec value
 * (even one with schema errors), so it is reported together with them.
 */
export function duplicateBlocks(value: unknown, source: SourceMap): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  const first = new Map<string, Span>();
  const layers = obj(value).layers;
  if (!Array.isArray(layers)) return diagnostics;
  layers.forEach((item, i) => {
    const block = blockItem(item, i);
    if (!block) return;
    const at = source.key(["layers", i], block.name) ?? source.at(["layers", i]);
    const earlier = first.get(block.name);
    if (earlier) {
      diagnostics.push(
        error(
          "E0107",
          `duplicate block name \`${block.name}\`: its parameters would clash (${block.name}.0.weight, ...)`,
          at,
          [{ message: `block \`${block.name}\` is first defined here`, span: earlier }],
        ),
      );
    } else {
      first.set(block.name, at);
    }
  });
  return diagnostics;
}

/**
 * Lower a spec into the graph: each layer reads the one before it, and a block with a block op's
 * key (`add: c2`) ends in a node of that op (`res1.add`) that also reads the named earlier block's
 * output, in the op's operand order. A name that is no earlier block is reported. With schema
 * errors (`hurt`), what they break is left out as `unknown` (later nodes read its name), so the
 * rest can still be checked.
 */
export function lower(value: Raw, source: SourceMap, fallbackName: string, hurt?: Damage): Lowered {
  const nodes: AnyNodeIR[] = [];
  const diagnostics: Diagnostic[] = [];
  const unknown = new Map<string, { span: Span; input: string }>();
  const damaged = new Set<string>();
  /** Each finished block's output (a node name, or an unknown one), and where the block is written. */
  const blockOutputs = new Map<string, string>();
  const blockSpans = new Map<string, Span>();
  let previous: string = GRAPH_INPUT;
  const push = (n: AnyNodeIR | undefined, name: string, span: Span, itemKey: string) => {
    if (n) {
      nodes.push(n);
      if (hurt?.items.has(itemKey)) damaged.add(n.name);
    } else unknown.set(name, { span, input: previous });
    previous = name;
  };
  const layers = Array.isArray(value.layers) ? value.layers : [];
  /** Duplicate block names (E0107) are not lowered: their nodes' names would clash. */
  const duplicate = new Set<number>();
  layers.forEach((item, i) => {
    const block = blockItem(item, i);
    if (!block) return;
    if (blockSpans.has(block.name)) duplicate.add(i);
    else
      blockSpans.set(block.name, source.key(["layers", i], block.name) ?? source.at(["layers", i]));
  });
  layers.forEach((item, i) => {
    const block = blockItem(item, i);
    const at = source.at(["layers", i]);
    if (!block) {
      const name = String(i);
      push(node(item, name, undefined, at, [previous], hurt?.items.get(name)), name, at, name);
      return;
    }
    if (duplicate.has(i) || hurt?.items.get(String(i))?.whole) {
      const name = `${block.name}#${i}`;
      push(undefined, name, source.key(["layers", i], block.name) ?? at, String(i));
      return;
    }
    block.layers.forEach((layer, j) => {
      const name = `${block.name}.${j}`;
      const span = source.at([...block.path, j]);
      const key = `${i}/${j}`;
      push(node(layer, name, block.name, span, [previous], hurt?.items.get(key)), name, span, key);
    });
    const combine = block.combine;
    const brokenForm = hurt?.blocks.has(i) ?? false;
    if (combine || brokenForm) {
      const kind = combine?.kind ?? "add";
      // A broken block form is reported on the block, an unknown name on its `add:` value.
      const span = combine && !brokenForm ? source.at(combine.path) : at;
      const name = `${block.name}.${kind}`;
      const from = combine && blockOutputs.get(combine.from);
      if (combine && !brokenForm && from === undefined) {
        const op = opDef(combine.kind);
        diagnostics.push(
          unknownBlock(
            op.verb ?? combine.kind,
            combine.from,
            block.name,
            span,
            blockSpans,
            blockOutputs,
          ),
        );
      }
      if (!combine || brokenForm || from === undefined) {
        push(undefined, name, span, String(i));
      } else {
        const op = opDef(combine.kind);
        const attrs = op.normalize({ [combine.kind]: combine.from });
        const inputs = (op.operands ?? ["own", "earlier"]).map((o) =>
          o === "own" ? previous : from,
        );
        push(
          analysisless(name, combine.kind, attrs, block.name, span, inputs),
          name,
          span,
          String(i),
        );
      }
    }
    blockOutputs.set(block.name, previous);
  });

  const input = obj(value.input);
  return {
    name: typeof value.name === "string" ? value.name : fallbackName,
    input: {
      channels: num(input.channels, 1),
      height: num(input.height, 1),
      width: num(input.width, 1),
    },
    classes: num(value.classes, 2),
    budget: typeof value.budget === "number" ? value.budget : undefined,
    nodes,
    train: lowerTrain(obj(value.train), source),
    data: lowerData(value.data, source),
    diagnostics,
    unknown,
    damaged,
    output: previous,
  };
}

/** E0112: `add:` (`mul:`, `concat:`) names the block itself, a later block, or no block at all. */
function unknownBlock(
  verb: string,
  name: string,
  block: string,
  span: Span,
  spans: Map<string, Span>,
  outputs: Map<string, string>,
): Diagnostic {
  const at = spans.get(name);
  const earlier = [...outputs.keys()];
  if (name === block) {
    return error("E0112", `block \`${block}\` ${verb} its own output: name an earlier block`, span);
  }
  if (at) {
    return error("E0112", `block \`${block}\` ${verb} block \`${name}\`, which comes later`, span, [
      { message: `block \`${name}\` is defined here, after \`${block}\``, span: at },
    ]);
  }
  const known = earlier.length > 0 ? ` (earlier blocks: ${earlier.join(", ")})` : "";
  return error(
    "E0112",
    `block \`${block}\` ${verb} \`${name}\`, which is no block${didYouMean(name, earlier)}${known}`,
    span,
  );
}

function lowerOptimizer(raw: Raw | undefined): OptimizerIR {
  if (!raw) return { ...SEED_RECIPE.optimizer };
  if (raw.type === "adam") {
    const betas = Array.isArray(raw.betas) ? raw.betas : [];
    return {
      type: "adam",
      lr: num(raw.lr, 1e-3),
      betas: [num(betas[0], 0.9), num(betas[1], 0.999)],
      eps: num(raw.eps, 1e-8),
      weightDecay: num(raw.weight_decay, 0),
    };
  }
  // PyTorch's SGD: lr 1e-3 (torch >= 2), no momentum, no weight decay.
  return {
    type: "sgd",
    lr: num(raw.lr, 1e-3),
    momentum: num(raw.momentum, 0),
    weightDecay: num(raw.weight_decay, 0),
    nesterov: raw.nesterov === true,
  };
}

function lowerScheduler(raw: Raw | undefined): SchedulerIR {
  if (raw?.type === "step") {
    return { type: "step", stepSize: num(raw.step_size, 1), gamma: num(raw.gamma, 0.1) };
  }
  if (raw?.type === "onecycle") {
    return {
      type: "onecycle",
      maxLr: num(raw.max_lr, 0.1),
      pctStart: num(raw.pct_start, 0.3),
      anneal: raw.anneal_strategy === "linear" ? "linear" : "cos",
      divFactor: num(raw.div_factor, 25),
      finalDivFactor: num(raw.final_div_factor, 1e4),
    };
  }
  return { type: "none" };
}

/**
 * Teachers are written relative to the spec's folder; the IR holds them relative to where the
 * spec's own path starts (the folder it was named from), so every consumer opens them as given.
 */
function lowerDistill(raw: Raw | undefined, source: SourceMap): DistillIR | undefined {
  if (raw === undefined) return undefined;
  const teachers = Array.isArray(raw.teachers)
    ? raw.teachers
        .filter((t): t is string => typeof t === "string")
        .map((t) => (isAbsolute(t) ? t : normalize(join(dirname(source.file), t))))
    : [];
  return {
    teachers,
    weight: num(raw.weight, 0.5),
    temperature: num(raw.temperature, 1),
    span: source.at(["train", "distill"]),
  };
}

function lowerTrain(raw: Raw, source: SourceMap): TrainIR {
  const rawAugment = obj(raw.augment);
  const scale = Array.isArray(rawAugment.scale) ? rawAugment.scale.map((v) => num(v, 1)) : [1, 1];
  const augment: AugmentIR = {
    rotate: num(rawAugment.rotate, 0),
    translate: num(rawAugment.translate, 0),
    scale: [scale[0] ?? 1, scale[1] ?? 1],
    // Only when used: programs and goldens of recipes without them stay as they were.
    ...(rawAugment.hflip === true ? { hflip: true } : {}),
    ...(num(obj(rawAugment.crop).padding, 0) > 0
      ? { crop: num(obj(rawAugment.crop).padding, 0) }
      : {}),
  };
  const distill = lowerDistill(raw.distill === undefined ? undefined : obj(raw.distill), source);
  return {
    epochs: num(raw.epochs, SEED_RECIPE.epochs),
    batchSize: num(raw.batch_size, SEED_RECIPE.batchSize),
    seed: num(raw.seed, SEED_RECIPE.seed),
    optimizer: lowerOptimizer(raw.optimizer === undefined ? undefined : obj(raw.optimizer)),
    scheduler: lowerScheduler(raw.scheduler === undefined ? undefined : obj(raw.scheduler)),
    augment,
    labelSmoothing: num(raw.label_smoothing, 0),
    ...(raw.ema !== undefined ? { ema: { decay: num(obj(raw.ema).decay, 0.999) } } : {}),
    ...(distill ? { distill } : {}),
  };
}

function lowerData(value: unknown, source: SourceMap): DataIR {
  const raw = obj(value);
  const dataset: DatasetName =
    typeof raw.dataset === "string" && isDatasetName(raw.dataset) ? raw.dataset : "mnist";
  const def = datasetDef(dataset);
  const numbers = (v: unknown, fallback: readonly number[] | undefined) =>
    Array.isArray(v)
      ? v.filter((x): x is number => typeof x === "number")
      : fallback && [...fallback];
  const mean = numbers(raw.mean, def.mean);
  const std = numbers(raw.std, def.std);
  const path =
    typeof raw.path === "string"
      ? isAbsolute(raw.path)
        ? raw.path
        : normalize(join(dirname(source.file), raw.path))
      : undefined;
  return {
    dataset,
    ...(path !== undefined ? { path } : {}),
    ...(mean ? { mean } : {}),
    ...(std ? { std } : {}),
    ...(def.classNames ? { classNames: [...def.classNames] } : {}),
    preprocess:
      raw.preprocess === "digit" || raw.preprocess === "resize" ? raw.preprocess : def.profile,
  };
}
