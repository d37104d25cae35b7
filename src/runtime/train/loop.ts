// The training loop, as the seed's PyTorch loop: per batch zero-grad, forward in training mode, NLL
// loss on the log-softmax output (with distillation's term when the spec distills: its teachers
// see each batch first), backward, optimizer step (lr from the scheduler); after each epoch
// an evaluation on the test set in inference mode, then metrics.json, plot.png and an atomic
// checkpoint. `runTraining` is what both `mnistc train` and the emitted `train.mjs` run; the
// backend is its stepper's (`step.ts`), and the state it checkpoints belongs to none (`state.ts`).
// Nothing here loads TensorFlow.js: the tfjs backend comes in through `trainMain` or the CLI.
import { basename, join, relative, resolve } from "node:path";
import type * as tfNs from "@tensorflow/tfjs";
import { Command } from "commander";
import { nameProblem } from "../../compiler/names.js";
import { UserError } from "../../errors.js";
import { ensureDir } from "../../util/files.js";
import { Rng } from "../../util/rng.js";
import { counted } from "../../util/text.js";
import { BatchAssembler, batchCount, epochOrder, type Normalization } from "../data/batches.js";
import { type Dataset, loadDataset } from "../data/sources.js";
import { type ImageSplit, type LoadedData, sliceSplit } from "../data/split.js";
import {
  readCheckpoint,
  readTrainingRecord,
  removeStaleTemps,
  resolveCheckpointDir,
  type TrainingRecord,
  writeCheckpoint,
  writeFileAtomic,
} from "./checkpoint.js";
import type { Teachers } from "./distill.js";
import { WeightEma } from "./ema.js";
import {
  type EpochMetrics,
  formatEpochSummary,
  type RunMetrics,
  RunningMetrics,
  type RunOptions,
} from "./metrics.js";
import { nanLossMessage } from "./nan-loss.js";
import { addTrainOptions, oneLineErrors, type TrainOptions } from "./options.js";
import { Progress } from "./progress.js";
import { RunFolder, specInputs } from "./run-folder.js";
import { type ScheduleInput, scheduleAt } from "./schedule.js";
import type { TrainSpec } from "./spec.js";
import type { TrainingState } from "./state.js";
import type { Stepper, StepperFactory } from "./step.js";

type Tf = typeof tfNs;

export type { TrainSpec } from "./spec.js";

export type BuildModel = (tf: Tf, options: { seed: number }) => tfNs.LayersModel;

export interface TrainRun {
  /** What runs the steps, recorded in metrics.json: the tfjs engine (`wasm`), `onnxruntime`. */
  engine: string;
  /** Its version, printed beside it at the start (`TensorFlow.js 4.22.0`). */
  engineVersion?: string;
  spec: TrainSpec;
  /** Who takes the steps: `tfjsTrainer` (runtime/tfjs/trainer.ts) or the ONNX stepper. */
  stepper: StepperFactory;
  options: TrainOptions;
  /** Already loaded data (tests); otherwise loaded per the options. */
  data?: LoadedData | Dataset;
  /** Where progress and logs go (default: stderr). */
  stream?: NodeJS.WriteStream;
  /** Called after each epoch's outputs are written (tests watch memory through it). */
  onEpoch?: (metrics: EpochMetrics) => void;
  /** The output folder, opened and locked by the caller (default: opened here, released after). */
  folder?: RunFolder;
  /** onnxruntime's threads for each teacher (default: ORT's choice). */
  teacherThreads?: number;
}

export type { StepperFactory } from "./step.js";

interface ResumePoint {
  dir: string;
  state: TrainingState;
}

