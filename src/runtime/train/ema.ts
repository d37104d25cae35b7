// `train.ema`: an exponential moving average of the weights, as PyTorch's
// `torch.optim.swa_utils.AveragedModel(model, avg_fn=lambda a, w, n: decay * a + (1 - decay) * w,
// use_buffers=True)` with `update_parameters(model)` after every optimizer step: the first update
// copies the model, each later one sets a = decay·a + (1-decay)·w on every parameter and buffer
// (batch norm's running statistics are averaged too, as timm's ModelEmaV2 does; with
// use_buffers=False the average would keep the running statistics it was created with). In
// float32, rounding as PyTorch's tensor ops do: decay·a, (1-decay)·w and their sum each rounded.
import type { WeightMap } from "../../compiler/ir.js";

export interface EmaState {
  decay: number;
  /** AveragedModel's n_averaged: updates so far (0: the next one copies). */
  updates: number;
  weights: WeightMap;
}

export class WeightEma implements EmaState {
  constructor(
    readonly decay: number,
    public updates = 0,
    readonly weights: WeightMap = new Map(),
  ) {}

  static from(state: EmaState): WeightEma {
    return new WeightEma(state.decay, state.updates, state.weights);
  }

  update(current: WeightMap): void {
    const d = Math.fround(this.decay);
    // Python computes 1 - decay in double; the tensor op takes it as float32.
    const e = Math.fround(1 - this.decay);
    for (const [name, t] of current) {
      const avg = this.weights.get(name);
      if (this.updates === 0 || !avg) {
        this.weights.set(name, { shape: [...t.shape], data: Float32Array.from(t.data) });
        continue;
      }
      const a = avg.data;
      const w = t.data;
      for (let i = 0; i < a.length; i++) {
        a[i] = Math.fround(d * (a[i] as number)) + Math.fround(e * (w[i] as number));
      }
    }
    this.updates++;
  }
}
