// Knowledge distillation's teachers (`train.distill`): trained ONNX classifiers run in inference
// mode on each training batch, after augmentation, so teacher and student see the same images.
// Their mean probabilities p̄ are mixed into the batch's targets, (1-w)·target + w·p̄: at
// temperature 1 the step's NLL on that target has the gradient of PyTorch's
// (1-w)·CrossEntropyLoss(log p, y) + w·KLDivLoss(log p, p̄, reduction="batchmean").
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
  /** The student's normalization of the batch images (one channel). */
  mean: number;
  std: number;
  /** onnxruntime's threads per teacher (default: ORT's choice). */
  threads?: number;
}

interface Teacher {
  model: DigitModel;
  /** Student-normalized x to this teacher's normalization: x·scale + shift (identity: undefined). */
  renormalize?: { scale: number; shift: number };
}

export class Teachers {
  private buffer = new Float32Array(0);

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
        const mean = model.info.mean[0] ?? 0;
        const std = model.info.std[0] ?? 1;
        if (mean !== options.mean || std !== options.std) {
          (teachers.at(-1) as Teacher).renormalize = {
            scale: options.std / std,
            shift: (options.mean - mean) / std,
          };
        }
      }
    } catch (err) {
      await Promise.all(teachers.map((t) => t.model.release()));
      throw err;
    }
    return new Teachers(teachers, classes);
  }

  /** The teachers' mean probabilities (size·classes) on a batch of student-normalized images. */
  async probabilities(images: Float32Array, size: number): Promise<Float64Array> {
    const mean = new Float64Array(size * this.classes);
    for (const { model, renormalize } of this.teachers) {
      let x = images;
      if (renormalize) {
        if (this.buffer.length < images.length) this.buffer = new Float32Array(images.length);
        x = this.buffer.subarray(0, images.length);
        for (let i = 0; i < images.length; i++)
          x[i] = (images[i] as number) * renormalize.scale + renormalize.shift;
      }
      const logp = await model.predictBatch(x, size);
      for (let i = 0; i < mean.length; i++)
        mean[i] = (mean[i] as number) + Math.exp(logp[i] as number);
    }
    // Per row, so each sums to 1 whatever the teachers' own rounding.
    for (let row = 0; row < size; row++) {
      let sum = 0;
      for (let c = 0; c < this.classes; c++) sum += mean[row * this.classes + c] as number;
      for (let c = 0; c < this.classes; c++) {
        const i = row * this.classes + c;
        mean[i] = (mean[i] as number) / sum;
      }
    }
    return mean;
  }

  /** Replaces the batch's targets by (1-weight)·targets + weight·p̄, in place. */
  async mixInto(batch: Batch, weight: number): Promise<void> {
    const p = await this.probabilities(batch.images, batch.size);
    const { targets } = batch;
    for (let i = 0; i < targets.length; i++)
      targets[i] = (1 - weight) * (targets[i] as number) + weight * (p[i] as number);
  }

  async release(): Promise<void> {
    await Promise.all(this.teachers.map((t) => t.model.release()));
  }
}
