// The training runtime: what the emitted `train.mjs`/`model.mjs` import as `mnistc/runtime`.
// Inference (onnxruntime-node, a native module) is in `mnistc/inference`, so training never loads it.

export { loadMnist } from "./data/mnist.js";
export type { ImageSplit, LoadedData } from "./data/split.js";
export type { Engine, EngineName, Tfjs } from "./tfjs/engine.js";
export { initEngine } from "./tfjs/engine.js";
export { TorchUniform, torchInitWeights, torchUniform } from "./tfjs/init.js";
export { registerWasmKernels } from "./tfjs/kernels/index.js";
export type { BatchNorm2dConfig } from "./tfjs/layers/batchnorm2d.js";
export { BatchNorm2d } from "./tfjs/layers/batchnorm2d.js";
export type { ConstantPad2dConfig } from "./tfjs/layers/constant-pad2d.js";
export { ConstantPad2d } from "./tfjs/layers/constant-pad2d.js";
export type { Conv2dConfig } from "./tfjs/layers/conv2d.js";
export { Conv2d } from "./tfjs/layers/conv2d.js";
export { Dropout, Dropout2d } from "./tfjs/layers/dropout.js";
export type { ElementwiseConfig } from "./tfjs/layers/elementwise.js";
export { Elementwise } from "./tfjs/layers/elementwise.js";
export { LogSoftmax } from "./tfjs/layers/log-softmax.js";
export {
  evaluate,
  loadTorchWeightsInto,
  loadWeightsInto,
  tfjsTrainer,
} from "./tfjs/trainer.js";
export type { Checkpoint, NamedArray } from "./train/checkpoint.js";
export { readCheckpoint, readTfjsCheckpoint, writeCheckpoint } from "./train/checkpoint.js";
export type { BuildModel, TrainSpec } from "./train/loop.js";
export { runTraining, trainMain } from "./train/loop.js";
export type { EpochMetrics, RunMetrics } from "./train/metrics.js";
export type { TrainOptions } from "./train/options.js";
export { addTrainOptions } from "./train/options.js";
export type { ModelState, TrainingState } from "./train/state.js";
export type { Stepper, StepperFactory } from "./train/step.js";
