// What every dataset loader gives: splits of 8-bit images in NCHW order (channel planes one after
// another per image, as torchvision's ToTensor lays them out) and their labels, kept as bytes
// (4x less memory than floats; normalization happens per batch).

/** One split: `count` images of channels×rows×cols bytes and their labels. */
export interface ImageSplit {
  count: number;
  channels: number;
  rows: number;
  cols: number;
  images: Uint8Array;
  labels: Uint8Array;
}

/** A loaded dataset. */
export interface LoadedData {
  /** Where the files came from (shown in logs and metrics). */
  dir: string;
  train: ImageSplit;
  test: ImageSplit;
  /** A validation split held out of the training images (`train --val`), when there is one. */
  val?: ImageSplit;
  /** One name per class, in label order. */
  classNames: string[];
  /** How the test split was made, when it is not the dataset's own (a folder's hold-out). */
  testNote?: string;
}

/** Bytes of one image of the split. */
export function imageBytes(split: Pick<ImageSplit, "channels" | "rows" | "cols">): number {
  return split.channels * split.rows * split.cols;
}

/** Examples `from .. to` of a split, sharing its bytes. */
export function sliceSplit(split: ImageSplit, from: number, to: number): ImageSplit {
  const size = imageBytes(split);
  return {
    ...split,
    count: to - from,
    images: split.images.subarray(from * size, to * size),
    labels: split.labels.subarray(from, to),
  };
}

export function emptySplit(channels: number, rows: number, cols: number): ImageSplit {
  return { count: 0, channels, rows, cols, images: new Uint8Array(0), labels: new Uint8Array(0) };
}

/**
 * Per-channel mean and standard deviation of a split's pixels scaled to [0, 1] (what
 * `transforms.Normalize` wants), over every pixel of every image, in float64.
 */
export function channelStats(split: ImageSplit): { mean: number[]; std: number[] } {
  const plane = split.rows * split.cols;
  const size = split.channels * plane;
  const mean: number[] = [];
  const std: number[] = [];
  for (let c = 0; c < split.channels; c++) {
    // A histogram per channel: exact sums whatever the count, one pass over the bytes.
    const histogram = new Float64Array(256);
    for (let i = 0; i < split.count; i++) {
      const start = i * size + c * plane;
      for (let p = start; p < start + plane; p++) {
        const v = split.images[p] as number;
        histogram[v] = (histogram[v] as number) + 1;
      }
    }
    let n = 0;
    let sum = 0;
    for (let v = 0; v < 256; v++) {
      n += histogram[v] as number;
      sum += (histogram[v] as number) * v;
    }
    const m = n > 0 ? sum / n : 0;
    let sq = 0;
    for (let v = 0; v < 256; v++) sq += (histogram[v] as number) * (v - m) ** 2;
    mean.push(round(m / 255));
    // Population standard deviation; a flat channel gets 1 so normalizing never divides by 0.
    const s = n > 0 ? Math.sqrt(sq / n) / 255 : 0;
    std.push(s > 0 ? round(s) : 1);
  }
  return { mean, std };
}

const round = (v: number): number => Number(v.toFixed(4));

/** Images per class of a split. */
export function classCounts(split: ImageSplit, classes: number): number[] {
  const counts = new Array<number>(classes).fill(0);
  for (const label of split.labels) counts[label] = (counts[label] ?? 0) + 1;
  return counts;
}
