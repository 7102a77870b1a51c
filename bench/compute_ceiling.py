"""Compute ceiling for bench/serve_mlp.sh: the TorchScript model called
in-process from Python in a loop, one intra-op thread, inference mode.

This is Python in-process (torch.jit.load + forward), not LibTorch from C++:
the per-call Python/dispatcher overhead is included. Prints one JSON object.

usage: /usr/bin/python3 bench/compute_ceiling.py MODEL.pt BODY.json SECONDS [BATCH...]
"""

import json
import sys
import time

import torch


def measure(model, x, seconds):
    # Warm up: the first calls of a TorchScript module run the profiling
    # executor and optimise the graph.
    deadline = time.perf_counter() + min(1.0, seconds)
    while time.perf_counter() < deadline:
        model(x)
    calls = 0
    start = time.perf_counter()
    deadline = start + seconds
    now = start
    while now < deadline:
        for _ in range(100):
            model(x)
        calls += 100
        now = time.perf_counter()
    elapsed = now - start
    return {
        "batch": int(x.shape[0]),
        "calls": calls,
        "seconds": round(elapsed, 3),
        "calls_per_s": calls / elapsed,
        "rows_per_s": calls * int(x.shape[0]) / elapsed,
        "us_per_call": elapsed / calls * 1e6,
    }


def main():
    model_path, body_path, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    batches = [int(b) for b in sys.argv[4:]] or [1]
    torch.set_num_threads(1)
    with open(body_path) as f:
        row = json.load(f)["inputs"][0]["data"]
    model = torch.jit.load(model_path, map_location="cpu")
    model.eval()
    results = []
    with torch.inference_mode():
        for b in batches:
            x = torch.tensor([row] * b, dtype=torch.float32).reshape(b, -1)
            results.append(measure(model, x, seconds))
    print(json.dumps({
        "kind": "python-inprocess",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "results": results,
    }))


if __name__ == "__main__":
    main()
