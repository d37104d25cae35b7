#!/usr/bin/python3
"""One PyTorch training step of the seed's Net (step4), timed: what `npm run bench:train` puts beside
mnistc's steps. Prints one JSON line per thread count given: median ms over the timed steps.

    /usr/bin/python3 tools/torch-reference/bench_step.py --batch-size 128 --steps 10 --warmup 3 1 2
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from seed_net import Net  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("threads", type=int, nargs="+")
    args = parser.parse_args()
    for threads in args.threads:
        torch.set_num_threads(threads)
        torch.manual_seed(1)
        net = Net().train()
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        x = torch.randn(args.batch_size, 1, 28, 28)
        y = torch.randint(0, 10, (args.batch_size,))
        times = []
        for i in range(args.warmup + args.steps):
            start = time.perf_counter()
            opt.zero_grad()
            loss = F.nll_loss(net(x), y)
            loss.backward()
            opt.step()
            if i >= args.warmup:
                times.append((time.perf_counter() - start) * 1000)
        print(json.dumps({"threads": threads, "torch": torch.__version__,
                          "medianMs": round(statistics.median(times), 1)}), flush=True)


if __name__ == "__main__":
    main()
