// Models that load but would crash later or answer NaN (issue 23, classes 6 and 7): every command
// and the server load models through `DigitModel.load`, which refuses them once, at load, in one
// line naming the file; a NaN that only a run reveals is refused when it appears.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { PNG } from "pngjs";
import { UserError } from "../../src/errors.js";
import { encodeModel, onnx } from "../../src/formats/onnx-proto.js";
import { DigitModel } from "../../src/runtime/inference/onnx-model.js";
import { assertUserError, runCli } from "../onnx-helpers.js";

const dir = mkdtempSync(join(tmpdir(), "mnistc-hostile-models-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;
type Dim = number | string;
const value = (name: string, dims: Dim[], elemType = FLOAT) => ({
  name,
  type: {
    tensorType: {
      elemType,
      shape: { dim: dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) },
    },
  },
});
const floats = (name: string, dims: number[], values: number[]) => ({
  name,
  dims,
  dataType: FLOAT,
  floatData: values,
});
const axis1 = { name: "axis", type: onnx.AttributeProto.AttributeType.INT, i: 1 };

/** x [N, 1, 2, 2] → Flatten → (extra nodes) → LogSoftmax → y [N, 4], plus what a case adds. */
function model(
  name: string,
  parts: {
    nodes?: object[];
    initializers?: object[];
    outputs?: object[];
    input?: Dim[];
    last?: string;
  },
): string {
  const file = join(dir, `${name}.onnx`);
  const nodes = [
    { name: "flat", opType: "Flatten", input: ["x"], output: ["f"], attribute: [axis1] },
    ...(parts.nodes ?? []),
    {
      name: "ls",
      opType: "LogSoftmax",
      input: [parts.last ?? "f"],
      output: ["y"],
      attribute: [axis1],
    },
  ];
  const bytes = encodeModel({
    irVersion: 8,
    opsetImport: [{ domain: "", version: 13 }],
    producerName: "test",
    graph: {
      name,
      node: nodes,
      initializer: parts.initializers ?? [],
      input: [value("x", parts.input ?? ["N", 1, 2, 2])],
      output: parts.outputs ?? [value("y", ["N", 4])],
    },
  } as Parameters<typeof encodeModel>[0]);
  writeFileSync(file, bytes);
  return file;
}

async function refused(file: string, pattern: RegExp): Promise<void> {
  await assert.rejects(DigitModel.load(file), (e: unknown) => {
    assert.ok(e instanceof UserError, `not a UserError: ${e}`);
    assert.match(e.message, pattern);
    return true;
  });
}

describe("refused at load, in one line naming the file", () => {
  test("two outputs (the second would be read as classes)", async () => {
    const file = model("two-outputs", {
      nodes: [{ name: "copy", opType: "Identity", input: ["f"], output: ["g"] }],
      outputs: [value("y", ["N", 4]), value("g", ["N", 4])],
    });
    await refused(
      file,
      /two-outputs\.onnx: expected one float32 output \[N, classes\] of log-probabilities; got float32 \[N, 4\] and float32 \[N, 4\]/,
    );
  });

  test("an int64 output (BigInt answers)", async () => {
    const file = model("int64-output", {
      nodes: [
        { name: "arg", opType: "ArgMax", input: ["f"], output: ["z"], attribute: [{ ...axis1 }] },
      ],
      outputs: [value("z", ["N", 1], INT64)],
    });
    await refused(file, /expected one float32 output .*; got int64 \[N, 1\]/);
  });

  test("a batch axis fixed at 2^31-1", async () => {
    const file = model("huge-batch", {
      input: [2147483647, 1, 2, 2],
      outputs: [value("y", [2147483647, 4])],
    });
    await refused(
      file,
      /the input's batch axis is fixed at 2,147,483,647; mnistc runs models whose batch is dynamic or at most 65,536/,
    );
  });

  test("NaN in a Constant node", async () => {
    const file = model("nan-constant", {
      nodes: [
        {
          name: "c",
          opType: "Constant",
          output: ["k"],
          attribute: [
            {
              name: "value",
              type: onnx.AttributeProto.AttributeType.TENSOR,
              t: floats("k", [4], [0, Number.NaN, 0, 0]),
            },
          ],
        },
        { name: "add", opType: "Add", input: ["f", "k"], output: ["s"] },
      ],
      last: "s",
    });
    await refused(file, /bad weights: Constant node c holds NaN or infinite values/);
  });

  test("a negative batch-norm variance", async () => {
    const bn = ["scale", "bias", "mean", "var"];
    const file = model("negative-variance", {
      nodes: [
        { name: "bn", opType: "BatchNormalization", input: ["x", ...bn], output: ["b"] },
        { name: "flat2", opType: "Flatten", input: ["b"], output: ["fb"], attribute: [axis1] },
      ],
      initializers: [
        floats("scale", [1], [1]),
        floats("bias", [1], [0]),
        floats("mean", [1], [0]),
        floats("var", [1], [-4]),
      ],
      last: "fb",
    });
    await refused(file, /batch norm bn has a negative variance in var/);
  });

  test("a Loop of 10^12 iterations is refused at load, before it can hang predict (item 15)", async () => {
    const BOOL = onnx.TensorProto.DataType.BOOL;
    const body = {
      name: "body",
      node: [
        { name: "c", opType: "Identity", input: ["cond_in"], output: ["cond_out"] },
        { name: "v", opType: "Identity", input: ["v_in"], output: ["v_out"] },
      ],
      input: [value("i", [], INT64), value("cond_in", [], BOOL), value("v_in", ["N", 4])],
      output: [value("cond_out", [], BOOL), value("v_out", ["N", 4])],
    };
    const file = model("loop", {
      nodes: [
        {
          name: "forever",
          opType: "Loop",
          input: ["trips", "", "f"],
          output: ["looped"],
          attribute: [{ name: "body", type: onnx.AttributeProto.AttributeType.GRAPH, g: body }],
        },
      ],
      initializers: [{ name: "trips", dims: [], dataType: INT64, int64Data: [1e12] }],
      last: "looped",
    });
    const start = performance.now();
    await refused(file, /control flow is not supported \(Loop node forever\)/);
    assert.ok(performance.now() - start < 10_000);
  });

  test("an If node is refused too", async () => {
    const branch = (name: string) => ({
      name,
      node: [{ name: `${name}-id`, opType: "Identity", input: ["f"], output: [`${name}-out`] }],
      output: [value(`${name}-out`, ["N", 4])],
    });
    const GRAPH = onnx.AttributeProto.AttributeType.GRAPH;
    const file = model("if", {
      nodes: [
        {
          name: "choose",
          opType: "If",
          input: ["yes"],
          output: ["chosen"],
          attribute: [
            { name: "then_branch", type: GRAPH, g: branch("then") },
            { name: "else_branch", type: GRAPH, g: branch("else") },
          ],
        },
      ],
      initializers: [
        { name: "yes", dims: [], dataType: onnx.TensorProto.DataType.BOOL, int32Data: [1] },
      ],
      last: "chosen",
    });
    await refused(file, /control flow is not supported \(If node choose\)/);
  });

  test("a denormal std in the metadata", async () => {
    const file = model("denormal", {});
    const proto = onnx.ModelProto.decode(new Uint8Array(readFileSync(file)));
    proto.metadataProps.push(
      onnx.StringStringEntryProto.create({ key: "mnistc.std", value: "[1e-310]" }),
    );
    writeFileSync(file, onnx.ModelProto.encode(proto).finish());
    await refused(
      file,
      /mnistc\.std is "\[1e-310\]"; expected a JSON list of finite numbers of at least 0.000001/,
    );
  });
});

test("a NaN answer at run time is an error, never a class (finite weights that overflow)", async () => {
  // 1e30 · x squared overflows to infinity; LogSoftmax of infinities is NaN.
  const file = model("overflow", {
    nodes: [
      { name: "big", opType: "Mul", input: ["f", "k"], output: ["m"] },
      { name: "sq", opType: "Mul", input: ["m", "m"], output: ["q"] },
    ],
    initializers: [floats("k", [1], [1e30])],
    last: "q",
  });
  const m = await DigitModel.load(file);
  try {
    await assert.rejects(
      m.predictBatch(Float32Array.of(1, 2, 3, 4), 1),
      /overflow\.onnx: the model answered NaN for image 1 of a batch of 1/,
    );
  } finally {
    await m.release();
  }
  const png = join(dir, "p.png");
  const image = new PNG({ width: 2, height: 2 });
  image.data.fill(200);
  writeFileSync(png, PNG.sync.write(image));
  assertUserError(runCli(["predict", file, png, "--preprocess", "none"]), /the model answered NaN/);
});
