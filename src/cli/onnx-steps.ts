// The compiled training step of a spec on onnxruntime, as a stepper of the training loop: the
// runtime's stepper given what only the compiler and the backends know (the step graph for a batch
// size, the eval graph, where each parameter lives in the tfjs model). `mnistc train`, the
// benchmarks and the tests build it here, once.
import type { ModelIR } from "../compiler/ir.js";
import type { StepperFactory } from "../runtime/train/loop.js";

/** The compiled step of `ir` on onnxruntime, with what only the compiler and backends know. */
export async function onnxSteps(ir: ModelIR, threads: number | undefined): Promise<StepperFactory> {
  const { onnxStepper } = await import("../runtime/onnx-train/stepper.js");
  const { buildTrainingStep } = await import("../backends/onnx-train/index.js");
  const { onnxBackend } = await import("../backends/onnx/index.js");
  const { tfjsParams } = await import("../backends/tfjs/weights.js");
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
    placements: tfjsParams(ir).map((p) => ({
      name: p.param.name,
      tfjsName: p.tfjsName,
      shape: p.param.shape,
      layout: p.layout,
    })),
    optimizer: ir.train.optimizer,
    threads,
  });
}
