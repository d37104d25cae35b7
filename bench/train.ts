// `npm run bench:train [-- options]`: time one training step (forward, backward, SGD-momentum
// update) of a spec's net, by default the seed's (specs/step4.yaml), on random MNIST-shaped data,
// side by side: the tfjs program, the compiled ONNX step on 1 and 2 threads, and PyTorch's step
// of the seed's own Net on 1 and 2 threads when Debian's python3-torch is installed.
// The model is the real one: the spec is compiled, emitted by the tfjs backend, and the emitted
// model.mjs builds it; the step is the training loop's own `trainStep` (NLL on log-softmax, the
// runtime's optimizer).
//
//   --batch-size N   images per step (default 128)
//   --steps N        timed steps after the warm-up (default 10)
//   --warmup N       untimed steps first (default 3)
//   --spec FILE      another spec (default specs/step4.yaml)
//   --profile        also profile: the tfjs program's top kernels of one step (tf.profile), and the
//                    ONNX step on 1 and 2 threads by op type and its slowest nodes (onnxruntime's
//                    profiler)
//   --loop           also time the whole training loop: one real epoch of `mnistc train` on the
//                    spec's dataset at 1 and 2 threads (batch assembly, augmentation, progress, the
//                    test pass and the checkpoint included), per step, beside the step alone
//   --against DIR    also time another build's ONNX step beside this one's, their steps alternating
//                    (so a load change hits both), on 1 and 2 threads: DIR is that checkout's root,
//                    built (`git archive REV | tar -x -C DIR`, node_modules linked, `npx tsc`)
//   --json           the figures as JSON on stdout
// MNISTC_ENGINE=wasm|cpu|tensorflow picks the engine (default: the fastest that loads).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { onnxSteps } from "../src/cli/onnx-steps.js";
import { type EmittedProgram, loadProgram } from "../src/cli/program.js";
import { compileSpec, formatDiagnostic } from "../src/compiler/index.js";
import type { ModelIR } from "../src/compiler/ir.js";
import { packagePath } from "../src/paths.js";
import type { Batch } from "../src/runtime/data/batches.js";
import { initEngine, type Tfjs } from "../src/runtime/tfjs/engine.js";
import { tfjsTrainer } from "../src/runtime/tfjs/trainer.js";
import type { StepperFactory } from "../src/runtime/train/step.js";
import { Rng } from "../src/util/rng.js";
import { type MemoryRate, memoryRate, type OnnxProfile, profileOnnxStep } from "./onnx-profile.js";
import { type KernelTime, median, topKernels } from "./stats.js";

class BenchError extends Error {}

interface Options {
  batchSize: number;
  steps: number;
  warmup: number;
  spec: string;
  profile: boolean;
  loop: boolean;
  against?: string;
  json: boolean;
}

function positiveInt(name: string, text: string | undefined, fallback: number, min = 1): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) {
    throw new BenchError(`--${name} must be an integer >= ${min}, got ${JSON.stringify(text)}`);
  }
  return value;
}

function parseOptions(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      "batch-size": { type: "string" },
      steps: { type: "string" },
      warmup: { type: "string" },
      spec: { type: "string" },
      profile: { type: "boolean", default: false },
      loop: { type: "boolean", default: false },
      against: { type: "string" },
      json: { type: "boolean", default: false },
    },
  });
}

function readOptions(argv: string[]): Options {
  let parsed: ReturnType<typeof parseOptions>;
  try {
    parsed = parseOptions(argv);
  } catch (err) {
    throw new BenchError((err as Error).message);
  }
  const { values } = parsed;
  return {
    batchSize: positiveInt("batch-size", values["batch-size"], 128),
    steps: positiveInt("steps", values.steps, 10),
    warmup: positiveInt("warmup", values.warmup, 3, 0),
    spec: values.spec ? resolve(values.spec) : packagePath("specs", "step4.yaml"),
    profile: values.profile === true,
    loop: values.loop === true,
    ...(values.against ? { against: resolve(values.against) } : {}),
    json: values.json === true,
  };
}

function compile(file: string): ModelIR {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new BenchError(`cannot read spec ${file}: ${(err as Error).message}`);
  }
  const { ir, diagnostics } = compileSpec(text, file);
  if (!ir) throw new BenchError(`${file}:\n${diagnostics.map(formatDiagnostic).join("\n")}`);
  return ir;
}

