"""Writes the markdown table and the sweep plot of bench/serve_transformer.sh
from the raw outputs in its work directory (berth bench JSON/CSV, wrk, hey,
berth's /metrics before and after each point, compute ceiling JSON, status,
command lines).

Exit status: 0 when every contender ran and saw no errors or non-2xx
responses, 1 otherwise (the table is then flagged as not a result).
"""

import argparse
import csv
import io
import json
import os
import platform
import re
import sys

from report_common import (busy_note, command_lines, fmt, hey_problem, load_lines, machine_base, parse_hey,
                           parse_wrk, plot_sweep, ratio, read, read_status, run, wrk_problem)

CONFIGS = [
    ("encoder", "berth, batching off (`encoder`)"),
    ("encoder_batched", "berth, dynamic batching on (`encoder_batched`)"),
]
W = "."


def p(*parts):
    return os.path.join(W, *parts)


# ---------------------------------------------------------------- parsers
def _bench_row(d):
    """berth bench JSON object or CSV row -> numbers (latencies in ms)."""
    def num(k):
        v = d.get(k)
        return None if v in (None, "") else float(v)
    return {
        "connections": int(num("connections") or 0),
        "requests": int(num("requests") or 0),
        "rps": num("throughput_rps"),
        "rows": num("throughput_rows_per_s"),
        "p50": num("p50_us") / 1000 if num("p50_us") is not None else None,
        "p90": num("p90_us") / 1000 if num("p90_us") is not None else None,
        "p99": num("p99_us") / 1000 if num("p99_us") is not None else None,
        "p999": num("p999_us") / 1000 if num("p999_us") is not None else None,
        "errors": int(num("errors") or 0),
        "non2xx": int(num("non_2xx") or 0),
        "conn_errors": int(num("connection_errors") or 0),
        "timeouts": int(num("timeouts") or 0),
    }


def parse_bench(label, fmt_):
    text = read(p(f"{label}.{fmt_}"))
    rc = read(p(f"{label}.rc")).strip()
    rows = []
    try:
        if fmt_ == "json":
            rows = [_bench_row(d) for d in json.loads(text)]
        else:
            rows = [_bench_row(d) for d in csv.DictReader(io.StringIO(text))]
    except (ValueError, KeyError, TypeError):
        rows = []
    if not rows:
        return None
    r = rows[0]
    r["rc"] = int(rc) if rc.lstrip("-").isdigit() else None
    r["stderr"] = read(p(f"{label}.{fmt_}.err")).strip()
    r["server"] = metrics_delta(label)
    return r


METRIC_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)$')


def parse_metrics(text):
    """{(name, model or None): value} for the counters the report uses."""
    out = {}
    for line in text.splitlines():
        m = METRIC_RE.match(line.strip())
        if not m:
            continue
        name, labels, value = m.groups()
        model = None
        if labels:
            lm = re.search(r'model="([^"]*)"', labels)
            model = lm.group(1) if lm else None
            if "le=" in labels:
                continue
        try:
            out[(name, model)] = float(value)
        except ValueError:
            pass
    return out


def metrics_delta(label):
    """Server-side view of one point from berth's /metrics: rows, executions,
    mean batch size, mean queue wait and berth's CPU use (cores)."""
    before_f, after_f = p(f"{label}.metrics.before"), p(f"{label}.metrics.after")
    before, after = parse_metrics(read(before_f)), parse_metrics(read(after_f))
    if not before or not after:
        return None
    model = label.split(".", 1)[0]

    def d(name, m=model):
        a, b = after.get((name, m)), before.get((name, m))
        return None if a is None or b is None else a - b
    rows = d("berth_inference_count_total")
    execs = d("berth_inference_exec_count_total")
    reqs = (d("berth_inference_request_success_total") or 0) + (d("berth_inference_request_failure_total") or 0)
    queue_us = d("berth_inference_queue_duration_us_total")
    cpu = d("process_cpu_seconds_total", None)
    wall = os.path.getmtime(after_f) - os.path.getmtime(before_f)
    return {
        "rows": rows, "execs": execs,
        "mean_batch": rows / execs if rows and execs else None,
        "queue_ms": queue_us / reqs / 1000 if queue_us is not None and reqs else None,
        "cpu_cores": cpu / wall if cpu is not None and wall > 0 else None,
        "failures": d("berth_inference_request_failure_total"),
    }


# ---------------------------------------------------------------- machine
def machine():
    blas_line = next((l for l in read(p("berth.log")).splitlines() if "BLAS:" in l), "")
    return machine_base() + [
        ("berth's BLAS (startup log)", blas_line.split("BLAS:", 1)[1].strip() if blas_line else "–"),
        ("OPENBLAS_NUM_THREADS / OMP_NUM_THREADS",
         f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')} / {os.environ.get('OMP_NUM_THREADS', 'unset')}"),
    ] + load_lines(W)


def versions(berth_version):
    py = sys.executable
    wrk_v = run(["wrk", "-v"]).splitlines()
    return [
        ("berth", berth_version.replace("\n", " ")),
        ("Python", f"{platform.python_version()} ({py})"),
        ("torch", run([py, "-c", "import torch; print(torch.__version__)"])),
        ("numpy / matplotlib", run([py, "-c", "import numpy, matplotlib; print(numpy.__version__, '/', matplotlib.__version__)"])),
        ("wrk", wrk_v[0] if wrk_v else "missing"),
        ("hey", f"hey {run(['dpkg-query', '-W', '-f=${Version}', 'hey'])} (Debian package version)"),
    ]


# ---------------------------------------------------------------- plot
def plot(path, sweeps, ceiling_best, title):
    series = [(label.replace("`", ""), [(r["rows"], r["p99"], r["connections"]) for r in sweeps.get(key, []) if r])
              for key, label in CONFIGS]
    vline = ceiling_best and (ceiling_best["rows_per_s"], f"compute ceiling, batch {ceiling_best['batch']} "
                                                         "(LibTorch from C++, 1 thread)")
    plot_sweep(path, series, title, "throughput (rows/s = req/s, batch 1 per request)", vline)


# ---------------------------------------------------------------- main
def main():
    global W
    ap = argparse.ArgumentParser()
    for a in ("work", "out", "plot", "berth-version", "berth-bin", "model-repo", "sweep"):
        ap.add_argument(f"--{a}", required=True)
    for a in ("smoke", "duration", "warmup", "connections"):
        ap.add_argument(f"--{a}", type=int, required=True)
    args = ap.parse_args()
    W = args.work
    ncpu = os.cpu_count() or 1
    levels = [int(x) for x in args.sweep.split()]

    status = read_status(W)
    problems = []
    for name in [k for k, _ in CONFIGS] + ["compute", "compute_python"]:
        st, why = status.get(name, ("failed", "did not run"))
        if st != "ok":
            problems.append(f"{name}: {why}")

    head, wrk, hey, sweeps = {}, {}, {}, {}
    for key, _ in CONFIGS:
        if status.get(key, ("failed",))[0] != "ok":
            continue
        head[key] = parse_bench(f"{key}.head", "json")
        wrk[key] = parse_wrk(read(p(f"{key}.wrk.txt")))
        hey[key] = parse_hey(read(p(f"{key}.hey.txt")))
        sweeps[key] = [parse_bench(f"{key}.sweep.{c}", "csv") for c in levels]
        points = [(f"berth bench -c {args.connections}", head[key])] + \
                 [(f"sweep -c {c}", r) for c, r in zip(levels, sweeps[key])]
        for what, r in points:
            if r is None:
                problems.append(f"{key}: {what}: no result")
            elif r["errors"] or r["non2xx"] or r["rc"] != 0:
                problems.append(f"{key}: {what}: {r['errors']} errors, {r['non2xx']} non-2xx, exit status {r['rc']}")
            elif not r["requests"]:
                problems.append(f"{key}: {what}: no request answered")
        for why in (wrk_problem(wrk[key]), hey_problem(hey[key])):
            if why:
                problems.append(f"{key}: {why}")

    compute = compute_py = None
    try:
        compute = json.loads(read(p("compute.json")))
    except ValueError:
        pass
    try:
        compute_py = json.loads(read(p("compute_python.json")))
    except ValueError:
        pass
    ceil_best = max(compute["results"], key=lambda r: r["rows_per_s"]) if compute else None
    ceil_b1 = next((r for r in compute["results"] if r["batch"] == 1), None) if compute else None

    # ---- plot
    plot_ok = False
    try:
        plot(args.plot, sweeps, ceil_best,
             f"berth, TorchScript transformer encoder (binary tensors): p99 vs throughput, "
             f"{args.duration}s per point")
        plot_ok = True
    except Exception as e:  # noqa: BLE001  (a missing plot is a problem, not a crash)
        problems.append(f"plot failed: {e}")

    # ---- markdown
    L = []
    L.append("# Serving benchmark: TorchScript transformer encoder, binary tensors, dynamic batching off vs on")
    L.append("")
    date = run(["date", "-u", "+%F %T UTC"])
    L.append(f"Date: {date}. Written by `bench/serve_transformer.sh`"
             f"{' (**--smoke**: not a measurement)' if args.smoke else ''}; every point measured in one run "
             "against one berth process.")
    L.append("")
    note = busy_note(W, ncpu)
    if note:
        L += [note, ""]
    if problems:
        L.append("> **NOT A RESULT:** " + "; ".join(problems))
        L.append("")

    L.append(f"## Results at {args.connections} connections")
    L.append("")
    L.append(f"Each request is one row (`x` FP32 [1, 32, 128], 16 KiB of binary tensor data), answered "
             f"with binary `logits` FP32 [1, 2]. {args.warmup} s warm-up, then {args.duration} s per tool. "
             "`berth bench --binary` (random data) gives throughput and latency; wrk "
             "(`bench/infer_binary.lua`) and hey send the same fixed binary body as independent checks. "
             "Server-side columns come from berth's `/metrics` (rows / executions, queue time per request, "
             "CPU seconds per wall second) over the `berth bench` point.")
    L.append("")
    L.append("| configuration | req/s = rows/s | p50 ms | p90 ms | p99 ms | errors / non-2xx | mean batch (server) | queue wait ms (server) | berth CPU (cores) | req/s (wrk) | errors / bad status (wrk) | req/s (hey) | p50 / p90 / p99 ms (hey) | errors / non-2xx (hey) |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key, label in CONFIGS:
        r, w, h = head.get(key), wrk.get(key), hey.get(key)
        if r is None:
            L.append(f"| {label} | failed: {status.get(key, ('', 'did not run'))[1] or 'no result'} |" + " |" * 13)
            continue
        s = r["server"] or {}
        wrk_rps = fmt(w["rps"]) if w else "–"
        wrk_err = f"{w['socket_errors']} / {w['bad_status']}" if w else "–"
        hey_rps = fmt(h["rps"]) if h else "–"
        hey_lat = f"{fmt(h['p50_ms'], 1)} / {fmt(h['p90_ms'], 1)} / {fmt(h['p99_ms'], 1)}" if h else "–"
        hey_err = f"{h['errors']} / {h['non2xx']}" if h else "–"
        L.append(
            f"| {label} | **{fmt(r['rows'])}** | {fmt(r['p50'], 2)} | {fmt(r['p90'], 2)} | **{fmt(r['p99'], 2)}** | "
            f"{r['errors']} / {r['non2xx']} | {fmt(s.get('mean_batch'), 1)} | {fmt(s.get('queue_ms'), 2)} | "
            f"{fmt(s.get('cpu_cores'), 2)} | {wrk_rps} | {wrk_err} | {hey_rps} | {hey_lat} | {hey_err} |")
    L.append("")
    L.append("hey reports latencies in 0.1 ms steps and drives less load than wrk or berth bench "
             "(all three share the 2 CPUs with the server).")
    L.append("")

    def ceiling_table(c, best):
        L.append("| batch | calls/s | rows/s | µs per call | µs per row |")
        L.append("|---:|---:|---:|---:|---:|")
        for r in c["results"]:
            mark = " (best)" if r is best else ""
            L.append(f"| {r['batch']}{mark} | {fmt(r['calls_per_s'], 1)} | **{fmt(r['rows_per_s'])}** | "
                     f"{fmt(r['us_per_call'])} | {fmt(r['us_per_call'] / r['batch'])} |")

    L.append("### Compute ceiling: in-process LibTorch from C++, 1 thread")
    L.append("")
    if compute:
        L.append(f"The same `model.pt` called in a loop by `build/bin/berth_torch_ceiling` "
                 f"(backends/torchscript/compute_ceiling.cc: `torch::jit::load`, `at::set_num_threads(1)`, "
                 f"`c10::InferenceMode`, OPENBLAS_NUM_THREADS=1, jemalloc as in berth, LibTorch {compute['torch']}), random input "
                 "[batch, 32, 128], after a 1 s warm-up; no HTTP, no serialisation, no queue, no berth code. "
                 "The ratios below are against this.")
        L.append("")
        ceiling_table(compute, ceil_best)
    else:
        L.append(f"failed: {status.get('compute', ('', 'did not run'))[1]}")
    L.append("")
    L.append("For reference, the same loop from Python (`bench/compute_ceiling_transformer.py`: `torch.jit.load`, "
             "`torch.set_num_threads(1)`, `torch.inference_mode()`):")
    L.append("")
    if compute_py:
        L.append(f"Python call overhead on a no-op scripted module: {compute_py['python_call_overhead_us']:.1f} µs "
                 "per call.")
        L.append("")
        ceiling_table(compute_py, max(compute_py["results"], key=lambda r: r["rows_per_s"]))
    else:
        L.append(f"failed: {status.get('compute_python', ('', 'did not run'))[1]}")
    L.append("")

    L.append("### Ratios")
    L.append("")
    L.append("| ratio | value |")
    L.append("|---|---:|")
    hb, hu = head.get("encoder_batched"), head.get("encoder")
    L.append(f"| batching on / off, rows/s at {args.connections} connections (berth bench) | "
             f"{ratio(hb and hb['rows'], hu and hu['rows'])} |")
    L.append(f"| batching on / off, p99 at {args.connections} connections (< 1 is better) | "
             f"{ratio(hb and hb['p99'], hu and hu['p99'])} |")
    L.append(f"| batching on / off, req/s (wrk) | {ratio(wrk.get('encoder_batched') and wrk['encoder_batched']['rps'], wrk.get('encoder') and wrk['encoder']['rps'])} |")
    best_sweep = {}
    for key, label in CONFIGS:
        r = head.get(key)
        cb = ceil_best and ceil_best["rows_per_s"]
        best_b = f" ({ceil_best['batch']})" if ceil_best else ""
        L.append(f"| {label}, rows/s at {args.connections} connections / compute ceiling at the best batch size"
                 f"{best_b} | {ratio(r and r['rows'], cb)} |")
        pts = [x for x in sweeps.get(key, []) if x and x["rows"]]
        if pts:
            best_sweep[key] = max(pts, key=lambda x: x["rows"])
            b = best_sweep[key]
            L.append(f"| {label}, best sweep point (c={b['connections']}, {fmt(b['rows'])} rows/s) / compute ceiling "
                     f"at the best batch size | {ratio(b['rows'], cb)} |")
        L.append(f"| {label}, rows/s at {args.connections} connections / compute ceiling at batch 1 | "
                 f"{ratio(r and r['rows'], ceil_b1 and ceil_b1['rows_per_s'])} |")
    L.append("")

    L.append("## Concurrency sweep")
    L.append("")
    L.append(f"`berth bench --binary --format csv`, one run per level ({args.warmup} s warm-up + {args.duration} s), "
             "levels interleaved between the two models. Mean batch = rows / backend executions from berth's "
             "`/metrics` over the point (warm-up included).")
    L.append("")
    if plot_ok:
        L.append(f"![p99 latency vs throughput]({os.path.basename(args.plot)})")
        L.append("")
    hdr = "| connections |"
    sep = "|---:|"
    for key, _ in CONFIGS:
        hdr += f" {key} rows/s | p50 ms | p99 ms | errors | mean batch | CPU cores |"
        sep += "---:|---:|---:|---:|---:|---:|"
    L.append(hdr)
    L.append(sep)
    for i, c in enumerate(levels):
        row = f"| {c} |"
        for key, _ in CONFIGS:
            r = (sweeps.get(key) or [None] * len(levels))[i]
            if r is None:
                row += " – | – | – | – | – | – |"
            else:
                s = r["server"] or {}
                row += (f" {fmt(r['rows'])} | {fmt(r['p50'], 2)} | {fmt(r['p99'], 2)} | {r['errors'] + r['non2xx']} | "
                        f"{fmt(s.get('mean_batch'), 1)} | {fmt(s.get('cpu_cores'), 2)} |")
        L.append(row)
    L.append("")

    L.append("## Setup")
    L.append("")
    L.append(f"- Models: `{args.model_repo}/encoder` and `{args.model_repo}/encoder_batched` (the same "
             "`model.pt`, written by `bench/make_transformer.py`): TorchScript `nn.TransformerEncoder`, 2 layers, "
             "d_model 128, 4 heads, dim_feedforward 256, batch_first, eval mode; mean over the 32 positions, "
             "then a Linear to 2 logits. `max_batch_size: 32`, `instances: 1`, `threads: 1`.")
    L.append("- `encoder_batched` adds `dynamic_batching: {max_queue_delay_us: 2000, preferred_batch_sizes: [8, 16, 32]}`.")
    for key, _ in CONFIGS:
        y = read(os.path.join(args.model_repo, key, "model.yaml")).strip()
        L.append(f"- `{key}/model.yaml`:")
        L.append("")
        L.append("  ```yaml")
        L += ["  " + line for line in y.splitlines()]
        L.append("  ```")
    try:
        exp = json.loads(read(p("expected.json")))
        L.append(f"- wrk/hey body ({exp['body_bytes']} bytes, `Content-Type: application/octet-stream`, "
                 f"`Inference-Header-Content-Length: {len(exp['header'])}`): JSON header `{exp['header']}` then "
                 "16,384 bytes of FP32 data (numpy `default_rng(0)` normal).")
        for key, _ in CONFIGS:
            r = json.loads(read(p(f"{key}.response.json")) or "null")
            if r:
                L.append(f"- `{key}` answered that body with `{json.dumps(r['header'], separators=(',', ':'))}` + "
                         f"logits {[round(x, 6) for x in r['logits']]} ({r['bytes']} bytes); torch eager on the same "
                         f"input differs by {r['max_abs_diff']:.2e} at most.")
    except (ValueError, KeyError, TypeError):
        pass
    L.append("- The load generators run on the same 2 CPUs as berth, so absolute numbers are lower than "
             "with a separate client machine; compare the ratios. berth's startup log:")
    L.append("")
    L.append("  ```")
    L += ["  " + l for l in read(p("berth.log")).splitlines() if " info " in l][:8]
    L.append("  ```")
    L.append("")

    L.append("## Machine")
    L.append("")
    L += [f"- {k}: {v}" for k, v in machine()]
    L.append("")
    L.append("## Versions")
    L.append("")
    L += [f"- {k}: {v}" for k, v in versions(args.berth_version)]
    L.append("")
    L.append("## Command lines")
    L.append("")
    L.append("Ports were free loopback ports picked at start; `body.bin` is the binary request body above.")
    L.append("")
    L.append("```sh")
    L += command_lines(W)
    L.append("```")
    L.append("")

    with open(args.out, "w") as f:
        f.write("\n".join(L))
    for x in problems:
        print(f"serve_transformer: {x}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
