// ONNX inference, image decoding and MNIST-style preprocessing: `mnistc/inference`.

export type { GrayImage } from "./image.js";
export { decodeImage, readImage } from "./image.js";
export type { DigitModelInfo } from "./onnx-model.js";
export { DigitModel, defaultModelFile, resolveModelFile } from "./onnx-model.js";
export { preprocessImage } from "./preprocess.js";
