// The onnx-train backend: one training step of a spec as one ONNX graph — the training forward
// (forward.ts), the mean NLL loss of the log-probabilities (plus distillation's KL term), the
// backward the autodiff pass derives from the op table's rules (lowered by lowering.ts), the
// optimizer update (optimizer.ts) and batch norm's running statistics — for one batch size (every
// shape static). onnxruntime-node runs it; the runtime feeds each step's outputs back as the next
// step's inputs (`StepSignature`).
//
// `mnistc compile SPEC --target onnx-train -o DIR` writes DIR/step.onnx (the spec's batch size),
// DIR/step.json (its signature) and DIR/eval.onnx (the inference graph, seeded weights).
import { backward } from "../../compiler/autodiff.js";
import type { ForwardValues } from "../../compiler/grad-builder.js";
import { torchInitWeights } from "../../compiler/init.js";
import { type AnyNodeIR, type DistillIR, GRAPH_INPUT, type ModelIR } from "../../compiler/ir.js";
import { randomMaskOf } from "../../compiler/ops.js";
import {
  encodeModel,
  FLOAT,
  floatValue,
  intAttr,
  type ModelProto,
  ONNX_IR_VERSION,
  onnx,
  type ValueInfoProto,
} from "../../formats/onnx-proto.js";
import type { StepSignature, StepStateEntry } from "../../formats/step-signature.js";

export type { StepSignature, StepStateEntry };

import type { Backend, EmitResult } from "../backend.js";
import { onnxBackend } from "../onnx/index.js";
import { TRAIN_FORWARD, type TrainForwardContext } from "./forward.js";
import { OnnxGraph, type Tensor } from "./graph.js";
import { slotNames, update } from "./optimizer.js";

/** ScatterElements' `reduction` (max-pool gradients) needs opset 16; 17 is what ORT runs best. */
export const TRAIN_OPSET = 17;

/** Whether SGD keeps momentum buffers: with momentum, or when OneCycleLR cycles it in. */
export function usesMomentum(ir: ModelIR): boolean {
  const opt = ir.train.optimizer;
  return opt.type === "adam" || opt.momentum !== 0 || ir.train.scheduler.type === "onecycle";
}

export function buildTrainingStep(
  ir: ModelIR,
  batch: number,
): { model: ModelProto; signature: StepSignature } {
  const g = new OnnxGraph();
  const inputs: ValueInfoProto[] = [];
  const outputs: ValueInfoProto[] = [];
  const input = (name: string, shape: number[]): Tensor => {
    inputs.push(floatValue(name, shape));
    return { name, shape };
  };
  const { channels, height, width } = ir.input;
  const x = input("x", [batch, channels, height, width]);
  const target = input("target", [batch, ir.classes]);
  const { distill } = ir.train;
  // A distilling step's teachers' p̄_T, computed by the runtime on the same batch.
  const teacher = distill ? input("teacher", [batch, ir.classes]) : undefined;
  const lr = input("lr", []);
  const opt = ir.train.optimizer;
  const momentum = usesMomentum(ir);
  const scalars = ["lr"];
  const hyper = { lr, momentum: lr, stepSize: lr, bc2Sqrt: lr };
  if (momentum) {
    hyper.momentum = input("momentum", []);
    scalars.push("momentum");
  }
  if (opt.type === "adam") {
    hyper.stepSize = input("step_size", []);
    hyper.bc2Sqrt = input("bc2_sqrt", []);
    scalars.push("step_size", "bc2_sqrt");
  }

  // Parameters and buffers are inputs (the runtime owns them), in model order.
  const state: StepStateEntry[] = [];
  const tensors = new Map<string, Tensor>();
  for (const node of ir.nodes) {
    for (const p of node.params) {
      tensors.set(p.name, input(p.name, p.shape));
      state.push({
        name: p.name,
        next: `${p.name}.next`,
        shape: p.shape,
        kind: p.trainable ? "param" : "buffer",
      });
    }
  }

  const masks: StepSignature["masks"] = [];
  const updates = new Map<string, Tensor>();
  const forward = new Map<string, ForwardValues<Tensor>>();
  const tensorOf = (name: string): Tensor => {
    if (name === GRAPH_INPUT) return x;
    const v = forward.get(name);
    if (!v) throw new Error(`onnx-train: ${name} read before it is computed`);
    return v.output;
  };
  for (const node of ir.nodes) {
    const ctx: TrainForwardContext = {
      g,
      inputs: node.inputs.map(tensorOf),
      params: Object.fromEntries(node.params.map((p) => [p.role, tensors.get(p.name)])),
      batch,
      mask: (n, shape) => {
        const name = `${n.name}.mask`;
        const drawn = randomMaskOf(n);
        if (!drawn)
          throw new Error(`onnx-train: ${n.name} asks for a mask its op does not declare`);
        masks.push({ name, node: n.name, shape, p: drawn.p });
        return input(name, shape);
      },
      update: (name, value) => updates.set(name, value),
    };
    forward.set(node.name, trainForward(node, ctx));
  }

  // The loss of the log-probabilities and its gradient (the backward's seed), and the count of
  // right answers against the target.
  const last = ir.nodes.at(-1) as AnyNodeIR;
  const logp = tensorOf(last.name);
  const { seed } =
    distill && teacher
      ? distillLoss(g, logp, target, teacher, distill, batch, "loss")
      : nllLoss(g, logp, target, batch, "loss");
  const argmax = (t: Tensor) =>
    g.op("ArgMax", [t], [batch], [intAttr("axis", 1), intAttr("keepdims", 0)]);
  const hits = g.op(
    "Cast",
    [g.op("Equal", [argmax(logp), argmax(target)], [batch])],
    [batch],
    [intAttr("to", FLOAT)],
  );
  g.op("ReduceSum", [hits], [], [intAttr("keepdims", 0)], "correct");
  outputs.push(floatValue("loss", []), floatValue("correct", []));

  const grads = backward(ir, g, x, forward, tensors, seed, batch);

  const slots = slotNames(opt, momentum);
  const slotState: StepStateEntry[] = [];
  for (const entry of state) {
    if (entry.kind === "buffer") {
      const next = updates.get(entry.name) ?? (tensors.get(entry.name) as Tensor);
      g.op("Identity", [next], entry.shape, [], entry.next);
      continue;
    }
    const p = tensors.get(entry.name) as Tensor;
    const grad = grads.get(entry.name);
    if (!grad) throw new Error(`onnx-train: no gradient for ${entry.name}`);
    const slotTensors = Object.fromEntries(
      slots.map((s) => {
        const name = `${entry.name}.${s}`;
        slotState.push({
          name,
          next: `${name}.next`,
          shape: entry.shape,
          kind: "slot",
          of: entry.name,
          slot: s,
        });
        return [s, input(name, entry.shape)];
      }),
    );
    const stepped = update(g, opt, hyper, p, grad, slotTensors);
    g.op("Identity", [stepped.param], entry.shape, [], entry.next);
    for (const s of slots) {
      const next = stepped.slots[s];
      if (next) g.op("Identity", [next], entry.shape, [], `${entry.name}.${s}.next`);
    }
  }
  const allState = [...state, ...slotState];
  for (const entry of allState) outputs.push(floatValue(entry.next, entry.shape));

  const live = g.live(outputs.map((o) => o.name ?? ""));
  const model = onnx.ModelProto.create({
    irVersion: ONNX_IR_VERSION,
    opsetImport: [{ domain: "", version: TRAIN_OPSET }],
    producerName: "mnistc",
    docString: `mnistc training step of spec ${ir.name}, batch ${batch}`,
    graph: {
      name: `${ir.name}_step`,
      node: live.nodes,
      initializer: live.initializers,
      input: inputs,
      output: outputs,
    },
  });
  const signature: StepSignature = {
    spec: ir.name,
    batch,
    opset: TRAIN_OPSET,
    x: { name: "x", shape: x.shape },
    target: { name: "target", shape: target.shape },
    ...(teacher ? { teacher: { name: "teacher" as const, shape: teacher.shape } } : {}),
    scalars,
    masks,
    state: allState,
    loss: "loss",
    correct: "correct",
  };
  return { model, signature };
}

