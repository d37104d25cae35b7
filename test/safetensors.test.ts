// safetensors: the reader's bounds checks (each malformed file refused with what is wrong), dtype
// conversion, the writer (read back by the reader; the emitted model.py's writer is checked
// against it in pytorch-run.test.ts), and weights checked against a spec, each mismatch named.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  safetensorsFromWeights,
  torchWeightsFromSafetensors,
} from "../src/backends/pytorch/weights.js";
import { loadWeights } from "../src/cli/weights.js";
import { compileSpec } from "../src/compiler/index.js";
import { torchInitWeights } from "../src/compiler/init.js";
import type { ModelIR } from "../src/compiler/ir.js";
import { UserError } from "../src/errors.js";
import {
  encodeSafetensors,
  parseSafetensors,
  SAFETENSORS_MAX_HEADER,
  SafetensorsError,
  toFloat32,
} from "../src/formats/safetensors.js";
import { packagePath } from "../src/paths.js";
import { assertUserError, runCli } from "./onnx-helpers.js";

const dir = mkdtempSync(join(tmpdir(), "mnistc-safetensors-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A file from a header object and a data section, as any writer could lay it out. */
function file(header: unknown, data: Uint8Array = new Uint8Array(0), pad = 0): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header) + " ".repeat(pad));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const f32 = (...values: number[]) => new Uint8Array(Float32Array.from(values).buffer);

function refused(bytes: Uint8Array, pattern: RegExp): void {
  assert.throws(
    () => parseSafetensors(bytes),
    (err: unknown) => {
      assert.ok(err instanceof SafetensorsError, String(err));
      assert.match(err.message, pattern);
      return true;
    },
  );
}