function findResumePoint(out: string, spec: TrainSpec): ResumePoint {
  const dir = resolveCheckpointDir(join(out, "checkpoint"));
  let record: TrainingRecord;
  try {
    record = readTrainingRecord(dir);
  } catch (err) {
    if (err instanceof UserError && /: no such file$/.test(err.message)) {
      throw new UserError(`${join(out, "checkpoint")}: no checkpoint to resume from`);
    }
    throw err;
  }
  if (record.spec !== spec.name) {
    throw new UserError(`${dir}: the checkpoint is of spec "${record.spec}", not "${spec.name}"`);
  }
  if (record.optimizer.type !== spec.train.optimizer.type) {
    throw new UserError(
      `${dir}: the checkpoint was trained with ${record.optimizer.type}, the spec says ${spec.train.optimizer.type}`,
    );
  }
  // Its tensors: PyTorch's names and layouts (a checkpoint in tfjs's format is converted).
  return { dir, state: readCheckpoint(dir, spec.tfjsWeights) };
}

/**
 * Splits the last `count` training images off as the validation set (as a hold-out from the end,
 * so the split is the same for every seed and a resumed run).
 */
export function holdOutValidation(
  data: LoadedData,
  count: number,
): LoadedData & { val: ImageSplit } {
  const { train } = data;
  if (count >= train.count) {
    throw new UserError(
      `--val ${count}: the validation split must leave training images (there are ${train.count})`,
    );
  }
  const keep = train.count - count;
  return { ...data, train: sliceSplit(train, 0, keep), val: sliceSplit(train, keep, train.count) };
}

/** Options after overrides: explicit flag > (on resume) the checkpoint's > the spec's. */
function resolveOptions(spec: TrainSpec, opts: TrainOptions, saved?: RunOptions): RunOptions {
  const specLr =
    spec.train.scheduler.type === "onecycle" ? spec.train.scheduler.maxLr : spec.train.optimizer.lr;
  const resolved: RunOptions = {
    epochs: opts.epochs ?? saved?.epochs ?? spec.train.epochs,
    batchSize: opts.batchSize ?? saved?.batchSize ?? spec.train.batchSize,
    lr: opts.lr ?? saved?.lr ?? specLr,
    seed: saved?.seed ?? opts.seed ?? spec.train.seed,
    data: opts.data ?? saved?.data ?? spec.data.path ?? "default",
    out: outFolder(spec.name, opts.out),
    resume: opts.resume === true,
  };
  const trainLimit = opts.trainLimit ?? saved?.trainLimit;
  const testLimit = opts.testLimit ?? saved?.testLimit;
  const val = opts.val ?? saved?.val;
  if (trainLimit !== undefined) resolved.trainLimit = trainLimit;
  if (testLimit !== undefined) resolved.testLimit = testLimit;
  if (val !== undefined) resolved.val = val;
  const teachers = teacherFiles(spec, opts, saved);
  if (teachers) resolved.teachers = teachers;
  return resolved;
}

/** The teacher models of a distilling run: `--teacher`, else a resumed run's, else the spec's. */
function teacherFiles(
  spec: TrainSpec,
  opts: TrainOptions,
  saved: RunOptions | undefined,
): string[] | undefined {
  const { distill } = spec.train;
  if (!distill) {
    if (opts.teacher) {
      throw new UserError(
        `--teacher: spec ${spec.name} does not distill (add train.distill with its teachers and weight)`,
      );
    }
    return undefined;
  }
  // Recorded from the current folder, as `out` is, so a resumed run finds them again.
  const fromHere = (f: string) => relative(".", f);
  if (opts.teacher) return opts.teacher.map(fromHere);
  return saved?.teachers ?? distill.teachers.map(fromHere);
}

/** The output folder: `--out`, else `runs/<name>` (a name that cannot leave `runs/`). */
export function outFolder(name: string, out: string | undefined): string {
  if (out !== undefined) return resolve(out);
  const problem = nameProblem(name);
  if (problem)
    throw new UserError(`spec name ${JSON.stringify(name)} cannot be a folder name: ${problem}`);
  return resolve(join("runs", name));
}

/**
 * The run's normalization: the dataset's resolved one (the spec's, the table's or computed), or
 * for data handed in by a test, the spec's.
 */
function normalizationOf(
  data: LoadedData | Dataset,
  spec: TrainSpec,
): Normalization & { computed: boolean } {
  if ("mean" in data) return { mean: data.mean, std: data.std, computed: data.computed };
  const { mean, std } = spec.data;
  if (!mean || !std) throw new Error(`spec ${spec.name}: data handed in without normalization`);
  return { mean, std, computed: false };
}

