// A Triton Inference Server model configuration (`config.pbtxt`, protobuf text format) for an
// ONNX model mnistc wrote: the onnxruntime backend, the graph's input and output with their
// per-example dims (Triton adds the batch axis: the graph's N is dynamic), and dynamic batching,
// so concurrent requests share one onnxruntime run as `mnistc serve`'s batcher does. Pure text.

import { commentText } from "../util/literals.js";

export interface TritonModel {
  /** The model's name: its folder in the repository, and the `/v2/models/<name>` path. */
  name: string;
  /** Where it came from, for the header comment (a spec file name). */
  source: string;
  input: { name: string; dims: number[] };
  output: { name: string; dims: number[] };
  /** Largest batch Triton hands the model (the dynamic batcher merges requests up to it). */
  maxBatchSize: number;
  /** Comment lines describing the model (normalization, parameters). */
  about: string[];
}

/** Triton's own folder and file names: REPO/<name>/config.pbtxt and REPO/<name>/1/model.onnx. */
export const TRITON_CONFIG = "config.pbtxt";
export const TRITON_MODEL_FILE = "model.onnx";
export const TRITON_VERSION = "1";

const tensor = (t: { name: string; dims: number[] }) => [
  "  {",
  `    name: ${JSON.stringify(t.name)}`,
  "    data_type: TYPE_FP32",
  `    dims: [ ${t.dims.join(", ")} ]`,
  "  }",
];

export function tritonConfig(model: TritonModel): string {
  return [
    `# ${commentText(model.name)}: Triton model configuration written by mnistc from ${commentText(model.source)}.`,
    ...model.about.map((line) => `# ${line}`),
    `name: ${JSON.stringify(model.name)}`,
    'platform: "onnxruntime_onnx"',
    `max_batch_size: ${model.maxBatchSize}`,
    "input [",
    ...tensor(model.input),
    "]",
    "output [",
    ...tensor(model.output),
    "]",
    "dynamic_batching {",
    "  max_queue_delay_microseconds: 100",
    "}",
    "",
  ].join("\n");
}
