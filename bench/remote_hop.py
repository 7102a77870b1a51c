"""Remote-hop benchmark (bench/remote_hop.sh runs it), the pipelines issue's
last two benchmarks, in one run on loopback:

(A) What a remote step costs. A scorer `berth serve` (HTTP and gRPC) holds
    identity models of 1 KB (x: FP32 [256]) and 1 MB (x: FP32 [262144]); a
    gateway `berth serve` holds one-step pipelines whose only step is remote,
    calling the scorer over HTTP (binary tensors) or over gRPC. `berth bench
    --binary` measures the scorer called directly and each gateway pipeline,
    at 1 connection (p50/p99: the added latency of the hop) and 16
    (throughput). Target: a remote hop costs at most 1.5x the same call made
    directly.

(B) Against the Python way. examples/microservices (an MLP service, a churn
    service and a gateway pipeline calling both at once: three `berth serve`)
    against the same three in Flask under gunicorn (bench/flask_gateway.py:
    the gateway calls both services with `requests`). The same v2 JSON body
    to both gateways, `berth bench` at 16 connections (and 1), and wrk as an
    independent load generator. Target: berth >= 10x the throughput.

Levels are repeated ROUNDS times, interleaved, medians reported; each run's
server CPU per request (every process of the stack, from /proc) beside it.
Every server is stopped by its PID. Writes Markdown to --out.
"""
import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import requests

from loopback import children_cpu_s, free_port, wrk_infer

ROOT = pathlib.Path(__file__).resolve().parents[1]
SIZES = {"1k": 256, "1m": 262144}  # FP32 values: 1 KiB and 1 MiB tensors
PY = "/usr/bin/python3"


def identity(n):
    return (f"backend: identity\nmax_batch_size: 8\n"
            f"inputs: [{{name: x, datatype: FP32, shape: [{n}]}}]\n"
            f"outputs: [{{name: out_x, datatype: FP32, shape: [{n}]}}]\n")


def remote_pipeline(n, url, model, protocol):
    remote = {"url": url, "model": model, "protocol": protocol}
    return "\n".join(["kind: pipeline", "max_batch_size: 8", "inputs:",
                      f"  - {{name: x, datatype: FP32, shape: [{n}]}}", "outputs:",
                      "  - " + json.dumps({"name": "y", "from": "r.out_x"}), "steps:",
                      "  - " + json.dumps({"name": "r", "remote": remote, "inputs": {"x": "$in.x"}})]) + "\n"


def write_model(repo, name, yaml):
    (repo / name / "1").mkdir(parents=True)
    (repo / name / "model.yaml").write_text(yaml)


