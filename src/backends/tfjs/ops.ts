// The tfjs spelling of each op kind: the layers it becomes (a factory and its options; two where
// tfjs needs a helper layer, named `<node>.pad` / `<node>.nchw`), and where each PyTorch parameter
// lives among those layers' weights, in which layout. Tensors are NHWC; the IR's shapes are
// PyTorch's [C, H, W]. Keyed by `OpKind` through `OpTable`, so a new op kind fails `tsc` here.
// How the layers are written out (a `tf.sequential` chain or the functional API) is index.ts's.
import { traceElementwise } from "../../compiler/elementwise.js";
import type { AnyNodeIR, NodeIR, Pads, Pair, ParamIR } from "../../compiler/ir.js";
import { opDef } from "../../compiler/ops.js";
import type { Layout } from "../../formats/tfjs-layout.js";
import { jsStr } from "../../util/literals.js";
import type { OpTable } from "../backend.js";

/** What the emitted model imports from the runtime. */
export type RuntimeExport =
  | "BatchNorm2d"
  | "ConstantPad2d"
  | "Conv2d"
  | "Dropout"
  | "Dropout2d"
  | "Elementwise"
  | "LogSoftmax"
  | "torchUniform";

export type Option = [key: string, code: string];

/** One layer: `<factory>({ <options> })`; options come in groups, one line each when wrapped. */
export interface TfjsLayer {
  factory: string;
  options: Option[][];
}

/** Where a PyTorch parameter lives in the tfjs model. */
export interface TfjsWeight {
  role: ParamIR["role"];
  /** `conv1.0/kernel`, `conv1.2/running_mean`. */
  name: string;
  layout: Layout;
}

export interface LayerCode {
  /** Applied in order; the first reads the node's inputs (an array when there are several). */
  layers: TfjsLayer[];
  weights: TfjsWeight[];
  uses: RuntimeExport[];
}

/** No context is needed: every op's code follows from its node alone. */
export type TfjsContext = Record<string, never>;

