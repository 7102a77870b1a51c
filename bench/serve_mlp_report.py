"""Writes the markdown table (and, with --sweep, the latency-vs-throughput plot)
of bench/serve_mlp.sh from the raw logs in its work directory (wrk/hey
outputs, compute_ceiling.py JSON, status, commands).

Exit status: 0 when every contender ran and saw no errors or non-2xx
responses, 1 otherwise (the table is then flagged as not a result).
"""

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import sys

from report_common import (busy_note, command_lines, fmt, hey_problem, load_lines, machine_base,
                           parse_hey, parse_wrk, plot_sweep, ratio, read, read_status, run, which,
                           wrk_problem)

CONTENDERS = [
    ("berth", "berth"),
    ("flask", "gunicorn + Flask"),
    ("fastapi", "uvicorn + FastAPI"),
    ("nginx", "nginx static file (HTTP ceiling)"),
]
LABEL = dict(CONTENDERS)
SHORT = {"berth": "berth", "flask": "Flask", "fastapi": "FastAPI", "nginx": "nginx"}


def _pkg(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def versions(berth_version):
    py = sys.executable
    nginx_v = run(["nginx", "-v"]) if which("nginx") else run(["/usr/sbin/nginx", "-v"])
    wrk_v = run(["wrk", "-v"]).splitlines()[0] if which("wrk") else "missing"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio (uvloop not installed)"
    http = "httptools" if importlib.util.find_spec("httptools") else f"h11 {_pkg('h11')} (httptools not installed)"
    return [
        ("berth", berth_version.replace("\n", " ")),
        ("Python", f"{platform.python_version()} ({py})"),
        ("torch", run([py, "-c", "import torch; print(torch.__version__)"])),
        ("Flask / gunicorn", f"{_pkg('flask')} / {_pkg('gunicorn')}"),
        ("FastAPI / Starlette / uvicorn", f"{_pkg('fastapi')} / {_pkg('starlette')} / {_pkg('uvicorn')}"),
        ("uvicorn's event loop / HTTP parser (`--loop auto --http auto`)", f"{loop} / {http}"),
        ("nginx", nginx_v),
        ("wrk", wrk_v),
        ("hey", f"hey {run(['dpkg-query', '-W', '-f=${Version}', 'hey'])} (Debian package version)"),
    ]


def check(label, wrk, hey, problems):
    for why in (wrk_problem(wrk), hey_problem(hey)):
        if why:
            problems.append(f"{label}: {why}")


def results_table(a, rows):
    L = ["## Results", ""]
    L.append(f"{a.connections} connections, one JSON v2 infer request (one 16-float row) per call, "
             f"{a.duration} s per tool after a {a.warmup} s wrk warm-up. Throughput from wrk "
             "(`-t2`, Lua body `bench/infer.lua`); latency percentiles from hey (which reports in 0.1 ms "
             "steps and, being heavier per request than wrk, drives less load); wrk's own percentiles "
             "(µs resolution, `--latency`) for comparison. Errors are socket errors (connect, read, "
             "write, timeout) / responses with a bad status (wrk counts statuses >= 400, hey every non-2xx).")
    L.append("")
    L.append("| contender | req/s (wrk) | p50 ms (hey) | p90 ms (hey) | p99 ms (hey) | req/s (hey) "
             "| p50 / p99 ms (wrk) | requests (wrk + hey) | errors / non-2xx (wrk) | errors / non-2xx (hey) |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key, label in CONTENDERS:
        st, reason, wrk, hey = rows[key]
        if st != "ok":
            L.append(f"| {label} | failed: {reason} | | | | | | | | |")
            continue
        wrk_rps = fmt(wrk["rps"]) if wrk else "–"
        wrk_lat = f"{wrk['p50_ms']:.2f} / {wrk['p99_ms']:.2f}" if wrk else "–"
        wrk_err = f"{wrk['socket_errors']} / {wrk['bad_status']}" if wrk else "–"
        nreq = (wrk["requests"] if wrk else 0) + (hey["responses"] if hey else 0)
        if hey:
            h = [fmt(hey[f"p{p}_ms"], 2) for p in ("50", "90", "99")]
            hey_rps, hey_err = fmt(hey["rps"]), f"{hey['errors']} / {hey['non2xx']}"
        else:
            h, hey_rps, hey_err = ["–"] * 3, "–", "–"
        L.append(f"| {label} | **{wrk_rps}** | {h[0]} | {h[1]} | **{h[2]}** | {hey_rps} | {wrk_lat} "
                 f"| {nreq:,} | {wrk_err} | {hey_err} |")
    return L + [""]


def compute_section(compute, compute_cpp):
    def table(c):
        out = ["", "| batch | calls/s | rows/s | µs per call |", "|---:|---:|---:|---:|"]
        for r in c["results"]:
            out.append(f"| {r['batch']} | {fmt(r['calls_per_s'])} | {fmt(r['rows_per_s'])} | {r['us_per_call']:.2f} |")
        return out + [""]

    L = ["### Compute ceiling (in-process)", ""]
    if compute_cpp:
        L.append(f"The same TorchScript model called in a loop from **C++** (`build/bin/berth_torch_ceiling`: "
                 f"`torch::jit::load`, {compute_cpp['threads']} intra-op thread, `c10::InferenceMode`, "
                 f"OPENBLAS_NUM_THREADS=1, jemalloc as in berth), LibTorch {compute_cpp['torch']}, random input, no HTTP and no JSON.")
        L += table(compute_cpp)
    else:
        L += ["C++: not measured (see above).", ""]
    if compute:
        L.append(f"The same from **Python** (`torch.jit.load`, `torch.set_num_threads({compute['threads']})`, "
                 f"`torch.inference_mode()`), torch {compute['torch']}, on the request's own input; includes "
                 "Python's per-call overhead.")
        L += table(compute)
    else:
        L += ["Python: not measured (see above).", ""]
    return L


def ratios_section(rows, compute, compute_cpp, best):
    def get(key, tool, field):
        st, _, wrk, hey = rows.get(key, ("failed", "", None, None))
        d = wrk if tool == "wrk" else hey
        return d.get(field) if st == "ok" and d else None

    def batch1(c):
        return next((r["calls_per_s"] for r in c["results"] if r["batch"] == 1), None) if c else None

    c1, cpp1 = batch1(compute), batch1(compute_cpp)
    L = ["### Ratios", "", "| ratio | value |", "|---|---:|"]
    others = ("flask", "fastapi", "nginx")
    for o in others:
        L.append(f"| berth / {SHORT[o]}, req/s (wrk) | "
                 f"{ratio(get('berth', 'wrk', 'rps'), get(o, 'wrk', 'rps'))} |")
    for o in others:
        note = "; < 1 is better" if o == "flask" else ""
        L.append(f"| berth / {SHORT[o]}, p99 latency (hey{note}) | "
                 f"{ratio(get('berth', 'hey', 'p99_ms'), get(o, 'hey', 'p99_ms'))} |")
    L.append(f"| FastAPI / Flask, req/s (wrk) | {ratio(get('fastapi', 'wrk', 'rps'), get('flask', 'wrk', 'rps'))} |")
    for o in ("flask", "fastapi"):
        if "berth" in best and o in best:
            b, x = best["berth"], best[o]
            L.append(f"| berth / {SHORT[o]}, best sweep throughput (c={b[1]} vs c={x[1]}) | {ratio(b[0]['rps'], x[0]['rps'])} |")
    L.append(f"| berth req/s (wrk) / C++ in-process calls/s at batch 1 | {ratio(get('berth', 'wrk', 'rps'), cpp1)} |")
    L.append(f"| berth req/s (wrk) / Python in-process calls/s at batch 1 | {ratio(get('berth', 'wrk', 'rps'), c1)} |")
    return L + [""]


def sweep_section(a, sweep, keys, levels, plot_ok):
    L = ["## Concurrency sweep", ""]
    L.append(f"One wrk run per point (`-c N -t min(N, 2) -d {a.duration}s --latency`, `bench/infer.lua`); "
             "levels interleaved between the contenders so that drift in the machine's load hits them "
             "alike; the servers are already warm from the runs above. Latencies are wrk's (µs "
             "resolution). gunicorn's sync workers close the connection after every response, so "
             "Flask's points include a TCP connect per request (as in the table above).")
    L.append("")
    if plot_ok:
        L += [f"![p99 latency vs throughput]({os.path.basename(a.plot)})", ""]
    L.append("| connections |" + "".join(f" {SHORT[k]} req/s | p50 ms | p99 ms | errors |" for k in keys))
    L.append("|---:|" + "---:|---:|---:|---:|" * len(keys))
    for c in levels:
        row = f"| {c} |"
        for k in keys:
            w = sweep.get((k, c))
            if w is None:
                row += " – | – | – | – |"
            else:
                row += (f" {fmt(w['rps'])} | {fmt(w['p50_ms'], 2)} | {fmt(w['p99_ms'], 2)} | "
                        f"{w['socket_errors'] + w['bad_status']} |")
        L.append(row)
    return L + [""]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--plot", default="")
    ap.add_argument("--smoke", type=int, default=0)
    ap.add_argument("--duration", type=int, required=True)
    ap.add_argument("--warmup", type=int, required=True)
    ap.add_argument("--connections", type=int, required=True)
    ap.add_argument("--sweep", default="", help="concurrency levels swept, empty when no sweep ran")
    ap.add_argument("--sweep-contenders", default="")
    ap.add_argument("--berth-version", default="")
    ap.add_argument("--static-from", default="berth")
    ap.add_argument("--flask-config", default="")
    ap.add_argument("--fastapi-config", default="")
    ap.add_argument("--model", default="")
    a = ap.parse_args()
    w = a.work
    ncpu = os.cpu_count() or 1
    status = read_status(w)

    problems = []
    rows = {}
    for key, label in CONTENDERS:
        st, reason = status.get(key, ("failed", "not started"))
        wrk = hey = None
        if st == "ok":
            wrk = parse_wrk(read(os.path.join(w, f"{key}.wrk.txt")))
            hey = parse_hey(read(os.path.join(w, f"{key}.hey.txt")))
            check(label, wrk, hey, problems)
        else:
            problems.append(f"{label}: {reason}")
        rows[key] = (st, reason, wrk, hey)

    levels = [int(x) for x in a.sweep.split()]
    keys = [k for k in a.sweep_contenders.split() if k in LABEL]
    sweep, best = {}, {}
    for k in keys:
        if status.get(k, ("failed",))[0] != "ok":
            continue   # already reported above
        for c in levels:
            r = parse_wrk(read(os.path.join(w, f"{k}.sweep.{c}.wrk.txt")))
            why = wrk_problem(r)
            if why:
                problems.append(f"{LABEL[k]}: sweep -c {c}: {why}")
            if r is not None:
                sweep[(k, c)] = r
                if r["requests"] and (k not in best or r["rps"] > best[k][0]["rps"]):
                    best[k] = (r, c)

    def load_json(name, label):
        if status.get(name, ("failed",))[0] != "ok":
            problems.append(f"{label}: {status.get(name, ('', 'not run'))[1]}")
            return None
        try:
            return json.loads(read(os.path.join(w, name + ".json")))
        except ValueError:
            problems.append(f"{label}: unreadable output")
            return None

    compute = load_json("compute", "compute ceiling (Python)")
    compute_cpp = load_json("compute_cpp", "compute ceiling (C++)")
    if a.static_from != "berth":
        problems.append(f"nginx served {a.static_from}'s response body, not berth's (berth did not run)")

    plot_ok = False
    if levels and sweep:
        try:
            series = [(LABEL[k], [(r["rps"], r["p99_ms"], c) for c in levels if (r := sweep.get((k, c)))])
                      for k in keys]
            plot_sweep(a.plot, series, f"TorchScript MLP, HTTP/JSON: p99 (wrk) vs throughput, "
                       f"{a.duration} s per point", "throughput (req/s, wrk; log scale)",
                       xlog=True, legend="upper right")
            plot_ok = True
        except Exception as e:  # noqa: BLE001  (a missing plot is a problem, not a crash)
            problems.append(f"plot failed: {e}")

    L = [f"# Serving benchmark: TorchScript MLP over HTTP/JSON (v2 infer){' — SMOKE' if a.smoke else ''}", ""]
    L.append(f"Date: {run(['date', '-u', '+%F %T UTC'])}. Written by `bench/serve_mlp.sh`"
             f"{' --smoke' if a.smoke else ''}; all contenders measured side by side in one run.")
    L.append("")
    if problems:
        L.append("> **NOT A RESULT.** This run had failures or errors; do not quote these numbers:")
        L += [f"> - {p}" for p in problems]
        L.append("")
    note = busy_note(w, ncpu)
    if note:
        L += [note, ""]
    if a.smoke and not problems:
        L += [f"> Smoke run ({a.duration} s per point): checks that the script works; the "
              "numbers are too short to quote.", ""]

    L += results_table(a, rows)
    L += compute_section(compute, compute_cpp)
    L += ratios_section(rows, compute, compute_cpp, best)
    if levels:
        L += sweep_section(a, sweep, keys, levels, plot_ok)

    L += ["## Setup", ""]
    L.append(f"- Model: `{a.model}` (TorchScript MLP, input `x` FP32 [batch,16], output `probs` FP32 [batch,4]).")
    body = read(os.path.join(w, "body.json"))
    L.append(f"- Request body ({len(body)} bytes), `POST /v2/models/mlp/infer`, `Content-Type: application/json`:")
    L += ["", "  ```json", f"  {body}", "  ```"]
    for key in ("berth", "flask", "fastapi"):
        resp = read(os.path.join(w, f"{key}.response.json")).strip()
        if resp:
            L.append(f"- {SHORT[key]}'s response ({len(resp)} bytes): `{resp}`")
    for key in ("flask", "fastapi"):
        diff = _max_diff(w, key)
        if diff is not None:
            L.append(f"- berth and {SHORT[key]} outputs agree to {diff:.2e} (max absolute difference).")
    L.append(f"- nginx serves {a.static_from}'s response body above as a static file "
             "(`error_page 405 =200 $uri;` turns the POST into a 200 with the file).")
    L.append(f"- Flask: {a.flask_config} (`bench/flask_app.py`).")
    L.append(f"- FastAPI: {a.fastapi_config}; an `async def` endpoint that reads the raw body "
             "(`bench/fastapi_app.py`).")
    L.append("- Flask and FastAPI share the model code (`bench/mlp_model.py`): loaded in each worker with "
             "`torch.jit.load`, `torch.set_num_threads(1)`, `torch.inference_mode()`; the same JSON "
             "parsing, checks and response body, so they differ only in the web stack.")
    L.append("- All servers listen on 127.0.0.1 and share the machine with the load generators "
             "(wrk/hey run on the same cores), so absolute numbers are lower than on a dedicated "
             "client; compare the ratios.")
    L += ["", "## Machine", ""]
    L += [f"- {k}: {v}" for k, v in machine_base() + load_lines(w)]
    L += ["", "## Versions", ""]
    L += [f"- {k}: {v}" for k, v in versions(a.berth_version)]
    L += ["", "## Command lines", ""]
    L.append("Ports were free loopback ports picked at start; `body.json` is the request body above.")
    L += ["", "```sh"] + command_lines(w) + ["```", ""]

    with open(a.out, "w") as f:
        f.write("\n".join(L))
    for p in problems:
        print(f"serve_mlp: {p}", file=sys.stderr)
    return 1 if problems else 0


def _max_diff(w, other):
    try:
        outs = []
        for key in ("berth", other):
            r = json.loads(read(os.path.join(w, f"{key}.response.json")))
            outs.append({t["name"]: t for t in r["outputs"]}["probs"]["data"])
        return max(abs(float(x) - float(y)) for x, y in zip(*outs))
    except (ValueError, KeyError, TypeError):
        return None


if __name__ == "__main__":
    sys.exit(main())
