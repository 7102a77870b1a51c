"""A bounded soak of `berth serve` (bench/soak.sh runs it): mixed traffic for
DURATION seconds against one server on loopback, and what the process does
meanwhile (RSS, descriptors, threads, sampled from /proc).

Traffic, each kind on threads of its own, each answer checked against what
it must be:
  infer      JSON and binary requests to identity models (and the TorchScript MLP when given)  -> 200
  metadata   server, model, ready, index, /metrics                                            -> 200
  bad        malformed JSON, unknown model, wrong shape, too large, a smuggling attempt       -> 400/404/413
  reload     explicit load of a model whose model.yaml changes every time (admin token)       -> 200, and its
             infers keep answering 200 while it reloads
  slow       clients that send half a request and stall (the server times them out)
An answer other than the expected one is an unexpected error. Writes a JSON
summary (the last line) for bench/soak.sh.
"""
import argparse
import json
import os
import pathlib
import random
import signal
import socket
import subprocess
import sys
import threading
import time

import requests

IDENTITY = """backend: identity
max_batch_size: 8
inputs: [{{name: x, datatype: FP32, shape: [4]}}]
outputs: [{{name: y, datatype: FP32, shape: [4]}}]
instances: {instances}
{extra}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_stats(pid):
    rss = threads = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, fds, threads


class Counts:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = {}
        self.unexpected = {}
        self.examples = []

    def record(self, kind, good, what=""):
        with self.lock:
            d = self.ok if good else self.unexpected
            d[kind] = d.get(kind, 0) + 1
            if not good and len(self.examples) < 20:
                self.examples.append(f"{kind}: {what}"[:300])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--duration", type=float, default=600)
    ap.add_argument("--warmup", type=float, default=30)
    ap.add_argument("--mlp", default="", help="examples/models/mlp, to soak the TorchScript backend too")
    a = ap.parse_args()
    work = pathlib.Path(a.work)
    repo = work / "repo"
    for name, extra in [("m", ""), ("batched", "dynamic_batching: {max_queue_delay_us: 200}"), ("reloaded", "")]:
        (repo / name / "1").mkdir(parents=True, exist_ok=True)
        (repo / name / "model.yaml").write_text(IDENTITY.format(instances=2, extra=extra))
    if a.mlp:
        import shutil
        dst = repo / "mlp"  # a copy: a symlink out of the repository is refused, as it must be
        if not dst.exists():
            shutil.copytree(pathlib.Path(a.mlp).resolve(), dst)
    token = work / "admin.token"
    token.write_text("soak-admin\n")
    port, mport = free_port(), free_port()
    log = open(work / "berth.log", "w")
    load = ["--load-model", "m", "--load-model", "batched", "--load-model", "reloaded"] + (["--load-model", "mlp"] if a.mlp else [])
    proc = subprocess.Popen([a.berth, "serve", "--model-repository", str(repo), "--host", "127.0.0.1",
                             "--http-port", str(port), "--metrics-port", str(mport), "--grpc-port", "0", "--read-timeout-secs", "2",
                             "--idle-timeout-secs", "5", "--max-request-bytes", str(1 << 20),
                             "--model-control-mode", "explicit", "--admin-token-file", str(token), *load,
                             "--log-level", "warn"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            if requests.get(url + "/v2/health/ready", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        if time.time() > deadline or proc.poll() is not None:
            print(json.dumps({"error": "berth did not become ready"}))
            return 1
        time.sleep(0.1)

    counts = Counts()
    stop = threading.Event()
    rng = random.Random(7)
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}
    header = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 4],
                                     "parameters": {"binary_data_size": 32}}],
                         "parameters": {"binary_data_output": True}}).encode()
    binary = header + bytes(32)

    def expect(kind, call, statuses):
        try:
            r = call()
            counts.record(kind, r.status_code in statuses, f"{r.status_code} {r.text[:200]}")
        except requests.RequestException as e:
            counts.record(kind, False, repr(e))

    def infer_loop():
        with requests.Session() as s:
            while not stop.is_set():
                model = rng.choice(["m", "batched", "reloaded"] + (["mlp"] if a.mlp else []))
                if model == "mlp":
                    mb = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 16], "data": list(range(16))}]}
                    expect("infer", lambda: s.post(f"{url}/v2/models/mlp/infer", json=mb, timeout=10), {200})
                elif rng.random() < 0.5:
                    expect("infer", lambda: s.post(f"{url}/v2/models/{model}/infer", json=body, timeout=10), {200})
                else:
                    expect("infer", lambda: s.post(f"{url}/v2/models/{model}/infer", data=binary, timeout=10,
                                                   headers={"Inference-Header-Content-Length": str(len(header))}),
                           {200})

    def metadata_loop():
        with requests.Session() as s:
            while not stop.is_set():
                expect("metadata", lambda: s.get(url + "/v2", timeout=10), {200})
                expect("metadata", lambda: s.get(url + "/v2/models/m", timeout=10), {200})
                expect("metadata", lambda: s.get(url + "/v2/health/ready", timeout=10), {200})
                expect("metadata", lambda: s.post(url + "/v2/repository/index", timeout=10), {200})
                expect("metadata", lambda: requests.get(f"http://127.0.0.1:{mport}/metrics", timeout=10), {200})
                time.sleep(0.01)

    def bad_loop():
        with requests.Session() as s:
            while not stop.is_set():
                expect("bad", lambda: s.post(url + "/v2/models/m/infer", data=b"{nope", timeout=10), {400})
                expect("bad", lambda: s.post(url + "/v2/models/nosuch/infer", json=body, timeout=10), {404})
                wrong = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}]}
                expect("bad", lambda: s.post(url + "/v2/models/m/infer", json=wrong, timeout=10), {400})
                expect("bad", lambda: s.post(url + "/v2/models/m/infer", data=b"x" * (2 << 20), timeout=10),
                       {413})
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                        c.sendall(b"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n"
                                  b"GET /v2 HTTP/1.1\r\nHost: x\r\n\r\n")
                        got = c.recv(4096)
                        counts.record("bad", got.startswith(b"HTTP/1.1 400"), repr(got[:100]))
                except OSError as e:
                    counts.record("bad", False, repr(e))
                time.sleep(0.02)

    def reload_loop():
        n = 0
        with requests.Session() as s:
            while not stop.is_set():
                n += 1
                (repo / "reloaded" / "model.yaml").write_text(
                    IDENTITY.format(instances=1 + n % 2, extra=f"# reload {n}"))
                expect("reload", lambda: s.post(url + "/v2/repository/models/reloaded/load", timeout=30,
                                                headers={"Authorization": "Bearer soak-admin"}), {200})
                time.sleep(0.5)

    def slow_loop():
        while not stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
                    c.sendall(b"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"in")
                    c.settimeout(5)
                    got = c.recv(4096)  # the server gives up on us after --read-timeout-secs
                    counts.record("slow", got == b"" or got.startswith(b"HTTP/1.1 4"), repr(got[:100]))
            except ConnectionResetError:
                counts.record("slow", True)
            except OSError as e:
                counts.record("slow", False, repr(e))

    threads = [threading.Thread(target=f, daemon=True) for f in
               [infer_loop] * 4 + [metadata_loop, bad_loop, reload_loop] + [slow_loop] * 2]
    for t in threads:
        t.start()
    samples = []
    t0 = time.time()
    while time.time() - t0 < a.warmup + a.duration:
        if proc.poll() is not None:
            break
        samples.append((round(time.time() - t0, 1), *proc_stats(proc.pid)))
        time.sleep(5)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    alive = proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    after_warmup = [s for s in samples if s[0] >= a.warmup]
    first, last = (after_warmup[0], after_warmup[-1]) if after_warmup else (samples[0], samples[-1])
    summary = {
        "duration_s": a.duration, "warmup_s": a.warmup, "alive_at_end": alive, "exit_status": rc,
        "ok": counts.ok, "unexpected": counts.unexpected, "unexpected_examples": counts.examples,
        "rss_start": first[1], "rss_end": last[1], "rss_max": max(s[1] for s in after_warmup or samples),
        "rss_growth": (last[1] - first[1]) / first[1] if first[1] else 0,
        "fds": [first[2], last[2], max(s[2] for s in after_warmup or samples)],
        "threads": [first[3], last[3], max(s[3] for s in after_warmup or samples)],
        "samples": samples,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
