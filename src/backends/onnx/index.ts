// PLACEHOLDER (to be replaced by the onnx backend).
import type { Backend } from "../backend.js";

export const onnxBackend: Backend = {
  name: "onnx",
  description: "not yet implemented",
  output: "file",
  emit() {
    throw new Error("onnx backend: not yet implemented");
  },
};
