// The IR every backend is emitted from. Produced by `lower` and completed by the passes in
// `shapes`, `params` (and MACs / receptive field); consumers only ever see a complete `ModelIR`.

import type { DatasetName, PreprocessProfile } from "./datasets.js";

/** The op kinds a spec can use. Adding one here makes `tsc` fail in every backend table. */
export const OP_KINDS = [
  "conv",
  "relu",
  "relu6",
  "leaky_relu",
  "sigmoid",
  "tanh",
  "silu",
  "gelu",
  "hardswish",
  "batchnorm",
  "maxpool",
  "avgpool",
  "gap",
  "dropout",
  "flatten",
  "linear",
  "log_softmax",
  "add",
  "mul",
  "concat",
] as const;
export type OpKind = (typeof OP_KINDS)[number];

export type Pair = [number, number];

/** Zero padding per side in ONNX's order: [top, left, bottom, right]. */
export type Pads = [number, number, number, number];

/** Attributes after defaults are applied, per op kind (PyTorch semantics, see shared/design.md). */
export interface OpAttrs {
  conv: {
    out: number;
    kernel: Pair;
    stride: Pair;
    /** Resolved per side; `padding: same` is PyTorch's split (the odd pixel at bottom/right). */
    padding: Pads;
    /** Written as `padding: same` (PyTorch's `padding="same"`), kept for emitters and tables. */
    same: boolean;
    dilation: Pair;
    groups: number;
    bias: boolean;
  };
  relu: Record<string, never>;
  /** min(max(x, 0), 6). */
  relu6: Record<string, never>;
  /** x for x > 0, else negative_slope·x. */
  leaky_relu: { negativeSlope: number };
  sigmoid: Record<string, never>;
  tanh: Record<string, never>;
  /** x·sigmoid(x) (swish). */
  silu: Record<string, never>;
  /** x·Φ(x), Φ the normal CDF by erf: PyTorch's default (exact), not the tanh approximation. */
  gelu: Record<string, never>;
  /** x·relu6(x + 3)/6 (MobileNetV3). */
  hardswish: Record<string, never>;
  batchnorm: { eps: number; momentum: number };
  /** Floor mode; padding is -inf for max (PyTorch), zeros counted in the average (count_include_pad). */
  maxpool: { kernel: Pair; stride: Pair; padding: Pair };
  avgpool: { kernel: Pair; stride: Pair; padding: Pair };
  /** AdaptiveAvgPool2d(1): output [C, 1, 1], so a `flatten` follows before `linear`/the head. */
  gap: Record<string, never>;
  dropout: { p: number };
  flatten: Record<string, never>;
  linear: { out: number; bias: boolean };
  log_softmax: Record<string, never>;
  /** `x + y`: the block's output plus the output of the earlier block `from` (a residual). */
  add: { from: string };
  /** `x * y`, broadcasting: the block's output times block `from`'s (a squeeze-excitation gate). */
  mul: { from: string };
  /** `torch.cat([y, x], dim=1)`: block `from`'s channels, then the block's own (DenseNet's order). */
  concat: { from: string };
}

/** A shape without the batch axis: [C, H, W] for images, [F] for vectors (PyTorch order). */
export type Shape = number[];

/** A location in a spec file; lines and columns are 1-based. */
export interface Span {
  file: string;
  line: number;
  col: number;
  endLine: number;
  endCol: number;
}

/** PyTorch's default initialization of one parameter (see init.ts). */
export type InitIR =
  /** U(−1/√fan_in, 1/√fan_in): kaiming_uniform_(a=√5) for weights, the same bound for biases. */
  { type: "uniform"; fanIn: number } | { type: "fill"; value: number };

export interface ParamIR {
  /** Full PyTorch state_dict name, e.g. `conv1.0.weight`, `conv1.2.running_mean`. */
  name: string;
  /** `weight`, `bias`, `running_mean`, `running_var`. */
  role: "weight" | "bias" | "running_mean" | "running_var";
  /** PyTorch layout (conv weight OIHW, linear weight [out, in]). */
  shape: number[];
  /** Trainable parameters and buffers are counted apart (PyTorch counts only the former). */
  trainable: boolean;
  init: InitIR;
}

export interface ReceptiveField {
  /** Receptive field size in input pixels after this layer. */
  size: number;
  /** Distance in input pixels between two adjacent outputs ("jump"). */
  jump: number;
}

/** The graph input's name, as a node input. */
export const GRAPH_INPUT = "input";

export interface NodeIR<K extends OpKind = OpKind> {
  /** PyTorch module name: `conv1.0` inside block `conv1`, or the top-level index (`7`). */
  name: string;
  kind: K;
  attrs: OpAttrs[K];
  /** The named block this layer sits in, if any. */
  block: string | undefined;
  span: Span;
  /** Names of the nodes this one reads (`GRAPH_INPUT` for the model input), in operand order. */
  inputs: string[];
  /** Shapes of `inputs`, in the same order. */
  inShapes: Shape[];
  /** The first input's shape: what single-input ops read. */
  inShape: Shape;
  outShape: Shape;
  params: ParamIR[];
  macs: number;
  rf: ReceptiveField;
}

