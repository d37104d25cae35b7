// The optimizer's update of one parameter, in ONNX, with PyTorch's formulas (the same as the tfjs
// runtime's optim.ts): torch.optim.SGD (momentum, nesterov, weight decay) and torch.optim.Adam
// (L2 weight decay). The learning rate, the momentum (or β1, which OneCycleLR cycles) and Adam's
// bias corrections are graph inputs, so a schedule never needs another graph.
import type { OptimizerIR } from "../../compiler/ir.js";
import type { OnnxGraph, Tensor } from "./graph.js";

/** The scalar inputs of an update. */
export interface HyperInputs {
  lr: Tensor;
  /** SGD momentum or Adam β1 for this step. */
  momentum: Tensor;
  /** Adam: lr / (1 − β1^t). */
  stepSize: Tensor;
  /** Adam: √(1 − β2^t). */
  bc2Sqrt: Tensor;
}

/** The optimizer slots of one parameter, PyTorch's state names. */
export function slotNames(cfg: OptimizerIR, usesMomentum: boolean): string[] {
  if (cfg.type === "adam") return ["exp_avg", "exp_avg_sq"];
  return usesMomentum ? ["momentum_buffer"] : [];
}

/** The parameter's and its slots' values after the step. */
export function update(
  g: OnnxGraph,
  cfg: OptimizerIR,
  hyper: HyperInputs,
  p: Tensor,
  grad: Tensor,
  slots: Record<string, Tensor>,
): { param: Tensor; slots: Record<string, Tensor> } {
  const decayed = cfg.weightDecay !== 0 ? g.add(grad, g.scale(p, cfg.weightDecay)) : grad;
  if (cfg.type === "sgd") {
    const buf = slots.momentum_buffer;
    if (!buf) return { param: g.sub(p, g.mul(decayed, hyper.lr)), slots: {} };
    const next = g.add(g.mul(buf, hyper.momentum), decayed);
    const d = cfg.nesterov ? g.add(decayed, g.mul(next, hyper.momentum)) : next;
    return { param: g.sub(p, g.mul(d, hyper.lr)), slots: { momentum_buffer: next } };
  }
  const m = slots.exp_avg;
  const v = slots.exp_avg_sq;
  if (!m || !v) throw new Error("onnx-train: Adam without its moments");
  const [, beta2] = cfg.betas;
  const oneMinus = g.sub(g.scalar(1), hyper.momentum);
  const m1 = g.add(g.mul(m, hyper.momentum), g.mul(decayed, oneMinus));
  const v1 = g.add(g.scale(v, beta2), g.scale(g.mul(decayed, decayed), 1 - beta2));
  const sqrt = g.op("Sqrt", [v1], v1.shape);
  const denom = g.add(g.op("Div", [sqrt, hyper.bc2Sqrt], v1.shape), g.scalar(cfg.eps));
  const stepped = g.mul(g.op("Div", [m1, denom], m1.shape), hyper.stepSize);
  return { param: g.sub(p, stepped), slots: { exp_avg: m1, exp_avg_sq: v1 } };
}
