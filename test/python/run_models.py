"""Runs emitted model.py and train.py code for pytorch-run.test.ts, in one Python start.

    /usr/bin/python3 run_models.py JOBS.json

JOBS.json is {"models": [...], "rotate": {...}}. Each model job {"dir", "weights", "input", "count",
"output"} imports dir/model.py, loads the weights with load_weights (strict=True), runs Net in eval
mode on `count` float32 images from `input` and writes the log-probabilities as float32 to `output`;
it prints one JSON line: the state_dict names (without num_batches_tracked), PARAMETERS, and the
output shapes of the batch and of a batch of one. The rotate job {"dir", "images", "count",
"transforms", "output"} transforms `count` uint8 28x28 images, each by its [degrees, dx, dy,
scale], with dir/train.py's affine() and writes them as float32 in 0..255.
"""

import importlib.util
import json
import math
import sys

import torch

torch.set_num_threads(1)


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


jobs = json.load(open(sys.argv[1]))
for i, job in enumerate(jobs["models"]):
    model = load(f"model_{i}", f"{job['dir']}/model.py")
    net = model.Net()
    model.load_weights(net, job["weights"])
    net.eval()
    size = job["count"] * math.prod(model.INPUT_SHAPE)
    x = torch.from_file(job["input"], size=size, dtype=torch.float32)
    x = x.reshape(job["count"], *model.INPUT_SHAPE)
    with torch.no_grad():
        y = net(x)
        one = net(x[:1])
    y.contiguous().numpy().tofile(job["output"])
    names = [k for k in net.state_dict() if not k.endswith(".num_batches_tracked")]
    report = {
        "names": names,
        "parameters": list(model.PARAMETERS),
        "shape": list(y.shape),
        "one": list(one.shape),
    }
    print(json.dumps(report), flush=True)

job = jobs["rotate"]
sys.path.insert(0, job["dir"])  # train.py imports its model.py
train = load("train", f"{job['dir']}/train.py")
count = job["count"]
images = torch.from_file(job["images"], size=count * 784, dtype=torch.uint8)
x = images.reshape(count, 1, 28, 28).float()
t = torch.tensor(job["transforms"], dtype=torch.float32)
rotated = train.affine(x, t[:, 0], t[:, 1], t[:, 2], t[:, 3])
rotated.contiguous().numpy().tofile(job["output"])
print(json.dumps({"rotated": list(rotated.shape)}), flush=True)
