// The largest ONNX file `eval`, `predict`, `serve` and `inspect` read (kept apart from
// onnx-model.ts so that `inspect` does not load onnxruntime-node to learn it). It is the
// compiler's, so that `check` refuses a spec whose model would exceed it (E0303).
export { MAX_MODEL_BYTES } from "../../compiler/limits.js";
/**
 * Classes of a model (its output's width). eval keeps a classes x classes confusion matrix and
 * prints it; 20,000 classes (400 M cells) aborted V8. ImageNet's 1,000 is the most a small vision
 * net here would answer.
 */
export const MAX_CLASSES = 1000;
