// Training state that belongs to no backend: the parameters and buffers, the optimizer's slots and
// step count, and each dropout node's random stream, in PyTorch's names and layouts (state_dict
// names, OIHW conv weights, [out, in] linear weights; slots `<param>.momentum_buffer`, `.exp_avg`,
// `.exp_avg_sq` as torch.optim and the ONNX step signature name them). Every stepper starts from one
// and hands one back; a checkpoint (`checkpoint.ts`) is one plus the run's epoch, data stream,
// options and metrics. A backend converts at its own edge (tfjs: `runtime/tfjs/trainer.ts`).
import type { WeightMap } from "../../compiler/ir.js";
import { UserError } from "../../errors.js";
import type { Layout } from "../../formats/tfjs-layout.js";
import type { RngState } from "../../util/rng.js";
import type { EmaState } from "./ema.js";
import type { RunMetrics, RunOptions } from "./metrics.js";

export type OptimizerType = "sgd" | "adam";

/** Each optimizer's slots per trainable parameter, under torch.optim's state names. */
export const SLOT_KINDS: Record<OptimizerType, readonly string[]> = {
  sgd: ["momentum_buffer"],
  adam: ["exp_avg", "exp_avg_sq"],
};

export interface OptimizerSlots {
  type: OptimizerType;
  /** Steps taken (Adam's bias correction needs it). */
  step: number;
  /**
   * `<param>.<kind>` → the slot in its parameter's PyTorch layout. A slot not there is zeros
   * (exact for PyTorch's SGD too: its first step sets buf = g, which μ·0 + g equals).
   */
  slots: WeightMap;
}

/** What a stepper starts from and hands back: the model and its optimizer as they stand. */
export interface ModelState {
  /** Parameters and buffers by state_dict name, PyTorch layout, in the model's order. */
  weights: WeightMap;
  optimizer: OptimizerSlots;
  /** Each dropout node's random stream (`DropoutStream`), by node name. */
  dropout: Record<string, RngState>;
}

/** A run's whole state after an epoch: what a checkpoint holds. */
export interface TrainingState extends ModelState {
  spec: string;
  /** Epochs completed; a resumed run starts at epoch `epoch + 1` (1-based). */
  epoch: number;
  /** The run's own stream (shuffling, augmentation). */
  rng: RngState;
  options: RunOptions;
  metrics: RunMetrics;
  /** `train.ema`'s average (absent without it). */
  ema?: EmaState;
}

/**
 * Where each PyTorch parameter lives in the tfjs model: its tfjs weight name (`conv1.0/kernel`)
 * and layout. The emitted model.mjs's `spec.tfjsWeights`, from the tfjs backend's op table.
 */
export type TfjsWeights = Record<string, [tfjsName: string, layout: Layout]>;

/** The parameter a slot `<param>.<kind>` belongs to, and its kind. */
export function slotOf(name: string): { param: string; kind: string } {
  const dot = name.lastIndexOf(".");
  return { param: name.slice(0, dot), kind: name.slice(dot + 1) };
}

const fmt = (shape: readonly number[]) => `[${shape.join(",")}]`;

/**
 * Weights must be exactly the model's: every parameter and buffer there with its shape, nothing
 * else. `source` (a checkpoint folder) starts each error.
 */
export function checkWeights(
  weights: WeightMap,
  expected: readonly { name: string; shape: readonly number[] }[],
  source: string,
): void {
  const names = new Set<string>();
  for (const { name, shape } of expected) {
    names.add(name);
    const w = weights.get(name);
    if (!w) throw new UserError(`${source}: no weight ${name}; the checkpoint is of another model`);
    if (fmt(w.shape) !== fmt(shape)) {
      throw new UserError(
        `${source}: weight ${name} has shape ${fmt(w.shape)}, the model needs ${fmt(shape)}`,
      );
    }
  }
  const extra = [...weights.keys()].find((name) => !names.has(name));
  if (extra !== undefined) {
    throw new UserError(
      `${source}: weight ${extra} is not in the model; the checkpoint is of another model`,
    );
  }
}

/**
 * Each slot must be one of its optimizer's kinds and belong to a weight of the same shape
 * (`source` starts each error).
 */
export function checkSlots(optimizer: OptimizerSlots, weights: WeightMap, source: string): void {
  const kinds = SLOT_KINDS[optimizer.type];
  for (const [name, slot] of optimizer.slots) {
    const { param, kind } = slotOf(name);
    const owner = weights.get(param);
    if (!kinds.includes(kind) || !owner) {
      throw new UserError(
        `${source}: optimizer state ${name} is for no parameter of the model (${optimizer.type} keeps ${kinds.map((k) => `<parameter>.${k}`).join(", ")})`,
      );
    }
    if (fmt(owner.shape) !== fmt(slot.shape)) {
      throw new UserError(
        `${source}: optimizer state ${name} has shape ${fmt(slot.shape)}, its parameter ${fmt(owner.shape)}`,
      );
    }
  }
}
