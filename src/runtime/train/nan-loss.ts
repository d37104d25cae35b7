// What a non-finite training loss most likely comes from, read from the batch that produced it:
// images that normalization blew up (data.mean/data.std), teachers whose probabilities are not
// finite, or else the step itself diverging (the learning rate). Blaming the learning rate for a
// std of 1e-6 sends the user after the wrong knob.
import type { Batch, Normalization } from "../data/batches.js";

/**
 * Normalized pixels of a sane normalization stay within a few units (MNIST: -0.42 to 2.8); past
 * this, mean/std are the likely cause.
 */
export const SUSPECT_INPUT = 100;

function largest(values: Float32Array): number {
  let max = 0;
  for (let i = 0; i < values.length; i++) {
    const v = Math.abs(values[i] as number);
    if (!(v <= max)) max = v; // NaN wins too
  }
  return max;
}

const list = (xs: readonly number[]) => `[${xs.map((x) => Number(x.toPrecision(4))).join(", ")}]`;

/** The error message for loss `loss` at `where` (`epoch 1, batch 5`). */
export function nanLossMessage(
  where: string,
  loss: number,
  batch: Batch,
  norm: Normalization,
  teachers: readonly string[] | undefined,
): string {
  const head = `${where}: the loss is ${loss}`;
  const norms = `data.mean ${list(norm.mean)}, data.std ${list(norm.std)}`;
  const input = largest(batch.images);
  if (!Number.isFinite(input)) {
    return `${head}: the normalized images hold non-finite values (${norms}); fix data.mean and data.std (the mean and spread of x/255, e.g. 0.1307 and 0.3081 for MNIST)`;
  }
  if (input > SUSPECT_INPUT) {
    return `${head}: normalization makes pixels as large as ${Number(input.toPrecision(3))} (${norms}); check data.mean and data.std (the mean and spread of x/255, e.g. 0.1307 and 0.3081 for MNIST)`;
  }
  if (batch.teacher && !batch.teacher.every(Number.isFinite)) {
    return `${head}: the teachers' probabilities are not finite (a teacher answered an infinity); check the teachers: ${(teachers ?? []).join(", ")}`;
  }
  return `${head}; lower the learning rate (--lr)`;
}
