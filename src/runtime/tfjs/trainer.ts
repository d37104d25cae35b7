// The tfjs backend of training (`--backend tfjs`, and the emitted train.mjs): a stepper on the
// emitted model, which converts the backend-neutral `ModelState` (PyTorch names and layouts) to
// and from tfjs's weights, optimizer slots and dropout layers at its edge, by the model's
// `spec.tfjsWeights` (where each PyTorch parameter lives in tfjs, and in which layout). So a run
// resumes on either backend from the same checkpoint.
// TensorFlow.js comes in as a parameter (the engine `initEngine` chose): nothing here loads it.
import type * as tfNs from "@tensorflow/tfjs";
import type { WeightMap } from "../../compiler/ir.js";
import { UserError } from "../../errors.js";
import { tfjsToTorchLayout, torchToTfjsLayout, toTorchShape } from "../../formats/tfjs-layout.js";
import type { RngState } from "../../util/rng.js";
import type { Normalization } from "../data/batches.js";
import type { ImageSplit } from "../data/split.js";
import { type EvalResult, evaluateSplit } from "../eval/evaluate.js";
import type { NamedArray } from "../train/checkpoint.js";
import type { BuildModel, TrainSpec } from "../train/loop.js";
import { createOptimizer, type OptimizerState } from "../train/optim.js";
import { checkWeights, type ModelState, slotOf, type TfjsWeights } from "../train/state.js";
import {
  namedParams,
  nhwcImages,
  type Stepper,
  type StepperFactory,
  trainStep,
} from "../train/step.js";

type Tf = typeof tfNs;
type Tensor = tfNs.Tensor;

/** Test-set evaluation batch: big enough to amortize per-call overhead, small enough for memory. */
export const EVAL_BATCH = 256;

/** The tfjs optimizer's slot kind (`<tfjs weight>#<kind>`) of each of torch.optim's. */
const TFJS_SLOT: Record<string, string> = {
  momentum_buffer: "momentum",
  exp_avg: "exp_avg",
  exp_avg_sq: "exp_avg_sq",
};
const TORCH_SLOT = Object.fromEntries(Object.entries(TFJS_SLOT).map(([t, f]) => [f, t]));

/** The runtime's seeded dropout layers (`layers/dropout.ts`), whose streams a checkpoint keeps. */
interface RngLayer {
  name: string;
  rngState(): RngState;
  setRngState(state: RngState): void;
}

function rngLayers(model: tfNs.LayersModel): RngLayer[] {
  return model.layers.filter(
    (l): l is tfNs.layers.Layer & RngLayer =>
      typeof (l as unknown as Partial<RngLayer>).rngState === "function" &&
      typeof (l as unknown as Partial<RngLayer>).setRngState === "function",
  );
}

/** Each tfjs weight of the model under its PyTorch name, layout and shape. */
interface Placement {
  name: string;
  variable: tfNs.LayersModel["weights"][number];
  layout: TfjsWeights[string][1];
  shape: number[];
}

/**
 * Where each PyTorch parameter is in `model`, in the spec's order; the spec's table must cover
 * every weight of the model exactly.
 */
function placements(model: tfNs.LayersModel, spec: TrainSpec): Placement[] {
  const table = spec.tfjsWeights;
  if (!table) {
    throw new UserError(
      `the program of spec ${spec.name} was emitted by an older mnistc (its model.mjs has no spec.tfjsWeights): compile it again`,
    );
  }
  const byTfjsName = new Map(model.weights.map((w) => [w.originalName, w]));
  const out = Object.entries(table).map(([name, [tfjsName, layout]]) => {
    const variable = byTfjsName.get(tfjsName);
    if (!variable) throw new Error(`spec ${spec.name}: the tfjs model has no weight ${tfjsName}`);
    return { name, variable, layout, shape: toTorchShape(variable.shape as number[], layout) };
  });
  const placed = new Set(Object.values(table).map(([tfjsName]) => tfjsName));
  const stray = [...byTfjsName.keys()].find((n) => !placed.has(n));
  if (stray) throw new Error(`spec ${spec.name}: spec.tfjsWeights does not place ${stray}`);
  return out;
}

/** A tfjs model's weights in PyTorch's names and layouts, by the spec's `tfjsWeights`. */
export function torchWeightsOf(model: tfNs.LayersModel, spec: TrainSpec): WeightMap {
  return torchWeights(placements(model, spec));
}

function torchWeights(placed: Placement[]): WeightMap {
  return new Map(
    placed.map((p) => [
      p.name,
      {
        shape: [...p.shape],
        data: tfjsToTorchLayout(p.variable.read().dataSync() as Float32Array, p.shape, p.layout),
      },
    ]),
  );
}

/**
 * Sets every weight of `model` (trainable and buffers) from `arrays`, matched by tfjs name.
 * Names and shapes must match exactly: weights of another architecture are a `UserError`.
 */
