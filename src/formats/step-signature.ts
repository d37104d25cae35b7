// The signature of a compiled training step (backends/onnx-train writes it beside step.onnx; the
// runtime's onnx-train stepper drives the graph by it): which inputs are images, targets, scalar
// hyper-parameters and dropout masks, and which state tensors go round from output to input.

export interface StepStateEntry {
  /** Input name: a parameter's, a buffer's, or `<parameter>.<slot>`. */
  name: string;
  /** Output name of its value after the step. */
  next: string;
  shape: number[];
  kind: "param" | "buffer" | "slot";
  /** The parameter a slot belongs to. */
  of?: string;
  slot?: string;
}

export interface StepSignature {
  spec: string;
  batch: number;
  opset: number;
  /** Images NCHW and one-hot targets. */
  x: { name: "x"; shape: number[] };
  target: { name: "target"; shape: number[] };
  /** A distilling step's: the teachers' mean tempered probabilities, [B, classes]. */
  teacher?: { name: "teacher"; shape: number[] };
  /** Scalar inputs: lr always; momentum for SGD with momentum and Adam; Adam's step_size, bc2_sqrt. */
  scalars: string[];
  masks: { name: string; node: string; shape: number[]; p: number }[];
  state: StepStateEntry[];
  /** Scalar outputs. */
  loss: "loss";
  correct: "correct";
}
