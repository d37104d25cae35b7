// onnxruntime's profiler on a spec's compiled training step (bench:train --profile): milliseconds
// per step by op type and the nodes that take longest, from the profile's kernel events. The
// step graph is the one `mnistc train` runs; its state is random (the timings do not depend on it).
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { buildTrainingStep } from "../src/backends/onnx-train/index.js";
import type { ModelIR } from "../src/compiler/ir.js";
import { encodeModel, floatValue, ONNX_IR_VERSION, onnx } from "../src/formats/onnx-proto.js";
import { Rng } from "../src/util/rng.js";
import { sizeOf } from "../src/util/shape.js";
import type { KernelTime } from "./stats.js";

export interface OnnxProfile {
  threads: number;
  /** Σ of the kernel times per step (the profiler's own overhead included in the run). */
  kernelMsPerStep: number;
  byOpType: KernelTime[];
  topNodes: (KernelTime & { opType: string; shape: string })[];
}

interface ProfileEvent {
  cat?: string;
  name?: string;
  dur?: number;
  ts?: number;
  args?: { op_name?: string; output_type_shape?: unknown };
}

export async function profileOnnxStep(
  ir: ModelIR,
  batch: number,
  threads: number,
  warmup: number,
  steps: number,
  limit = 12,
): Promise<OnnxProfile> {
  const { model, signature } = buildTrainingStep(ir, batch);
  const dir = mkdtempSync(join(tmpdir(), "mnistc-ortprof-"));
  try {
    const session = await ort.InferenceSession.create(encodeModel(model), {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: "sequential",
      graphOptimizationLevel: "all",
      enableProfiling: true,
      profileFilePrefix: join(dir, "step"),
    });
    const rng = new Rng(1);
    const random = (shape: number[], scale: number) =>
      new ort.Tensor(
        "float32",
        Float32Array.from({ length: sizeOf(shape) }, () => rng.uniform(-scale, scale)),
        shape,
      );
    const feeds: Record<string, ort.Tensor> = {
      [signature.x.name]: random(signature.x.shape, 1),
      [signature.target.name]: new ort.Tensor(
        "float32",
        new Float32Array(sizeOf(signature.target.shape)).fill(0.1),
        signature.target.shape,
      ),
    };
    for (const name of signature.scalars) feeds[name] = new ort.Tensor("float32", [0.01], []);
    for (const m of signature.masks)
      feeds[m.name] = new ort.Tensor("float32", new Float32Array(sizeOf(m.shape)).fill(1), m.shape);
    for (const e of signature.state) {
      // Variances must be positive; anything else may be any small value.
      feeds[e.name] = e.name.endsWith("running_var")
        ? new ort.Tensor("float32", new Float32Array(sizeOf(e.shape)).fill(1), e.shape)
        : random(e.shape, 0.1);
    }
    for (let i = 0; i < warmup + steps; i++) await session.run(feeds);
    session.endProfiling();
    await session.release();
    const events = profileEvents(dir);
    // Only the timed runs: node events from the start of the first run after the warm-up.
    const runs = events
      .filter((e) => e.cat === "Session" && e.name === "model_run")
      .map((e) => e.ts ?? 0)
      .sort((a, b) => a - b);
    const from = runs[warmup] ?? 0;
    const byNode = new Map<string, KernelTime & { opType: string; shape: string }>();
    for (const e of events) {
      if (e.cat !== "Node" || !e.name?.endsWith("_kernel_time") || (e.ts ?? 0) < from) continue;
      const name = e.name.slice(0, -"_kernel_time".length);
      const n = byNode.get(name) ?? {
        name,
        opType: e.args?.op_name ?? "?",
        shape: JSON.stringify(e.args?.output_type_shape ?? ""),
        ms: 0,
        calls: 1,
      };
      n.ms += (e.dur ?? 0) / 1000 / steps;
      byNode.set(name, n);
    }
    // By op type: the nodes' times summed, `calls` the number of nodes of that type.
    const byType = new Map<string, KernelTime>();
    for (const n of byNode.values()) {
      const t = byType.get(n.opType) ?? { name: n.opType, ms: 0, calls: 0 };
      t.ms += n.ms;
      t.calls += 1;
      byType.set(n.opType, t);
    }
    const largest = <T extends { ms: number }>(m: Map<string, T>) =>
      [...m.values()].sort((a, b) => b.ms - a.ms).slice(0, limit);
    return {
      threads,
      kernelMsPerStep: [...byType.values()].reduce((s, t) => s + t.ms, 0),
      byOpType: largest(byType),
      topNodes: largest(byNode),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The events of the profile onnxruntime wrote into `dir` (its session ended). */
function profileEvents(dir: string): ProfileEvent[] {
  const file = readdirSync(dir).find((f) => f.endsWith(".json"));
  if (!file) throw new Error("onnxruntime wrote no profile");
  return JSON.parse(readFileSync(join(dir, file), "utf8")) as ProfileEvent[];
}

/** The median kernel time (ms) of node `node` over a profile's events. */
function medianKernelMs(events: ProfileEvent[], node: string): number {
  const times = events
    .filter((e) => e.cat === "Node" && e.name === `${node}_kernel_time`)
    .map((e) => (e.dur ?? 0) / 1000)
    .sort((a, b) => a - b);
  return times[times.length >> 1] ?? Number.NaN;
}

export interface MemoryRate {
  threads: number;
  /** Median kernel time of the Relu. */
  ms: number;
  /** Bytes read and written a second. */
  gbPerSecond: number;
}

/**
 * What one pass over memory costs here: a Relu over `shape` (step4's first layer at batch 128 by
 * default: 44 MB read, 44 MB written) between two of onnxruntime's own buffers, as the step's
 * passes run (x → Relu → Relu → ReduceMax; the second Relu is timed: the first one's reads of the
 * caller's input and a graph output's fresh pages would cost more), its median kernel time on
 * `threads`.
 */
export async function memoryRate(
  threads: number,
  shape = [128, 128, 26, 26],
  runs = 20,
): Promise<MemoryRate> {
  const model = onnx.ModelProto.create({
    irVersion: ONNX_IR_VERSION,
    opsetImport: [{ domain: "", version: 17 }],
    graph: {
      name: "relu",
      node: [
        { opType: "Relu", input: ["x"], output: ["a"], name: "first" },
        { opType: "Relu", input: ["a"], output: ["b"], name: "timed" },
        { opType: "ReduceMax", input: ["b"], output: ["y"], name: "max" },
      ],
      input: [floatValue("x", shape)],
      output: [
        floatValue(
          "y",
          shape.map(() => 1),
        ),
      ],
    },
  });
  const dir = mkdtempSync(join(tmpdir(), "mnistc-ortmem-"));
  try {
    const session = await ort.InferenceSession.create(encodeModel(model), {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      enableProfiling: true,
      profileFilePrefix: join(dir, "relu"),
    });
    const x = new ort.Tensor("float32", new Float32Array(sizeOf(shape)).fill(0.5), shape);
    for (let i = 0; i < runs; i++) await session.run({ x });
    session.endProfiling();
    await session.release();
    const ms = medianKernelMs(profileEvents(dir), "timed");
    return { threads, ms, gbPerSecond: (2 * 4 * sizeOf(shape)) / (ms * 1e6) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
