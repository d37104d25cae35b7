// `mnistc export SPEC --weights CHECKPOINT -o FILE`: a trained checkpoint as an ONNX model.
import { exportCheckpointToOnnx } from "./export-onnx.js";
import { loadSpec } from "./spec.js";

export interface ExportOptions {
  weights: string;
  out: string;
}

export async function exportModel(spec: string, opts: ExportOptions): Promise<number> {
  const ir = await loadSpec(spec);
  if (!ir) return 1;
  const { file, bytes } = exportCheckpointToOnnx(ir, opts.weights, opts.out);
  process.stderr.write(
    `wrote ${file} (${bytes} bytes; spec ${ir.name}, ${ir.totals.trainable} trainable parameters, weights from ${opts.weights})\n`,
  );
  return 0;
}
