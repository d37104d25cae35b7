// The largest ONNX file `eval`, `predict`, `serve` and `inspect` read (kept apart from
// onnx-model.ts so that `inspect` does not load onnxruntime-node to learn it).
/** Ours are about 100 KB; ONNX keeps big weights in external files, which mnistc never reads. */
export const MAX_MODEL_BYTES = 512 * 1024 * 1024;
