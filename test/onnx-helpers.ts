// Helpers of the ONNX tests. A tiny IR built by hand (no compiler needed) for the ONNX tests: input [1,3,3] → conv 2x2 (2
// channels, bias) → batchnorm → relu → flatten → dropout → linear 3 → log_softmax. Small enough to
// compute its output by hand.
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tfjsWeightsFromTorch } from "../src/backends/tfjs/weights.js";
import type { AnyNodeIR, ModelIR, ParamIR, Shape, WeightMap } from "../src/compiler/ir.js";
import { encodeModel, onnx } from "../src/formats/onnx-proto.js";
import { packagePath } from "../src/paths.js";

const span = { file: "tiny.yaml", line: 1, col: 1, endLine: 1, endCol: 1 };

function node(
  name: string,
  kind: AnyNodeIR["kind"],
  attrs: unknown,
  inShape: Shape,
  outShape: Shape,
  params: ParamIR[] = [],
): AnyNodeIR {
  return {
    name,
    kind,
    attrs,
    block: name.includes(".") ? name.split(".")[0] : undefined,
    span,
    inputs: [],
    inShapes: [inShape],
    inShape,
    outShape,
    params,
    macs: 0,
    rf: { size: 1, jump: 1 },
  } as AnyNodeIR;
}

/** A parameter with PyTorch's init: fan-in for conv/linear, batch norm's fills otherwise. */
/** A chain: each node reads the one before it (the first, the model input). */
function chain(nodes: AnyNodeIR[]): void {
  nodes.forEach((n, i) => {
    n.inputs = [nodes[i - 1]?.name ?? "input"];
  });
}

function param(name: string, role: ParamIR["role"], shape: number[], fanIn?: number): ParamIR {
  const fill = role === "weight" || role === "running_var" ? 1 : 0;
  return {
    name,
    role,
    shape,
    trainable: role === "weight" || role === "bias",
    init: fanIn === undefined ? { type: "fill", value: fill } : { type: "uniform", fanIn },
  };
}

export function tinyIR(seed = 1): ModelIR {
  const nodes: AnyNodeIR[] = [
    node(
      "conv1.0",
      "conv",
      {
        out: 2,
        kernel: [2, 2],
        stride: [1, 1],
        padding: [0, 0, 0, 0],
        same: false,
        dilation: [1, 1],
        groups: 1,
        bias: true,
      },
      [1, 3, 3],
      [2, 2, 2],
      [param("conv1.0.weight", "weight", [2, 1, 2, 2], 4), param("conv1.0.bias", "bias", [2], 4)],
    ),
    node(
      "conv1.1",
      "batchnorm",
      { eps: 1e-5, momentum: 0.1 },
      [2, 2, 2],
      [2, 2, 2],
      [
        param("conv1.1.weight", "weight", [2]),
        param("conv1.1.bias", "bias", [2]),
        param("conv1.1.running_mean", "running_mean", [2]),
        param("conv1.1.running_var", "running_var", [2]),
      ],
    ),
    node("conv1.2", "relu", {}, [2, 2, 2], [2, 2, 2]),
    node("1", "flatten", {}, [2, 2, 2], [8]),
    node("2", "dropout", { p: 0.5 }, [8], [8]),
    node(
      "3",
      "linear",
      { out: 3, bias: true },
      [8],
      [3],
      [param("3.weight", "weight", [3, 8], 8), param("3.bias", "bias", [3], 8)],
    ),
    node("4", "log_softmax", {}, [3], [3]),
  ];
  chain(nodes);
  return {
    name: "tiny",
    file: "tiny.yaml",
    input: { channels: 1, height: 3, width: 3 },
    classes: 3,
    budget: undefined,
    nodes,
    totals: { trainable: 8 + 2 + 2 + 2 + 24 + 3, buffers: 4, macs: 0 },
    train: {
      epochs: 1,
      batchSize: 2,
      seed,
      optimizer: { type: "sgd", lr: 0.01, momentum: 0.9, weightDecay: 0, nesterov: false },
      scheduler: { type: "none" },
      augment: { rotate: 0, translate: 0, scale: [1, 1] },
      labelSmoothing: 0,
    },
    data: { dataset: "mnist", mean: [0.5], std: [0.25], preprocess: "digit" },
  };
}

