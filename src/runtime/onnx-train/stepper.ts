// The compiled training step on onnxruntime-node: a `Stepper` that keeps the parameters, batch-norm
// buffers and optimizer slots (PyTorch names and layouts: the backend-neutral `ModelState` as it
// is) and feeds each step's outputs back as the next step's inputs. It starts from PyTorch's
// seeded initialization (`compiler/init.ts`) or a checkpoint's state, draws each step's dropout
// masks from the runtime's seeded `DropoutStream`s (the streams the tfjs layers draw from, so both
// backends drop the same units), and evaluates with onnxruntime too: the ONNX training path never
// loads TensorFlow.js.
//
// Not part of `mnistc/runtime`'s import graph (it loads the native onnxruntime-node): the CLI
// imports it when `--backend onnx` is chosen, and injects what only the compiler and backends know
// (the step graph for a batch size, the eval graph, the parameters and their initialization).
import { cpus } from "node:os";
import * as ort from "onnxruntime-node";
import type { OptimizerIR, WeightMap } from "../../compiler/ir.js";
import type { StepSignature } from "../../formats/step-signature.js";
import { sizeOf } from "../../util/shape.js";
import type { Batch } from "../data/batches.js";
import { EVAL_BATCH, evaluateSplit } from "../eval/evaluate.js";
import { DigitModel } from "../inference/onnx-model.js";
import { DropoutStream } from "../train/dropout-stream.js";
import type { StepHyper } from "../train/optim.js";
import { checkWeights, type ModelState, slotOf } from "../train/state.js";
import type { Stepper, StepperFactory, StepResult } from "../train/step.js";

/** A parameter or buffer of the model, PyTorch name and shape. */
export interface ParamPlace {
  name: string;
  shape: number[];
  /** A weight or bias (not a batch-norm buffer). */
  trainable: boolean;
}

export interface OnnxStepperOptions {
  /** The step graph (ONNX bytes) and its signature for a batch size. */
  stepGraph(batch: number): { bytes: Uint8Array; signature: StepSignature };
  /** The inference graph with the given weights, for evaluation. */
  evalGraph(weights: WeightMap): Uint8Array;
  /** Every parameter and buffer, in the model's order. */
  params: ParamPlace[];
  /** PyTorch's seeded initialization of the model (`torchInitWeights`). */
  init(seed: number): WeightMap;
  /** The dropout nodes: each has its own stream. */
  dropouts: { name: string; p: number }[];
  optimizer: OptimizerIR;
  /** onnxruntime's intra-op threads (default: every core). */
  threads?: number;
}

/** onnxruntime-node's version, for the log. */
export function onnxRuntimeVersion(): string {
  return ort.env.versions.node ?? ort.env.versions.common;
}

