// The tfjs code for each op kind: one readable `model.add(...)` statement per layer (two where tfjs
// needs a helper layer, named `<node>.pad` / `<node>.nchw`). Tensors are NHWC; the IR's shapes are
// PyTorch's [C, H, W]. Keyed by `OpKind` through `OpTable`, so a new op kind fails `tsc` here.
import { fanInOf } from "../../compiler/init.js";
import type { NodeIR, Pair } from "../../compiler/ir.js";
import type { OpTable } from "../backend.js";

/** What the emitted model imports from the runtime. */
export type RuntimeExport = "BatchNorm2d" | "Dropout" | "Dropout2d" | "LogSoftmax" | "torchUniform";

export interface LayerCode {
  /** Complete statements; multi-line ones indent their continuation lines by two spaces. */
  statements: string[];
  uses: RuntimeExport[];
}

/** No context is needed: every op's code follows from its node alone. */
export type TfjsContext = Record<string, never>;

/** A JS literal: strings quoted, arrays as `[1, 2]`. */
export function js(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(js).join(", ")}]`;
  return JSON.stringify(value);
}

type Option = [key: string, code: string];

const LINE_WIDTH = 100;
/** The indentation statements get in `buildModel`. */
const INDENT = "  ";

/**
 * `model.add(<factory>({ ... }))` on one line when it fits; otherwise one line per option group
 * (the plain options, then each initializer).
 */
function add(factory: string, ...groups: Option[][]): string {
  const entry = ([k, v]: Option) => (k === v ? k : `${k}: ${v}`);
  const inline = `model.add(${factory}({ ${groups.flat().map(entry).join(", ")} }));`;
  if (INDENT.length + inline.length <= LINE_WIDTH) return inline;
  const lines = groups.filter((g) => g.length > 0).map((g) => `  ${g.map(entry).join(", ")},`);
  return [`model.add(${factory}({`, ...lines, "}));"].join("\n");
}

const layer = (statements: string[], uses: RuntimeExport[] = []): LayerCode => ({
  statements,
  uses,
});

/** The tfjs padding of a conv: `same` only where it pads exactly as PyTorch (stride 1, odd k). */
function convPadding(node: NodeIR<"conv">): { pad?: string; padding: "valid" | "same" } {
  const { kernel, stride, padding } = node.attrs;
  if (padding[0] === 0 && padding[1] === 0) return { padding: "valid" };
  const same = (i: 0 | 1) => stride[i] === 1 && 2 * padding[i] === kernel[i] - 1;
  if (same(0) && same(1)) return { padding: "same" };
  const [ph, pw] = padding;
  const pad = add("tf.layers.zeroPadding2d", [
    ["name", js(`${node.name}.pad`)],
    ["padding", js([[ph, ph] as Pair, [pw, pw] as Pair])],
  ]);
  return { pad, padding: "valid" };
}

/**
 * kernelInitializer / biasInitializer: PyTorch's default init, from the model seed, with the same
 * fan-in rule as the ONNX backend's seeded weights (compiler/init.ts).
 */
function initializers(node: NodeIR<"conv"> | NodeIR<"linear">): Option[][] {
  const fanIn = fanInOf(node);
  return node.params.map((p) => [
    [
      p.role === "weight" ? "kernelInitializer" : "biasInitializer",
      `torchUniform(seed, ${js(p.name)}, ${fanIn})`,
    ],
  ]);
}

function pool(factory: string, node: NodeIR<"maxpool"> | NodeIR<"avgpool">): LayerCode {
  return layer([
    add(factory, [
      ["name", js(node.name)],
      ["poolSize", js(node.attrs.kernel)],
      ["strides", js(node.attrs.stride)],
      ["padding", js("valid")],
    ]),
  ]);
}

const isImage = (shape: number[]) => shape.length === 3;

export const TFJS_OPS: OpTable<LayerCode, TfjsContext> = {
  conv(node) {
    const { out, kernel, stride, bias } = node.attrs;
    const { pad, padding } = convPadding(node);
    const conv = add(
      "tf.layers.conv2d",
      [
        ["name", js(node.name)],
        ["filters", js(out)],
        ["kernelSize", js(kernel)],
        ["strides", js(stride)],
        ["padding", js(padding)],
        ...(bias ? [] : [["useBias", "false"] as Option]),
      ],
      ...initializers(node),
    );
    return layer(pad ? [pad, conv] : [conv], ["torchUniform"]);
  },

  relu: (node) => layer([add("tf.layers.reLU", [["name", js(node.name)]])]),

  batchnorm(node) {
    const { eps, momentum } = node.attrs;
    return layer(
      [
        add("new BatchNorm2d", [
          ["name", js(node.name)],
          ["eps", js(eps)],
          ["momentum", js(momentum)],
        ]),
      ],
      ["BatchNorm2d"],
    );
  },

  maxpool: (node) => pool("tf.layers.maxPooling2d", node),
  avgpool: (node) => pool("tf.layers.averagePooling2d", node),

  // AdaptiveAvgPool2d(1) is a pool over the whole map; it keeps [B, 1, 1, C] like PyTorch's
  // [B, C, 1, 1] (globalAveragePooling2d would drop the two axes).
  gap(node) {
    const [, h = 1, w = 1] = node.inShape;
    return layer([
      add("tf.layers.averagePooling2d", [
        ["name", js(node.name)],
        ["poolSize", js([h, w])],
        ["strides", js([h, w])],
        ["padding", js("valid")],
      ]),
    ]);
  },

  dropout(node) {
    const kind = isImage(node.inShape) ? "Dropout2d" : "Dropout";
    return layer(
      [
        add(`new ${kind}`, [
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
    const flatten = add("tf.layers.flatten", [["name", js(node.name)]]);
    if (!isImage(node.inShape)) {
      return layer([
        add("tf.layers.reshape", [
          ["name", js(node.name)],
          ["targetShape", js([c])],
        ]),
      ]);
    }
    if (h === 1 && w === 1) return layer([flatten]);
    const permute = add("tf.layers.permute", [
      ["name", js(`${node.name}.nchw`)],
      ["dims", js([3, 1, 2])],
    ]);
    return layer([permute, flatten]);
  },

  linear(node) {
    const { out, bias } = node.attrs;
    return layer(
      [
        add(
          "tf.layers.dense",
          [
            ["name", js(node.name)],
            ["units", js(out)],
            ...(bias ? [] : [["useBias", "false"] as Option]),
          ],
          ...initializers(node),
        ),
      ],
      ["torchUniform"],
    );
  },

  log_softmax: (node) => layer([add("new LogSoftmax", [["name", js(node.name)]])], ["LogSoftmax"]),
};
