"""Runs emitted model.py files for pytorch-run.test.ts: one Python start for every spec.

    /usr/bin/python3 run_models.py JOBS.json

Each job {"dir", "weights", "input", "count", "output"}: imports dir/model.py, loads the weights
with load_weights (strict=True), runs Net in eval mode on `count` float32 images from `input`, and
writes the log-probabilities as float32 to `output`. Prints one JSON line per job: the state_dict
names (without num_batches_tracked), PARAMETERS, and the output shape of a batch of one.
"""

import importlib.util
import json
import math
import sys

import torch

torch.set_num_threads(1)
for i, job in enumerate(json.load(open(sys.argv[1]))):
    spec = importlib.util.spec_from_file_location(f"model_{i}", f"{job['dir']}/model.py")
    model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(model)
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
    print(
        json.dumps(
            {
                "names": names,
                "parameters": list(model.PARAMETERS),
                "shape": list(y.shape),
                "one": list(one.shape),
            }
        ),
        flush=True,
    )