export function loadWeightsInto(
  tf: Tf,
  model: tfNs.LayersModel,
  arrays: Map<string, NamedArray>,
  source: string,
): void {
  const expected = new Set<string>();
  for (const w of model.weights) {
    expected.add(w.originalName);
    const a = arrays.get(w.originalName);
    if (!a)
      throw new UserError(
        `${source}: no weight ${w.originalName}; the checkpoint is of another model`,
      );
    if (a.shape.join("x") !== w.shape.join("x")) {
      throw new UserError(
        `${source}: weight ${w.originalName} has shape [${a.shape}], the model needs [${w.shape}]`,
      );
    }
  }
  const extra = [...arrays.keys()].find((name) => !expected.has(name));
  if (extra)
    throw new UserError(
      `${source}: weight ${extra} is not in the model; the checkpoint is of another model`,
    );
  tf.tidy(() => {
    for (const w of model.weights) {
      const a = arrays.get(w.originalName) as NamedArray;
      w.write(tf.tensor(a.data, a.shape, "float32"));
    }
  });
}

/**
 * Sets the weights of `model` from PyTorch-layout `weights` (a checkpoint's, a safetensors
 * file's), by the spec's `tfjsWeights`. Names and shapes must be exactly the model's.
 */
export function loadTorchWeightsInto(
  tf: Tf,
  model: tfNs.LayersModel,
  spec: TrainSpec,
  weights: WeightMap,
  source: string,
): void {
  const placed = placements(model, spec);
  checkWeights(weights, placed, source);
  tf.tidy(() => {
    for (const p of placed) {
      const w = weights.get(p.name) as { data: Float32Array };
      p.variable.write(
        tf.tensor(
          torchToTfjsLayout(w.data, p.shape, p.layout),
          p.variable.shape as number[],
          "float32",
        ),
      );
    }
  });
}

/** Loss (mean NLL) and accuracy of `model` in inference mode over a whole split. */
export function evaluate(
  tf: Tf,
  model: tfNs.LayersModel,
  split: ImageSplit,
  spec: TrainSpec,
  norm: Normalization,
): Promise<EvalResult> {
  return evaluateSplit(split, norm, spec.classes, EVAL_BATCH, (images, n) =>
    tf.tidy(() => {
      const x = nhwcImages(tf, images, [n, split.channels, split.rows, split.cols]);
      const logp = model.apply(x, { training: false }) as Tensor;
      return logp.dataSync() as Float32Array;
    }),
  );
}

/**
 * The tfjs model's own steps (`trainStep` with the runtime's PyTorch-style optimizer), on the model
 * `buildModel` makes: from its seeded initialization, or from a checkpoint's state.
 */
export function tfjsTrainer(tf: Tf, buildModel: BuildModel): StepperFactory {
  return async ({ spec, seed, state, source = "the checkpoint" }) => {
    const model = buildModel(tf, { seed });
    const optimizer = createOptimizer(tf, spec.train.optimizer);
    try {
      const placed = placements(model, spec);
      const byName = new Map(placed.map((p) => [p.name, p]));
      const layers = rngLayers(model);
      if (state) {
        loadTorchWeightsInto(tf, model, spec, state.weights, source);
        optimizer.load(tfjsOptimizerState(state, byName));
        for (const layer of layers) {
          const position = state.dropout[layer.name];
          if (position) layer.setRngState(position);
        }
      }
      const params = namedParams(model);
      const trainable = params.reduce((n, p) => n + p.variable.size, 0);
      const stepper: Stepper = {
        backend: "tfjs",
        trainable,
        step: async (batch, hyper) =>
          trainStep(tf, model, params, optimizer, batch, spec.input, hyper, spec.train.distill),
        async state(): Promise<ModelState> {
          const saved = await optimizer.state();
          const slots: WeightMap = new Map();
          const byTfjsName = new Map(placed.map((p) => [p.variable.originalName, p]));
          for (const s of saved.slots) {
            const [tfjsName = "", kind = ""] = s.name.split("#");
            const p = byTfjsName.get(tfjsName);
            const torchKind = TORCH_SLOT[kind];
            if (!p || !torchKind) throw new Error(`tfjs trainer: a slot ${s.name} of no weight`);
            slots.set(`${p.name}.${torchKind}`, {
              shape: [...p.shape],
              data: tfjsToTorchLayout(s.data, p.shape, p.layout),
            });
          }
          return {
            weights: torchWeights(placed),
            optimizer: { type: saved.type, step: saved.step, slots },
            dropout: Object.fromEntries(layers.map((l) => [l.name, l.rngState()])),
          };
        },
        evaluate: (split, norm) => evaluate(tf, model, split, spec, norm),
        dispose: () => {
          optimizer.dispose();
          model.dispose();
        },
      };
      return stepper;
    } catch (err) {
      optimizer.dispose();
      model.dispose();
      throw err;
    }
  };
}

/** A neutral state's optimizer in the tfjs optimizer's names (`<tfjs weight>#<kind>`) and layouts. */
function tfjsOptimizerState(state: ModelState, byName: Map<string, Placement>): OptimizerState {
  return {
    type: state.optimizer.type,
    step: state.optimizer.step,
    slots: [...state.optimizer.slots].map(([name, slot]) => {
      const { param, kind } = slotOf(name);
      const p = byName.get(param);
      const tfjsKind = TFJS_SLOT[kind];
      if (!p || !tfjsKind) throw new Error(`tfjs trainer: a slot ${name} of no weight`);
      return {
        name: `${p.variable.originalName}#${tfjsKind}`,
        shape: [...(p.variable.shape as number[])],
        data: torchToTfjsLayout(slot.data, p.shape, p.layout),
      };
    }),
  };
}