/** A JS literal: strings quoted, arrays as `[1, 2]`. */
export function js(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(js).join(", ")}]`;
  return typeof value === "string" ? jsStr(value) : JSON.stringify(value);
}

const code = (
  layers: TfjsLayer[],
  uses: RuntimeExport[] = [],
  weights: TfjsWeight[] = [],
): LayerCode => ({ layers, weights, uses });

const one = (factory: string, ...options: Option[][]): TfjsLayer => ({ factory, options });

/** tfjs's padding format, [[top, bottom], [left, right]], of the IR's [top, left, bottom, right]. */
const tfjsPads = ([top, left, bottom, right]: Pads): [Pair, Pair] => [
  [top, bottom],
  [left, right],
];
const padded = (pads: Pads) => pads.some((p) => p > 0);

/**
 * kernelInitializer / biasInitializer: PyTorch's default init (the op table's rule), drawn in
 * PyTorch layout and transposed into the weight's tfjs layout.
 */
function initializers(node: NodeIR<"conv"> | NodeIR<"linear">, kernel: Layout): Option[][] {
  return node.params.map((p) => {
    const fanIn = p.init.type === "uniform" ? p.init.fanIn : 0;
    const layout = p.role === "weight" ? `, ${js(kernel)}` : "";
    return [
      [
        p.role === "weight" ? "kernelInitializer" : "biasInitializer",
        `torchUniform(seed, ${js(p.name)}, ${fanIn}${layout})`,
      ],
    ];
  });
}

/** A conv's or dense's kernel and bias as tfjs names them. */
function kernelWeights(node: NodeIR<"conv"> | NodeIR<"linear">, kernel: Layout): TfjsWeight[] {
  return node.params.map((p) =>
    p.role === "weight"
      ? { role: p.role, name: `${node.name}/kernel`, layout: kernel }
      : { role: p.role, name: `${node.name}/bias`, layout: "same" },
  );
}

/** The zero padding a layer needs before a `valid` window, unless `same` pads exactly as PyTorch. */
function zeroPad(node: NodeIR, pads: Pads): TfjsLayer {
  return one("tf.layers.zeroPadding2d", [
    ["name", js(`${node.name}.pad`)],
    ["padding", js(tfjsPads(pads))],
  ]);
}

/** tfjs's `same` pads exactly as PyTorch for stride 1 and odd kernels (the same on both sides). */
function tfjsSame(node: NodeIR<"conv">): boolean {
  const { kernel, stride, padding } = node.attrs;
  const [top, left, bottom, right] = padding;
  if (!padded(padding)) return false;
  const same = (i: 0 | 1, before: number, after: number) =>
    stride[i] === 1 && before === after && 2 * before === kernel[i] - 1;
  return same(0, top, bottom) && same(1, left, right);
}

function conv(node: NodeIR<"conv">): LayerCode {
  const { out, kernel, stride, padding, dilation, groups, bias } = node.attrs;
  const useBias = bias ? [] : [["useBias", "false"] as Option];
  const uses: RuntimeExport[] = ["torchUniform"];
  if (groups !== 1 || dilation[0] !== 1 || dilation[1] !== 1) {
    // tfjs's layers have no groups, and no gradient for dilation: the runtime's nn.Conv2d.
    return code(
      [
        one(
          "new Conv2d",
          [
            ["name", js(node.name)],
            ["filters", js(out)],
            ["kernelSize", js(kernel)],
            ["strides", js(stride)],
            ["padding", js(tfjsPads(padding))],
          ],
          [["dilation", js(dilation)], ["groups", js(groups)], ...useBias],
          ...initializers(node, "oihw"),
        ),
      ],
      [...uses, "Conv2d"],
      kernelWeights(node, "oihw"),
    );
  }
  const same = tfjsSame(node);
  const layer = one(
    "tf.layers.conv2d",
    [
      ["name", js(node.name)],
      ["filters", js(out)],
      ["kernelSize", js(kernel)],
      ["strides", js(stride)],
      ["padding", js(same ? "same" : "valid")],
      ...useBias,
    ],
    ...initializers(node, "oihw"),
  );
  const layers = !same && padded(padding) ? [zeroPad(node, padding), layer] : [layer];
  return code(layers, uses, kernelWeights(node, "oihw"));
}

function pool(factory: string, node: NodeIR<"maxpool"> | NodeIR<"avgpool">, pad?: TfjsLayer) {
  const layer = one(factory, [
    ["name", js(node.name)],
    ["poolSize", js(node.attrs.kernel)],
    ["strides", js(node.attrs.stride)],
    ["padding", js("valid")],
  ]);
  return pad ? [pad, layer] : [layer];
}

const poolPads = (node: NodeIR<"maxpool"> | NodeIR<"avgpool">): Pads => {
  const [h, w] = node.attrs.padding;
  return [h, w, h, w];
};

const isImage = (shape: number[]) => shape.length === 3;

/** The op table's elementwise function, traced into data the runtime's Elementwise evaluates. */
function traced(node: AnyNodeIR): LayerCode {
  const fn = opDef(node.kind).elementwise;
  if (!fn) throw new Error(`tfjs backend: ${node.kind} is not elementwise`);
  const f = traceElementwise((e, x) => fn.f(e, x, node.attrs));
  return code([one("new Elementwise", [["name", js(node.name)]], [["f", js(f)]])], ["Elementwise"]);
}

/** tfjs's activation layer with one of its built-in functions. */
const activationLayer = (node: NodeIR, activation: string): LayerCode =>
  code([
    one("tf.layers.activation", [
      ["name", js(node.name)],
      ["activation", js(activation)],
    ]),
  ]);

export const TFJS_OPS: OpTable<LayerCode, TfjsContext> = {
  conv,

  relu: (node) => code([one("tf.layers.reLU", [["name", js(node.name)]])]),
  // tfjs's relu6 activation, not reLU({ maxValue: 6 }): that one clips, whose gradient is 1 at
  // x = 0 (PyTorch's and relu6's: 0), and ReLU's exact zeros make x = 0 common.
  relu6: (node) => activationLayer(node, "relu6"),
  leaky_relu: (node) =>
    code([
      one("tf.layers.leakyReLU", [
        ["name", js(node.name)],
        ["alpha", js(node.attrs.negativeSlope)],
      ]),
    ]),
  sigmoid: (node) => activationLayer(node, "sigmoid"),
  tanh: (node) => activationLayer(node, "tanh"),
  // tfjs's swish is x·sigmoid(x); its gelu is the exact one (by erf), its gelu_new the tanh form.
  silu: (node) => activationLayer(node, "swish"),
  gelu: (node) => activationLayer(node, "gelu"),
  // No tfjs layer: the op table's x·relu6(x + 3)/6, evaluated in tf ops. Its tfjs gradient is
  // PyTorch's at both kinks too (clipByValue counts its bounds in).
  hardswish: traced,

  batchnorm(node) {
    const { eps, momentum } = node.attrs;
    return code(
      [
        one("new BatchNorm2d", [
          ["name", js(node.name)],
          ["eps", js(eps)],
          ["momentum", js(momentum)],
        ]),
      ],
      ["BatchNorm2d"],
      // The project's BatchNorm2d keeps PyTorch's parameter names.
      node.params.map((p) => ({ role: p.role, name: `${node.name}/${p.role}`, layout: "same" })),
    );
  },

  // PyTorch pads a max pool with −∞ (padding never wins); zeros would beat negative values.
  maxpool(node) {
    const pads = poolPads(node);
    const pad = padded(pads)
      ? one("new ConstantPad2d", [
          ["name", js(`${node.name}.pad`)],
          ["padding", js(tfjsPads(pads))],
          ["value", js("-inf")],
        ])
      : undefined;
    return code(pool("tf.layers.maxPooling2d", node, pad), pad ? ["ConstantPad2d"] : []);
  },

  // PyTorch's AvgPool2d counts the zero padding in the average (count_include_pad=True).
  avgpool(node) {
    const pads = poolPads(node);
    const pad = padded(pads) ? zeroPad(node, pads) : undefined;
    return code(pool("tf.layers.averagePooling2d", node, pad));
  },

  // AdaptiveAvgPool2d(1) is a pool over the whole map; it keeps [B, 1, 1, C] like PyTorch's
  // [B, C, 1, 1] (globalAveragePooling2d would drop the two axes).
  gap(node) {
    const [, h = 1, w = 1] = node.inShape;
    return code([
      one("tf.layers.averagePooling2d", [
        ["name", js(node.name)],
        ["poolSize", js([h, w])],
        ["strides", js([h, w])],
        ["padding", js("valid")],
      ]),
    ]);
  },

  dropout(node) {
    const kind = isImage(node.inShape) ? "Dropout2d" : "Dropout";
    return code(
      [
        one(`new ${kind}`, [
          ["name", js(node.name)],
          ["rate", js(node.attrs.p)],
          ["seed", "seed"],
        ]),
      ],
      [kind],
    );
  },

  // PyTorch flattens [C, H, W] channel-major; permuting NHWC to NCHW first gives the same order,
  // so linear weights mean the same in both. A 1×1 map (after gap) needs no permute.
  flatten(node) {
    const [c, h = 1, w = 1] = node.inShape;
    if (!isImage(node.inShape)) {
      return code([
        one("tf.layers.reshape", [
          ["name", js(node.name)],
          ["targetShape", js([c])],
        ]),
      ]);
    }
    const flatten = one("tf.layers.flatten", [["name", js(node.name)]]);
    if (h === 1 && w === 1) return code([flatten]);
    const permute = one("tf.layers.permute", [
      ["name", js(`${node.name}.nchw`)],
      ["dims", js([3, 1, 2])],
    ]);
    return code([permute, flatten]);
  },

  linear(node) {
    const { out, bias } = node.attrs;
    return code(
      [
        one(
          "tf.layers.dense",
          [
            ["name", js(node.name)],
            ["units", js(out)],
            ...(bias ? [] : [["useBias", "false"] as Option]),
          ],
          ...initializers(node, "oi"),
        ),
      ],
      ["torchUniform"],
      kernelWeights(node, "oi"),
    );
  },

  log_softmax: (node) => code([one("new LogSoftmax", [["name", js(node.name)]])], ["LogSoftmax"]),

  add: (node) => code([one("tf.layers.add", [["name", js(node.name)]])]),
  // tfjs's merge layers broadcast as PyTorch does: a [B, 1, 1, C] gate scales each channel.
  mul: (node) => code([one("tf.layers.multiply", [["name", js(node.name)]])]),
  // Channels are NHWC's last axis.
  concat: (node) =>
    code([
      one("tf.layers.concatenate", [
        ["name", js(node.name)],
        ["axis", "-1"],
      ]),
    ]),
};