/** The note for a `--train-limit`/`--test-limit` larger than the split it limits, else undefined. */
export function limitNote(
  flag: string,
  limit: number | undefined,
  count: number,
  split: string,
): string | undefined {
  if (limit === undefined || limit <= count) return undefined;
  return `note: ${flag} ${limit} is more than the ${count} ${split} images there are; using all ${count}`;
}

/** Trains per the spec and options; writes metrics.json, plot.png and checkpoint/ under `out`. */
export async function runTraining(run: TrainRun): Promise<RunMetrics> {
  if (run.folder) return trainIn(run, run.folder);
  const out = outFolder(run.spec.name, run.options.out);
  const folder = RunFolder.open(out, run.options, specInputs(run.spec));
  try {
    return await trainIn(run, folder);
  } finally {
    folder.release();
  }
}

async function trainIn(run: TrainRun, folder: RunFolder): Promise<RunMetrics> {
  const { spec } = run;
  const progress = new Progress({ quiet: run.options.quiet === true, stream: run.stream });
  const out = folder.out;
  for (const stale of removeStaleTemps(join(out, "checkpoint"))) {
    progress.log(`removed ${stale}, left by a run that was stopped while writing its checkpoint`);
  }
  const resume = run.options.resume ? findResumePoint(out, spec) : undefined;
  const options = resolveOptions(spec, { ...run.options, out }, resume?.state.options);

  progress.log(`engine: ${run.engine}${run.engineVersion ? ` (${run.engineVersion})` : ""}`);
  const loaded: LoadedData | Dataset =
    run.data ??
    loadDataset(
      spec.data,
      {
        input: spec.input,
        classes: spec.classes,
        ...(options.data !== "default" ? { dir: options.data } : {}),
        ...(options.trainLimit !== undefined ? { trainLimit: options.trainLimit } : {}),
        ...(options.testLimit !== undefined ? { testLimit: options.testLimit } : {}),
        // A run with a validation split never reads the test set.
        test: options.val === undefined,
        log: (line) => progress.log(line),
      },
      `spec ${spec.name}`,
    );
  const norm = normalizationOf(loaded, spec);
  if (loaded.train.count === 0) throw new UserError(`${loaded.dir}: the training set is empty`);
  const data = options.val === undefined ? loaded : holdOutValidation(loaded, options.val);
  const held = data.val ?? data.test;
  progress.log(
    data.val
      ? `data: ${spec.data.dataset}, ${data.train.count} training / ${data.val.count} validation images (the last ${data.val.count} training images) from ${data.dir}; the test set is not read`
      : `data: ${spec.data.dataset}, ${data.train.count} training / ${data.test.count} test images${data.testNote ? ` (${data.testNote})` : ""} from ${data.dir}`,
  );
  // A limit past the split's size is not an error (it means "all of them"), but it is said.
  const limitNotes = [
    limitNote("--train-limit", options.trainLimit, loaded.train.count, "training"),
    options.val === undefined
      ? limitNote("--test-limit", options.testLimit, loaded.test.count, "test")
      : undefined,
  ];
  for (const note of limitNotes) if (note) progress.log(note);
  if (norm.computed) {
    progress.log(
      `normalization computed from the training split: mean ${JSON.stringify(norm.mean)}, std ${JSON.stringify(norm.std)} (give data.mean and data.std to fix it)`,
    );
  }
  if (held.count === 0) throw new UserError(`${data.dir}: the test set is empty`);

  const scheduler =
    spec.train.scheduler.type === "onecycle"
      ? { ...spec.train.scheduler, maxLr: options.lr }
      : spec.train.scheduler;
  const stepsPerEpoch = batchCount(data.train.count, options.batchSize);
  const schedule: ScheduleInput = {
    scheduler,
    baseLr: options.lr,
    epochs: options.epochs,
    stepsPerEpoch,
  };

  const rng = new Rng(resume ? resume.state.rng : options.seed);
  const metrics: RunMetrics = {
    spec: spec.name,
    engine: run.engine,
    backend: "",
    options,
    trainExamples: data.train.count,
    testExamples: data.val ? 0 : data.test.count,
    ...(data.val ? { valExamples: data.val.count } : {}),
    dataset: {
      name: spec.data.dataset,
      dir: data.dir,
      classNames: data.classNames,
      mean: [...norm.mean],
      std: [...norm.std],
      preprocess: spec.data.preprocess,
    },
    epochs: [],
  };
  let stepper: Stepper | undefined;
  let teachers: Teachers | undefined;
  try {
    // From the seeded initialization, or from the checkpoint's weights, slots and streams.
    stepper = await run.stepper({
      spec,
      seed: options.seed,
      batchSize: options.batchSize,
      ...(resume ? { state: resume.state, source: resume.dir } : {}),
    });
    metrics.backend = stepper.backend;
    const emaSpec = spec.train.ema;
    if (emaSpec && !stepper.evaluatesOthers) {
      throw new UserError(
        `train.ema: the ${stepper.backend} backend cannot evaluate the averaged weights; train with --backend onnx`,
      );
    }
    const saved = resume?.state.ema;
    const ema = emaSpec
      ? saved
        ? WeightEma.from({ ...saved, decay: emaSpec.decay })
        : new WeightEma(emaSpec.decay)
      : undefined;
    if (resume) {
      metrics.epochs = resume.state.metrics.epochs.slice(0, resume.state.epoch);
      if (run.options.seed !== undefined && run.options.seed !== options.seed) {
        progress.log(
          `note: --seed is ignored when resuming; the run continues with seed ${options.seed}`,
        );
      }
      progress.log(`resuming from ${resume.dir} after epoch ${resume.state.epoch}`);
    }
    progress.log(
      `model: ${spec.name}, ${stepper.trainable} trainable parameters; ${counted(options.epochs, "epoch")} of ` +
        `${counted(stepsPerEpoch, "batch", "batches")} of ${options.batchSize}; output in ${out}`,
    );
    if (stepper.backend !== "tfjs") progress.log(`training step: ${stepper.backend}`);

    const distill = spec.train.distill;
    if (distill && options.teachers) {
      // Loaded on demand: the teachers run on the native onnxruntime-node.
      const { Teachers } = await import("./distill.js");
      teachers = await Teachers.load(options.teachers, {
        input: spec.input,
        classes: spec.classes,
        mean: norm.mean,
        std: norm.std,
        ...(run.teacherThreads ? { threads: run.teacherThreads } : {}),
      });
      progress.log(
        `distilling (weight ${distill.weight}, temperature ${distill.temperature}) from ${options.teachers.length} teacher${options.teachers.length === 1 ? "" : "s"}: ${options.teachers.join(", ")}`,
      );
    }

    // Everything is checked and loaded: only now may --force replace the old run.
    folder.ready();
    const firstEpoch = (resume?.state.epoch ?? 0) + 1;
    if (firstEpoch > options.epochs) {
      progress.log(
        `nothing to do: ${firstEpoch - 1} of ${counted(options.epochs, "epoch")} ${firstEpoch - 1 === 1 ? "is" : "are"} done`,
      );
    }
    const assembler = new BatchAssembler(data.train, options.batchSize, spec.classes, norm, {
      labelSmoothing: spec.train.labelSmoothing,
    });

    for (let epoch = firstEpoch; epoch <= options.epochs; epoch++) {
      const started = Date.now();
      const order = epochOrder(data.train.count, rng);
      const running = new RunningMetrics();
      let stepMs = 0;
      let lr = options.lr;
      progress.startEpoch(epoch, options.epochs, stepsPerEpoch);
      for (let b = 0; b < stepsPerEpoch; b++) {
        const hyper = scheduleAt(schedule, epoch - 1, b);
        lr = hyper.lr;
        const start = b * options.batchSize;
        const size = Math.min(options.batchSize, data.train.count - start);
        const batch = assembler.fill(start, size, order, spec.train.augment, rng);
        if (teachers && distill) await teachers.teach(batch, distill.temperature);
        const stepStarted = performance.now();
        const { loss, correct } = await stepper.step(batch, hyper);
        stepMs += performance.now() - stepStarted;
        if (ema) ema.update((await stepper.state()).weights);
        if (!Number.isFinite(loss)) {
          const where = `epoch ${epoch}, batch ${b + 1}`;
          throw new UserError(nanLossMessage(where, loss, batch, norm, options.teachers));
        }
        running.add(loss, correct, size);
        const seconds = (Date.now() - started) / 1000;
        progress.update({
          done: b + 1,
          loss: running.loss,
          accuracy: running.accuracy,
          imagesPerSecond: seconds > 0 ? running.examples / seconds : 0,
        });
      }
      progress.endEpoch();
      const result = await stepper.evaluate(held, norm, ema?.weights);
      const record: EpochMetrics = {
        epoch,
        trainLoss: running.loss,
        trainAccuracy: running.accuracy,
        ...(data.val
          ? { valLoss: result.loss, valAccuracy: result.accuracy }
          : { testLoss: result.loss, testAccuracy: result.accuracy }),
        lr,
        seconds: (Date.now() - started) / 1000,
        stepSeconds: Math.round(stepMs) / 1000,
      };
      metrics.epochs.push(record);
      await writeOutputs(out, metrics, stepper, rng, epoch, ema);
      progress.log(formatEpochSummary(record, options.epochs));
      run.onEpoch?.(record);
    }
  } finally {
    progress.endEpoch();
    await teachers?.release();
    stepper?.dispose();
  }
  if (run.options.json) process.stdout.write(`${JSON.stringify(metrics, null, 2)}\n`);
  return metrics;
}

