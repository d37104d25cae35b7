// The compiled training step of a spec on onnxruntime, as a stepper of the training loop: the
// runtime's stepper given what only the compiler and the backends know (the step graph for a batch
// size, the eval graph, the parameters, PyTorch's seeded initialization, the dropout nodes).
// `mnistc train`, the benchmarks and the tests build it here, once. Nothing here loads tfjs.
import type { ModelIR } from "../compiler/ir.js";
import { randomMaskOf } from "../compiler/ops.js";
import type { StepperFactory } from "../runtime/train/step.js";

/** The compiled step of `ir` on onnxruntime, with what only the compiler and backends know. */
export async function onnxSteps(ir: ModelIR, threads: number | undefined): Promise<StepperFactory> {
  const { onnxStepper } = await import("../runtime/onnx-train/stepper.js");
  const { buildTrainingStep } = await import("../backends/onnx-train/index.js");
  const { onnxBackend } = await import("../backends/onnx/index.js");
  const { torchInitWeights } = await import("../compiler/init.js");
  const { encodeModel } = await import("../formats/onnx-proto.js");
  return onnxStepper({
    stepGraph(batch) {
      const { model, signature } = buildTrainingStep(ir, batch);
      return { bytes: encodeModel(model), signature };
    },
    evalGraph(weights) {
      const file = onnxBackend.emit(ir, { weights }).files[0];
      if (!(file?.contents instanceof Uint8Array)) throw new Error("onnx backend emitted no model");
      return file.contents;
    },
    params: ir.nodes.flatMap((n) =>
      n.params.map((p) => ({ name: p.name, shape: p.shape, trainable: p.trainable })),
    ),
    init: (seed) => torchInitWeights(ir, seed),
    dropouts: ir.nodes.flatMap((n) => randomMaskOf(n) ?? []),
    optimizer: ir.train.optimizer,
    threads,
  });
}
