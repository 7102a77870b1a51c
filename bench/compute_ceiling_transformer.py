"""Compute ceiling for bench/serve_transformer.sh: the TorchScript encoder
(bench/models/encoder/1/model.pt) called in-process in a loop -- in-process
LibTorch via Python, 1 thread (torch.set_num_threads(1), inference mode).

No HTTP, no (de)serialisation, no queue: the rate no server on one intra-op
thread can beat. It goes through Python's torch.jit bindings, so each call
includes a few µs of Python/dispatcher overhead; the script measures that
overhead on a no-op scripted module and reports it, so that the reader can
see it is small next to a forward pass at these batch sizes.

Prints one JSON object on its last line.

usage: /usr/bin/python3 bench/compute_ceiling_transformer.py MODEL.pt SECONDS [BATCH...]
"""

import json
import sys
import time

import torch

SEQ, D_MODEL = 32, 128


class Noop(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


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
    step = 1
    while now < deadline:
        for _ in range(step):
            model(x)
        calls += step
        now = time.perf_counter()
        # Read the clock about every 10 ms whatever one call costs.
        per_call = (now - start) / calls
        step = max(1, min(1000, int(0.01 / per_call)))
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
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    model_path, seconds = sys.argv[1], float(sys.argv[2])
    batches = [int(b) for b in sys.argv[3:]] or [1, 8, 16, 32]
    torch.set_num_threads(1)
    torch.manual_seed(1)
    model = torch.jit.load(model_path, map_location="cpu")
    model.eval()
    noop = torch.jit.script(Noop())
    results = []
    with torch.inference_mode():
        overhead = measure(noop, torch.zeros(1, SEQ, D_MODEL), min(seconds, 1.0))["us_per_call"]
        for b in batches:
            x = torch.randn(b, SEQ, D_MODEL)
            out = model(x)
            assert tuple(out.shape) == (b, 2), out.shape
            results.append(measure(model, x, seconds))
    print(json.dumps({
        "kind": "in-process LibTorch via Python, 1 thread",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python_call_overhead_us": overhead,
        "results": results,
    }))


if __name__ == "__main__":
    main()
