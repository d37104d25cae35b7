// Identity and same-dtype Cast for the wasm backend without a copy. tfjs clones every tensor a
// gradient needs later (the tape keeps a clone), and the wasm Identity copies the data: three
// 44 MB copies per step for the seed's first layer. Tensors are immutable, so a clone can share
// the data, as the cpu backend's Identity does: count one more reference instead.
import type * as tf from "@tensorflow/tfjs";
import type { Info, KernelArgs } from "./wasm-calls.js";

interface RefCountingBackend {
  incRef(dataId: object): void;
}

export function identityWasm(args: KernelArgs): Info {
  const { x } = args.inputs as { x: Info };
  (args.backend as unknown as RefCountingBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}

/** Cast to the dtype the tensor already has is an identity (tfjs's relu gradient does one). */
export function makeCastWasm(stock: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { x } = args.inputs as { x: Info };
    const { dtype } = args.attrs as unknown as tf.CastAttrs;
    return dtype === x.dtype ? identityWasm(args) : stock(args);
  };
}
