// One step of mnistc's compiled training step (the onnx-train backend on onnxruntime-node), from
// weights, a batch and dropout masks given as JSON, so that check.py can compare it with PyTorch's
// own step. Slots start at zero (PyTorch's first step), the optimizer is the spec's.
//
//   node tools/torch-reference/run_step.mjs SPEC IN.json OUT.json
//
// IN.json: {"weights": {name: [...]}, "x": [...NCHW], "labels": [...], "masks": {node: [...]},
//           "lr": 0.05, "momentum": 0.9, "teacher": [...B·classes] for a distilling spec}
// OUT.json: {"loss": L, "next": {name: [...]}} for every parameter, buffer and optimizer slot, and
//           "choices": {node: {kind, shape, indices | mask}}: every max pool's and ReLU's decisions.
import { readFileSync, writeFileSync } from "node:fs";
import * as ort from "onnxruntime-node";
import { buildTrainingStep } from "../../dist/src/backends/onnx-train/index.js";
import { compileSpec } from "../../dist/src/compiler/index.js";
import { encodeModel } from "../../dist/src/formats/onnx-proto.js";

const [specFile, inFile, outFile] = process.argv.slice(2);
if (!specFile || !inFile || !outFile) {
  process.stderr.write("usage: node run_step.mjs SPEC IN.json OUT.json\n");
  process.exit(2);
}
const { ir, diagnostics } = compileSpec(readFileSync(specFile, "utf8"), specFile);
if (!ir) throw new Error(JSON.stringify(diagnostics));
const input = JSON.parse(readFileSync(inFile, "utf8"));
const batch = input.labels.length;
const { model, signature } = buildTrainingStep(ir, batch);
// The step's discrete choices, for check.py's near-tie handling: each max pool's Indices (flattened
// over its whole input) and each ReLU's output (its mask is output > 0, as the backward's Greater).
const choices = [];
for (const node of ir.nodes) {
  if (node.kind === "maxpool") choices.push([node.name, "maxpool", `${node.name}.indices`, 7]);
  if (node.kind === "relu") choices.push([node.name, "relu", `${node.name}.out`, 1]);
}
const produced = new Set(model.graph.node.flatMap((n) => n.output));
for (const [, , value, elemType] of choices) {
  if (!produced.has(value)) throw new Error(`run_step.mjs: the step has no value ${value}`);
  model.graph.output.push({ name: value, type: { tensorType: { elemType } } });
}
const session = await ort.InferenceSession.create(encodeModel(model), { intraOpNumThreads: 1 });
const size = (shape) => shape.reduce((a, b) => a * b, 1);
const tensor = (data, shape) => new ort.Tensor("float32", Float32Array.from(data), shape);
const target = new Float32Array(batch * ir.classes);
input.labels.forEach((label, i) => {
  target[i * ir.classes + label] = 1;
});
const feeds = {
  x: tensor(input.x, signature.x.shape),
  target: tensor(target, signature.target.shape),
};
// A distilling spec's step also reads the teachers' tempered probabilities.
if (signature.teacher) feeds.teacher = tensor(input.teacher, signature.teacher.shape);
const steps = 1;
const beta1 = input.momentum;
const scalars = {
  lr: input.lr,
  momentum: input.momentum,
  step_size: input.lr / (1 - beta1 ** steps),
  bc2_sqrt:
    ir.train.optimizer.type === "adam" ? Math.sqrt(1 - ir.train.optimizer.betas[1] ** steps) : 1,
};
for (const name of signature.scalars) feeds[name] = tensor([scalars[name]], []);
for (const m of signature.masks) feeds[m.name] = tensor(input.masks[m.node], m.shape);
for (const e of signature.state) {
  feeds[e.name] = tensor(
    e.kind === "slot" ? new Float32Array(size(e.shape)) : input.weights[e.name],
    e.shape,
  );
}
const out = await session.run(feeds);
const next = {};
for (const e of signature.state) next[e.name] = Array.from(out[e.next].data);
const picked = {};
for (const [node, kind, value] of choices) {
  const data = out[value].data;
  // maxpool: flat indices; relu: the mask as a string of 0/1 (a JSON list would be 10x larger).
  picked[node] =
    kind === "maxpool"
      ? { kind, shape: out[value].dims, indices: Array.from(data, Number) }
      : {
          kind,
          shape: out[value].dims,
          mask: Array.from(data, (v) => (v > 0 ? "1" : "0")).join(""),
        };
}
writeFileSync(outFile, JSON.stringify({ loss: out.loss.data[0], next, choices: picked }));
await session.release();
