// The random stream of one dropout node, the one implementation of how mnistc draws dropout masks:
// both the tfjs layers (`runtime/tfjs/layers/dropout.ts`) and the ONNX training step (fed its masks
// by `runtime/onnx-train/stepper.ts`) draw from it, so the same seed drops the same units on
// either backend. Each node keeps its own stream, seeded from (model seed, node name), and its
// position is part of a checkpoint, so a resumed run draws the masks an uninterrupted one would.
// Pure: no tensors, no TensorFlow.js.
import { paramSeed } from "../../compiler/init.js";
import { Rng, type RngState } from "../../util/rng.js";

export class DropoutStream {
  private rng: Rng;

  /**
   * @param seed the model seed (the stream's own seed is derived from it and `name`)
   * @param name the dropout node's name (its tfjs layer's name)
   * @param rate PyTorch's `p`, the probability of zeroing
   */
  constructor(
    seed: number,
    readonly name: string,
    readonly rate: number,
  ) {
    this.rng = new Rng(paramSeed(seed, name));
  }

  /** The stream's position. */
  state(): RngState {
    return this.rng.state();
  }

  setState(state: RngState): void {
    this.rng = new Rng(state);
  }

  /** Whether a training forward draws a mask at all: a rate of 0 draws nothing. */
  get draws(): boolean {
    return this.rate > 0;
  }

  /**
   * The next `count` mask values: 1/(1 − p) kept, 0 dropped, in the mask's row-major order (NHWC
   * [B,1,1,C] and NCHW [B,C,1,1] masks have the same order, and so do [B, F] ones).
   */
  drawMask(count: number): Float32Array {
    const keep = 1 - this.rate;
    const scale = keep > 0 ? 1 / keep : 0;
    const mask = new Float32Array(count);
    for (let i = 0; i < mask.length; i++) mask[i] = this.rng.next() < keep ? scale : 0;
    return mask;
  }
}
