"""Use-case benchmark (bench/usecases.sh runs it): the spam and fashion examples end to end, files in and v2
JSON out, in one run on loopback, 16 connections (wrk, 2 threads; p50/p99 from wrk):

  spam     held-out SpamAssassin e-mails posted as they are (text/plain)
  fashion  Fashion-MNIST t10k images as PNG files (image/png)

against gunicorn + Flask (2 workers, one torch thread each) doing the same steps in Python on the same files
(bench/flask_usecases.py: sentencepiece + torch; PIL + torch), and against each model alone in-process in C++
(berth_torch_ceiling, 1 thread, batch 1 and 16; two cores can do at most twice that). Where berth's time goes
comes from its own counters (per-step compute time per row, from /metrics) and its CPU time per request.
Rounds are interleaved and medians reported. Writes Markdown to --out.
"""
import argparse
import gzip
import json
import os
import pathlib
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import requests

ROOT = pathlib.Path(__file__).resolve().parents[1]
TEXT = ROOT / "examples" / "text"
VISION = ROOT / "examples" / "vision"
FASHION_DATA = pathlib.Path("/usr/share/datasets/fashion-mnist")
STEPS = {"spam": ["spam_tokenizer", "spam_classifier", "spam_label"],
         "fashion": ["decode28", "fashion_cnn", "fashion_label"]}
CEILING = {"spam": (TEXT / "models" / "spam_classifier" / "1" / "model.pt", "int64:1024"),
           "fashion": (VISION / "models" / "fashion_cnn" / "1" / "model.pt", "1x28x28")}
