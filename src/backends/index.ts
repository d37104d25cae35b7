// Backends sit in an explicit list: adding one is one import and one entry here.
import type { Backend } from "./backend.js";
import { onnxBackend } from "./onnx/index.js";
import { onnxTrainBackend } from "./onnx-train/index.js";
import { pytorchBackend } from "./pytorch/index.js";
import { tfjsBackend } from "./tfjs/index.js";

export const BACKENDS: readonly Backend[] = [
  tfjsBackend,
  onnxBackend,
  onnxTrainBackend,
  pytorchBackend,
];

export function findBackend(name: string): Backend | undefined {
  return BACKENDS.find((b) => b.name === name);
}