/** metrics.json, plot.png and the checkpoint after an epoch (each replaced atomically). */
async function writeOutputs(
  out: string,
  metrics: RunMetrics,
  stepper: Stepper,
  rng: Rng,
  epoch: number,
  ema: WeightEma | undefined,
): Promise<void> {
  ensureDir(out);
  writeCheckpoint(join(out, "checkpoint"), {
    ...(await stepper.state()),
    ...(ema ? { ema: { decay: ema.decay, updates: ema.updates, weights: ema.weights } } : {}),
    spec: metrics.spec,
    epoch,
    rng: rng.state(),
    options: metrics.options,
    metrics,
  });
  writeFileAtomic(join(out, "metrics.json"), `${JSON.stringify(metrics, null, 2)}\n`);
  // Loaded on first use: vega is heavy, and programs importing the runtime may never plot.
  const { renderPlotPng } = await import("./plot.js");
  writeFileAtomic(
    join(out, "plot.png"),
    await renderPlotPng(
      `${metrics.spec}: ${metrics.dataset?.name ?? "mnist"} training`,
      metrics.epochs,
    ),
  );
}

export interface TrainMainArgs {
  spec: TrainSpec;
  buildModel: BuildModel;
  /** The command line after the program name (`process.argv.slice(2)`). */
  argv: string[];
}

/**
 * The emitted `train.mjs`'s main: parses the options of `mnistc train`, picks the engine, trains.
 * Returns the exit code and sets `process.exitCode`; a `UserError` prints one line, no stack.
 */
export async function trainMain({ spec, buildModel, argv }: TrainMainArgs): Promise<number> {
  const name = basename(process.argv[1] ?? "train.mjs");
  const program = oneLineErrors(
    new Command(name).description(`train ${spec.name} on ${spec.data.dataset} with TensorFlow.js`),
    name,
    `node ${name} --help`,
  );
  addTrainOptions(program);
  program.parse(argv, { from: "user" });
  const options = program.opts<TrainOptions>();
  let code = 0;
  try {
    const { initEngine } = await import("../tfjs/engine.js");
    const { tfjsTrainer } = await import("../tfjs/trainer.js");
    const { tf, name } = await initEngine();
    await runTraining({
      engine: name,
      engineVersion: `TensorFlow.js ${tf.version.tfjs}`,
      spec,
      stepper: tfjsTrainer(tf, buildModel),
      options,
    });
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    process.stderr.write(`${program.name()}: error: ${err.message}\n`);
    code = 1;
  }
  process.exitCode = code;
  return code;
}
