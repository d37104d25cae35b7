// PyTorch's nn.Conv2d where tfjs's conv2d layer cannot say it: grouped (depthwise when groups equal
// the input channels), dilated, or padded unevenly. The kernel is stored as tfjs's conv2d stores
// one, HWIO [kh, kw, in/groups, out], which is PyTorch's OIHW [out, in/groups, kh, kw] transposed,
// so weights map to PyTorch the same way as for a plain conv.
//
// tfjs computes no gradient for a dilated conv (its Conv2D and DepthwiseConv2dNative gradients
// assert dilation 1), so a dilated kernel is spread out with zeros between its taps (pad and
// reshape, both differentiable) and run undilated: exactly PyTorch's sum, at the cost of the zero
// taps' multiplies. Depthwise runs tfjs's depthwise conv (its wasm backprop kernels are ours);
// other groups split the channels, convolve each group and concatenate.
import * as tf from "@tensorflow/tfjs";

type Pair = [number, number];
/** What `addWeight` takes as an initializer (tfjs does not export the class). */
type Initializer = ReturnType<typeof tf.initializers.zeros>;

export interface Conv2dConfig {
  name: string;
  filters: number;
  kernelSize: Pair;
  strides: Pair;
  /** Zero padding [[top, bottom], [left, right]], as tf.layers.zeroPadding2d takes it. */
  padding: [Pair, Pair];
  dilation: Pair;
  groups: number;
  useBias?: boolean;
  kernelInitializer?: Initializer;
  biasInitializer?: Initializer;
}

/** Zeros between a kernel's taps: [kh, kw, i, o] -> [(kh-1)·dh+1, (kw-1)·dw+1, i, o]. */
export function dilateKernel(kernel: tf.Tensor4D, [dh, dw]: Pair): tf.Tensor4D {
  if (dh === 1 && dw === 1) return kernel;
  const [kh = 1, kw = 1, i = 1, o = 1] = kernel.shape;
  const rows = (kh - 1) * dh + 1;
  const cols = (kw - 1) * dw + 1;
  return tf.tidy(() => {
    const byRow = tf
      .pad(kernel.reshape([kh, 1, kw * i * o]), [
        [0, 0],
        [0, dh - 1],
        [0, 0],
      ])
      .reshape([kh * dh, kw * i * o])
      .slice([0, 0], [rows, kw * i * o]);
    return tf
      .pad(byRow.reshape([rows, kw, 1, i * o]), [
        [0, 0],
        [0, 0],
        [0, dw - 1],
        [0, 0],
      ])
      .reshape([rows, kw * dw, i * o])
      .slice([0, 0, 0], [rows, cols, i * o])
      .reshape([rows, cols, i, o]);
  });
}

export class Conv2d extends tf.layers.Layer {
  static className = "Conv2d";

  readonly filters: number;
  readonly kernelSize: Pair;
  readonly strides: Pair;
  readonly padding: [Pair, Pair];
  readonly dilation: Pair;
  readonly groups: number;
  readonly useBias: boolean;
  private readonly kernelInit: Initializer | undefined;
  private readonly biasInit: Initializer | undefined;
  private kernel?: tf.LayerVariable;
  private bias?: tf.LayerVariable;

  constructor(config: Conv2dConfig) {
    super({ name: config.name });
    this.filters = config.filters;
    this.kernelSize = config.kernelSize;
    this.strides = config.strides;
    this.padding = config.padding;
    this.dilation = config.dilation;
    this.groups = config.groups;
    this.useBias = config.useBias ?? true;
    this.kernelInit = config.kernelInitializer;
    this.biasInit = config.biasInitializer;
  }

  private channelsIn(inputShape: tf.Shape | tf.Shape[]): number {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const channels = shape[3];
    if (typeof channels !== "number" || channels % this.groups !== 0) {
      throw new Error(`Conv2d ${this.name}: ${channels} input channels for ${this.groups} groups`);
    }
    return channels;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const perGroup = this.channelsIn(inputShape) / this.groups;
    this.kernel = this.addWeight(
      "kernel",
      [...this.kernelSize, perGroup, this.filters],
      "float32",
      this.kernelInit ?? tf.initializers.glorotUniform({}),
    );
    if (this.useBias) {
      this.bias = this.addWeight(
        "bias",
        [this.filters],
        "float32",
        this.biasInit ?? tf.initializers.zeros(),
      );
    }
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const [batch = null, h = 0, w = 0] = (
      Array.isArray(inputShape[0]) ? inputShape[0] : inputShape
    ) as (number | null)[];
    const [[top, bottom], [left, right]] = this.padding;
    const out = (n: number, k: number, d: number, s: number, before: number, after: number) =>
      Math.floor((n + before + after - ((k - 1) * d + 1)) / s) + 1;
    return [
      batch,
      out(h ?? 0, this.kernelSize[0], this.dilation[0], this.strides[0], top, bottom),
      out(w ?? 0, this.kernelSize[1], this.dilation[1], this.strides[1], left, right),
      this.filters,
    ];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      let x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      const [[top, bottom], [left, right]] = this.padding;
      if (top + bottom + left + right > 0) {
        x = tf.pad(x, [
          [0, 0],
          [top, bottom],
          [left, right],
          [0, 0],
        ]);
      }
      const kernel = dilateKernel(
        (this.kernel as tf.LayerVariable).read() as tf.Tensor4D,
        this.dilation,
      );
      const channels = x.shape[3];
      let y: tf.Tensor4D;
      if (this.groups === 1) {
        y = tf.conv2d(x, kernel, this.strides, "valid") as tf.Tensor4D;
      } else if (this.groups === channels) {
        // [kh, kw, 1, out] holds the same values as depthwise's [kh, kw, in, out/in].
        const [kh = 1, kw = 1] = kernel.shape;
        const depthwise = kernel.reshape([
          kh,
          kw,
          channels,
          this.filters / channels,
        ]) as tf.Tensor4D;
        y = tf.depthwiseConv2d(x, depthwise, this.strides, "valid") as tf.Tensor4D;
      } else {
        const xs = tf.split(x, this.groups, 3);
        const ks = tf.split(kernel, this.groups, 3);
        const parts = xs.map((part, g) =>
          tf.conv2d(part as tf.Tensor4D, ks[g] as tf.Tensor4D, this.strides, "valid"),
        );
        y = tf.concat(parts, 3) as tf.Tensor4D;
      }
      return this.bias ? tf.add(y, this.bias.read()) : y;
    });
  }

  // Initializers are not kept: a model loaded from model.json gets its weights from weights.bin.
  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      filters: this.filters,
      kernelSize: this.kernelSize,
      strides: this.strides,
      padding: this.padding,
      dilation: this.dilation,
      groups: this.groups,
      useBias: this.useBias,
    };
  }
}
tf.serialization.registerClass(Conv2d, "mnistc");
