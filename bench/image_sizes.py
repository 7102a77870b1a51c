"""Measures berth images: compressed and uncompressed size, build time, and
the time from `podman run` to a 200 on /v2/health/ready. Called by
image_sizes.sh, which owns the work directory and cleans it up."""
import argparse
import datetime
import gzip
import json
import os
import pathlib
import platform
import shutil
import socket
import statistics
import subprocess
import tarfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "models"
REPOS = [("identity only", "identity", ["identity"]),
         ("XGBoost only (churn)", "churn", ["churn"]),
         ("TorchScript (mlp)", "mlp", ["mlp"])]
PREDICT_INPUT = {"identity": "INPUT0=[1.0]", "churn": "features=[1,2,3,4]", "mlp": f"x={list(range(16))}"}
# Published sizes (not measured here): what the issue and the vendors state.
INCUMBENTS = [
    ("NVIDIA Triton Inference Server 24.06 (nvcr.io/nvidia/tritonserver:24.06-py3)", "~15.5 GB", "published"),
    ("TorchServe CPU image (pytorch/torchserve, latest-cpu)", "~2.4 GB", "published"),
    ("Cog / BentoML images (need a Docker daemon to build)", "1-16 GB", "published range"),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sizes(archive):
    """(compressed, uncompressed) bytes of the image's layers + config, read from the OCI archive."""
    with tarfile.open(archive) as t:
        index = json.load(t.extractfile("index.json"))
        digest = index["manifests"][0]["digest"].split(":")[1]
        manifest = json.load(t.extractfile(f"blobs/sha256/{digest}"))
        compressed = manifest["config"]["size"] + sum(l["size"] for l in manifest["layers"])
        uncompressed = manifest["config"]["size"]
        for layer in manifest["layers"]:
            with gzip.open(t.extractfile("blobs/sha256/" + layer["digest"].split(":")[1])) as g:
                while chunk := g.read(1 << 20):
                    uncompressed += len(chunk)
        return compressed, uncompressed, len(manifest["layers"])


def wait_ready(port, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1) as r:
                if r.status == 200:
                    return time.monotonic()
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError("not ready")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    work = pathlib.Path(a.work)
    storage = work / "storage.conf"
    storage.write_text(f'[storage]\ndriver = "overlay"\ngraphroot = "{work}/graph"\nrunroot = "{work}/run"\n')
    env = dict(os.environ, CONTAINERS_CONF=str(ROOT / "tests/e2e/containers.conf"),
               CONTAINERS_STORAGE_CONF=str(storage))
    berth = str(pathlib.Path(a.berth).resolve())
    load1 = os.getloadavg()[0]
    rows = []
    for label, name, models in REPOS:
        repo = work / f"{name}-repo"
        repo.mkdir()
        for m in models:
            shutil.copytree(EXAMPLES / m, repo / m)
        archive = work / f"{name}.tar"
        t0 = time.monotonic()
        subprocess.run([berth, "build", "--model-repository", str(repo), "-t", f"berth-bench/{name}:1",
                        "-o", str(archive)], check=True, capture_output=True, env=env)
        build_s = time.monotonic() - t0
        compressed, uncompressed, layers = sizes(archive)
        subprocess.run(["podman", "load", "-i", str(archive)], check=True, capture_output=True, env=env)
        starts = []
        for _ in range(a.runs):
            port = free_port()
            t0 = time.monotonic()
            cid = subprocess.run(["podman", "run", "-d", "--read-only", "-p", f"127.0.0.1:{port}:8000",
                                  f"localhost/berth-bench/{name}:1"], check=True, capture_output=True, text=True,
                                 env=env).stdout.strip()
            try:
                starts.append(wait_ready(port) - t0)
            finally:
                subprocess.run(["podman", "rm", "-f", "-t", "0", cid], capture_output=True, env=env)
        # The same model loaded on the host, no container: what the loader and the backend cost by themselves.
        predict = []
        for _ in range(3):
            t0 = time.monotonic()
            subprocess.run([berth, "predict", str(repo / models[0]), "--input", PREDICT_INPUT[name]], check=True,
                           capture_output=True)
            predict.append(time.monotonic() - t0)
        rows.append((label, compressed, uncompressed, layers, build_s, starts, statistics.median(predict)))
        print(f"{label}: {compressed / 1e6:.1f} MB compressed, {uncompressed / 1e6:.1f} MB uncompressed, "
              f"build {build_s:.1f} s, start->ready median {statistics.median(starts):.2f} s", flush=True)

    version = lambda cmd: subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    out = [f"# berth images: size, build time, start -> ready", "",
           f"Date: {now}. Written by `bench/image_sizes.sh` ({a.runs} starts per image).", ""]
    if load1 > 0.5:
        out += [f"> **Machine not idle:** 1-minute load average {load1:.2f} on {os.cpu_count()} CPUs when the run "
                "started (another build was running); build and start times are higher than on an idle machine.",
                ""]
    out += ["## berth (measured here)", "",
            "Sizes are the image's layers plus its config: compressed = what a registry stores and a pull "
            "downloads (gzip level 6), uncompressed = the layer tars (what `podman images` shows). Build = "
            "`berth build ... -o image.tar` wall time from a cold start of the command (ELF closure, strip, "
            "tar, gzip, SBOM). Start -> ready = from invoking `podman run -d --read-only -p ...` to the first "
            "200 from `/v2/health/ready` (container creation, loader, plugin and model load).", "",
            "The last column is `berth predict` of the same model on the host, without a container (median of 3): "
            "process start, plugin and library load, model load, one inference. The difference to start -> ready "
            "is podman's part (container creation, port mapping, conmon).", "",
            "| repository | layers | compressed | uncompressed | build | start -> ready (median) | start -> ready (all runs) | host `berth predict` |",
            "|---|---:|---:|---:|---:|---:|---|---:|"]
    for label, c, u, layers, b, starts, pred in rows:
        out.append(f"| {label} | {layers} | **{c / 1e6:.1f} MB** | {u / 1e6:.1f} MB | {b:.1f} s | "
                   f"**{statistics.median(starts):.2f} s** | {', '.join(f'{s:.2f}' for s in starts)} | {pred:.2f} s |")
    out += ["", "Targets (issue 5): XGBoost-only image <= 40 MB compressed; TorchScript image <= 250 MB "
            "compressed; start -> ready <= 2 s for the MLP.", "",
            "## Incumbents (published, not measured here)", "",
            "| image | size | source |", "|---|---:|---|"]
    for name, size, source in INCUMBENTS:
        out.append(f"| {name} | {size} | {source} |")
    out += ["", "## Machine and versions", "",
            f"- {platform.node()}: {os.cpu_count()} CPUs, {platform.platform()}",
            f"- {version(['podman', '--version'])}, {version(['runc', '--version'])}",
            f"- {version([berth, '--version'])}; LibTorch from Debian (libtorch1.13), OpenBLAS (pthread) "
            "through the libblas.so.3 alternative",
            "", "The TorchScript image is big because Debian's LibTorch links OpenCV, ffmpeg and Qt into "
            "libtorch_cpu (about 290 shared libraries in the image); the identity and XGBoost images carry berth's own "
            "closure (glibc, libstdc++, yaml-cpp, fmt, spdlog, simdjson, OpenSSL, zlib) and, for XGBoost, "
            "libxgboost and libgomp.", ""]
    pathlib.Path(a.out).write_text("\n".join(out))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
