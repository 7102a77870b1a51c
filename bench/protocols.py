"""Protocols benchmark (bench/protocols.sh runs it): the TorchScript MLP
(examples/models/mlp, batch 1) at CONNECTIONS concurrent streams over every
front end of one `berth serve`, in one run, on loopback:

  http-json     v2 JSON over HTTP/1.1 keep-alive          berth bench, and wrk (independent)
  http-binary   v2 binary tensor extension over HTTP      berth bench
  grpc          KServe v2 gRPC ModelInfer, raw contents   berth bench, and a Python grpcio client (independent)
  tfserving     TF Serving REST :predict, columnar JSON   berth bench
  https-json    the same as http-json over TLS 1.3        berth bench --cacert, and wrk (independent)
  https-binary  http-binary over TLS                      berth bench --cacert

Plain and TLS are two servers started side by side (the same flags but the
certificate), measured one after the other; levels are repeated ROUNDS
times, interleaved, and the median is reported. Where the time goes: each
run's server-side queue and compute time per request comes from the
server's own statistics (/v2/models/mlp/stats), next to the client's p50.
Writes a Markdown table to --out.
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
import threading
import time

import requests

from loopback import children_cpu_s, free_port, wrk_infer

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certs(d):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=bench-ca",
            "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
            "-out", "server.csr", cwd=d)
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "san.ext", "-out", "server.pem", cwd=d)
    return d / "ca.pem", d / "server.pem", d / "server.key"


class Berth:
    def __init__(self, berth, repo, work, name, extra=(), ca=None):
        self.port, self.grpc_port = free_port(), free_port()
        scheme = "https" if ca else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.grpc_url = f"{scheme}://127.0.0.1:{self.grpc_port}"
        self.verify = str(ca) if ca else True
        self.log = open(work / f"berth-{name}.log", "w")
        self.argv = [berth, "serve", "--model-repository", str(repo), "--host", "127.0.0.1",
                     "--http-port", str(self.port), "--grpc-port", str(self.grpc_port), "--metrics-port", "0",
                     "--log-level", "warn", *extra]
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"berth ({name}) exited with {self.proc.returncode}; see {self.log.name}")
            try:
                if requests.get(self.url + "/v2/health/ready", timeout=1, verify=self.verify).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise SystemExit(f"berth ({name}) not ready; see {self.log.name}")

    def stats(self):
        s = requests.get(self.url + "/v2/models/mlp/stats", timeout=10, verify=self.verify).json()
        st = s["model_stats"][0]
        i = st["inference_stats"]
        return {"count": i["success"]["count"], "queue_ns": i["queue"]["ns"],
                "compute_ns": i["compute_input"]["ns"] + i["compute_infer"]["ns"] + i["compute_output"]["ns"]}

    def cpu_s(self):
        """The server process's CPU time (user + system), seconds."""
        fields = pathlib.Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def berth_bench(berth, url, args, duration, warmup, connections):
    argv = [berth, "bench", url, "-m", "mlp", "-c", str(connections), "-d", str(duration), "--warmup",
            str(warmup), "-f", "json", *args]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=duration + warmup + 60)
    if p.returncode != 0:
        return {"error": (p.stderr or p.stdout).strip()[:300]}
    r = json.loads(p.stdout)[0]
    return {"rps": r["throughput_rps"], "p50_us": r["p50_us"], "p99_us": r["p99_us"], "errors": r["errors"]}




