// Lowering: a schema-valid spec value to IR nodes with PyTorch module names and source spans, and
// the training and data sections with every default applied. Shapes, parameters, MACs and receptive
// fields are left for the passes.
import { error } from "./codes.js";
import type { Diagnostic } from "./diagnostics.js";
import type {
  AnyNodeIR,
  AugmentIR,
  DataIR,
  InputIR,
  OpKind,
  OptimizerIR,
  SchedulerIR,
  Span,
  TrainIR,
} from "./ir.js";
import { opDef } from "./ops.js";
import type { SourceMap } from "./parse.js";

type Raw = Record<string, unknown>;

export interface Lowered {
  name: string;
  input: InputIR;
  classes: number;
  budget: number | undefined;
  nodes: AnyNodeIR[];
  train: TrainIR;
  data: DataIR;
}

/** The seed's recipe, used where PyTorch has no default (epochs, batch size, optimizer, seed). */
export const SEED_RECIPE = {
  epochs: 15,
  batchSize: 128,
  seed: 1,
  optimizer: { type: "sgd", lr: 0.01, momentum: 0.9, weightDecay: 0, nesterov: false },
} as const satisfies Omit<TrainIR, "scheduler" | "augment">;

export const MNIST_DATA: DataIR = { dataset: "mnist", mean: [0.1307], std: [0.3081] };

const obj = (v: unknown): Raw =>
  v && typeof v === "object" && !Array.isArray(v) ? (v as Raw) : {};
const num = (v: unknown, fallback: number): number => (typeof v === "number" ? v : fallback);

/** One layer item (`relu` or `conv: {...}`) as a node without analysis results. */
function node(item: unknown, name: string, block: string | undefined, span: Span): AnyNodeIR {
  const kind = (typeof item === "string" ? item : Object.keys(obj(item))[0]) as OpKind;
  const raw = typeof item === "string" ? {} : obj(obj(item)[kind]);
  return {
    name,
    kind,
    attrs: opDef(kind).normalize(raw),
    block,
    span,
    inShape: [],
    outShape: [],
    params: [],
    macs: 0,
    rf: { size: 1, jump: 1 },
  } as AnyNodeIR;
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
    for (const [key, inner] of Object.entries(obj(item))) {
      if (!Array.isArray(inner)) continue;
      const at = source.key(["layers", i], key) ?? source.at(["layers", i]);
      const earlier = first.get(key);
      if (earlier) {
        diagnostics.push(
          error(
            "E0107",
            `duplicate block name \`${key}\`: its parameters would clash (${key}.0.weight, ...)`,
            at,
            [{ message: `block \`${key}\` is first defined here`, span: earlier }],
          ),
        );
      } else {
        first.set(key, at);
      }
    }
  });
  return diagnostics;
}

/** Lower a schema-valid spec (`validate` returned no errors; anything else is a compiler bug). */
export function lower(value: Raw, source: SourceMap, fallbackName: string): Lowered {
  const nodes: AnyNodeIR[] = [];
  const layers = Array.isArray(value.layers) ? value.layers : [];
  layers.forEach((item, i) => {
    const key = typeof item === "string" ? item : (Object.keys(obj(item))[0] ?? "");
    const inner = obj(item)[key];
    if (typeof item !== "string" && Array.isArray(inner)) {
      inner.forEach((layer, j) => {
        nodes.push(node(layer, `${key}.${j}`, key, source.at(["layers", i, key, j])));
      });
    } else {
      nodes.push(node(item, String(i), undefined, source.at(["layers", i])));
    }
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
    train: lowerTrain(obj(value.train)),
    data: lowerData(value.data),
  };
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

function lowerTrain(raw: Raw): TrainIR {
  const augment: AugmentIR = { rotate: num(obj(raw.augment).rotate, 0) };
  return {
    epochs: num(raw.epochs, SEED_RECIPE.epochs),
    batchSize: num(raw.batch_size, SEED_RECIPE.batchSize),
    seed: num(raw.seed, SEED_RECIPE.seed),
    optimizer: lowerOptimizer(raw.optimizer === undefined ? undefined : obj(raw.optimizer)),
    scheduler: lowerScheduler(raw.scheduler === undefined ? undefined : obj(raw.scheduler)),
    augment,
  };
}

function lowerData(value: unknown): DataIR {
  if (value === undefined)
    return { ...MNIST_DATA, mean: [...MNIST_DATA.mean], std: [...MNIST_DATA.std] };
  const raw = obj(value);
  const numbers = (v: unknown, fallback: number[]) =>
    Array.isArray(v) ? v.filter((x): x is number => typeof x === "number") : [...fallback];
  return {
    dataset: "mnist",
    mean: numbers(raw.mean, MNIST_DATA.mean),
    std: numbers(raw.std, MNIST_DATA.std),
  };
}
