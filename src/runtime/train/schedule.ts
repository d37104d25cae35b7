// Learning-rate schedules as PyTorch computes them, as pure functions of the position in the run
// (epoch, batch), so a resumed run picks up the exact values without replaying the scheduler.
import type { SchedulerIR } from "../../compiler/ir.js";

export interface ScheduleInput {
  scheduler: SchedulerIR;
  /** The optimizer's lr (after any --lr override); OneCycle ignores it and uses its max_lr. */
  baseLr: number;
  epochs: number;
  stepsPerEpoch: number;
}

export interface StepValues {
  lr: number;
  /** Set only by OneCycle's momentum cycling (SGD momentum / Adam beta1). */
  momentum?: number;
}

/** PyTorch OneCycleLR's defaults for cycle_momentum=True (the IR has no fields for them). */
export const ONECYCLE_BASE_MOMENTUM = 0.85;
export const ONECYCLE_MAX_MOMENTUM = 0.95;

type Anneal = (start: number, end: number, pct: number) => number;

const annealCos: Anneal = (start, end, pct) =>
  end + ((start - end) / 2) * (Math.cos(Math.PI * pct) + 1);
const annealLinear: Anneal = (start, end, pct) => (end - start) * pct + start;

/** torch.optim.lr_scheduler.StepLR (stepped per epoch): base · gamma^floor(epoch / step_size). */
export function stepLr(baseLr: number, stepSize: number, gamma: number, epoch: number): number {
  return baseLr * gamma ** Math.floor(epoch / stepSize);
}

/**
 * torch.optim.lr_scheduler.OneCycleLR (two phases, stepped per batch) at `step` (0-based) of
 * `totalSteps`: from max_lr/div_factor up to max_lr over the first pct_start of the steps, then
 * down to initial/final_div_factor. Momentum runs the opposite way, max → base → max.
 */
export function oneCycle(
  cfg: Extract<SchedulerIR, { type: "onecycle" }>,
  step: number,
  totalSteps: number,
): { lr: number; momentum: number } {
  const initialLr = cfg.maxLr / cfg.divFactor;
  const minLr = initialLr / cfg.finalDivFactor;
  const anneal = cfg.anneal === "cos" ? annealCos : annealLinear;
  const phase1End = cfg.pctStart * totalSteps - 1;
  const phase2End = totalSteps - 1;
  if (step <= phase1End) {
    const pct = step / phase1End;
    return {
      lr: anneal(initialLr, cfg.maxLr, pct),
      momentum: anneal(ONECYCLE_MAX_MOMENTUM, ONECYCLE_BASE_MOMENTUM, pct),
    };
  }
  const pct = (step - phase1End) / (phase2End - phase1End);
  return {
    lr: anneal(cfg.maxLr, minLr, pct),
    momentum: anneal(ONECYCLE_BASE_MOMENTUM, ONECYCLE_MAX_MOMENTUM, pct),
  };
}

/** The lr (and cycled momentum) for batch `batch` of epoch `epoch` (both 0-based). */
export function scheduleAt(input: ScheduleInput, epoch: number, batch: number): StepValues {
  const { scheduler } = input;
  switch (scheduler.type) {
    case "none":
      return { lr: input.baseLr };
    case "step":
      return { lr: stepLr(input.baseLr, scheduler.stepSize, scheduler.gamma, epoch) };
    case "onecycle":
      return oneCycle(
        scheduler,
        epoch * input.stepsPerEpoch + batch,
        input.epochs * input.stepsPerEpoch,
      );
  }
}
