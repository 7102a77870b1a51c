"""Writes the markdown table of bench/serve_mlp.sh from the raw logs in its
work directory (wrk/hey outputs, compute_ceiling.py JSON, status, commands).

Exit status: 0 when every contender ran and saw no errors or non-2xx
responses, 1 otherwise (the table is then flagged as not a result).
"""

import argparse
import json
import os
import platform
import re
import subprocess
import sys

CONTENDERS = [
    ("berth", "berth"),
    ("flask", "gunicorn + Flask"),
    ("nginx", "nginx static file (HTTP ceiling)"),
]


def run(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (p.stdout + p.stderr).strip()
    except (OSError, subprocess.SubprocessError) as e:
        return f"({e})"


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def parse_wrk(text):
    """The BENCH_WRK line printed by bench/infer.lua's done()."""
    m = re.search(r"^BENCH_WRK (.*)$", text, re.M)
    if not m:
        return None
    kv = dict(item.split("=", 1) for item in m.group(1).split())
    v = {k: int(x) for k, x in kv.items()}
    secs = v["duration_us"] / 1e6
    errors = v["connect"] + v["read"] + v["write"] + v["timeout"]
    return {
        "requests": v["requests"],
        "rps": v["requests"] / secs if secs > 0 else 0.0,
        "socket_errors": errors,
        "socket_detail": f"connect {v['connect']}, read {v['read']}, write {v['write']}, timeout {v['timeout']}",
        "bad_status": v["status"],
        "p50_ms": v["lat_p50_us"] / 1000,
        "p90_ms": v["lat_p90_us"] / 1000,
        "p99_ms": v["lat_p99_us"] / 1000,
        "tool_failed": "wrk exit status" in text,
    }


def parse_hey(text):
    if "Summary:" not in text:
        return None
    out = {"tool_failed": "hey exit status" in text}
    m = re.search(r"Requests/sec:\s+([0-9.]+)", text)
    out["rps"] = float(m.group(1)) if m else 0.0
    for pct in ("50", "90", "99"):
        m = re.search(rf"^\s*{pct}% in ([0-9.]+) secs", text, re.M)
        out[f"p{pct}_ms"] = float(m.group(1)) * 1000 if m else None
    codes = {}
    sec = re.search(r"Status code distribution:\n((?:\s+\[\d+\].*\n?)*)", text)
    if sec:
        for code, n in re.findall(r"\[(\d+)\]\s+(\d+) responses", sec.group(1)):
            codes[int(code)] = codes.get(int(code), 0) + int(n)
    out["codes"] = codes
    out["responses"] = sum(codes.values())
    out["non2xx"] = sum(n for c, n in codes.items() if not 200 <= c < 300)
    errs = 0
    detail = []
    sec = re.search(r"Error distribution:\n((?:\s+\[\d+\].*\n?)*)", text)
    if sec:
        for n, msg in re.findall(r"\[(\d+)\]\s+(.*)", sec.group(1)):
            errs += int(n)
            detail.append(f"{n}x {msg.strip()[:160]}")
    out["errors"] = errs
    out["error_detail"] = detail
    return out


def fmt(x, digits=0):
    if x is None:
        return "–"
    return f"{x:,.{digits}f}"


def ratio(a, b):
    if not a or not b:
        return "–"
    r = a / b
    return f"{r:.2f}×" if r >= 0.1 else f"{r:.3f}×"


WORK = "."


def machine():
    cpu = "unknown"
    for line in read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = "unknown"
    m = re.search(r"MemTotal:\s+(\d+) kB", read("/proc/meminfo"))
    if m:
        mem = f"{int(m.group(1)) / 1024 / 1024:.1f} GiB"
    blas = os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3")
    load = read("/proc/loadavg").split()[:3]
    return [
        ("nproc", run(["nproc"])),
        ("CPU", cpu),
        ("memory", mem),
        ("kernel", f"{platform.system()} {platform.release()}"),
        ("OS", _os_release()),
        ("libblas.so.3", blas),
        ("load average (1/5/15 min) at start", read(os.path.join(WORK, "loadavg.start")).strip()),
        ("load average (1/5/15 min) at report time", " ".join(load)),
    ]


def _os_release():
    m = re.search(r'^PRETTY_NAME="?([^"\n]*)', read("/etc/os-release"), re.M)
    return m.group(1) if m else "unknown"


def versions(berth_version):
    py = sys.executable
    torch_v = run([py, "-c", "import torch; print(torch.__version__)"])
    flask_v = run([py, "-c", "import importlib.metadata as m; print(m.version('flask'))"])
    gunicorn_v = run([py, "-c", "import gunicorn; print(gunicorn.__version__)"])
    nginx_v = run(["nginx", "-v"]) if _which("nginx") else run(["/usr/sbin/nginx", "-v"])
    wrk_v = run(["wrk", "-v"]).splitlines()[0] if _which("wrk") else "missing"
    hey_v = run(["dpkg-query", "-W", "-f=${Version}", "hey"])
    return [
        ("berth", berth_version.replace("\n", " ")),
        ("Python", f"{platform.python_version()} ({py})"),
        ("torch", torch_v),
        ("Flask", flask_v),
        ("gunicorn", gunicorn_v),
        ("nginx", nginx_v),
        ("wrk", wrk_v),
        ("hey", f"hey {hey_v} (Debian package version)"),
    ]


def _which(name):
    return any(os.access(os.path.join(d, name), os.X_OK)
               for d in os.environ.get("PATH", "").split(os.pathsep))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--smoke", type=int, default=0)
    ap.add_argument("--duration", type=int, required=True)
    ap.add_argument("--warmup", type=int, required=True)
    ap.add_argument("--connections", type=int, required=True)
    ap.add_argument("--berth-version", default="")
    ap.add_argument("--static-from", default="berth")
    ap.add_argument("--flask-config", default="")
    ap.add_argument("--model", default="")
    a = ap.parse_args()
    w = a.work
    global WORK
    WORK = w

    status = {}
    for line in read(os.path.join(w, "status.txt")).splitlines():
        name, st, reason = (line.split("\t") + ["", ""])[:3]
        status[name] = (st, reason)

    problems = []
    rows = {}
    for key, label in CONTENDERS:
        st, reason = status.get(key, ("failed", "not started"))
        wrk = parse_wrk(read(os.path.join(w, f"{key}.wrk.txt"))) if st == "ok" else None
        hey = parse_hey(read(os.path.join(w, f"{key}.hey.txt"))) if st == "ok" else None
        if st != "ok":
            problems.append(f"{label}: {reason}")
        else:
            if wrk is None or wrk["tool_failed"]:
                problems.append(f"{label}: wrk did not produce a result")
            elif wrk["socket_errors"] or wrk["bad_status"]:
                problems.append(f"{label}: wrk saw {wrk['bad_status']} non-2xx/3xx responses and "
                                f"{wrk['socket_errors']} socket errors ({wrk['socket_detail']})")
            elif wrk["requests"] == 0:
                problems.append(f"{label}: wrk completed no requests")
            if hey is None or hey["tool_failed"]:
                problems.append(f"{label}: hey did not produce a result")
            elif hey["non2xx"] or hey["errors"]:
                problems.append(f"{label}: hey saw {hey['non2xx']} non-2xx responses and "
                                f"{hey['errors']} errors ({'; '.join(hey['error_detail'][:3])})")
            elif hey["responses"] == 0:
                problems.append(f"{label}: hey got no responses")
        rows[key] = (label, st, reason, wrk, hey)

    compute = None
    if status.get("compute", ("failed",))[0] == "ok":
        try:
            compute = json.loads(read(os.path.join(w, "compute.json")))
        except ValueError:
            problems.append("compute ceiling: unreadable output")
    else:
        problems.append(f"compute ceiling: {status.get('compute', ('', 'not run'))[1]}")
    if a.static_from != "berth":
        problems.append(f"nginx served {a.static_from}'s response body, not berth's (berth did not run)")

    L = []
    title = "Serving benchmark: TorchScript MLP over HTTP/JSON (v2 infer)"
    L.append(f"# {title}{' — SMOKE' if a.smoke else ''}")
    L.append("")
    L.append(f"Date: {run(['date', '-u', '+%F %T UTC'])}. Written by `bench/serve_mlp.sh`"
             f"{' --smoke' if a.smoke else ''}; all contenders measured side by side in one run.")
    L.append("")
    if problems:
        L.append("> **NOT A RESULT.** This run had failures or errors; do not quote these numbers:")
        for p in problems:
            L.append(f"> - {p}")
        L.append("")
    busy = _busy_note(w)
    if busy:
        L.append(busy)
        L.append("")
    if a.smoke and not problems:
        L.append(f"> Smoke run ({a.duration} s per point): checks that the script works; the "
                 "numbers are too short to quote.")
        L.append("")

    L.append("## Results")
    L.append("")
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
    for key, _ in CONTENDERS:
        label, st, reason, wrk, hey = rows[key]
        if st != "ok":
            L.append(f"| {label} | failed: {reason} | | | | | | | | |")
            continue
        wrk_rps = fmt(wrk["rps"]) if wrk else "–"
        wrk_lat = f"{wrk['p50_ms']:.2f} / {wrk['p99_ms']:.2f}" if wrk else "–"
        wrk_err = f"{wrk['socket_errors']} / {wrk['bad_status']}" if wrk else "–"
        nreq = (wrk["requests"] if wrk else 0) + (hey["responses"] if hey else 0)
        if hey:
            h = [fmt(hey[f"p{p}_ms"], 2) for p in ("50", "90", "99")]
            hey_rps = fmt(hey["rps"])
            hey_err = f"{hey['errors']} / {hey['non2xx']}"
        else:
            h, hey_rps, hey_err = ["–"] * 3, "–", "–"
        L.append(f"| {label} | **{wrk_rps}** | {h[0]} | {h[1]} | **{h[2]}** | {hey_rps} | {wrk_lat} "
                 f"| {nreq:,} | {wrk_err} | {hey_err} |")
    L.append("")

    L.append("### Compute ceiling (Python in-process)")
    L.append("")
    if compute:
        L.append(f"The same TorchScript model called in a loop from **Python** "
                 f"(`torch.jit.load`, `torch.set_num_threads({compute['threads']})`, "
                 f"`torch.inference_mode()`), torch {compute['torch']}, no HTTP and no JSON. "
                 "Includes Python's per-call overhead; a LibTorch (C++) in-process number is "
                 "not measured here yet.")
        L.append("")
        L.append("| batch | calls/s | rows/s | µs per call |")
        L.append("|---:|---:|---:|---:|")
        for r in compute["results"]:
            L.append(f"| {r['batch']} | {fmt(r['calls_per_s'])} | {fmt(r['rows_per_s'])} "
                     f"| {r['us_per_call']:.2f} |")
    else:
        L.append("not measured (see above).")
    L.append("")

    L.append("### Ratios")
    L.append("")

    def get(key, tool, field):
        row = rows.get(key)
        if not row or row[1] != "ok":
            return None
        d = row[3] if tool == "wrk" else row[4]
        return d.get(field) if d else None

    c1 = None
    if compute:
        c1 = next((r["calls_per_s"] for r in compute["results"] if r["batch"] == 1), None)
    L.append("| ratio | value |")
    L.append("|---|---:|")
    L.append(f"| berth / Flask, req/s (wrk) | {ratio(get('berth', 'wrk', 'rps'), get('flask', 'wrk', 'rps'))} |")
    L.append(f"| berth / nginx, req/s (wrk) | {ratio(get('berth', 'wrk', 'rps'), get('nginx', 'wrk', 'rps'))} |")
    L.append(f"| berth / Flask, p99 latency (hey; < 1 is better) | "
             f"{ratio(get('berth', 'hey', 'p99_ms'), get('flask', 'hey', 'p99_ms'))} |")
    L.append(f"| berth / nginx, p99 latency (hey) | "
             f"{ratio(get('berth', 'hey', 'p99_ms'), get('nginx', 'hey', 'p99_ms'))} |")
    L.append(f"| berth req/s (wrk) / Python in-process calls/s at batch 1 | {ratio(get('berth', 'wrk', 'rps'), c1)} |")
    L.append("")

    L.append("## Setup")
    L.append("")
    L.append(f"- Model: `{a.model}` (TorchScript MLP, input `x` FP32 [batch,16], output `probs` FP32 [batch,4]).")
    body = read(os.path.join(w, "body.json"))
    L.append(f"- Request body ({len(body)} bytes), `POST /v2/models/mlp/infer`, `Content-Type: application/json`:")
    L.append("")
    L.append("  ```json")
    L.append(f"  {body}")
    L.append("  ```")
    for key, label in (("berth", "berth"), ("flask", "Flask")):
        resp = read(os.path.join(w, f"{key}.response.json")).strip()
        if resp:
            L.append(f"- {label}'s response ({len(resp)} bytes): `{resp}`")
    diff = _max_diff(w)
    if diff is not None:
        L.append(f"- berth and Flask outputs agree to {diff:.2e} (max absolute difference).")
    L.append(f"- nginx serves {a.static_from}'s response body above as a static file "
             "(`error_page 405 =200 $uri;` turns the POST into a 200 with the file).")
    L.append(f"- Flask: {a.flask_config}; model loaded in each worker with `torch.jit.load`, "
             "`torch.set_num_threads(1)`, `torch.inference_mode()` (`bench/flask_app.py`).")
    L.append("- All servers listen on 127.0.0.1 and share the machine with the load generators "
             "(wrk/hey run on the same cores), so absolute numbers are lower than on a dedicated "
             "client; compare the ratios.")
    L.append("")

    L.append("## Machine")
    L.append("")
    for k, v in machine():
        L.append(f"- {k}: {v}")
    L.append("")
    L.append("## Versions")
    L.append("")
    for k, v in versions(a.berth_version):
        L.append(f"- {k}: {v}")
    L.append("")
    L.append("## Command lines")
    L.append("")
    L.append("Ports were free loopback ports picked at start; `body.json` is the request body above.")
    L.append("")
    L.append("```sh")
    for line in read(os.path.join(w, "commands.txt")).splitlines():
        label, cmd = line.split("\t", 1)
        L.append(f"# {label}")
        L.append(cmd)
    L.append("```")
    L.append("")

    with open(a.out, "w") as f:
        f.write("\n".join(L))
    for p in problems:
        print(f"serve_mlp: {p}", file=sys.stderr)
    return 1 if problems else 0


def _busy_note(w):
    try:
        load1 = float(read(os.path.join(w, "loadavg.start")).split()[0])
    except (IndexError, ValueError):
        return ""
    ncpu = os.cpu_count() or 1
    if load1 <= ncpu / 4:
        return ""
    procs = [l.strip() for l in read(os.path.join(w, "busy.start")).splitlines() if l.strip()]
    note = (f"> **Machine not idle:** 1-minute load average {load1:.2f} on {ncpu} CPUs when the run "
            "started; other processes took CPU from every contender (not necessarily evenly), so "
            "absolute numbers are low and the ratios noisier than usual.")
    if procs:
        note += " Busiest processes at start: " + "; ".join(f"`{p}`" for p in procs[:4]) + "."
    return note


def _max_diff(w):
    try:
        outs = []
        for key in ("berth", "flask"):
            r = json.loads(read(os.path.join(w, f"{key}.response.json")))
            outs.append({t["name"]: t for t in r["outputs"]}["probs"]["data"])
        return max(abs(float(x) - float(y)) for x, y in zip(*outs))
    except (ValueError, KeyError, TypeError):
        return None


if __name__ == "__main__":
    sys.exit(main())
