// Runs single-image predictions on the shared model in batches: while one batch is in the model,
// arriving images queue, and the next run takes all of them (up to `maxBatch`). A lone request runs
// at once (no added latency); under concurrent load one ORT run serves many requests, which costs
// far less than one run each. The queue is bounded: past `maxQueue` waiting images a request is
// refused with 503 and Retry-After, so a flood cannot grow the server's memory without end.
import type { DigitModel } from "../inference/onnx-model.js";
import { busy } from "./http-error.js";

interface Pending {
  pixels: Uint8Array;
  resolve: (logProbs: Float32Array) => void;
  reject: (err: unknown) => void;
}

export class PredictionBatcher {
  private queue: Pending[] = [];
  private running = false;

  constructor(
    private readonly model: DigitModel,
    private readonly maxBatch = 64,
    private readonly maxQueue = 256,
  ) {}

  /** Log-probabilities (one per class) for one image of 8-bit pixels, white on black. */
  predict(pixels: Uint8Array): Promise<Float32Array> {
    if (this.queue.length >= this.maxQueue) {
      return Promise.reject(busy("the server is busy: too many images wait for the model"));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ pixels, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      const plane = batch[0]?.pixels.length ?? 0;
      const pixels = new Uint8Array(batch.length * plane);
      for (const [i, p] of batch.entries()) pixels.set(p.pixels, i * plane);
      try {
        const classes = this.model.info.classes;
        const out = await this.model.predictBatch(
          this.model.normalize(pixels, batch.length),
          batch.length,
        );
        for (const [i, p] of batch.entries()) p.resolve(out.slice(i * classes, (i + 1) * classes));
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    }
    this.running = false;
  }
}