/** Mean NLL, −Σ target·log p / B (the value `name`, if given), and its gradient −target/B. */
function nllLoss(g: OnnxGraph, logp: Tensor, target: Tensor, batch: number, name?: string) {
  const nll = g.op("ReduceSum", [g.mul(logp, target)], [], [intAttr("keepdims", 0)]);
  const loss = g.op("Mul", [nll, g.scalar(-1 / batch)], [], [], name);
  return { loss, seed: g.scale(target, -1 / batch) };
}

/**
 * (1-w)·NLL + w·T²·KL(p̄_T ‖ q), q = softmax(log p / T), batch means. The KL's gradient in log p
 * is (q - p̄_T)/T, so the seed is −(1-w)·target/B + w·T·(q − p̄_T)/B. 0·log 0 counts 0.
 */
function distillLoss(
  g: OnnxGraph,
  logp: Tensor,
  target: Tensor,
  teacher: Tensor,
  { weight: w, temperature: t }: DistillIR,
  batch: number,
  name: string,
) {
  const nll = nllLoss(g, logp, target, batch);
  const logQ = g.op("LogSoftmax", [g.scale(logp, 1 / t)], logp.shape, [intAttr("axis", 1)]);
  const logTeacher = g.op(
    "Log",
    [g.op("Max", [teacher, g.scalar(1e-30)], teacher.shape)],
    teacher.shape,
  );
  const kl = g.reduceSum(g.mul(teacher, g.sub(logTeacher, logQ)), [0, 1], false);
  return {
    loss: g.op("Add", [g.scale(nll.loss, 1 - w), g.scale(kl, (w * t * t) / batch)], [], [], name),
    seed: g.add(g.scale(nll.seed, 1 - w), g.scale(g.sub(g.exp(logQ), teacher), (w * t) / batch)),
  };
}

function trainForward(node: AnyNodeIR, ctx: TrainForwardContext): ForwardValues<Tensor> {
  const rule = TRAIN_FORWARD[node.kind] as (
    n: AnyNodeIR,
    c: TrainForwardContext,
  ) => ForwardValues<Tensor>;
  return rule(node, ctx);
}

export const onnxTrainBackend: Backend = {
  name: "onnx-train",
  description:
    "ONNX training step (forward, derived backward, optimizer) + eval graph, for onnxruntime",
  output: "dir",
  emit(ir, options): EmitResult {
    const { model, signature } = buildTrainingStep(ir, ir.train.batchSize);
    const evaluation = onnxBackend.emit(ir, { weights: options.weights ?? torchInitWeights(ir) });
    if (evaluation.diagnostics.length > 0)
      return { files: [], diagnostics: evaluation.diagnostics };
    return {
      files: [
        { path: "step.onnx", contents: encodeModel(model) },
        { path: "step.json", contents: `${JSON.stringify(signature, null, 2)}\n` },
        { path: "eval.onnx", contents: evaluation.files[0]?.contents ?? new Uint8Array() },
      ],
      diagnostics: [],
    };
  },
};
