// `mnistc export SPEC --weights WEIGHTS -o OUT [--format onnx|triton|safetensors]`: trained
// weights (a checkpoint directory or a safetensors file) as an ONNX model, as a Triton model
// repository (OUT/<name>/config.pbtxt + OUT/<name>/1/model.onnx), or as a safetensors file with
// mnistc's names (what the PyTorch backend's model.py loads).
import { basename, join } from "node:path";
import { ONNX_INPUT_NAME, ONNX_OUTPUT_NAME } from "../backends/onnx/index.js";
import { safetensorsFromWeights } from "../backends/pytorch/weights.js";
import type { ModelIR } from "../compiler/ir.js";
import { UserError } from "../errors.js";
import {
  TRITON_CONFIG,
  TRITON_MODEL_FILE,
  TRITON_VERSION,
  tritonConfig,
} from "../formats/triton.js";
import { checkNotAnInput } from "../util/files.js";
import { exportCheckpointToOnnx, onnxBytes, withRunDataset, writeOutput } from "./export-onnx.js";
import { loadSpec } from "./spec.js";
import { loadWeights } from "./weights.js";

export const EXPORT_FORMATS = ["onnx", "triton", "safetensors"] as const;

export interface ExportOptions {
  weights: string;
  out: string;
  format?: string;
}

/** The largest batch Triton merges requests into: `mnistc serve`'s batcher's. */
export const TRITON_MAX_BATCH = 64;

function exportTriton(ir: ModelIR, weights: string, repo: string): string[] {
  if (ir.name === "." || ir.name === "..") {
    throw new UserError(`spec name "${ir.name}" cannot be a Triton model folder; rename the spec`);
  }
  const trained = withRunDataset(ir, weights);
  const bytes = onnxBytes(trained, loadWeights(weights, trained), weights);
  const { channels, height, width } = ir.input;
  const config = tritonConfig({
    name: ir.name,
    source: basename(ir.file),
    input: { name: ONNX_INPUT_NAME, dims: [channels, height, width] },
    output: { name: ONNX_OUTPUT_NAME, dims: [ir.classes] },
    maxBatchSize: TRITON_MAX_BATCH,
    about: [
      `input: float32 images normalized as (x / 255 - mean) / std, mean ${JSON.stringify(ir.data.mean)}, std ${JSON.stringify(ir.data.std)};`,
      `output: log-probabilities of the ${ir.classes} classes. ${ir.totals.trainable} trainable parameters.`,
    ],
  });
  const folder = join(repo, ir.name);
  const model = join(folder, TRITON_VERSION, TRITON_MODEL_FILE);
  // Both checked before either is written: no half-written repository over an input.
  for (const file of [model, join(folder, TRITON_CONFIG)]) checkNotAnInput(file);
  writeOutput(model, bytes);
  writeOutput(join(folder, TRITON_CONFIG), config);
  return [join(folder, TRITON_CONFIG), model];
}

export async function exportModel(spec: string, opts: ExportOptions): Promise<number> {
  const format = opts.format ?? "onnx";
  if (!(EXPORT_FORMATS as readonly string[]).includes(format)) {
    throw new UserError(`unknown format "${format}" (known formats: ${EXPORT_FORMATS.join(", ")})`);
  }
  const ir = await loadSpec(spec);
  if (!ir) return 1;
  const about = `spec ${ir.name}, ${ir.totals.trainable} trainable parameters, weights from ${opts.weights}`;
  if (format === "triton") {
    const written = exportTriton(ir, opts.weights, opts.out);
    process.stderr.write(
      `wrote Triton model repository ${opts.out}: ${written.join(", ")} (${about})\n`,
    );
    return 0;
  }
  if (format === "safetensors") {
    const bytes = safetensorsFromWeights(ir, loadWeights(opts.weights, ir));
    writeOutput(opts.out, bytes);
    process.stderr.write(`wrote ${opts.out} (${bytes.length} bytes; ${about})\n`);
    return 0;
  }
  const { file, bytes } = exportCheckpointToOnnx(ir, opts.weights, opts.out);
  process.stderr.write(`wrote ${file} (${bytes} bytes; ${about})\n`);
  return 0;
}