CONTENT_TYPE = {"spam": "text/plain", "fashion": "image/png"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_inputs(work, n):
    """n e-mails of the held-out groups (every k-th, both groups) and n t10k images as PNG files."""
    from PIL import Image
    emails = sorted((TEXT / ".data" / "package" / "data" / "easy-ham-2").glob("*.json")) + \
        sorted((TEXT / ".data" / "package" / "data" / "spam-2").glob("*.json"))
    if not emails:
        raise SystemExit("usecases: the e-mails are missing: run examples/text/fetch_data.sh")
    lists = {}
    d = work / "spam"
    d.mkdir()
    step = max(1, len(emails) // n)
    for i, f in enumerate(emails[::step][:n]):
        (d / f"{i}.eml").write_bytes(json.loads(f.read_text())["text"].encode())
    d = work / "fashion"
    d.mkdir()
    with gzip.open(FASHION_DATA / "t10k-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:n]
    for i, image in enumerate(images):
        Image.fromarray(image, "L").save(d / f"{i}.png", "PNG")
    for name in ("spam", "fashion"):
        lists[name] = work / f"{name}.list"
        lists[name].write_text("".join(f"{p}\n" for p in sorted((work / name).iterdir())))
    return lists


def make_repo(work):
    repo = work / "models"
    for src in (TEXT / "models", VISION / "models"):
        for m in src.iterdir():
            shutil.copytree(m, repo / m.name)
    return repo


def wait_ready(url, proc, log):
    deadline = time.time() + 120
    while True:
        try:
            if requests.get(url + "/v2/health/ready", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.time() > deadline or proc.poll() is not None:
            raise SystemExit(f"usecases: a server did not become ready; see {log}")
        time.sleep(0.2)


def cpu_seconds(pid):
    """utime + stime of pid and its children now alive (gunicorn's workers), in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in pathlib.Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            fields = (p / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(p.name) == pid or int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def wrk(url, model, files, connections, seconds, pid):
    env = dict(os.environ, BENCH_FILES=str(files), BENCH_CONTENT_TYPE=CONTENT_TYPE[model],
               BENCH_PATH=f"/v2/models/{model}/infer")
    before = cpu_seconds(pid)
    p = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "-s",
                        str(ROOT / "bench" / "infer_files.lua"), url], capture_output=True, text=True, env=env,
                       timeout=seconds + 60)
    cpu = cpu_seconds(pid) - before
    m = re.search(r"BENCH_WRK (.*)", p.stdout)
    if p.returncode != 0 or not m:
        return {"error": (p.stderr or p.stdout).strip()[:200]}
    v = {k: int(x) for k, x in (kv.split("=") for kv in m.group(1).split())}
    errors = v["connect"] + v["read"] + v["write"] + v["status"] + v["timeout"]
    return {"rps": v["requests"] / (v["duration_us"] / 1e6), "p50_ms": v["lat_p50_us"] / 1e3,
            "p99_ms": v["lat_p99_us"] / 1e3, "errors": errors, "requests": v["requests"],
            "cpu_us": cpu * 1e6 / max(1, v["requests"])}


def step_counters(metrics_url):
    """{model: (compute µs total, rows total)} from berth's /metrics."""
    text = requests.get(metrics_url, timeout=10).text
    out = {}
    for name, key in (("berth_inference_compute_duration_us_total", 0), ("berth_inference_count_total", 1)):
        for m in re.finditer(name + r'\{model="([^"]+)",version="1"\} (\S+)', text):
            out.setdefault(m.group(1), [0.0, 0.0])[key] = float(m.group(2))
    return out


def ceiling(berth_dir, model, seconds):
    path, shape = CEILING[model]
    p = subprocess.run([str(berth_dir / "berth_torch_ceiling"), str(path), str(seconds), "1", shape, "1", "16"],
                       capture_output=True, text=True, timeout=seconds * 2 + 60,
                       env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    if p.returncode != 0:
        return {"error": p.stderr.strip()[:200]}
    return {r["batch"]: r["rows_per_s"] for r in json.loads(p.stdout.strip().splitlines()[-1])["results"]}


def agree(berth_url, flask_url, model, files):
    """berth's and Flask's labels for the first files: equal, and the scores within 1e-4."""
    for path in pathlib.Path(files).read_text().split()[:8]:
        body = pathlib.Path(path).read_bytes()
        got = [{o["name"]: o["data"][0] for o in requests.post(
            f"{u}/v2/models/{model}/infer", data=body, headers={"Content-Type": CONTENT_TYPE[model]},
            timeout=30).json()["outputs"]} for u in (berth_url, flask_url)]
        if got[0]["label"] != got[1]["label"] or abs(got[0]["score"] - got[1]["score"]) > 1e-4:
            return False
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth", default=str(ROOT / "build" / "bin" / "berth"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--old-berth", help="another build of berth, served side by side (old against new)")
    a = ap.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="berth-usecases-"))
    lists = make_inputs(work, a.files)
    repo = make_repo(work)
    port, metrics_port, flask_port = free_port(), free_port(), free_port()
    berth_url, flask_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{flask_port}"
    names = ("berth", "old", "flask") if a.old_berth else ("berth", "flask")
    logs = {n: open(work / f"{n}.log", "w") for n in names}
    berth_argv = [a.berth, "serve", "--model-repository", str(repo), "--host", "127.0.0.1", "--http-port",
                  str(port), "--grpc-port", "0", "--metrics-port", str(metrics_port), "--log-level", "warn"]
    flask_argv = ["/usr/bin/python3", "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{flask_port}",
                  "--pythonpath", str(ROOT / "bench"), "--log-level", "warning", "flask_usecases:app"]
    procs = {"berth": subprocess.Popen(berth_argv, stdout=logs["berth"], stderr=subprocess.STDOUT),
             "flask": subprocess.Popen(flask_argv, stdout=logs["flask"], stderr=subprocess.STDOUT,
                                       env=dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1"))}
    urls = {"berth": berth_url, "flask": flask_url}
    if a.old_berth:
        old_port = free_port()
        urls["old"] = f"http://127.0.0.1:{old_port}"
        old_argv = [a.old_berth, "serve", "--model-repository", str(repo), "--host", "127.0.0.1", "--http-port",
                    str(old_port), "--grpc-port", "0", "--log-level", "warn"]
        procs["old"] = subprocess.Popen(old_argv, stdout=logs["old"], stderr=subprocess.STDOUT)
    results, steps, agreed = {}, {}, {}
    try:
        for n in procs:
            wait_ready(urls[n], procs[n], logs[n].name)
        for model in ("spam", "fashion"):
            agreed[model] = agree(berth_url, flask_url, model, lists[model])
        for rnd in range(a.rounds):
            for model in ("spam", "fashion"):
                for n in names:
                    wrk(urls[n], model, lists[model], 16, a.warmup, procs[n].pid)  # warm-up, not kept
                    before = step_counters(f"http://127.0.0.1:{metrics_port}/metrics") if n == "berth" else None
                    r = wrk(urls[n], model, lists[model], 16, a.duration, procs[n].pid)
                    if before is not None:
                        after = step_counters(f"http://127.0.0.1:{metrics_port}/metrics")
                        for s in STEPS[model]:
                            us, rows = (after[s][0] - before[s][0]), (after[s][1] - before[s][1])
                            steps.setdefault(s, []).append(us / rows if rows else float("nan"))
                    results.setdefault((model, n), []).append(r)
                    print(f"round {rnd + 1} {model} {n}: {r}", file=sys.stderr, flush=True)
        ceilings = {m: ceiling(pathlib.Path(a.berth).parent, m, max(1.0, a.duration / 2)) for m in ("spam", "fashion")}
    finally:
        for p in procs.values():
            p.terminate()
            p.wait(timeout=30)
        for f in logs.values():
            f.close()

    def med(model, n, k):
        vals = [r[k] for r in results[(model, n)] if "error" not in r]
        return statistics.median(vals) if vals else float("nan")

    failed = any("error" in r or r.get("errors") for rs in results.values() for r in rs) or \
        any("error" in c for c in ceilings.values()) or not all(agreed.values())
    lines = [f"# Use cases end to end: berth against gunicorn + Flask ({time.strftime('%Y-%m-%d')})", "",
             f"`bench/usecases.sh`: wrk -t2 -c16, {a.duration:g} s per run after {a.warmup:g} s warm-up, the "
             f"{a.files} files of each set in turn, median of {a.rounds} interleaved rounds; servers and wrk on "
             "the same 2 CPUs (loopback). berth: `berth serve` with its defaults. Flask: gunicorn, 2 workers, one "
             "torch thread each. The same committed model files; the answers agree "
             f"({', '.join(f'{m}: {agreed[m]}' for m in agreed)}: labels equal, scores within 1e-4, first 8 files).",
             "", "| use case | server | req/s | p50 ms | p99 ms | errors | server CPU µs/req |",
             "|---|---|---:|---:|---:|---:|---:|"]
    label = {"berth": "berth", "old": f"berth, old build (`{a.old_berth}`)", "flask": "gunicorn + Flask"}
    for model in ("spam", "fashion"):
        for n in names:
            errors = sum(r.get("errors", 0) for r in results[(model, n)])
            lines.append(f"| {model} | {label[n]} | {med(model, n, 'rps'):.0f} | "
                         f"{med(model, n, 'p50_ms'):.2f} | {med(model, n, 'p99_ms'):.2f} | {errors} | "
                         f"{med(model, n, 'cpu_us'):.0f} |")
    lines += ["", "| use case | berth / Flask req/s | Flask p99 / berth p99 | the model alone in-process, 1 thread: "
              "rows/s at batch 1 / 16 | berth / (2 × batch-16 ceiling) |", "|---|---:|---:|---:|---:|"]
    for model in ("spam", "fashion"):
        c = ceilings[model]
        lines.append(f"| {model} | **{med(model, 'berth', 'rps') / med(model, 'flask', 'rps'):.1f}×** | "
                     f"{med(model, 'flask', 'p99_ms') / med(model, 'berth', 'p99_ms'):.1f}× | "
                     f"{c.get(1, float('nan')):.0f} / {c.get(16, float('nan')):.0f} | "
                     f"{med(model, 'berth', 'rps') / (2 * c.get(16, float('nan'))):.2f} |")
    if a.old_berth:
        lines += ["", "New against old build, same run: " + ", ".join(
            f"{m} **{med(m, 'berth', 'rps') / med(m, 'old', 'rps'):.2f}×** req/s, p99 "
            f"{med(m, 'berth', 'p99_ms') / med(m, 'old', 'p99_ms'):.2f}×" for m in ("spam", "fashion")) + "."]
    lines += ["", "Where berth's time goes (per request, medians over the rounds): each step's compute time per row "
              "from berth's counters (`berth_inference_compute_duration_us_total` / `berth_inference_count_total`; "
              "a batch's time shared by its rows), and the rest of berth's CPU time per request (HTTP, parsing, "
              "queues, the pipeline, JSON):", "",
              "| use case | " + " | ".join(["step 1", "step 2", "step 3"]) + " | everything else |",
              "|---|---|---|---|---:|"]
    for model in ("spam", "fashion"):
        per = [statistics.median(steps[s]) for s in STEPS[model]]
        rest = med(model, "berth", "cpu_us") - sum(per)
        lines.append(f"| {model} | " + " | ".join(f"{s} {v:.0f} µs" for s, v in zip(STEPS[model], per)) +
                     f" | {rest:.0f} µs |")
    lines.append("")
    if failed:
        lines.insert(2, "**Not a result: a run failed, saw errors, or the answers disagreed.**\n")
    pathlib.Path(a.out).write_text("\n".join(lines))
    print("\n".join(lines))
    shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