export function onnxStepper(options: OnnxStepperOptions): StepperFactory {
  return async ({ spec, seed, state: start, source = "the checkpoint" }) => {
    const threads = options.threads ?? cpus().length;
    const params = new Set(options.params.map((p) => p.name));
    if (start) checkWeights(start.weights, options.params, source);
    const initial = start?.weights ?? options.init(seed);
    // Every tensor that goes round: parameters, buffers, and slots (`<param>.<kind>`).
    const state = new Map<string, Float32Array>();
    for (const p of options.params) state.set(p.name, initial.get(p.name)?.data as Float32Array);
    for (const [name, slot] of start?.optimizer.slots ?? []) state.set(name, slot.data);
    let steps = start?.optimizer.step ?? 0;
    const streams = new Map(
      options.dropouts.map((d) => [d.name, new DropoutStream(seed, d.name, d.p)]),
    );
    for (const [name, position] of Object.entries(start?.dropout ?? {})) {
      streams.get(name)?.setState(position);
    }
    const sessions = new Map<number, { session: ort.InferenceSession; signature: StepSignature }>();
    const sessionFor = async (batch: number) => {
      let entry = sessions.get(batch);
      if (!entry) {
        const { bytes, signature } = options.stepGraph(batch);
        const session = await ort.InferenceSession.create(bytes, {
          intraOpNumThreads: threads,
          interOpNumThreads: 1,
          executionMode: "sequential",
          graphOptimizationLevel: "all",
          // onnxruntime's pool threads spin after each run, waiting for more work; between steps
          // that steals a core from batch assembly and the test pass on the main thread. Off, one
          // epoch of step4 on 2 threads takes 9% less (47.3 s against 52.0 s, measured in turn).
          extra: { session: { intra_op: { allow_spinning: "0" } } },
        });
        // Slots not in the state yet start at zero (PyTorch's first step makes buf = g, which
        // μ·0 + g equals).
        for (const e of signature.state) {
          if (!state.has(e.name)) state.set(e.name, new Float32Array(sizeOf(e.shape)));
        }
        entry = { session, signature };
        sessions.set(batch, entry);
      }
      return entry;
    };
    const baseMomentum =
      options.optimizer.type === "sgd" ? options.optimizer.momentum : options.optimizer.betas[0];
    const trainable = options.params
      .filter((p) => p.trainable)
      .reduce((n, p) => n + sizeOf(p.shape), 0);

    const stepper: Stepper = {
      backend: `onnx (onnxruntime ${threads} thread${threads === 1 ? "" : "s"})`,
      evaluatesOthers: true,
      trainable,

      async step(batch: Batch, hyper: StepHyper): Promise<StepResult> {
        const { session, signature } = await sessionFor(batch.size);
        const tensor = (data: Float32Array, shape: number[]) =>
          new ort.Tensor("float32", data, shape);
        const feeds: Record<string, ort.Tensor> = {
          [signature.x.name]: tensor(batch.images, signature.x.shape),
          [signature.target.name]: tensor(batch.targets, signature.target.shape),
        };
        if (signature.teacher) {
          if (!batch.teacher)
            throw new Error("onnx stepper: a distilling step needs batch.teacher");
          feeds[signature.teacher.name] = tensor(batch.teacher, signature.teacher.shape);
        }
        steps += 1;
        const momentum = hyper.momentum ?? baseMomentum;
        const scalars: Record<string, number> = { lr: hyper.lr, momentum };
        if (options.optimizer.type === "adam") {
          scalars.step_size = hyper.lr / (1 - momentum ** steps);
          scalars.bc2_sqrt = Math.sqrt(1 - options.optimizer.betas[1] ** steps);
        }
        for (const name of signature.scalars)
          feeds[name] = tensor(Float32Array.of(scalars[name] ?? 0), []);
        for (const m of signature.masks) {
          const stream = streams.get(m.node);
          const count = sizeOf(m.shape);
          const mask = stream?.draws ? stream.drawMask(count) : new Float32Array(count).fill(1);
          feeds[m.name] = tensor(mask, m.shape);
        }
        for (const e of signature.state)
          feeds[e.name] = tensor(state.get(e.name) as Float32Array, e.shape);
        const out = await session.run(feeds);
        for (const e of signature.state)
          state.set(e.next.slice(0, -".next".length), out[e.next]?.data as Float32Array);
        const scalar = (name: string) => (out[name]?.data as Float32Array | undefined)?.[0];
        const loss = scalar(signature.loss) ?? Number.NaN;
        const correct = scalar(signature.correct) ?? 0;
        return { loss, correct };
      },

      async state(): Promise<ModelState> {
        const weights: WeightMap = new Map();
        for (const p of options.params) {
          weights.set(p.name, { shape: [...p.shape], data: state.get(p.name) as Float32Array });
        }
        const shapes = new Map(options.params.map((p) => [p.name, p.shape]));
        const slots: WeightMap = new Map();
        for (const [name, data] of state) {
          if (params.has(name)) continue;
          const shape = shapes.get(slotOf(name).param) ?? [data.length];
          slots.set(name, { shape: [...shape], data });
        }
        return {
          weights,
          optimizer: { type: options.optimizer.type, step: steps, slots },
          dropout: Object.fromEntries([...streams].map(([name, s]) => [name, s.state()])),
        };
      },

      async evaluate(split, norm, given) {
        const weights = given ?? (await stepper.state()).weights;
        const model = await DigitModel.fromBytes(options.evalGraph(weights), spec.name, {
          threads,
        });
        try {
          return await evaluateSplit(split, norm, spec.classes, EVAL_BATCH, (images, n) =>
            model.predictBatch(images, n),
          );
        } finally {
          await model.release();
        }
      },

      dispose(): void {
        for (const { session } of sessions.values()) void session.release();
        sessions.clear();
      },
    };
    return stepper;
  };
}
