#!/usr/bin/python3
"""Side-by-side benchmark of `berth batch` (run by bench/batch.sh).

For N rows x 4 numeric features (CSV) and two models -- the XGBoost churn
model (examples/models/churn) and a TorchScript MLP 4->64->64->2 made here --
it times, on the same file, back to back:

  1. berth batch        CSV in -> model -> CSV out (the whole process)
  2. pandas pipeline    pandas.read_csv + the Python model's predict + to_csv
  3. model alone        the Python model on the in-memory array, in one call or
                        in calls of 1,024 rows, whichever is faster (the compute
                        ceiling: no parsing, no writing)
and the CSV reading speed alone: berth's reader on one core
(build/bin/berth_csv_bench) against pandas.read_csv.

Every berth output is checked against the pandas pipeline's predictions
(1e-5), so a fast wrong answer is not a result.

usage: batch.py [--smoke] [--rows N ...] [--out FILE]
"""
import argparse
import datetime
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import torch
import xgboost as xgb

ROOT = pathlib.Path(__file__).resolve().parents[1]
BERTH = pathlib.Path(os.environ.get("BERTH_BIN", ROOT / "build" / "bin" / "berth"))
CSV_BENCH = BERTH.parent / "berth_csv_bench"
FEATURES = ["tenure_months", "monthly_charges", "support_calls", "contract_months"]
MLP_YAML = """\
backend: torchscript
max_batch_size: 1024
inputs:
  - {name: x, datatype: FP32, shape: [4], columns: [tenure_months, monthly_charges, support_calls, contract_months]}
outputs:
  - {name: probs, datatype: FP32, shape: [2]}
instances: 1
threads: 1
"""


def make_csv(path, n, seed=0):
    rng = np.random.default_rng(seed)
    chunk = 1_000_000
    with open(path, "w") as f:
        f.write("customer," + ",".join(FEATURES) + "\n")
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            df = pd.DataFrame({
                "customer": np.arange(start, start + m),
                "tenure_months": rng.integers(0, 72, m).astype(float),
                "monthly_charges": rng.uniform(20, 120, m).round(2),
                "support_calls": rng.poisson(1.5, m).astype(float),
                "contract_months": rng.choice([1, 12, 24], m).astype(float),
            })
            df.to_csv(f, index=False, header=False)


def make_mlp(repo):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, 2), torch.nn.Softmax(dim=1))
    d = repo / "mlp4"
    (d / "1").mkdir(parents=True)
    torch.jit.script(net.eval()).save(str(d / "1" / "model.pt"))
    (d / "model.yaml").write_text(MLP_YAML)
    return d


def python_model(kind, model_dir):
    if kind == "xgboost":
        booster = xgb.Booster()
        booster.load_model(str(model_dir / "1" / "model.json"))
        return lambda x: booster.predict(xgb.DMatrix(x)).reshape(len(x), -1), ["churn_probability"]
    net = torch.jit.load(str(model_dir / "1" / "model.pt"))

    def run(x):
        with torch.no_grad():
            return net(torch.from_numpy(x)).numpy()
    return run, ["probs_0", "probs_1"]


def run_berth(model_dir, inp, out):
    t0 = time.perf_counter()
    p = subprocess.run([str(BERTH), "batch", str(model_dir), "--in", str(inp), "--out", str(out),
                        "--keep", "customer", "--progress", "json"], capture_output=True, text=True)
    secs = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"berth batch failed ({p.returncode}): {p.stderr}")
    summary = [json.loads(x) for x in p.stderr.splitlines() if x.startswith('{"event":"summary"')][0]
    return secs, summary


def run_pandas(predict, columns, inp, out):
    t0 = time.perf_counter()
    df = pd.read_csv(inp)
    t1 = time.perf_counter()
    y = predict(df[FEATURES].to_numpy(np.float32))
    t2 = time.perf_counter()
    res = pd.DataFrame(y, columns=columns)
    res.insert(0, "customer", df["customer"])
    res.to_csv(out, index=False)
    t3 = time.perf_counter()
    return t3 - t0, (t1 - t0, t2 - t1, t3 - t2), df


