// Calling the wasm backend's own kernels from inside a kernel of ours. A kernel receives and
// returns `TensorInfo`s (no Tensor objects, no tape), so compositions call the registered kernel
// functions directly and release every intermediate with `dispose`.
import * as tf from "@tensorflow/tfjs";

export type Info = tf.TensorInfo;

export type KernelArgs = Parameters<tf.KernelFunc>[0];

/** The part of the wasm backend's interface that compositions use. */
interface DisposingBackend {
  disposeData(dataId: object, force?: boolean): boolean;
}

export class WasmCalls {
  constructor(readonly backend: tf.KernelBackend) {}

  run(kernel: string, inputs: tf.NamedTensorInfoMap | Info[], attrs: tf.NamedAttrMap = {}): Info {
    // getKernel's type says it always finds one; it returns undefined when none is registered.
    const config = tf.getKernel(kernel, "wasm") as tf.KernelConfig | undefined;
    const func = config?.kernelFunc;
    if (!func) throw new Error(`wasm kernel ${kernel} is not registered`);
    const out = func({ inputs: inputs as tf.NamedTensorInfoMap, attrs, backend: this.backend });
    if (Array.isArray(out)) throw new Error(`wasm kernel ${kernel} returned several tensors`);
    return out;
  }

  dispose(...infos: Info[]): void {
    for (const info of infos)
      (this.backend as unknown as DisposingBackend).disposeData(info.dataId);
  }

  transpose(x: Info, perm: number[]): Info {
    return this.run("Transpose", { x }, { perm });
  }

  /** Free: a new view of the same data. */
  reshape(x: Info, shape: number[]): Info {
    return this.run("Reshape", { x }, { shape });
  }

  reverse(x: Info, dims: number[]): Info {
    return this.run("Reverse", { x }, { dims });
  }

  /** [m, k] · [k, n]; XNNPACK's GEMM, which packs `b` (the "weights") first. */
  matMul(a: Info, b: Info): Info {
    return this.run("BatchMatMul", { a, b }, { transposeA: false, transposeB: false });
  }

  /** Valid average pooling of an NHWC tensor with window = stride = `window`. */
  avgPool(x: Info, window: [number, number]): Info {
    return this.run("AvgPool", { x }, { filterSize: window, strides: window, pad: "valid" });
  }

  /** A float32 tensor of `shape` filled with `value`. */
  fill(shape: number[], value: number): Info {
    return this.run("Fill", {}, { shape, value, dtype: "float32" });
  }

  /** Forward NHWC convolution with explicit padding [[top, bottom], [left, right]]. */
  conv2d(
    x: Info,
    filter: Info,
    strides: [number, number],
    dilations: [number, number],
    pads: [[number, number], [number, number]],
  ): Info {
    return this.run(
      "Conv2D",
      { x, filter },
      { strides, dilations, pad: [[0, 0], pads[0], pads[1], [0, 0]], dataFormat: "NHWC" },
    );
  }
}
