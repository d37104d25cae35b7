// The project's kernels for the wasm backend, registered once per process after the backend is
// initialised: the gradients it lacks (conv2d's filter gradient, both depthwise gradients), and
// faster versions of what a training step of the seed's net spends its time in (input gradient,
// bias-gradient sums, max-pool gradient, clones).
import * as tf from "@tensorflow/tfjs";
import { conv2DBackpropFilterWasm } from "./conv2d-backprop-filter.js";
import { conv2DBackpropInputWasm } from "./conv2d-backprop-input.js";
import { depthwiseConv2DBackpropFilterWasm } from "./depthwise-backprop-filter.js";
import { depthwiseConv2DBackpropInputWasm } from "./depthwise-backprop-input.js";
import { identityWasm, makeCastWasm } from "./identity.js";
import { maxPoolGradWasm } from "./max-pool-grad.js";
import { makeSumWasm } from "./sum.js";

const BACKEND = "wasm";

/** Marks kernel functions that are ours, so a second registration is a no-op. */
const OURS = Symbol.for("mnistc.kernel");

type Tagged = tf.KernelFunc & { [OURS]?: true };

function registered(name: string): tf.KernelFunc | undefined {
  // getKernel's type says it always finds one; it returns undefined when none is registered.
  return (tf.getKernel(name, BACKEND) as tf.KernelConfig | undefined)?.kernelFunc;
}

function isOurs(name: string): boolean {
  const func = registered(name) as Tagged | undefined;
  return func?.[OURS] === true;
}

function install(name: string, make: (stock: tf.KernelFunc | undefined) => tf.KernelFunc): void {
  if (isOurs(name)) return;
  const stock = registered(name);
  const func: Tagged = make(stock);
  func[OURS] = true;
  if (stock) tf.unregisterKernel(name, BACKEND);
  tf.registerKernel({ kernelName: name, backendName: BACKEND, kernelFunc: func });
}

/** Register the project's wasm kernels (idempotent). Names of what was installed are returned. */
export function registerWasmKernels(): string[] {
  install(tf.Conv2DBackpropFilter, () => (args) => conv2DBackpropFilterWasm(args));
  install(tf.Conv2DBackpropInput, () => (args) => conv2DBackpropInputWasm(args));
  install(
    tf.DepthwiseConv2dNativeBackpropFilter,
    () => (args) => depthwiseConv2DBackpropFilterWasm(args),
  );
  install(
    tf.DepthwiseConv2dNativeBackpropInput,
    () => (args) => depthwiseConv2DBackpropInputWasm(args),
  );
  install(tf.Sum, (stock) => {
    if (!stock) throw new Error("the wasm backend has no Sum to fall back on");
    return makeSumWasm(stock);
  });
  install(tf.MaxPoolGrad, () => (args) => maxPoolGradWasm(args));
  install(tf.Identity, () => (args) => identityWasm(args));
  install(tf.Cast, (stock) => {
    if (!stock) throw new Error("the wasm backend has no Cast to fall back on");
    return makeCastWasm(stock);
  });
  return [
    tf.Conv2DBackpropFilter,
    tf.Conv2DBackpropInput,
    tf.DepthwiseConv2dNativeBackpropFilter,
    tf.DepthwiseConv2dNativeBackpropInput,
    tf.Sum,
    tf.MaxPoolGrad,
    tf.Identity,
    tf.Cast,
  ];
}
