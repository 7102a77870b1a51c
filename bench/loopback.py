"""What the loopback benchmarks (protocols.py, remote_hop.py) share: a free
port, wrk with bench/infer.lua against one URL, and the CPU time the
benchmark's own child processes (the load generators) have used."""
import os
import pathlib
import re
import resource
import socket
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wrk_infer(url, body_file, duration, connections, threads=2):
    """wrk POSTing body_file to url (bench/infer.lua): rps, p50/p99 (µs), errors, requests."""
    env = dict(os.environ, BENCH_BODY_FILE=str(body_file))
    p = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(duration))}s",
                        "-s", str(ROOT / "bench" / "infer.lua"), url],
                       capture_output=True, text=True, env=env, timeout=duration + 60)
    m = re.search(r"BENCH_WRK (.*)", p.stdout)
    if p.returncode != 0 or not m:
        return {"error": (p.stderr or p.stdout).strip()[:300]}
    kv = dict(x.split("=") for x in m.group(1).split())
    errors = sum(int(kv[k]) for k in ("connect", "read", "write", "status", "timeout"))
    return {"rps": int(kv["requests"]) / (int(kv["duration_us"]) / 1e6), "p50_us": int(kv["lat_p50_us"]),
            "p99_us": int(kv["lat_p99_us"]), "errors": errors, "requests": int(kv["requests"])}


def children_cpu_s():
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime
