"""Pipelines benchmark (bench/pipelines.sh runs it): what a local pipeline
step costs, in one run on loopback, with `berth bench` (binary tensors):

  mlp          examples/models/mlp called directly          vs  wrapped: a one-step pipeline around it
  id           an identity model (x: FP32 [16]) directly    vs  chain4: four identity models in sequence
                                                                fan4: four identity models side by side, joined
At 1 connection (added p50/p99 latency) and at 16 (throughput); levels
repeated ROUNDS times, interleaved, medians reported. Writes Markdown to --out.
"""
import argparse
import json
import pathlib
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import requests

ROOT = pathlib.Path(__file__).resolve().parents[1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


IDENTITY = """backend: identity
max_batch_size: 64
inputs: [{name: x, datatype: FP32, shape: [16]}]
outputs: [{name: out_x, datatype: FP32, shape: [16]}]
"""


def pipeline(steps, outputs, in_shape=16):
    lines = ["kind: pipeline", "max_batch_size: 64", "inputs:",
             f"  - {{name: x, datatype: FP32, shape: [{in_shape}]}}", "outputs:"]
    lines += ["  - " + json.dumps(o) for o in outputs]
    lines += ["steps:"] + ["  - " + json.dumps(s) for s in steps]
    return "\n".join(lines) + "\n"


def make_repo(d):
    repo = d / "models"
    repo.mkdir()
    shutil.copytree(ROOT / "examples" / "models" / "mlp", repo / "mlp")
    for i in range(1, 5):
        (repo / f"id{i}" / "1").mkdir(parents=True)
        (repo / f"id{i}" / "model.yaml").write_text(IDENTITY)
    (repo / "wrapped" / "1").mkdir(parents=True)
    (repo / "wrapped" / "model.yaml").write_text(pipeline(
        [{"name": "net", "model": "mlp", "inputs": {"x": "$in.x"}}], [{"name": "probs", "from": "net.probs"}]))
    (repo / "chain4" / "1").mkdir(parents=True)
    steps = [{"name": f"s{i}", "model": f"id{i}", "inputs": {"x": "$in.x" if i == 1 else f"s{i - 1}.out_x"}}
             for i in range(1, 5)]
    (repo / "chain4" / "model.yaml").write_text(pipeline(steps, [{"name": "y", "from": "s4.out_x"}]))
    (repo / "fan4" / "1").mkdir(parents=True)
    steps = [{"name": f"s{i}", "model": f"id{i}", "inputs": {"x": "$in.x"}} for i in range(1, 5)]
    (repo / "fan4" / "model.yaml").write_text(pipeline(steps, [{"name": f"y{i}", "from": f"s{i}.out_x"}
                                                                for i in range(1, 5)]))
    return repo


def bench(berth, url, model, connections, duration, warmup):
    p = subprocess.run([berth, "bench", url, "-m", model, "-c", str(connections), "-d", str(duration),
                        "--warmup", str(warmup), "--binary", "-f", "json"],
                       capture_output=True, text=True, timeout=duration + warmup + 60)
    if p.returncode != 0:
        return {"error": (p.stderr or p.stdout).strip()[:200]}
    r = json.loads(p.stdout)[0]
    return {"rps": r["throughput_rps"], "p50_us": r["p50_us"], "p99_us": r["p99_us"], "errors": r["errors"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth", default=str(ROOT / "build" / "bin" / "berth"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="berth-pipelines-"))
    repo = make_repo(work)
    port = free_port()
    log = open(work / "berth.log", "w")
    argv = [a.berth, "serve", "--model-repository", str(repo), "--host", "127.0.0.1", "--http-port", str(port),
            "--grpc-port", "0", "--metrics-port", "0", "--log-level", "warn"]
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                if requests.get(url + "/v2/health/ready", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.time() > deadline or proc.poll() is not None:
                raise SystemExit("berth did not become ready; see " + log.name)
            time.sleep(0.1)
        models = ["mlp", "wrapped", "id1", "chain4", "fan4"]
        results = {}
        for rnd in range(a.rounds):
            for c in (1, 16):
                for m in models:
                    r = bench(a.berth, url, m, c, a.duration, a.warmup)
                    results.setdefault((m, c), []).append(r)
                    print(f"round {rnd + 1} c={c} {m}: {r}", file=sys.stderr, flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()

    def med(m, c, k):
        vals = [r[k] for r in results[(m, c)] if "error" not in r]
        return statistics.median(vals) if vals else float("nan")

    failed = any("error" in r or r.get("errors") for rs in results.values() for r in rs)
    lines = [f"# Pipelines: what a local step costs ({time.strftime('%Y-%m-%d')})", "",
             f"`bench/pipelines.sh`: berth bench, binary tensors, batch 1, {a.duration:g} s per run after "
             f"{a.warmup:g} s warm-up, median of {a.rounds} interleaved rounds, one server and the client on the same "
             "2 CPUs (loopback).", "",
             "| model | what | c=1 p50 µs | c=1 p99 µs | c=1 req/s | c=16 req/s | c=16 p50 µs |",
             "|---|---|---:|---:|---:|---:|---:|"]
    what = {"mlp": "TorchScript MLP, direct", "wrapped": "one-step pipeline around the MLP",
            "id1": "identity model, direct", "chain4": "4 identity steps in sequence",
            "fan4": "4 identity steps side by side"}
    for m in models:
        lines.append(f"| {m} | {what[m]} | {med(m, 1, 'p50_us'):.0f} | {med(m, 1, 'p99_us'):.0f} | "
                     f"{med(m, 1, 'rps'):.0f} | {med(m, 16, 'rps'):.0f} | {med(m, 16, 'p50_us'):.0f} |")
    add = med("wrapped", 1, "p50_us") - med("mlp", 1, "p50_us")
    lines += ["",
              f"- One local step adds **{add:.0f} µs** at p50 (1 connection; target ≤ 25 µs); "
              f"p99 {med('wrapped', 1, 'p99_us') - med('mlp', 1, 'p99_us'):+.0f} µs.",
              f"- Throughput at 16 connections, pipeline / its only step: "
              f"**{med('wrapped', 16, 'rps') / med('mlp', 16, 'rps'):.2f}** (target ≥ 0.9).",
              f"- 4 steps in sequence add {(med('chain4', 1, 'p50_us') - med('id1', 1, 'p50_us')) / 4:.0f} µs per "
              f"step at p50; a fan-out of 4 adds {med('fan4', 1, 'p50_us') - med('id1', 1, 'p50_us'):.0f} µs "
              "in all.", ""]
    if failed:
        lines.insert(2, "**Not a result: a run failed or saw errors.**\n")
    pathlib.Path(a.out).write_text("\n".join(lines))
    print("\n".join(lines))
    shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