/** Known weights for `tinyIR`, simple enough to follow by hand. */
export function tinyWeights(): WeightMap {
  const w = (shape: number[], values: number[]) => ({ shape, data: Float32Array.from(values) });
  return new Map([
    // Channel 0 sums its 2x2 window; channel 1 takes top-left minus bottom-right.
    ["conv1.0.weight", w([2, 1, 2, 2], [1, 1, 1, 1, 1, 0, 0, -1])],
    ["conv1.0.bias", w([2], [0, 0.5])],
    ["conv1.1.weight", w([2], [2, 1])],
    ["conv1.1.bias", w([2], [0, -1])],
    ["conv1.1.running_mean", w([2], [1, 0])],
    ["conv1.1.running_var", w([2], [4, 1])],
    // Row c of the linear weight picks flattened feature c (and 3.weight[2] sums features 4..7).
    [
      "3.weight",
      w([3, 8], [1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1]),
    ],
    ["3.bias", w([3], [0, 1, -1])],
  ]);
}

/** An MNIST-sized IR without convolutions: flatten → linear 10 → log_softmax (seeded weights). */
export function linearIR(seed = 7): ModelIR {
  const nodes: AnyNodeIR[] = [
    node("0", "flatten", {}, [1, 28, 28], [784]),
    node(
      "1",
      "linear",
      { out: 10, bias: true },
      [784],
      [10],
      [param("1.weight", "weight", [10, 784], 784), param("1.bias", "bias", [10], 784)],
    ),
    node("2", "log_softmax", {}, [10], [10]),
  ];
  chain(nodes);
  const ir = tinyIR(seed);
  return {
    ...ir,
    name: "linear",
    file: "linear.yaml",
    input: { channels: 1, height: 28, width: 28 },
    classes: 10,
    nodes,
    totals: { trainable: 7850, buffers: 0, macs: 7840 },
    data: { dataset: "mnist", mean: [0.1307], std: [0.3081], preprocess: "digit" },
  };
}

/** Plain JS forward pass of `tinyIR` (batch of `n` 1x3x3 images): the reference ORT must match. */
export function tinyForward(weights: WeightMap, x: Float32Array, n: number): Float32Array {
  const get = (name: string) => weights.get(name)?.data ?? new Float32Array();
  const [cw, cb, g, b, mean, variance, lw, lb] = [
    "conv1.0.weight",
    "conv1.0.bias",
    "conv1.1.weight",
    "conv1.1.bias",
    "conv1.1.running_mean",
    "conv1.1.running_var",
    "3.weight",
    "3.bias",
  ].map(get) as Float32Array[];
  const at = (a: Float32Array | undefined, i: number) => a?.[i] ?? 0;
  const out = new Float32Array(n * 3);
  for (let s = 0; s < n; s++) {
    const features: number[] = [];
    for (let c = 0; c < 2; c++) {
      for (let oy = 0; oy < 2; oy++) {
        for (let ox = 0; ox < 2; ox++) {
          let v = at(cb, c);
          for (let ky = 0; ky < 2; ky++) {
            for (let kx = 0; kx < 2; kx++) {
              v += at(cw, c * 4 + ky * 2 + kx) * at(x, s * 9 + (oy + ky) * 3 + ox + kx);
            }
          }
          v = ((v - at(mean, c)) / Math.sqrt(at(variance, c) + 1e-5)) * at(g, c) + at(b, c);
          features.push(Math.max(0, v));
        }
      }
    }
    const logits = [0, 1, 2].map(
      (o) => at(lb, o) + features.reduce((acc, f, i) => acc + at(lw, o * 8 + i) * f, 0),
    );
    const max = Math.max(...logits);
    const lse = max + Math.log(logits.reduce((acc, l) => acc + Math.exp(l - max), 0));
    logits.forEach((l, o) => {
      out[s * 3 + o] = l - lse;
    });
  }
  return out;
}

