// The compiled training step on onnxruntime-node: a `Stepper` that keeps the parameters, batch-norm
// buffers and optimizer slots (PyTorch names and layouts) and feeds each step's outputs back as
// the next step's inputs. The tfjs model stays the home of checkpoints and dropout streams: the
// stepper starts from its weights and its optimizer's state (so a tfjs checkpoint resumes here and
// the other way round), draws each step's dropout masks from its layers' seeded streams (so both
// backends drop the same units), and writes its state back before an epoch's checkpoint.
//
// Not part of `mnistc/runtime`'s import graph (it loads the native onnxruntime-node): the CLI
// imports it when `--backend onnx` is chosen, and injects what only the compiler and backends know
// (the step graph for a batch size, the eval graph, the tfjs names and layouts of the parameters).
import { cpus } from "node:os";
import type * as tfNs from "@tensorflow/tfjs";
import * as ort from "onnxruntime-node";
import type { OptimizerIR, WeightMap } from "../../compiler/ir.js";
import type { StepSignature } from "../../formats/step-signature.js";
import { type Layout, tfjsToTorchLayout, torchToTfjsLayout } from "../../formats/tfjs-layout.js";
import { sizeOf } from "../../util/shape.js";
import { type Batch, BatchAssembler, type Normalization } from "../data/batches.js";
import type { ImageSplit } from "../data/split.js";
import { argmax } from "../inference/probabilities.js";
import type { StepperFactory } from "../train/loop.js";
import type { OptimizerState, SlotArray, StepHyper } from "../train/optim.js";
import type { Stepper, StepResult } from "../train/step.js";

/** Where a PyTorch parameter lives in the tfjs model. */
export interface TfjsPlacement {
  name: string;
  tfjsName: string;
  shape: number[];
  layout: Layout;
}

export interface OnnxStepperOptions {
  /** The step graph (ONNX bytes) and its signature for a batch size. */
  stepGraph(batch: number): { bytes: Uint8Array; signature: StepSignature };
  /** The inference graph with the given weights, for evaluation. */
  evalGraph(weights: WeightMap): Uint8Array;
  placements: TfjsPlacement[];
  optimizer: OptimizerIR;
  /** onnxruntime's intra-op threads (default: every core). */
  threads?: number;
}

/** The tfjs checkpoint's slot kind of a PyTorch optimizer state name. */
const TFJS_SLOT: Record<string, string> = {
  momentum_buffer: "momentum",
  exp_avg: "exp_avg",
  exp_avg_sq: "exp_avg_sq",
};

interface Dropping {
  name: string;
  drawMask(count: number): Float32Array;
}

const EVAL_BATCH = 500;

export function onnxStepper(options: OnnxStepperOptions): StepperFactory {
  return async ({ tf, model, optimizer, spec }) => {
    const threads = options.threads ?? cpus().length;
    const byName = new Map(options.placements.map((p) => [p.name, p]));
    const weights = new Map(model.weights.map((w) => [w.originalName, w]));
    const state = new Map<string, Float32Array>();
    for (const p of options.placements) {
      const w = weights.get(p.tfjsName);
      if (!w) throw new Error(`onnx stepper: the tfjs model has no ${p.tfjsName}`);
      state.set(p.name, tfjsToTorchLayout(w.read().dataSync() as Float32Array, p.shape, p.layout));
    }
    const saved = await optimizer.state();
    let steps = saved.step;
    const savedSlots = new Map(saved.slots.map((s) => [s.name, s]));
    const dropouts = new Map(
      model.layers
        .filter(
          (l): l is tfNs.layers.Layer & Dropping =>
            typeof (l as Partial<Dropping>).drawMask === "function",
        )
        .map((l) => [l.name, l]),
    );
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
        });
        // Slots start at zero (PyTorch's first step makes buf = g, which μ·0 + g equals) or at
        // what the optimizer had saved.
        for (const e of signature.state) {
          if (e.kind !== "slot" || state.has(e.name)) continue;
          const placement = byName.get(e.of ?? "");
          const tfjs = savedSlots.get(`${placement?.tfjsName}#${TFJS_SLOT[e.slot ?? ""]}`);
          state.set(
            e.name,
            tfjs && placement
              ? tfjsToTorchLayout(tfjs.data, placement.shape, placement.layout)
              : new Float32Array(sizeOf(e.shape)),
          );
        }
        entry = { session, signature };
        sessions.set(batch, entry);
      }
      return entry;
    };
    const baseMomentum = optimizer.baseMomentum;

    const stepper: Stepper = {
      backend: `onnx (onnxruntime ${threads} thread${threads === 1 ? "" : "s"})`,

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
          const layer = dropouts.get(m.node);
          const count = sizeOf(m.shape);
          // A rate of 0 draws nothing, as the tfjs layer does.
          const mask = layer && m.p > 0 ? layer.drawMask(count) : new Float32Array(count).fill(1);
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

      sync(): void {
        tf.tidy(() => {
          for (const p of options.placements) {
            const w = weights.get(p.tfjsName);
            const data = state.get(p.name);
            if (!w || !data) continue;
            w.write(tf.tensor(torchToTfjsLayout(data, p.shape, p.layout), w.shape as number[]));
          }
        });
      },

      async optimizerState(): Promise<OptimizerState> {
        const slots: SlotArray[] = [];
        for (const [name, data] of state) {
          const dot = name.lastIndexOf(".");
          const slot = TFJS_SLOT[name.slice(dot + 1)];
          const placement = byName.get(name.slice(0, dot));
          if (!slot || !placement || byName.has(name)) continue;
          const tfjsShape = weights.get(placement.tfjsName)?.shape as number[];
          slots.push({
            name: `${placement.tfjsName}#${slot}`,
            shape: [...tfjsShape],
            data: torchToTfjsLayout(data, placement.shape, placement.layout),
          });
        }
        return { type: options.optimizer.type, step: steps, slots };
      },

      async evaluate(split: ImageSplit, norm: Normalization) {
        const current: WeightMap = new Map(
          options.placements.map((p) => [
            p.name,
            { shape: p.shape, data: state.get(p.name) as Float32Array },
          ]),
        );
        const session = await ort.InferenceSession.create(options.evalGraph(current), {
          intraOpNumThreads: threads,
          interOpNumThreads: 1,
        });
        const batch = Math.min(EVAL_BATCH, split.count);
        const assembler = new BatchAssembler(split, batch, spec.classes, norm);
        let lossSum = 0;
        let correct = 0;
        const { channels, height, width } = spec.input;
        for (let start = 0; start < split.count; start += batch) {
          const b = assembler.fill(start, Math.min(batch, split.count - start));
          const x = new ort.Tensor("float32", b.images, [b.size, channels, height, width]);
          const out = await session.run({ input: x });
          const logp = out.log_probs?.data as Float32Array;
          const k = spec.classes;
          for (let i = 0; i < b.size; i++) {
            const label = b.labels[i] ?? 0;
            if (argmax(logp, i * k, k) === label) correct += 1;
            lossSum -= logp[i * k + label] ?? 0;
          }
        }
        await session.release();
        return { loss: lossSum / split.count, accuracy: correct / split.count };
      },

      dispose(): void {
        for (const { session } of sessions.values()) void session.release();
        sessions.clear();
      },
    };
    return stepper;
  };
}
