// The PyTorch spelling of each op kind: the torch.nn module that holds it (what goes into a block's
// nn.Sequential, so its index is the node's), the functional form forward() writes for a
// parameterless layer outside any block (the seed's `F.relu(...)`), and the state_dict entries
// PyTorch keeps beside mnistc's parameters. Keyed by `OpKind` through `OpTable`, so a new op kind
// fails `tsc` here. How modules and calls are arranged into model.py is index.ts's.
import type { NodeIR, Pads, Pair } from "../../compiler/ir.js";
import { pyStr } from "../../util/literals.js";
import type { OpTable } from "../backend.js";

export interface TorchCode {
  /** The module, e.g. `nn.Conv2d(1, 128, kernel_size=3)`; absent for what only forward() does. */
  module?: string;
  /**
   * The functional form on the node's inputs (Python expressions, in operand order), e.g.
   * `F.relu(x)`; absent for layers with parameters, which must be modules to carry their names.
   */
  call?: (inputs: string[]) => string;
  /** state_dict entries PyTorch adds that are no parameter of mnistc's (`num_batches_tracked`). */
  untracked: string[];
}

/** No context is needed: every op's code follows from its node alone. */
export type TorchContext = Record<string, never>;

/** A Python literal: numbers as JS writes them (valid Python), strings double-quoted. */
export function py(value: number | string | boolean): string {
  if (typeof value === "boolean") return value ? "True" : "False";
  return typeof value === "number" ? String(value) : pyStr(value);
}

/** An int, or an `(h, w)` tuple when the two differ, as PyTorch's size arguments take them. */
const size = ([h, w]: Pair): string => (h === w ? py(h) : `(${py(h)}, ${py(w)})`);
const isZero = ([h, w]: Pair) => h === 0 && w === 0;
const isOne = ([h, w]: Pair) => h === 1 && w === 1;

/** `name(arg, ..., key=value, ...)`, keyword arguments only where given. */
function callOf(name: string, args: string[], kwargs: [string, string | undefined][] = []) {
  const all = [...args, ...kwargs.filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`)];
  return `${name}(${all.join(", ")})`;
}

const code = (module: string | undefined, call?: TorchCode["call"]): TorchCode => ({
  ...(module !== undefined ? { module } : {}),
  ...(call ? { call } : {}),
  untracked: [],
});

const only = (inputs: string[]): string => inputs[0] ?? "x";
const channels = (node: NodeIR): number => node.inShape[0] ?? 0;

/** nn.Conv2d's `padding`: "same", or the per-axis zero padding (symmetric unless `same`). */
function convPadding(node: NodeIR<"conv">): string | undefined {
  const { padding, same } = node.attrs;
  if (same) return py("same");
  const [top, left, bottom, right] = padding as Pads;
  if (top !== bottom || left !== right) {
    throw new Error(`pytorch backend: ${node.name} has uneven padding without padding: same`);
  }
  return isZero([top, left]) ? undefined : size([top, left]);
}

function pool(name: string, fn: string, node: NodeIR<"maxpool"> | NodeIR<"avgpool">): TorchCode {
  const { kernel, stride, padding } = node.attrs;
  const kwargs: [string, string | undefined][] = [
    ["stride", stride[0] === kernel[0] && stride[1] === kernel[1] ? undefined : size(stride)],
    ["padding", isZero(padding) ? undefined : size(padding)],
  ];
  return code(callOf(name, [size(kernel)], kwargs), (inputs) =>
    callOf(fn, [only(inputs), size(kernel)], kwargs),
  );
}

const isImage = (node: NodeIR) => node.inShape.length === 3;

export const TORCH_OPS: OpTable<TorchCode, TorchContext> = {
  conv(node) {
    const { out, kernel, stride, dilation, groups, bias } = node.attrs;
    return code(
      callOf(
        "nn.Conv2d",
        [py(channels(node)), py(out)],
        [
          ["kernel_size", size(kernel)],
          ["stride", isOne(stride) ? undefined : size(stride)],
          ["padding", convPadding(node)],
          ["dilation", isOne(dilation) ? undefined : size(dilation)],
          ["groups", groups === 1 ? undefined : py(groups)],
          ["bias", bias ? undefined : py(false)],
        ],
      ),
    );
  },

  relu: () => code("nn.ReLU()", (inputs) => `F.relu(${only(inputs)})`),
  relu6: () => code("nn.ReLU6()", (inputs) => `F.relu6(${only(inputs)})`),
  leaky_relu(node) {
    const slope = node.attrs.negativeSlope;
    return code(
      slope === 0.01 ? "nn.LeakyReLU()" : `nn.LeakyReLU(${py(slope)})`,
      (inputs) => `F.leaky_relu(${only(inputs)}, ${py(slope)})`,
    );
  },
  sigmoid: () => code("nn.Sigmoid()", (inputs) => `torch.sigmoid(${only(inputs)})`),
  tanh: () => code("nn.Tanh()", (inputs) => `torch.tanh(${only(inputs)})`),
  silu: () => code("nn.SiLU()", (inputs) => `F.silu(${only(inputs)})`),
  // approximate="none" is nn.GELU's default: the exact form, by erf.
  gelu: () => code("nn.GELU()", (inputs) => `F.gelu(${only(inputs)})`),
  hardswish: () => code("nn.Hardswish()", (inputs) => `F.hardswish(${only(inputs)})`),

  // PyTorch counts the batches a BatchNorm2d has seen in a buffer mnistc does not keep (it only
  // matters with momentum=None); load_state_dict fills it in when a file lacks it.
  batchnorm(node) {
    const { eps, momentum } = node.attrs;
    return {
      module: callOf(
        "nn.BatchNorm2d",
        [py(channels(node))],
        [
          ["eps", eps === 1e-5 ? undefined : py(eps)],
          ["momentum", momentum === 0.1 ? undefined : py(momentum)],
        ],
      ),
      untracked: ["num_batches_tracked"],
    };
  },

  maxpool: (node) => pool("nn.MaxPool2d", "F.max_pool2d", node),
  avgpool: (node) => pool("nn.AvgPool2d", "F.avg_pool2d", node),

  gap: () =>
    code("nn.AdaptiveAvgPool2d(1)", (inputs) => `F.adaptive_avg_pool2d(${only(inputs)}, 1)`),

  // Whole channels on images (nn.Dropout2d), single values on vectors (nn.Dropout).
  dropout(node) {
    const p = py(node.attrs.p);
    const [module, fn] = isImage(node)
      ? ["nn.Dropout2d", "F.dropout2d"]
      : ["nn.Dropout", "F.dropout"];
    return code(`${module}(${p})`, (inputs) => `${fn}(${only(inputs)}, ${p}, self.training)`);
  },

  flatten: () => code("nn.Flatten()", (inputs) => `torch.flatten(${only(inputs)}, 1)`),

  linear(node) {
    const { out, bias } = node.attrs;
    return code(
      callOf("nn.Linear", [py(channels(node)), py(out)], [["bias", bias ? undefined : py(false)]]),
    );
  },

  log_softmax: () =>
    code("nn.LogSoftmax(dim=1)", (inputs) => `F.log_softmax(${only(inputs)}, dim=1)`),

  // A residual connection is arithmetic in forward(), no module: `self.res1(x) + x`.
  add: () => code(undefined, (inputs) => inputs.join(" + ")),
  mul: () => code(undefined, (inputs) => inputs.join(" * ")),
  concat: () => code(undefined, (inputs) => `torch.cat([${inputs.join(", ")}], 1)`),
};