def python_grpc(target, duration, warmup, connections, ca=None):
    """An independent closed loop: grpcio futures from Triton's grpc_service.proto, raw inputs as tritonclient
    sends them, one channel per stream."""
    import grpc
    import numpy as np
    import grpc_client
    pb, pbg, _ = grpc_client.triton()
    req = pb.ModelInferRequest(model_name="mlp")
    req.inputs.add(name="x", datatype="FP32", shape=[1, 16])
    req.raw_input_contents.append(np.random.default_rng(1).random((1, 16), dtype=np.float32).tobytes())
    chans = []
    for i in range(connections):
        opts = grpc_client.CHANNEL_OPTIONS + [("berth.bench.stream", i)]
        if ca:
            chans.append(grpc.secure_channel(target, grpc.ssl_channel_credentials(ca.read_bytes()), options=opts))
        else:
            chans.append(grpc.insecure_channel(target, options=opts))
    stubs = [pbg.GRPCInferenceServiceStub(c) for c in chans]
    own_cpu_before = time.process_time()
    lock = threading.Lock()
    lat, errors = [], [0]
    start = time.time() + warmup
    end = start + duration
    done = threading.Event()
    running = [connections]

    def loop(stub):
        t0 = time.perf_counter()
        fut = stub.ModelInfer.future(req, timeout=10)

        def on_done(f):
            now = time.time()
            ok = f.exception() is None and len(f.result().raw_output_contents) == 1
            if start <= now <= end:
                with lock:
                    if ok:
                        lat.append(time.perf_counter() - t0)
                    else:
                        errors[0] += 1
            if now < end:
                loop(stub)
            else:
                with lock:
                    running[0] -= 1
                    if running[0] == 0:
                        done.set()
        fut.add_done_callback(on_done)

    for s in stubs:
        loop(s)
    done.wait(duration + warmup + 30)
    for c in chans:
        c.close()
    lat.sort()
    if not lat:
        return {"error": "no answers"}
    return {"rps": len(lat) / duration, "p50_us": int(lat[len(lat) // 2] * 1e6),
            "p99_us": int(lat[int(len(lat) * 0.99)] * 1e6), "errors": errors[0], "own_cpu_before": own_cpu_before}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth", default=str(ROOT / "build" / "bin" / "berth"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default="", help="comma-separated protocol names to run (development)")
    a = ap.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="berth-protocols-"))
    ca, cert, key = make_certs(work)
    repo = ROOT / "examples" / "models"
    plain = Berth(a.berth, repo, work, "plain")
    tls = Berth(a.berth, repo, work, "tls", ["--tls-cert-file", str(cert), "--tls-key-file", str(key)], ca=ca)
    body = work / "body.json"
    body.write_text(json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 16],
                                            "data": [0.5] * 16}]}))
    have_wrk = shutil.which("wrk") is not None
    d, w, c = a.duration, a.warmup, a.connections
    runs = [
        ("http-json", "berth bench", plain, lambda: berth_bench(a.berth, plain.url, [], d, w, c)),
        ("http-binary", "berth bench", plain, lambda: berth_bench(a.berth, plain.url, ["--binary"], d, w, c)),
        ("grpc", "berth bench", plain,
         lambda: berth_bench(a.berth, plain.grpc_url, ["--protocol", "grpc"], d, w, c)),
        ("tfserving", "berth bench", plain,
         lambda: berth_bench(a.berth, plain.url, ["--protocol", "tfserving"], d, w, c)),
        ("https-json", "berth bench", tls,
         lambda: berth_bench(a.berth, tls.url, ["--cacert", str(ca)], d, w, c)),
        ("https-binary", "berth bench", tls,
         lambda: berth_bench(a.berth, tls.url, ["--binary", "--cacert", str(ca)], d, w, c)),
        ("grpc", "Python grpcio", plain,
         lambda: python_grpc(f"127.0.0.1:{plain.grpc_port}", d, w, c)),
        ("grpc-tls", "berth bench", tls,
         lambda: berth_bench(a.berth, tls.grpc_url, ["--protocol", "grpc", "--cacert", str(ca)], d, w, c)),
    ]
    if have_wrk:
        runs += [("http-json", "wrk", plain, lambda: wrk_infer(plain.url + "/v2/models/mlp/infer", body, d, c)),
                 ("https-json", "wrk", tls, lambda: wrk_infer(tls.url + "/v2/models/mlp/infer", body, d, c))]
    if a.only:
        runs = [r for r in runs if r[0] in a.only.split(",")]
    results = {}
    try:
        for rnd in range(a.rounds):
            for name, client, server, fn in runs:
                before = server.stats()
                cpu_before, client_before = server.cpu_s(), children_cpu_s()
                r = fn()
                cpu_after, client_after = server.cpu_s(), children_cpu_s()
                after = server.stats()
                n = max(1, after["count"] - before["count"])
                r["server_cpu_us"] = (cpu_after - cpu_before) / n * 1e6
                # berth bench and wrk are child processes; the Python client runs in this one.
                own = client == "Python grpcio"
                r["client_cpu_us"] = ((time.process_time() - r.pop("own_cpu_before")) if own and
                                      "own_cpu_before" in r else (client_after - client_before)) / n * 1e6
                r["server_queue_us"] = (after["queue_ns"] - before["queue_ns"]) / n / 1000
                r["server_compute_us"] = (after["compute_ns"] - before["compute_ns"]) / n / 1000
                results.setdefault((name, client), []).append(r)
                print(f"round {rnd + 1} {name:13s} {client:14s} {r}", file=sys.stderr, flush=True)
    finally:
        plain.stop()
        tls.stop()

    def median(rs, key):
        vals = [r[key] for r in rs if "error" not in r]
        return statistics.median(vals) if vals else float("nan")

    rows, failed = [], False
    base = median(results.get(("http-binary", "berth bench"), []), "rps")
    for (name, client), rs in results.items():
        errs = [r["error"] for r in rs if "error" in r]
        failed = failed or bool(errs) or any(r.get("errors", 0) for r in rs)
        rows.append((name, client, median(rs, "rps"), median(rs, "p50_us"), median(rs, "p99_us"),
                     median(rs, "server_queue_us"), median(rs, "server_compute_us"),
                     median(rs, "server_cpu_us"), median(rs, "client_cpu_us"),
                     sum(r.get("errors", 0) for r in rs if "error" not in r), errs[0] if errs else ""))
    # (name, client, rps, p50, p99, queue, compute, server cpu, client cpu, errors, first error)
    get = {(r[0], r[1]): r for r in rows}

    def ratio(x, y):
        return get[x][2] / get[y][2] if x in get and y in get and get[y][2] else float("nan")

    cpu = os.cpu_count()
    lines = [
        f"# Protocols: the MLP over every front end ({time.strftime('%Y-%m-%d')})", "",
        f"`bench/protocols.sh`: examples/models/mlp (TorchScript, batch 1), {c} concurrent streams, "
        f"{d:g} s per run after {w:g} s warm-up, median of {a.rounds} interleaved rounds; one machine with "
        f"{cpu} CPUs runs the servers and the clients (loopback). TLS: TLS 1.3 with an RSA-2048 certificate "
        "(keep-alive: the handshake is paid once per connection).", "",
        f"Servers: `{' '.join(plain.argv[1:2] + ['...'] + plain.argv[-4:-2])}` and the same with "
        "`--tls-cert-file/--tls-key-file`.", "",
        "| protocol | client | req/s | p50 µs | p99 µs | server queue µs/req | server compute µs/req | "
        "server CPU µs/req | client CPU µs/req | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        note = f" ({r[10][:80]})" if r[10] else ""
        lines.append(f"| {r[0]} | {r[1]} | {r[2]:.0f} | {r[3]:.0f} | {r[4]:.0f} | {r[5]:.1f} | {r[6]:.1f} | "
                     f"{r[7]:.1f} | {r[8]:.1f} | {r[9]}{note} |")
    lines += [
        "",
        "Ratios (berth bench, req/s):",
        f"- gRPC / HTTP binary: **{ratio(('grpc', 'berth bench'), ('http-binary', 'berth bench')):.2f}** "
        "(target ≥ 0.8)",
        f"- gRPC / HTTP JSON: {ratio(('grpc', 'berth bench'), ('http-json', 'berth bench')):.2f}",
        f"- TLS / plain, JSON: **{ratio(('https-json', 'berth bench'), ('http-json', 'berth bench')):.2f}**, "
        f"binary: **{ratio(('https-binary', 'berth bench'), ('http-binary', 'berth bench')):.2f}** "
        "(target: TLS costs ≤ 15%, i.e. ≥ 0.85)",
        f"- gRPC TLS / gRPC: {ratio(('grpc-tls', 'berth bench'), ('grpc', 'berth bench')):.2f}",
        f"- TF Serving REST / HTTP JSON: {ratio(('tfserving', 'berth bench'), ('http-json', 'berth bench')):.2f}",
    ]
    if have_wrk:
        lines.append(f"- wrk, TLS / plain: {ratio(('https-json', 'wrk'), ('http-json', 'wrk')):.2f}")
    lines += ["", f"Baseline for the ratios: HTTP binary {base:.0f} req/s.", ""]
    if failed:
        lines.insert(2, "**Not a result: a run failed or saw errors (see the errors column).**\n")
    pathlib.Path(a.out).write_text("\n".join(lines))
    print("\n".join(lines))
    shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