/** A hand-built ONNX model: LogSoftmax of its (flattened) input, with the given dims. */
export function foreignModel(
  inputDims: (number | string)[],
  outputDims: (number | string)[],
  flatten = true,
) {
  const dims = (ds: (number | string)[]) =>
    ds.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d }));
  const value = (name: string, ds: (number | string)[]) => ({
    name,
    type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: dims(ds) } } },
  });
  const axis = { name: "axis", type: onnx.AttributeProto.AttributeType.INT, i: 1 };
  return encodeModel({
    irVersion: 8,
    opsetImport: [{ domain: "", version: 13 }],
    producerName: "test",
    graph: {
      name: "foreign",
      node: [
        {
          name: "flat",
          opType: flatten ? "Flatten" : "Identity",
          input: ["x"],
          output: ["f"],
          attribute: flatten ? [axis] : [],
        },
        { name: "ls", opType: "LogSoftmax", input: ["f"], output: ["y"], attribute: [axis] },
      ],
      input: [value("x", inputDims)],
      output: [value("y", outputDims)],
    },
  });
}

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built `mnistc` command line. */
export function runCli(args: string[]): CliResult {
  const r = spawnSync(process.execPath, [packagePath("dist", "src", "cli.js"), ...args], {
    encoding: "utf8",
    cwd: packagePath(),
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A user's mistake: exit 1, one `mnistc: error:` line matching `pattern`, no stack trace. */
export function assertUserError(r: CliResult, pattern: RegExp): void {
  const where = `stderr: ${r.stderr}`;
  if (r.status !== 1) throw new Error(`exit ${r.status}, expected 1; ${where}`);
  if (!/^mnistc: error: /m.test(r.stderr)) throw new Error(`no "mnistc: error:" line; ${where}`);
  if (/^\s+at /m.test(r.stderr)) throw new Error(`a stack trace was printed; ${where}`);
  if (!pattern.test(r.stderr)) throw new Error(`stderr does not match ${pattern}; ${where}`);
}

/**
 * A checkpoint directory as `mnistc train` leaves it (model.json with a weights manifest +
 * weights.bin, tfjs names and layouts) holding `weights`, written without TensorFlow.js.
 */
export function writeTfjsCheckpoint(dir: string, ir: ModelIR, weights: WeightMap): void {
  const mapped = tfjsWeightsFromTorch(ir, weights);
  if ("error" in mapped) throw new Error(mapped.error);
  const specs = [...mapped.weights].map(([name, a]) => ({
    name,
    shape: a.shape,
    dtype: "float32",
  }));
  const size = [...mapped.weights.values()].reduce((n, a) => n + a.data.length, 0);
  const all = new Float32Array(size);
  let off = 0;
  for (const a of mapped.weights.values()) {
    all.set(a.data, off);
    off += a.data.length;
  }
  mkdirSync(dir, { recursive: true });
  const manifest = [{ paths: ["weights.bin"], weights: specs }];
  writeFileSync(
    join(dir, "model.json"),
    JSON.stringify({ modelTopology: {}, weightsManifest: manifest }),
  );
  writeFileSync(join(dir, "weights.bin"), new Uint8Array(all.buffer));
}

const PYTHON = "/usr/bin/python3";

/** Why ONNX-checker tests skip here (Debian's python3-onnx missing), or false when they run. */
export const noOnnxChecker: string | false =
  spawnSync(PYTHON, ["-c", "import onnx"]).status === 0
    ? false
    : `${PYTHON} cannot import onnx (apt-get install python3-onnx)`;

/** The ONNX checker's verdict on a file (full check): undefined when it passes, else its message. */
export function onnxCheckerProblem(file: string): string | undefined {
  const r = spawnSync(
    PYTHON,
    [
      "-c",
      "import onnx,sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)",
      file,
    ],
    { encoding: "utf8" },
  );
  return r.status === 0 ? undefined : r.stderr.trim().split("\n").slice(-1)[0];
}