/** Emit the tfjs program to a temporary directory and import its model.mjs, as `train` does. */
async function emittedProgram(ir: ModelIR): Promise<EmittedProgram> {
  const dir = mkdtempSync(join(tmpdir(), "mnistc-bench-"));
  try {
    return await loadProgram(ir, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One fixed batch of random MNIST-shaped data (uniform over the normalized pixel range). */
function randomBatch(ir: ModelIR, batchSize: number): Batch {
  const { height, width, channels } = ir.input;
  const rng = new Rng(1);
  const mean = ir.data.mean?.[0] ?? 0;
  const std = ir.data.std?.[0] ?? 1;
  const labels = Uint8Array.from({ length: batchSize }, () => rng.int(ir.classes));
  const oneHot = new Float32Array(batchSize * ir.classes);
  labels.forEach((label, i) => {
    oneHot[i * ir.classes + label] = 1;
  });
  const pixels = batchSize * height * width * channels;
  return {
    size: batchSize,
    images: Float32Array.from({ length: pixels }, () => rng.uniform(-mean / std, (1 - mean) / std)),
    targets: oneHot,
    labels,
  };
}

/** A stepper on the emitted program's model: the training loop's own step, tfjs or ONNX. */
async function makeStepper(
  tf: Tfjs,
  ir: ModelIR,
  program: EmittedProgram,
  batchSize: number,
  threads: number | undefined,
): Promise<{ step: () => Promise<number>; dispose: () => void }> {
  const factory =
    threads === undefined ? tfjsTrainer(tf, program.buildModel) : await onnxSteps(ir, threads);
  const stepper = await factory({ spec: program.spec, seed: ir.train.seed, batchSize });
  const batch = randomBatch(ir, batchSize);
  const hyper = { lr: ir.train.optimizer.lr };
  return {
    step: async () => (await stepper.step(batch, hyper)).loss,
    dispose: () => stepper.dispose(),
  };
}

interface Row {
  what: string;
  threads: number;
  medianMs: number;
  minMs: number;
  cpuMedianMs?: number;
  loss?: number;
  /** Whole-loop rows: the mean ms of a step inside the loop, and the share of the epoch outside
   * the steps (batch assembly and augmentation, the test pass, the epoch's outputs). */
  inLoopStepMs?: number;
  outsideSteps?: number;
}

async function timeSteps(
  what: string,
  threads: number,
  run: { step: () => Promise<number> },
  options: Options,
): Promise<Row> {
  for (let i = 0; i < options.warmup; i++) await run.step();
  const times: number[] = [];
  const cpuTimes: number[] = [];
  let loss = Number.NaN;
  for (let i = 0; i < options.steps; i++) {
    const started = performance.now();
    const cpu = process.cpuUsage();
    loss = await run.step();
    const used = process.cpuUsage(cpu);
    times.push(performance.now() - started);
    cpuTimes.push((used.user + used.system) / 1000);
  }
  return {
    what,
    threads,
    medianMs: round(median(times)),
    minMs: round(Math.min(...times)),
    cpuMedianMs: round(median(cpuTimes)),
    loss: round(loss, 4),
  };
}

/**
 * `--against DIR`: DIR's build compiles the spec and makes its ONNX stepper the same way; the two
 * steppers take their steps in turn, on the same batch, and each gets its median.
 */
async function againstRows(
  dir: string,
  ir: ModelIR,
  program: EmittedProgram,
  threads: number,
  options: Options,
): Promise<Row[]> {
  const load = async <M>(path: string) =>
    (await import(pathToFileURL(join(dir, "dist", "src", path)).href)) as M;
  let other: typeof import("../src/cli/onnx-steps.js");
  let compiler: typeof import("../src/compiler/index.js");
  try {
    other = await load("cli/onnx-steps.js");
    compiler = await load("compiler/index.js");
  } catch (err) {
    throw new BenchError(`--against ${dir}: not a built checkout (${(err as Error).message})`);
  }
  const otherIr = compiler.compileSpec(readFileSync(options.spec, "utf8"), options.spec).ir;
  if (!otherIr) throw new BenchError(`--against ${dir}: its compiler rejects ${options.spec}`);
  const make = async (factory: StepperFactory) => {
    const stepper = await factory({
      spec: program.spec,
      seed: ir.train.seed,
      batchSize: options.batchSize,
    });
    const batch = randomBatch(ir, options.batchSize);
    const hyper = { lr: ir.train.optimizer.lr };
    return {
      step: async () => (await stepper.step(batch, hyper)).loss,
      dispose: () => stepper.dispose(),
    };
  };
  const pair = [
    {
      what: `ONNX step, this build`,
      run: await make(await onnxSteps(ir, threads)),
      times: [] as number[],
    },
    {
      what: `ONNX step, ${basename(dir)}'s build`,
      run: await make(await other.onnxSteps(otherIr, threads)),
      times: [] as number[],
    },
  ];
  for (const p of pair) for (let i = 0; i < options.warmup; i++) await p.run.step();
  for (let i = 0; i < options.steps; i++) {
    for (const p of pair) {
      const started = performance.now();
      await p.run.step();
      p.times.push(performance.now() - started);
    }
  }
  for (const p of pair) p.run.dispose();
  return pair.map((p) => ({
    what: p.what,
    threads,
    medianMs: round(median(p.times)),
    minMs: round(Math.min(...p.times)),
  }));
}

/** PyTorch's step of the seed's Net at each thread count, when Debian's python3-torch is there. */
function torchRows(options: Options): Row[] {
  const script = packagePath("tools", "torch-reference", "bench_step.py");
  const r = spawnSync(
    "/usr/bin/python3",
    [
      script,
      "--batch-size",
      String(options.batchSize),
      "--steps",
      String(options.steps),
      "--warmup",
      String(options.warmup),
      "1",
      "2",
    ],
    { encoding: "utf8" },
  );
  if (r.status !== 0) return [];
  return r.stdout
    .trim()
    .split("\n")
    .map((line: string) => JSON.parse(line) as { threads: number; torch: string; medianMs: number })
    .map((t) => ({
      what: `PyTorch ${t.torch}`,
      threads: t.threads,
      medianMs: t.medianMs,
      minMs: Number.NaN,
    }));
}

/**
 * The whole loop per step: one epoch of the real `mnistc train` in a child process, its epoch time
 * (from metrics.json: every batch assembled and augmented, the steps, the test pass, the
 * checkpoint and plot) over its step count.
 */
function loopRow(options: Options, threads: number): Row {
  const out = mkdtempSync(join(tmpdir(), "mnistc-bench-loop-"));
  try {
    const cli = packagePath("dist", "src", "cli.js");
    const args = [cli, "train", options.spec, "--epochs", "1", "--batch-size"];
    args.push(String(options.batchSize), "--threads", String(threads), "--out", out);
    const r = spawnSync(process.execPath, [...args, "--force", "--quiet", "--json"], {
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024,
    });
    if (r.status !== 0) throw new BenchError(`mnistc train failed: ${r.stderr.trim()}`);
    const metrics = JSON.parse(r.stdout) as {
      epochs: { seconds: number; stepSeconds?: number }[];
      trainExamples: number;
    };
    const seconds = metrics.epochs[0]?.seconds ?? Number.NaN;
    const stepSeconds = metrics.epochs[0]?.stepSeconds ?? Number.NaN;
    const steps = Math.ceil(metrics.trainExamples / options.batchSize);
    return {
      what: "whole loop, one real epoch",
      threads,
      medianMs: round((seconds * 1000) / steps),
      minMs: Number.NaN,
      inLoopStepMs: round((stepSeconds * 1000) / steps),
      outsideSteps: round(1 - stepSeconds / seconds, 3),
    };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const options = readOptions(process.argv.slice(2));
  const { tf, name: engine } = await initEngine();
  const ir = compile(options.spec);
  const program = await emittedProgram(ir);
  process.stderr.write(
    `bench:train ${ir.name}, batch ${options.batchSize}: ${options.warmup} warm-up + ${options.steps} timed steps each\n`,
  );
  const rows: Row[] = [];
  const run = async (what: string, threads: number | undefined) => {
    const stepper = await makeStepper(tf, ir, program, options.batchSize, threads);
    rows.push(await timeSteps(what, threads ?? 1, stepper, options));
    stepper.dispose();
    process.stderr.write(`  ${what}${threads ? ` (${threads} threads)` : ""}: done\n`);
  };
  await run(`tfjs program (${engine})`, undefined);
  await run("ONNX step (onnxruntime)", 1);
  await run("ONNX step (onnxruntime)", 2);
  if (options.against) {
    for (const threads of [1, 2]) {
      rows.push(...(await againstRows(options.against, ir, program, threads, options)));
      process.stderr.write(`  this build against ${options.against} (${threads} threads): done\n`);
    }
  }
  if (options.loop) {
    for (const threads of [1, 2]) {
      rows.push(loopRow(options, threads));
      process.stderr.write(`  whole loop (${threads} threads): done\n`);
    }
  }
  // The reference is the seed's own Net: the same as step4 only for step4.
  if (ir.name === "step4") rows.push(...torchRows(options));
  let kernels: KernelTime[] | undefined;
  const onnxProfiles: OnnxProfile[] = [];
  const memoryRates: MemoryRate[] = [];
  if (options.profile) {
    for (const threads of [1, 2]) {
      onnxProfiles.push(
        await profileOnnxStep(ir, options.batchSize, threads, options.warmup, options.steps),
      );
      memoryRates.push(await memoryRate(threads));
    }
    const stepper = await makeStepper(tf, ir, program, options.batchSize, undefined);
    const profile = await tf.profile(async () => {
      await stepper.step();
    });
    stepper.dispose();
    kernels = await topKernels(
      profile.kernels,
      (k) => (tf.getKernel(k, tf.getBackend()) as unknown) !== undefined,
    );
  }
  const torchAt = (threads: number) =>
    rows.find((r) => r.what.startsWith("PyTorch") && r.threads === threads);
  const result = {
    spec: ir.name,
    batchSize: options.batchSize,
    steps: options.steps,
    loadAverage: round(loadavg()[0] as number, 2),
    cores: cpus().length,
    rows: rows.map((r) => {
      const reference = torchAt(r.threads);
      return { ...r, vsPyTorch: reference ? round(r.medianMs / reference.medianMs, 2) : null };
    }),
    ...(kernels ? { kernels } : {}),
    ...(onnxProfiles.length > 0 ? { onnxProfiles, memoryRates } : {}),
  };
  if (options.json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  const lines = [
    `${ir.name}, batch ${options.batchSize}, median of ${options.steps} steps (load average ${result.loadAverage} on ${result.cores} cores)`,
    `${"".padEnd(34)} ${"threads".padStart(7)} ${"ms/step".padStart(9)} ${"images/s".padStart(9)} ${"× PyTorch".padStart(10)}`,
    ...result.rows.map(
      (r) =>
        `${r.what.padEnd(34)} ${String(r.threads).padStart(7)} ${r.medianMs.toFixed(1).padStart(9)} ${String(round((options.batchSize * 1000) / r.medianMs, 0)).padStart(9)} ${(r.vsPyTorch === null ? "" : r.vsPyTorch.toFixed(2)).padStart(10)}`,
    ),
    "× PyTorch: ms per step over PyTorch's at the same thread count (below 1 is faster).",
    ...result.rows.flatMap((r) =>
      r.outsideSteps === undefined
        ? []
        : [
            `whole loop, ${r.threads} thread${r.threads === 1 ? "" : "s"}: a step inside the loop ${r.inLoopStepMs?.toFixed(1)} ms; ${(r.outsideSteps * 100).toFixed(1)}% of the epoch outside the steps (batches, augmentation, test pass, outputs)`,
          ],
    ),
  ];
  if (kernels) {
    const total = kernels.reduce((s, k) => s + k.ms, 0);
    lines.push(`top tfjs kernels of one profiled step (${round(total)} ms in the kernels listed):`);
    for (const k of kernels) {
      lines.push(`  ${k.name.padEnd(24)} ${String(round(k.ms)).padStart(8)} ms  ${k.calls} calls`);
    }
  }
  for (const p of onnxProfiles) {
    lines.push(
      `ONNX step on ${p.threads} threads, onnxruntime's profiler (${round(p.kernelMsPerStep)} ms of kernels a step, the profiler on), by op type:`,
      ...p.byOpType.map(
        (t) => `  ${t.name.padEnd(24)} ${String(round(t.ms)).padStart(8)} ms  ${t.calls} nodes`,
      ),
      "  slowest nodes:",
      ...p.topNodes.map(
        (n) => `  ${String(round(n.ms)).padStart(6)} ms  ${n.opType.padEnd(20)} ${n.shape}`,
      ),
    );
  }
  for (const m of memoryRates) {
    lines.push(
      `memory, ${m.threads} thread${m.threads === 1 ? "" : "s"}: a Relu over [128, 128, 26, 26] between onnxruntime's buffers (44 MB in, 44 MB out) ${round(m.ms, 2)} ms, ${round(m.gbPerSecond)} GB/s`,
    );
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}

function round(value: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

try {
  await main();
} catch (err) {
  // A bad option or spec is a one-line error; anything else keeps its stack (a bug).
  if (err instanceof BenchError || (err as { name?: string }).name === "UserError") {
    process.stderr.write(`bench:train: error: ${(err as Error).message}\n`);
    process.exitCode = 1;
  } else {
    throw err;
  }
}