/** Any node, narrowed by `kind`. */
export type AnyNodeIR = { [K in OpKind]: NodeIR<K> }[OpKind];

export interface InputIR {
  channels: number;
  height: number;
  width: number;
}

export type OptimizerIR =
  | { type: "sgd"; lr: number; momentum: number; weightDecay: number; nesterov: boolean }
  | {
      type: "adam";
      lr: number;
      betas: Pair;
      eps: number;
      weightDecay: number;
    };

export type SchedulerIR =
  | { type: "none" }
  /** torch.optim.lr_scheduler.StepLR, stepped once per epoch. */
  | { type: "step"; stepSize: number; gamma: number }
  /** torch.optim.lr_scheduler.OneCycleLR, stepped once per batch. */
  | {
      type: "onecycle";
      maxLr: number;
      pctStart: number;
      anneal: "cos" | "linear";
      divFactor: number;
      finalDivFactor: number;
    };

export interface AugmentIR {
  /** Random rotation within ±degrees (0: off), zero fill, as torchvision RandomRotation. */
  rotate: number;
  /** Random shift within ±translate·size per axis, whole pixels (0: off), as RandomAffine. */
  translate: number;
  /** Random scale drawn in [lo, hi] ([1, 1]: off), as RandomAffine. */
  scale: [number, number];
  /** RandomHorizontalFlip(0.5). Absent in programs emitted before it existed. */
  hflip?: boolean;
  /** RandomCrop(size, padding=crop) with zero padding (0: off). */
  crop?: number;
}

export interface TrainIR {
  epochs: number;
  batchSize: number;
  seed: number;
  optimizer: OptimizerIR;
  scheduler: SchedulerIR;
  augment: AugmentIR;
  /**
   * PyTorch's CrossEntropyLoss(label_smoothing=ε): the training target is (1-ε)·one-hot + ε/K.
   * 0: plain NLL. Evaluation always scores the plain NLL.
   */
  labelSmoothing: number;
  /**
   * An exponential moving average of the weights (absent: none), as PyTorch's
   * `AveragedModel(model, avg_fn=lambda a, w, n: decay * a + (1 - decay) * w, use_buffers=True)`
   * updated after every optimizer step: the first update copies the model, each later one averages
   * parameters and buffers (batch norm's running statistics too). Evaluation, the exported model
   * and `ema.safetensors` of a checkpoint are the averaged weights.
   */
  ema?: { decay: number };
  /** Knowledge distillation from trained models; absent: train on the targets alone. */
  distill?: DistillIR;
}

/**
 * Hinton et al.'s distillation: the loss is (1-weight)·NLL(log p, target) +
 * weight·T²·KL(p̄_T ‖ softmax(log p / T)), p̄_T the teachers' mean softmax(z/T) on the same
 * (augmented) batch in inference mode: PyTorch's (1-w)·CrossEntropyLoss + w·T²·KLDivLoss(
 * log_softmax(z/T), p̄_T, reduction="batchmean"). At T = 1 its gradient is that of the NLL on the
 * target (1-w)·target + w·p̄.
 */
export interface DistillIR {
  /**
   * ONNX files. The spec writes them relative to its own folder; here they are joined to it, so
   * they open from where the spec's path was given (the spec's path is `specs/a.yaml`, the
   * teacher `../models/t.onnx`: `models/t.onnx`).
   */
  teachers: string[];
  weight: number;
  temperature: number;
  /** Where the spec says `distill:`, for backends that cannot distill (not in emitted programs). */
  span?: Span;
}

export interface DataIR {
  /** A name of the dataset table (`compiler/datasets.ts`). */
  dataset: DatasetName;
  /**
   * The dataset's folder, joined to the spec's folder as teachers are (absent: the table's
   * default; `--data` overrides both).
   */
  path?: string;
  /**
   * Per-channel normalization, x' = (x/255 - mean) / std: the spec's, else the dataset's default;
   * absent when neither gives one (computed from the training split at load, then recorded).
   */
  mean?: number[];
  std?: number[];
  /** How predict and serve prepare a picture: the spec's, else the dataset's. */
  preprocess: PreprocessProfile;
  /**
   * One name per class: the table's when the dataset fixes them, else what a training run read
   * from the files (a folder's class folders), absent before.
   */
  classNames?: string[];
}

export interface TotalsIR {
  trainable: number;
  buffers: number;
  macs: number;
}

export interface ModelIR {
  /** The spec's `name`, else its file name without extension. */
  name: string;
  file: string;
  input: InputIR;
  classes: number;
  budget: number | undefined;
  /**
   * The graph: a DAG in topological order (every input names an earlier node or GRAPH_INPUT), with
   * one input and one output, the last node.
   */
  nodes: AnyNodeIR[];
  totals: TotalsIR;
  train: TrainIR;
  data: DataIR;
}

/** Weights in PyTorch layout keyed by `ParamIR.name`: what checkpoints convert to and ONNX embeds. */
export type WeightMap = Map<string, { shape: number[]; data: Float32Array }>;
