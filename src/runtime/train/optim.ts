// PyTorch's SGD and Adam written with tf ops. tfjs's own optimizers cannot be used: they cache the
// learning rate at construction (no per-batch schedule) and have no PyTorch-style weight decay.
// The learning rate and momentum (Adam: beta1) come in with every step, from the scheduler.
import type * as tfNs from "@tensorflow/tfjs";
import type { OptimizerIR } from "../../compiler/ir.js";

type Tf = typeof tfNs;
type Tensor = tfNs.Tensor;
type Variable = tfNs.Variable;

/**
 * A trainable parameter under its stable name: the tfjs weight name (`conv1.0/kernel`) without the
 * suffix tfjs appends when one process builds the same model twice, so checkpoints load anywhere.
 */
export interface NamedParam {
  name: string;
  variable: Variable;
}

export interface StepHyper {
  lr: number;
  /** SGD momentum / Adam beta1 for this step, when a scheduler cycles it (OneCycleLR). */
  momentum?: number;
}

/** A named float32 array: an optimizer slot (momentum buffer, Adam moments) in a checkpoint. */
export interface SlotArray {
  name: string;
  shape: number[];
  data: Float32Array;
}

export interface OptimizerState {
  type: OptimizerIR["type"];
  /** Number of steps taken (Adam's bias correction needs it). */
  step: number;
  slots: SlotArray[];
}

export interface Optimizer {
  readonly type: OptimizerIR["type"];
  /** Updates each parameter in place from its gradient (same order as `params`). */
  step(params: NamedParam[], grads: Tensor[], hyper: StepHyper): void;
  /** The momentum that applies when no scheduler overrides it (SGD momentum, Adam beta1). */
  readonly baseMomentum: number;
  state(): Promise<OptimizerState>;
  load(state: OptimizerState): void;
  dispose(): void;
}

/**
 * Slots are created lazily, one zero tensor per parameter and slot kind. Zero-initialized buffers
 * are exact for PyTorch's SGD too: its first step sets buf = g, which equals μ·0 + g.
 */
class Slots {
  private readonly byKey = new Map<string, Variable>();
  constructor(private readonly tf: Tf) {}

  get(kind: string, param: NamedParam): Variable {
    const key = `${param.name}#${kind}`;
    let slot = this.byKey.get(key);
    if (!slot) {
      slot = this.tf.variable(this.tf.zerosLike(param.variable), false);
      this.byKey.set(key, slot);
    }
    return slot;
  }

  async arrays(): Promise<SlotArray[]> {
    const out: SlotArray[] = [];
    for (const [name, v] of this.byKey) {
      out.push({ name, shape: v.shape.slice(), data: (await v.data()) as Float32Array });
    }
    return out;
  }

  load(arrays: SlotArray[]): void {
    this.dispose();
    for (const a of arrays) {
      this.byKey.set(a.name, this.tf.variable(this.tf.tensor(a.data, a.shape, "float32"), false));
    }
  }

  dispose(): void {
    for (const v of this.byKey.values()) v.dispose();
    this.byKey.clear();
  }
}

/** What SGD and Adam share: a step count and slots, saved to and restored from checkpoints. */
abstract class SlotOptimizer {
  protected steps = 0;
  protected readonly slots: Slots;

  constructor(
    protected readonly tf: Tf,
    /** The momentum that applies when no scheduler overrides it (SGD momentum, Adam beta1). */
    readonly baseMomentum: number,
  ) {
    this.slots = new Slots(tf);
  }

  abstract readonly type: OptimizerIR["type"];

  async state(): Promise<OptimizerState> {
    return { type: this.type, step: this.steps, slots: await this.slots.arrays() };
  }

  load(state: OptimizerState): void {
    this.steps = state.step;
    this.slots.load(state.slots);
  }

  dispose(): void {
    this.slots.dispose();
  }
}

/** torch.optim.SGD: d = g + wd·p; buf = μ·buf + d; d = nesterov ? d + μ·buf : buf; p -= lr·d. */
class Sgd extends SlotOptimizer implements Optimizer {
  readonly type = "sgd" as const;

  constructor(
    tf: Tf,
    private readonly cfg: Extract<OptimizerIR, { type: "sgd" }>,
  ) {
    super(tf, cfg.momentum);
  }

  step(params: NamedParam[], grads: Tensor[], hyper: StepHyper): void {
    const { tf, cfg } = this;
    const mu = hyper.momentum ?? cfg.momentum;
    tf.tidy(() => {
      params.forEach((param, i) => {
        const p = param.variable;
        let d = grads[i] as Tensor;
        if (cfg.weightDecay !== 0) d = d.add(p.mul(cfg.weightDecay));
        if (mu !== 0) {
          const buf = this.slots.get("momentum", param);
          buf.assign(buf.mul(mu).add(d));
          d = cfg.nesterov ? d.add(buf.mul(mu)) : buf;
        }
        p.assign(p.sub(d.mul(hyper.lr)));
      });
    });
    this.steps++;
  }
}

/**
 * torch.optim.Adam (L2 weight decay, not AdamW): g += wd·p; m = β1·m + (1-β1)·g;
 * v = β2·v + (1-β2)·g²; p -= lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + eps).
 */
class Adam extends SlotOptimizer implements Optimizer {
  readonly type = "adam" as const;

  constructor(
    tf: Tf,
    private readonly cfg: Extract<OptimizerIR, { type: "adam" }>,
  ) {
    super(tf, cfg.betas[0]);
  }

  step(params: NamedParam[], grads: Tensor[], hyper: StepHyper): void {
    const { tf, cfg } = this;
    this.steps++;
    const beta1 = hyper.momentum ?? cfg.betas[0];
    const beta2 = cfg.betas[1];
    const bc1 = 1 - beta1 ** this.steps;
    const bc2Sqrt = Math.sqrt(1 - beta2 ** this.steps);
    const stepSize = hyper.lr / bc1;
    tf.tidy(() => {
      params.forEach((param, i) => {
        const p = param.variable;
        let g = grads[i] as Tensor;
        if (cfg.weightDecay !== 0) g = g.add(p.mul(cfg.weightDecay));
        const m = this.slots.get("exp_avg", param);
        const v = this.slots.get("exp_avg_sq", param);
        m.assign(m.mul(beta1).add(g.mul(1 - beta1)));
        v.assign(v.mul(beta2).add(g.square().mul(1 - beta2)));
        const denom = v.sqrt().div(bc2Sqrt).add(cfg.eps);
        p.assign(p.sub(m.div(denom).mul(stepSize)));
      });
    });
  }
}

export function createOptimizer(tf: Tf, cfg: OptimizerIR): Optimizer {
  switch (cfg.type) {
    case "sgd":
      return new Sgd(tf, cfg);
    case "adam":
      return new Adam(tf, cfg);
  }
}
