// Knowledge distillation's teachers (`train.distill`): trained ONNX classifiers run in inference
// mode on each training batch, after augmentation, so teacher and student see the same images.
// Their mean tempered probabilities p̄_T = mean softmax(z_t/T) go with the batch; the step's loss
// adds weight·T²·KL(p̄_T ‖ softmax(z/T)) to (1-weight)·its NLL (PyTorch's KLDivLoss, batchmean).
//
// Loaded only by a distilling run: it pulls in the native onnxruntime-node.
import type { InputIR } from "../../compiler/ir.js";
import { UserError } from "../../errors.js";
import type { Batch } from "../data/batches.js";
import { DigitModel } from "../inference/onnx-model.js";

export interface TeacherOptions {
  /** The student's input and classes: every teacher must take and give the same. */
  input: InputIR;
  classes: number;
  /** The student's per-channel normalization of the batch images. */
  mean: readonly number[];
  std: readonly number[];
  /** onnxruntime's threads per teacher (default: ORT's choice). */
  threads?: number;
}

interface Teacher {
  model: DigitModel;
  /**
   * Student-normalized x to this teacher's normalization, per channel: x·scale[c] + shift[c]
   * (identity: undefined).
   */
  renormalize?: { scale: number[]; shift: number[] };
}

export class Teachers {
  private buffer = new Float32Array(0);
  private taught = new Float32Array(0);

  private constructor(
    private readonly teachers: Teacher[],
    private readonly classes: number,
  ) {}

  /** Loads and checks each file; a file that cannot teach this student is a `UserError`. */
  static async load(files: string[], options: TeacherOptions): Promise<Teachers> {
    const teachers: Teacher[] = [];
    const { input, classes } = options;
    try {
      for (const file of files) {
        const model = await DigitModel.load(file, {
          ...(options.threads ? { threads: options.threads } : {}),
        });
        teachers.push({ model });
        const [c, h, w] = model.info.inputShape;
        if (c !== input.channels || h !== input.height || w !== input.width) {
          throw new UserError(
            `teacher ${file} takes [${c}, ${h}, ${w}] images; the spec's are [${input.channels}, ${input.height}, ${input.width}]`,
          );
        }
        if (model.info.classes !== classes) {
          throw new UserError(
            `teacher ${file} has ${model.info.classes} classes; the spec has ${classes}`,
          );
        }
        // x_t = (v/255 - m_t)/s_t = (x_s·s_s + m_s - m_t)/s_t for the student's x_s.
        const same = options.mean.every(
          (m, ch) => m === model.info.mean[ch] && options.std[ch] === model.info.std[ch],
        );
        if (!same) {
          const std = (ch: number) => model.info.std[ch] ?? 1;
          (teachers.at(-1) as Teacher).renormalize = {
            scale: options.std.map((s, ch) => s / std(ch)),
            shift: options.mean.map((m, ch) => (m - (model.info.mean[ch] ?? 0)) / std(ch)),
          };
        }
      }
    } catch (err) {
      await Promise.all(teachers.map((t) => t.model.release()));
      throw err;
    }
    return new Teachers(teachers, classes);
  }

  /**
   * The teachers' mean softmax(log p / T) (size·classes; softmax(z/T) for any logits z of log p)
   * on a batch of student-normalized images.
   */
  async probabilities(images: Float32Array, size: number, temperature = 1): Promise<Float64Array> {
    const { classes } = this;
    const mean = new Float64Array(size * classes);
    for (const { model, renormalize } of this.teachers) {
      let x = images;
      if (renormalize) {
        if (this.buffer.length < images.length) this.buffer = new Float32Array(images.length);
        x = this.buffer.subarray(0, images.length);
        const channels = renormalize.scale.length;
        const plane = images.length / size / channels;
        for (let i = 0; i < images.length; i++) {
          const ch = Math.floor(i / plane) % channels;
          x[i] =
            (images[i] as number) * (renormalize.scale[ch] as number) +
            (renormalize.shift[ch] as number);
        }
      }
      const logp = await model.predictBatch(x, size);
      const row = new Float64Array(classes);
      for (let r = 0; r < size; r++) {
        const at = r * classes;
        // Shifted by the row's largest, so exp never overflows at small T.
        let max = Number.NEGATIVE_INFINITY;
        for (let c = 0; c < classes; c++) max = Math.max(max, logp[at + c] as number);
        let sum = 0;
        for (let c = 0; c < classes; c++) {
          row[c] = Math.exp(((logp[at + c] as number) - max) / temperature);
          sum += row[c] as number;
        }
        for (let c = 0; c < classes; c++)
          mean[at + c] = (mean[at + c] as number) + (row[c] as number) / sum / this.teachers.length;
      }
    }
    return mean;
  }

  /** Sets `batch.teacher` to the teachers' p̄_T on its images (a buffer reused across batches). */
  async teach(batch: Batch, temperature: number): Promise<void> {
    const p = await this.probabilities(batch.images, batch.size, temperature);
    if (this.taught.length < p.length) this.taught = new Float32Array(p.length);
    const out = this.taught.subarray(0, p.length);
    out.set(p);
    batch.teacher = out;
  }

  async release(): Promise<void> {
    await Promise.all(this.teachers.map((t) => t.model.release()));
  }
}