describe("safetensors reader", () => {
  test("reads names, dtypes, shapes, metadata and values; padding and order do not matter", () => {
    const data = new Uint8Array([...f32(1, 2, 3, 4, 5, 6), ...f32(-1.5)]);
    const parsed = parseSafetensors(
      file(
        {
          b: { dtype: "F32", shape: [], data_offsets: [24, 28] },
          __metadata__: { format: "pt" },
          a: { dtype: "F32", shape: [2, 3], data_offsets: [0, 24] },
        },
        data,
        5,
      ),
    );
    assert.deepEqual(parsed.metadata, { format: "pt" });
    assert.deepEqual(
      parsed.tensors.map((t) => [t.name, t.dtype, t.shape, [...toFloat32(t)]]),
      [
        ["a", "F32", [2, 3], [1, 2, 3, 4, 5, 6]],
        ["b", "F32", [], [-1.5]],
      ],
    );
  });

  test("F64, F16 and BF16 are converted to float32", () => {
    const f64 = new Uint8Array(Float64Array.from([0.1, -2]).buffer);
    // F16: 1.0 = 0x3c00, -2.5 = 0xc100, 2^-24 (smallest subnormal) = 0x0001.
    const f16 = new Uint8Array(Uint16Array.from([0x3c00, 0xc100, 0x0001]).buffer);
    // BF16: the top half of float32 1.5 (0x3fc00000).
    const bf16 = new Uint8Array(Uint16Array.from([0x3fc0]).buffer);
    const parsed = parseSafetensors(
      file(
        {
          d: { dtype: "F64", shape: [2], data_offsets: [0, 16] },
          h: { dtype: "F16", shape: [3], data_offsets: [16, 22] },
          b: { dtype: "BF16", shape: [1], data_offsets: [22, 24] },
        },
        new Uint8Array([...f64, ...f16, ...bf16]),
      ),
    );
    const values = Object.fromEntries(parsed.tensors.map((t) => [t.name, [...toFloat32(t)]]));
    assert.deepEqual(values, {
      d: [Math.fround(0.1), -2],
      h: [1, -2.5, 2 ** -24],
      b: [1.5],
    });
  });

  test("malformed files are refused, each with what is wrong", () => {
    const ok = { a: { dtype: "F32", shape: [2], data_offsets: [0, 8] } };
    refused(new Uint8Array(5), /shorter than the 8-byte header length/);
    const huge = new Uint8Array(16);
    new DataView(huge.buffer).setBigUint64(0, BigInt(SAFETENSORS_MAX_HEADER) + 1n, true);
    refused(huge, /over the 100000000-byte limit/);
    const lying = file(ok, f32(1, 2));
    new DataView(lying.buffer).setBigUint64(0, 1000n, true);
    refused(lying, /truncated: the header is 1000 bytes/);
    refused(file([1, 2]), /not a JSON object/);
    const text = new TextEncoder().encode("not json");
    const notJson = new Uint8Array(8 + text.length);
    new DataView(notJson.buffer).setBigUint64(0, BigInt(text.length), true);
    notJson.set(text, 8);
    refused(notJson, /the header is not a JSON object/);
    refused(file({ __metadata__: { n: 1 } }), /__metadata__.n is not a string/);
    refused(
      file({ a: { dtype: "F31", shape: [2], data_offsets: [0, 8] } }, f32(1, 2)),
      /unknown dtype "F31"/,
    );
    refused(
      file({ a: { dtype: "F32", shape: [-2], data_offsets: [0, 8] } }, f32(1, 2)),
      /not a list of sizes/,
    );
    refused(
      file({ a: { dtype: "F32", shape: [2], data_offsets: [0] } }, f32(1, 2)),
      /not \[begin, end\]/,
    );
    refused(
      file({ a: { dtype: "F32", shape: [2], data_offsets: [0, 12] } }, f32(1, 2)),
      /outside the 8-byte data/,
    );
    refused(
      file({ a: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, f32(1, 2)),
      /8 bytes for F32 \[3\], which needs 12/,
    );
    refused(
      file(
        {
          a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
          b: { dtype: "F32", shape: [1], data_offsets: [4, 8] },
        },
        f32(1, 2),
      ),
      /overlap/,
    );
    refused(
      file({ a: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, f32(1, 2)),
      /4 bytes before it belong to no tensor/,
    );
    refused(file(ok, f32(1, 2, 3)), /4 bytes after the last tensor/);
  });

  test("the writer's files read back, header padded to 8 bytes", () => {
    const bytes = encodeSafetensors(
      [
        { name: "w", shape: [2, 2], data: Float32Array.from([1, -2, 3.5, 0]) },
        { name: "b", shape: [1], data: Float32Array.from([7]) },
      ],
      { "mnistc.spec": "x" },
    );
    assert.equal(Number(new DataView(bytes.buffer).getBigUint64(0, true)) % 8, 0);
    const parsed = parseSafetensors(bytes);
    assert.deepEqual(parsed.metadata, { "mnistc.spec": "x" });
    assert.deepEqual(
      parsed.tensors.map((t) => [t.name, t.shape, [...toFloat32(t)]]),
      [
        ["w", [2, 2], [1, -2, 3.5, 0]],
        ["b", [1], [7]],
      ],
    );
  });
});

function compile(name: string): ModelIR {
  const path = packagePath("specs", `${name}.yaml`);
  const { ir } = compileSpec(readFileSync(path, "utf8"), path);
  assert.ok(ir);
  return ir;
}

describe("safetensors weights against a spec", () => {
  const ir = compile("step4");
  const weights = torchInitWeights(ir, 3);

  test("mnistc's own file round-trips, and PyTorch's num_batches_tracked (I64) is ignored", () => {
    const parsed = parseSafetensors(safetensorsFromWeights(ir, weights));
    assert.deepEqual(parsed.metadata, { format: "pt", "mnistc.spec": "step4" });
    const back = torchWeightsFromSafetensors(ir, parsed);
    assert.ok("weights" in back);
    assert.deepEqual(back.weights, weights);
    const tracked = {
      name: "conv1.2.num_batches_tracked",
      dtype: "I64" as const,
      shape: [],
      bytes: new Uint8Array(8),
    };
    const withTracked = { ...parsed, tensors: [...parsed.tensors, tracked] };
    assert.ok("weights" in torchWeightsFromSafetensors(ir, withTracked));
  });

  test("every mismatch is named: missing, shape, dtype, unknown", () => {
    const parsed = parseSafetensors(safetensorsFromWeights(ir, weights));
    const tensors = parsed.tensors
      .filter((t) => t.name !== "conv1.0.bias")
      .map((t) =>
        t.name === "conv2.0.weight"
          ? { ...t, shape: [16, 8, 3, 3] }
          : t.name === "conv5.0.bias"
            ? { ...t, dtype: "I32" as const }
            : t,
      );
    tensors.push({ name: "fc.weight", dtype: "F32", shape: [10, 4], bytes: new Uint8Array(160) });
    tensors.push({
      name: "gap1.0.num_batches_tracked",
      dtype: "I64",
      shape: [],
      bytes: new Uint8Array(8),
    });
    const result = torchWeightsFromSafetensors(ir, { metadata: {}, tensors });
    assert.ok("errors" in result);
    assert.deepEqual(result.errors, [
      "conv1.0.bias [128] is missing",
      "conv2.0.weight is [16, 4, 3, 3] in the spec but [16, 8, 3, 3] in the file",
      "conv5.0.bias is I32, not a floating-point tensor",
      "fc.weight [10, 4] is not a parameter of the spec",
      "gap1.0.num_batches_tracked [] is not a parameter of the spec",
    ]);
  });

  test("the CLI names the file and what does not fit, in one line", () => {
    const path = join(dir, "step4.safetensors");
    writeFileSync(path, safetensorsFromWeights(ir, weights));
    const r = runCli([
      "export",
      packagePath("specs", "step1.yaml"),
      "--weights",
      path,
      "-o",
      join(dir, "x.onnx"),
    ]);
    assertUserError(
      r,
      /step4\.safetensors: does not fit spec step1: conv1\.0\.weight is \[16, 1, 3, 3\] in the spec but \[128, 1, 3, 3\] in the file; .*; and \d+ more$/m,
    );
    // The same loader, in this process: a damaged file and a missing one.
    const step4 = compile("step4");
    const broken = join(dir, "broken.safetensors");
    writeFileSync(broken, safetensorsFromWeights(ir, weights).subarray(0, 100));
    assert.throws(
      () => loadWeights(broken, step4),
      (err: unknown) =>
        err instanceof UserError &&
        /broken\.safetensors: truncated: the header is \d+ bytes but the file has 92 after the length$/.test(
          err.message,
        ),
    );
    assert.throws(
      () => loadWeights(join(dir, "none.safetensors"), step4),
      (err: unknown) =>
        err instanceof UserError && /none\.safetensors: no such file$/.test(err.message),
    );
  });
});
