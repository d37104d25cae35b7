// The training runtime: what the emitted `train.mjs`/`model.mjs` import as `mnistc/runtime`.
// Inference (onnxruntime-node, a native module) is in `mnistc/inference`, so training never loads it.
export type { Checkpoint, NamedArray } from "./checkpoint.js";
export { loadWeightsInto, readCheckpoint } from "./checkpoint.js";
export type { MnistData, MnistSplit } from "./data/mnist.js";
export { loadMnist } from "./data/mnist.js";
export type { Engine, EngineName, Tfjs } from "./engine.js";
export { initEngine } from "./engine.js";
export { TorchUniform, torchInitWeights, torchUniform } from "./init.js";
export { registerWasmKernels } from "./kernels/index.js";
export type { BatchNorm2dConfig } from "./layers/batchnorm2d.js";
export { BatchNorm2d } from "./layers/batchnorm2d.js";
export { Dropout, Dropout2d } from "./layers/dropout.js";
export { LogSoftmax } from "./layers/log-softmax.js";
export type { EpochMetrics, RunMetrics } from "./metrics.js";
export type { BuildModel, TrainSpec } from "./train.js";
export { evaluate, runTraining, trainMain } from "./train.js";
export type { TrainOptions } from "./train-options.js";
export { addTrainOptions } from "./train-options.js";
