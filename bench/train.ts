// `npm run bench:train [-- options]`: time one training step (forward, backward, SGD-momentum
// update) of a spec's net, by default the seed's (specs/step4.yaml), on random MNIST-shaped data.
// The model is the real one: the spec is compiled, emitted by the tfjs backend, and the emitted
// model.mjs builds it; the step is the training loop's own `trainStep` (NLL on log-softmax, the
// runtime's optimizer).
//
//   --batch-size N   images per step (default 128)
//   --steps N        timed steps after the warm-up (default 10)
//   --warmup N       untimed steps first (default 3)
//   --spec FILE      another spec (default specs/step4.yaml)
//   --profile        also profile one step: top kernels by time (tf.profile)
//   --json           the figures as JSON on stdout
// MNISTC_ENGINE=wasm|cpu|tensorflow picks the engine (default: the fastest that loads).
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { loadProgram } from "../src/cli/program.js";
import { compileSpec, formatDiagnostic } from "../src/compiler/index.js";
import type { ModelIR } from "../src/compiler/ir.js";
import { packagePath } from "../src/paths.js";
import type { Batch } from "../src/runtime/data/batches.js";
import { initEngine, type Tfjs } from "../src/runtime/tfjs/engine.js";
import type { BuildModel } from "../src/runtime/train/loop.js";
import { createOptimizer } from "../src/runtime/train/optim.js";
import { namedParams, trainStep } from "../src/runtime/train/step.js";
import { Rng } from "../src/util/rng.js";
import { type KernelTime, mean, median, topKernels } from "./stats.js";

class BenchError extends Error {}

interface Options {
  batchSize: number;
  steps: number;
  warmup: number;
  spec: string;
  profile: boolean;
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
async function emittedBuildModel(ir: ModelIR): Promise<BuildModel> {
  const dir = mkdtempSync(join(tmpdir(), "mnistc-bench-"));
  try {
    return (await loadProgram(ir, dir)).buildModel;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The training loop's own step (`trainStep`) on one fixed batch of random MNIST-shaped data. */
function makeStep(tf: Tfjs, ir: ModelIR, buildModel: BuildModel, batchSize: number) {
  const model = buildModel(tf, { seed: ir.train.seed });
  const params = namedParams(model);
  const optimizer = createOptimizer(tf, ir.train.optimizer);
  const { height, width, channels } = ir.input;
  const rng = new Rng(1);
  const pixels = batchSize * height * width * channels;
  // Uniform over the range of normalised pixels, (0 − mean)/std … (1 − mean)/std.
  const mean = ir.data.mean[0] ?? 0;
  const std = ir.data.std[0] ?? 1;
  const labels = Uint8Array.from({ length: batchSize }, () => rng.int(ir.classes));
  const oneHot = new Float32Array(batchSize * ir.classes);
  labels.forEach((label, i) => {
    oneHot[i * ir.classes + label] = 1;
  });
  const batch: Batch = {
    size: batchSize,
    images: Float32Array.from({ length: pixels }, () => rng.uniform(-mean / std, (1 - mean) / std)),
    oneHot,
    labels,
  };
  const hyper = { lr: ir.train.optimizer.lr };
  return (): number => trainStep(tf, model, params, optimizer, batch, [height, width], hyper).loss;
}

async function main(): Promise<void> {
  const options = readOptions(process.argv.slice(2));
  const { tf, name: engine } = await initEngine();
  const ir = compile(options.spec);
  const step = makeStep(tf, ir, await emittedBuildModel(ir), options.batchSize);
  process.stderr.write(
    `bench:train ${ir.name}, batch ${options.batchSize}, engine ${engine}: ` +
      `${options.warmup} warm-up + ${options.steps} timed steps\n`,
  );

  for (let i = 0; i < options.warmup; i++) step();
  const times: number[] = [];
  // CPU time too: the machine is shared, and wall time under load overstates a step (the wasm
  // engine is single-threaded, so CPU time is what one step costs on an idle core).
  const cpuTimes: number[] = [];
  let loss = Number.NaN;
  for (let i = 0; i < options.steps; i++) {
    const started = performance.now();
    const cpu = process.cpuUsage();
    loss = step();
    const used = process.cpuUsage(cpu);
    times.push(performance.now() - started);
    cpuTimes.push((used.user + used.system) / 1000);
  }
  let kernels: KernelTime[] | undefined;
  if (options.profile) {
    const profile = await tf.profile(() => {
      step();
    });
    kernels = await topKernels(
      profile.kernels,
      (k) => (tf.getKernel(k, tf.getBackend()) as unknown) !== undefined,
    );
  }

  const medianMs = median(times);
  const result = {
    spec: ir.name,
    engine,
    batchSize: options.batchSize,
    steps: options.steps,
    medianMs: round(medianMs),
    meanMs: round(mean(times)),
    minMs: round(Math.min(...times)),
    maxMs: round(Math.max(...times)),
    cpuMedianMs: round(median(cpuTimes)),
    imagesPerSecond: round((options.batchSize * 1000) / medianMs),
    loadAverage: round(loadavg()[0] as number, 2),
    loss: round(loss, 4),
    ...(kernels ? { kernels } : {}),
  };
  if (options.json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  const lines = [
    `engine ${engine}, ${ir.name}, batch ${options.batchSize}, ${options.steps} steps`,
    `ms/step: median ${result.medianMs}, mean ${result.meanMs} (min ${result.minMs}, max ${result.maxMs})`,
    `cpu ms/step: median ${result.cpuMedianMs} (load average ${result.loadAverage} on ${cpus().length} cores)`,
    `images/s: ${result.imagesPerSecond}`,
  ];
  if (kernels) {
    const total = kernels.reduce((s, k) => s + k.ms, 0);
    lines.push(`top kernels of one profiled step (${round(total)} ms in the kernels listed):`);
    for (const k of kernels) {
      lines.push(`  ${k.name.padEnd(24)} ${String(round(k.ms)).padStart(8)} ms  ${k.calls} calls`);
    }
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