def csv_read_speed(inp):
    p = subprocess.run([str(CSV_BENCH), str(inp)], capture_output=True, text=True, check=True)
    return p.stdout.strip().splitlines()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--rows", type=int, nargs="*")
    ap.add_argument("--out")
    args = ap.parse_args()
    rows_list = args.rows or ([20_000] if args.smoke else [1_000_000, 10_000_000])
    work = pathlib.Path(tempfile.mkdtemp(prefix="berth-batch-bench-"))
    repo = work / "repo"
    models = [("xgboost", ROOT / "examples" / "models" / "churn"), ("torchscript", make_mlp(repo))]
    lines = []
    failed = False
    for n in rows_list:
        inp = work / f"in-{n}.csv"
        make_csv(inp, n)
        mb = inp.stat().st_size / 1e6
        reader = csv_read_speed(inp)
        t0 = time.perf_counter()
        pd.read_csv(inp)
        pandas_read = time.perf_counter() - t0
        lines.append(f"\n### {n:,} rows x 4 features ({mb:.1f} MB CSV)\n")
        lines.append("CSV reading alone, one core:\n")
        lines.append("| reader | MB/s | ns/row |\n|---|---:|---:|")
        for r in reader:
            name, rest = r[:28].strip(), r[28:].split()
            lines.append(f"| berth: {name} | {float(rest[2]):.0f} | {float(rest[4]):.0f} |")
        lines.append(f"| pandas.read_csv (C engine) | {mb / pandas_read:.0f} | {pandas_read * 1e9 / n:.0f} |\n")
        lines.append("| model | berth batch s | rows/s | berth parse / model / write s (busy) "
                     "| pandas pipeline s | read / predict / write s | model alone s "
                     "| berth / pandas | berth / model alone |")
        lines.append("|---|---:|---:|---|---:|---|---:|---:|---:|")
        for kind, model_dir in models:
            predict, columns = python_model(kind, model_dir)
            out_b = work / f"berth-{kind}-{n}.csv"
            out_p = work / f"pandas-{kind}-{n}.csv"
            berth_s, summary = run_berth(model_dir, inp, out_b)
            pandas_s, (pr, pp, pw), df = run_pandas(predict, columns, inp, out_p)
            x = df[FEATURES].to_numpy(np.float32)
            t0 = time.perf_counter()
            want = predict(x)
            alone = time.perf_counter() - t0
            t0 = time.perf_counter()
            for i in range(0, n, 1024):  # the ceiling at its best batch size: one call or 1024 rows a call
                predict(x[i:i + 1024])
            alone = min(alone, time.perf_counter() - t0)
            got = pd.read_csv(out_b)
            ok = (summary["rows_written"] == n and got["customer"].tolist() == df["customer"].tolist()
                  and np.allclose(got[columns].to_numpy(), want, rtol=0, atol=1e-5))
            failed |= not ok
            lines.append(
                f"| {kind}{'' if ok else ' (WRONG OUTPUT: not a result)'} | {berth_s:.2f} | {n / berth_s:,.0f} | "
                f"{summary['parse_seconds']:.2f} / {summary['model_seconds']:.2f} / {summary['write_seconds']:.2f} | "
                f"{pandas_s:.2f} | {pr:.2f} / {pp:.2f} / {pw:.2f} | {alone:.2f} | "
                f"**{pandas_s / berth_s:.1f}x** | {alone / berth_s:.2f} |")
            for f in (out_b, out_p):
                f.unlink()
        inp.unlink()

    head = [
        f"# berth batch vs pandas — {datetime.date.today().isoformat()}\n",
        f"Machine: {platform.node()}, {os.cpu_count()} CPUs, {platform.platform()}; load average at start "
        f"{os.getloadavg()[0]:.2f}. Python {platform.python_version()}, pandas {pd.__version__}, "
        f"xgboost {xgb.__version__}, torch {torch.__version__}.\n",
        "Command: `bench/batch.sh` (bench/batch.py). Each row: the same CSV file through "
        "`berth batch MODEL --in in.csv --out out.csv --keep customer` (whole process, model load included), "
        "through `pandas.read_csv` + the Python model's predict + `DataFrame.to_csv` (same output columns), and "
        "the Python model alone on the in-memory float32 array (the compute ceiling: the faster of one call over all rows and calls of 1,024 rows). "
        "berth's output is checked against the Python predictions (1e-5). berth runs the model with the "
        "model.yaml settings (1 instance, 1 intra-op thread) beside one reader and one writer thread; "
        "pandas and the ceiling use the libraries' default thread counts (all CPUs).\n",
        "berth's parse / model / write columns are each stage's busy time (they overlap in time).",
    ]
    text = "\n".join(head + lines) + "\n"
    out = args.out or (work / "batch.md" if args.smoke else
                       ROOT / "bench" / "results" / f"{datetime.date.today().isoformat()}-batch.md")
    pathlib.Path(out).write_text(text)
    print(text)
    print(f"written to {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