def tree_cpu_s(pid):
    """CPU time (user + system, seconds) of pid and its live descendants (gunicorn's workers)."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            fields = pathlib.Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for t in pathlib.Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (t / "children").read_text().split()]
        except (OSError, ValueError):
            pass
    return total


class Proc:
    """A server process: started in the background, ready when GET ready_path answers 200, stopped by PID."""

    def __init__(self, name, argv, work, port, ready_path="/v2/health/ready", env=None, timeout=120):
        self.name, self.argv, self.port = name, argv, port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = work / f"{name}.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, **(env or {})))
        self.ready_path, self.timeout = ready_path, timeout

    def wait_ready(self):
        deadline = time.time() + self.timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}:\n"
                                 + self.log_tail())
            try:
                if requests.get(self.url + self.ready_path, timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise SystemExit(f"{self.name} not ready after {self.timeout} s; see {self.log_path}")

    def log_tail(self, n=2000):
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-n:]

    def cpu_s(self):
        return tree_cpu_s(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self.log.close()


def berth_serve(berth, name, repo, work, grpc=False, extra=()):
    port = free_port()
    gport = free_port() if grpc else 0
    argv = [berth, "serve", "--model-repository", str(repo), "--host", "127.0.0.1", "--http-port", str(port),
            "--grpc-port", str(gport), "--metrics-port", "0", "--log-level", "warn", *extra]
    p = Proc(name, argv, work, port)
    p.grpc_port = gport
    return p


def gunicorn(name, app, work, workers, env, worker_class="sync", threads=1):
    port = free_port()
    argv = [PY, "-m", "gunicorn", "--workers", str(workers), "--worker-class", worker_class, "--threads",
            str(threads), "--bind", f"127.0.0.1:{port}", "--backlog", "2048", "--log-level", "warning",
            "--pythonpath", str(ROOT / "bench"), app]
    return Proc(name, argv, work, port, env=env)


def berth_bench(berth, url, model, connections, duration, warmup, extra=()):
    argv = [berth, "bench", url, "-m", model, "-c", str(connections), "-d", str(duration), "--warmup",
            str(warmup), "-f", "json", *extra]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=duration + warmup + 60)
    if p.returncode not in (0, 1) or not p.stdout.strip().startswith("["):
        return {"error": (p.stderr or p.stdout).strip()[:300]}
    r = json.loads(p.stdout)[0]
    out = {"rps": r["throughput_rps"], "p50_us": r["p50_us"], "p99_us": r["p99_us"], "errors": r["errors"],
           "requests": r.get("requests", 0)}
    if p.returncode == 1 and not r["errors"]:
        out["error"] = (p.stderr or "exit 1").strip()[:300]
    return out




def measured(fn, servers):
    """fn() with the CPU time the servers, and the load generator (a child process), spent during it, per
    answered request (µs)."""
    before, client_before = sum(s.cpu_s() for s in servers), children_cpu_s()
    t0 = time.time()
    r = fn()
    cpu, client = sum(s.cpu_s() for s in servers) - before, children_cpu_s() - client_before
    wall = time.time() - t0
    # berth bench / wrk count requests in the measurement window only; the CPU covers the warm-up and the
    # start too, so scale the window's count to the whole run by its rate.
    if "error" not in r and r.get("rps"):
        r["server_cpu_us"] = cpu / (r["rps"] * wall) * 1e6
        r["client_cpu_us"] = client / (r["rps"] * wall) * 1e6
    return r


def median(rs, key):
    vals = [r[key] for r in rs if "error" not in r and key in r]
    return statistics.median(vals) if vals else float("nan")


def bad(rs):
    return [r.get("error") or f"{r['errors']} errors" for r in rs if "error" in r or r.get("errors")]


# ---------------------------------------------------------------- (A) the remote hop

def run_hop(a, work, results, notes):
    srepo, grepo = work / "scorer", work / "gateway"
    srepo.mkdir()
    grepo.mkdir()
    for size, n in SIZES.items():
        write_model(srepo, f"id{size}", identity(n))
    scorer = berth_serve(a.berth, "scorer", srepo, work, grpc=True).wait_ready()
    protocols = ["http"] + ([] if a.no_grpc else ["grpc"])
    for size, n in SIZES.items():
        write_model(grepo, f"http{size}", remote_pipeline(n, scorer.url, f"id{size}", "http"))
        if not a.no_grpc:
            write_model(grepo, f"grpc{size}",
                        remote_pipeline(n, f"http://127.0.0.1:{scorer.grpc_port}", f"id{size}", "grpc"))
    gateway = None
    try:
        gateway = berth_serve(a.berth, "gateway", grepo, work).wait_ready()
        for proto in list(protocols):
            for size in SIZES:
                m = f"{proto}{size}"
                r = requests.get(f"{gateway.url}/v2/models/{m}/ready", timeout=5)
                if r.status_code != 200:
                    idx = requests.post(f"{gateway.url}/v2/repository/index", timeout=5).text
                    notes.append(f"gateway pipeline `{m}` is not ready ({r.status_code}); repository index: "
                                 f"`{idx[:400]}`; gateway log: `{gateway.log_tail(400).strip()}`")
                    if proto in protocols:
                        protocols.remove(proto)
        targets = [("direct", scorer.url, "id{}", [scorer], ["--binary"]),
                   ("direct-grpc", f"http://127.0.0.1:{scorer.grpc_port}", "id{}", [scorer], ["--protocol", "grpc"])]
        targets += [(p, gateway.url, p + "{}", [scorer, gateway], ["--binary"]) for p in protocols]
        d, w = a.duration, a.warmup
        for rnd in range(a.rounds):
            for c in (1, 16):
                for size in SIZES:
                    for name, url, model, servers, extra in targets:
                        r = measured(lambda: berth_bench(a.berth, url, model.format(size), c, d, w, extra), servers)
                        results.setdefault(("hop", name, size, c), []).append(r)
                        print(f"round {rnd + 1} c={c} {size} {name}: {r}", file=sys.stderr, flush=True)
    finally:
        if gateway:
            gateway.stop()
        scorer.stop()
    return protocols, scorer.argv, gateway.argv if gateway else []


# ---------------------------------------------------------------- (B) berth vs the Python way

BODY = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 16],
                    "data": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0]},
                   {"name": "features", "datatype": "FP32", "shape": [1, 4], "data": [12.0, 70.5, 1.0, 12.0]}]}


def outputs_of(answer):
    return {o["name"]: o["data"] for o in answer["outputs"]}


def run_python_way(a, work, results, notes):
    body_file = work / "gateway-body.json"
    body_file.write_text(json.dumps(BODY))
    models = ROOT / "examples" / "models"
    procs = []
    try:
        # berth: examples/microservices, its gateway pipeline pointed at this run's ports.
        mlp = berth_serve(a.berth, "berth-mlp", models, work,
                          extra=["--model-control-mode", "explicit", "--load-model", "mlp"])
        churn = berth_serve(a.berth, "berth-churn", models, work,
                            extra=["--model-control-mode", "explicit", "--load-model", "churn"])
        # Flask: the same three, in gunicorn.
        fmlp = gunicorn("flask-mlp", "flask_app:app", work, a.flask_workers,
                        {"BENCH_MODEL_PATH": str(models / "mlp" / "1" / "model.pt"), "BENCH_MODEL_NAME": "mlp"})
        fchurn = gunicorn("flask-churn", "flask_gateway:churn_app()", work, a.flask_workers,
                          {"BENCH_CHURN_MODEL_PATH": str(models / "churn" / "1" / "model.json")})
        procs += [mlp, churn, fmlp, fchurn]
        for p in procs:
            p.wait_ready()
        grepo = work / "microservices"
        (grepo / "gateway" / "1").mkdir(parents=True)
        yaml = (ROOT / "examples" / "microservices" / "gateway" / "gateway" / "model.yaml").read_text()
        yaml = yaml.replace("http://127.0.0.1:8100", mlp.url).replace("http://127.0.0.1:8200", churn.url)
        (grepo / "gateway" / "model.yaml").write_text(yaml)
        bgw = berth_serve(a.berth, "berth-gateway", grepo, work)
        fgw = gunicorn("flask-gateway", "flask_gateway:gateway_app()", work, a.gateway_workers,
                       {"BENCH_MLP_URL": fmlp.url, "BENCH_CHURN_URL": fchurn.url,
                        "BENCH_GATEWAY_PARALLEL": "1" if a.gateway_parallel else "0"},
                       worker_class=a.gateway_worker_class, threads=a.gateway_threads)
        procs += [bgw, fgw]
        bgw.wait_ready()
        fgw.wait_ready()
        # The same answer from both, before any load.
        answers = {}
        for name, gw in (("berth", bgw), ("flask", fgw)):
            r = requests.post(gw.url + "/v2/models/gateway/infer", data=body_file.read_bytes(),
                              headers={"Content-Type": "application/json"}, timeout=10)
            if r.status_code != 200:
                raise SystemExit(f"{name} gateway answered {r.status_code}: {r.text[:300]}")
            answers[name] = outputs_of(r.json())
        for k, v in answers["berth"].items():
            fv = answers["flask"].get(k)
            if fv is None or len(fv) != len(v) or any(abs(x - y) > 1e-4 for x, y in zip(v, fv)):
                notes.append(f"**the gateways' answers differ** for `{k}`: berth {v}, Flask {fv}")
        stacks = {"berth": ([mlp, churn, bgw], bgw), "flask": ([fmlp, fchurn, fgw], fgw)}
        d, w = a.duration, a.warmup
        have_wrk = shutil.which("wrk") is not None and not a.no_wrk
        for rnd in range(a.rounds):
            for name, (servers, gw) in stacks.items():
                runs = [("berth bench", 16, lambda: berth_bench(a.berth, gw.url, "gateway", 16, d, w,
                                                                 ["--input-data", str(body_file)])),
                        ("berth bench", 1, lambda: berth_bench(a.berth, gw.url, "gateway", 1, d, w,
                                                                ["--input-data", str(body_file)]))]
                if have_wrk:
                    runs.append(("wrk", 16, lambda: wrk_infer(gw.url + "/v2/models/gateway/infer", body_file, d, 16)))
                for client, c, fn in runs:  # wrk has no warm-up of its own: berth bench has just warmed the stack
                    r = measured(fn, servers)
                    results.setdefault(("py", name, client, c), []).append(r)
                    print(f"round {rnd + 1} {name} {client} c={c}: {r}", file=sys.stderr, flush=True)
        argvs = {p.name: p.argv for p in procs}
    finally:
        for p in reversed(procs):
            p.stop()
    return answers, argvs


# ---------------------------------------------------------------- report

def versions():
    out = {}
    for mod in ("flask", "gunicorn", "requests", "torch", "xgboost"):
        p = subprocess.run([PY, "-c", f"import {mod}; print({mod}.__version__)"], capture_output=True, text=True)
        out[mod] = p.stdout.strip() or "?"
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--berth", default=str(ROOT / "build" / "bin" / "berth"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--duration", type=float, default=8)
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", choices=["hop", "python"], help="run one half (development)")
    ap.add_argument("--no-grpc", action="store_true", help="(A) skip the gRPC remote step")
    ap.add_argument("--no-wrk", action="store_true", help="(B) skip the wrk runs")
    ap.add_argument("--flask-workers", type=int, default=2, help="(B) gunicorn workers of each Flask service")
    ap.add_argument("--gateway-workers", type=int, default=2, help="(B) gunicorn workers of the Flask gateway")
    ap.add_argument("--gateway-worker-class", default="sync")
    ap.add_argument("--gateway-threads", type=int, default=1)
    ap.add_argument("--gateway-parallel", action="store_true",
                    help="(B) the Flask gateway calls both services at once (a thread pool)")
    a = ap.parse_args()
    if not os.access(a.berth, os.X_OK):
        raise SystemExit(f"{a.berth}: not an executable (build berth first)")
    work = pathlib.Path(tempfile.mkdtemp(prefix="berth-remote-hop-"))
    load_start = pathlib.Path("/proc/loadavg").read_text().split()[:3]
    t_start = time.time()
    results, notes = {}, []
    protocols, answers, hop_argv, py_argvs = [], {}, ([], []), {}
    if a.only in (None, "hop"):
        protocols, *hop_argv = run_hop(a, work, results, notes)
    if a.only in (None, "python"):
        answers, py_argvs = run_python_way(a, work, results, notes)
    load_end = pathlib.Path("/proc/loadavg").read_text().split()[:3]
    elapsed = time.time() - t_start

    failed = bool(notes) and any("not ready" in n or "differ" in n for n in notes)
    for rs in results.values():
        failed = failed or bool(bad(rs))
    lines = [f"# Remote hop and the Python way ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(t_start))})", "",
             f"`bench/remote_hop.sh`: {os.cpu_count()} vCPUs, all servers and load generators on one machine, "
             f"loopback. {a.duration:g} s per run after {a.warmup:g} s warm-up, median of {a.rounds} "
             f"interleaved rounds; the whole run took {elapsed:.0f} s. Load average (1/5/15 min) "
             f"{' '.join(load_start)} at the start, {' '.join(load_end)} at the end. "
             "\"server CPU\" is the CPU time of every server process of the stack per answered request.", ""]
    if any(k[0] == "hop" for k in results):
        lines += ["## (A) What a remote step costs", "",
                  "Scorer: `berth serve` with identity models `id1k` (x: FP32 [256], 1 KiB) and `id1m` "
                  "(x: FP32 [262144], 1 MiB), max_batch_size 8. Gateway: a second `berth serve` whose pipelines "
                  "have one step, `remote: {url: ..., model: id1k|id1m, protocol: http|grpc}` (HTTP: binary "
                  "tensors; gRPC: raw contents). Load: `berth bench --binary` (batch 1).", "",
                  "| size | path | c=1 p50 µs | c=1 p99 µs | c=16 req/s | c=16 p50 µs | c=16 p99 µs | "
                  "c=16 server CPU µs/req | c=16 client CPU µs/req | errors |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        paths = ["direct", "direct-grpc"] + protocols
        what = {"direct": "scorer directly, HTTP binary (the baseline)",
                "direct-grpc": "scorer directly, gRPC (reference)",
                "http": "gateway → scorer, HTTP remote step", "grpc": "gateway → scorer, gRPC remote step"}
        for size in SIZES:
            for p in paths:
                r1, r16 = results[("hop", p, size, 1)], results[("hop", p, size, 16)]
                lines.append(f"| {size.upper().replace('K', ' KiB').replace('M', ' MiB')} | {what[p]} | "
                             f"{median(r1, 'p50_us'):.0f} | {median(r1, 'p99_us'):.0f} | {median(r16, 'rps'):.0f} | "
                             f"{median(r16, 'p50_us'):.0f} | {median(r16, 'p99_us'):.0f} | "
                             f"{median(r16, 'server_cpu_us'):.0f} | {median(r16, 'client_cpu_us'):.0f} | "
                             f"{'; '.join(str(b)[:80] for b in bad(r1 + r16)) or 0} |")
        lines += ["", "The hop (a gateway path against a direct call; the target compares with the direct HTTP "
                  "binary call):", "",
                  "| size | remote step | against | added p50 µs (c=1) | added p99 µs (c=1) | latency ratio (c=1 p50) | "
                  "cost ratio (c=16: direct req/s ÷ gateway req/s) | server CPU ratio (c=16) | ≤ 1.5× ? |",
                  "|---|---|---|---:|---:|---:|---:|---:|---|"]
        pairs = [(p, "direct") for p in protocols] + ([("grpc", "direct-grpc")] if "grpc" in protocols else [])
        for size in SIZES:
            for p, base in pairs:
                d1, d16 = results[("hop", base, size, 1)], results[("hop", base, size, 16)]
                g1, g16 = results[("hop", p, size, 1)], results[("hop", p, size, 16)]
                lat = median(g1, "p50_us") / median(d1, "p50_us")
                cost = median(d16, "rps") / median(g16, "rps")
                cpu = median(g16, "server_cpu_us") / median(d16, "server_cpu_us")
                verdict = ("yes" if lat <= 1.5 and cost <= 1.5 else
                           "latency only" if lat <= 1.5 else "throughput only" if cost <= 1.5 else "no")
                lines.append(f"| {size.upper().replace('K', ' KiB').replace('M', ' MiB')} | {p} | "
                             f"{'HTTP binary' if base == 'direct' else 'gRPC (reference)'} | "
                             f"{median(g1, 'p50_us') - median(d1, 'p50_us'):+.0f} | "
                             f"{median(g1, 'p99_us') - median(d1, 'p99_us'):+.0f} | {lat:.2f}× | {cost:.2f}× | "
                             f"{cpu:.2f}× | {verdict if base == 'direct' else '(reference)'} |")
        if hop_argv and hop_argv[0]:
            lines += ["", f"Scorer: `{' '.join(['berth'] + hop_argv[0][1:])}`".replace(str(work) + "/", "$WORK/")
                      + "; gateway: the same over its own repository, `--grpc-port 0`.", ""]
    if any(k[0] == "py" for k in results):
        v = versions()
        lines += ["## (B) examples/microservices: berth against the Python way", "",
                  "berth: the MLP service and the churn service (`berth serve --model-control-mode explicit "
                  "--load-model mlp|churn` over examples/models) and a gateway serving "
                  "examples/microservices/gateway/gateway/model.yaml (its URLs pointed at this run's ports): "
                  "both services called at once, HTTP binary tensors between the servers. Flask: "
                  f"`bench/flask_app.py` (the MLP) and `flask_gateway:churn_app()` (XGBoost {v['xgboost']} "
                  f"from Python, `inplace_predict`, 1 thread) under gunicorn {v['gunicorn']}, "
                  f"{a.flask_workers} sync workers each, and `flask_gateway:gateway_app()` "
                  f"({a.gateway_workers} {a.gateway_worker_class} workers × {a.gateway_threads} thread(s); "
                  f"`requests` {v['requests']}, one Session per service per worker, the two calls "
                  f"{'at once (a thread pool of 2)' if a.gateway_parallel else 'one after the other'}; "
                  f"Flask {v['flask']}, torch {v['torch']}). Every request the same v2 JSON body "
                  "(x: FP32 [1,16], features: FP32 [1,4]) to `/v2/models/gateway/infer`; both gateways' "
                  "answers were compared before the load"
                  + (" and matched (1e-4)." if not any("differ" in n for n in notes) else " and **differ**."), "",
                  "| gateway | client | connections | req/s | p50 µs | p99 µs | server CPU µs/req (3 processes) | "
                  "client CPU µs/req | errors |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        keys = sorted({k[2:] for k in results if k[0] == "py"}, key=lambda k: (k[0] != "berth bench", -k[1]))
        for client, c in keys:
            for name in ("berth", "flask"):
                rs = results.get(("py", name, client, c), [])
                errs = sum(r.get("errors", 0) for r in rs if "error" not in r)
                first = next((r["error"] for r in rs if "error" in r), "")
                lines.append(f"| {'berth' if name == 'berth' else 'Flask + requests'} | {client} | {c} | "
                             f"{median(rs, 'rps'):.0f} | {median(rs, 'p50_us'):.0f} | {median(rs, 'p99_us'):.0f} | "
                             f"{median(rs, 'server_cpu_us'):.0f} | {median(rs, 'client_cpu_us'):.0f} | {errs}{' (' + first[:80] + ')' if first else ''} |")

        def ratio(client, c):
            b, f = results.get(("py", "berth", client, c)), results.get(("py", "flask", client, c))
            return median(b, "rps") / median(f, "rps") if b and f else float("nan")
        r16 = ratio("berth bench", 16)
        lines += ["", f"- Throughput at 16 connections, berth / Flask: **{r16:.1f}×** with berth bench "
                  f"(target ≥ 10×: {'met' if r16 >= 10 else 'not met'})"
                  + (f", {ratio('wrk', 16):.1f}× with wrk." if ("py", "berth", "wrk", 16) in results else "."),
                  f"- At 1 connection, p50: berth {median(results[('py', 'berth', 'berth bench', 1)], 'p50_us'):.0f} µs, "
                  f"Flask {median(results[('py', 'flask', 'berth bench', 1)], 'p50_us'):.0f} µs.", ""]
        lines += ["Command lines:", ""] + [f"- {n}: `{' '.join(argv)}`".replace(str(ROOT) + "/", "")
                                           .replace(str(work) + "/", "$WORK/") for n, argv in py_argvs.items()] + [""]
    if notes:
        lines += ["Notes:", ""] + [f"- {n}" for n in notes] + [""]
    if failed:
        lines.insert(2, "**Not a result: a run failed or saw errors.**\n")
    pathlib.Path(a.out).write_text("\n".join(lines))
    print("\n".join(lines))
    if not failed:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"logs kept in {work}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
