"""`berth batch`: CSV/JSONL through a model, every row accounted for, resumable.

Oracles: pandas (Debian python3-pandas) for CSV parsing, Python xgboost and
torch for predictions.
"""
import json
import os
import pathlib
import signal
import subprocess
import time

import numpy as np
import pandas as pd
import pytest

from conftest import BERTH_BIN, EXAMPLES, write_model

IDENTITY3 = """\
backend: identity
max_batch_size: 16
inputs:
  - {name: vals, datatype: FP64, shape: [3], columns: [x, y, z]}
outputs:
  - {name: vals, datatype: FP64, shape: [3]}
"""


def batch(model_dir, inp, out, *args, check=True, timeout=120):
    cmd = [str(BERTH_BIN), "batch", str(model_dir), "--in", str(inp), "--out", str(out), *map(str, args)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"exit {p.returncode}\nstdout:{p.stdout}\nstderr:{p.stderr}")
    return p


@pytest.fixture
def identity3(tmp_path):
    return write_model(tmp_path / "repo", "ident", IDENTITY3)


HOSTILE = (
    "\ufeffid,text,x,y,z\r\n"
    '1,plain,1.5,2,3\r\n'
    '2,"comma, inside",-0.25,1e-3,+4\r\n'
    '3,"say ""hi"" twice",7,,9\r\n'
    '4,"embedded\r\nnewline\nand LF",NaN,NA,null\r\n'
    '5,"",  12.5 ,0.1,1E5\r\n'
    '6,' + "long" * 5000 + ',1,2,3\r\n'
    '7,"quote ""at end""",3.25,-0,1.7976931348623157e308\r\n'
    ' \t \r\n'  # a line of blanks: skipped, as pandas does
    '9,"old\rmac",1,2,3\r'  # a lone CR ends a record (old Mac files); inside quotes it is data
    '10,next,4,5,6\r\n'
    '8,trailing,inf,-inf,5'  # last line without a line end
)


def test_hostile_csv_parses_as_pandas_does(tmp_path, identity3):
    inp = tmp_path / "in.csv"
    inp.write_bytes(HOSTILE.encode())
    out = tmp_path / "out.csv"
    p = batch(identity3, inp, out, "--keep", "id,text")
    assert "10 rows read = 10 written + 0 rejected" in p.stderr, p.stderr

    expected = pd.read_csv(inp, dtype={"text": str}, keep_default_na=True)
    got = pd.read_csv(out, dtype={"text": str})
    assert list(got.columns) == ["id", "text", "vals_0", "vals_1", "vals_2"]
    assert got["id"].tolist() == expected["id"].tolist()
    # Kept text is copied verbatim and reads back identically.
    assert got["text"].fillna("").tolist() == expected["text"].fillna("").tolist()
    for col, name in zip(["x", "y", "z"], ["vals_0", "vals_1", "vals_2"]):
        np.testing.assert_array_equal(got[name].to_numpy(float), expected[col].to_numpy(float))
    assert not (tmp_path / "out.csv.partial").exists()
    assert not (tmp_path / "out.csv.checkpoint").exists()
    assert (tmp_path / "out.csv.rejects.csv").read_text() == "line,reason,record\n"


def churn_rows(n, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "customer": [f"c{i}" for i in range(n)],
        "tenure_months": rng.integers(0, 72, n).astype(float),
        "monthly_charges": rng.uniform(20, 120, n).round(2),
        "support_calls": rng.poisson(1.5, n).astype(float),
        "contract_months": rng.choice([1, 12, 24], n).astype(float),
    })
    df.loc[df.index % 17 == 3, "support_calls"] = np.nan  # missing values: NaN for XGBoost
    return df


FEATURES = ["tenure_months", "monthly_charges", "support_calls", "contract_months"]


@pytest.mark.xgboost
def test_xgboost_predictions_match_python(tmp_path):
    import xgboost as xgb
    df = churn_rows(3000)
    inp = tmp_path / "customers.csv"
    df.to_csv(inp, index=False)
    out = tmp_path / "scores.csv"
    batch(EXAMPLES / "churn", inp, out, "--keep", "customer")
    got = pd.read_csv(out)
    assert list(got.columns) == ["customer", "churn_probability"]
    assert got["customer"].tolist() == df["customer"].tolist()
    booster = xgb.Booster()
    booster.load_model(str(EXAMPLES / "churn" / "1" / "model.json"))
    want = booster.predict(xgb.DMatrix(df[FEATURES].to_numpy(np.float32)))
    np.testing.assert_allclose(got["churn_probability"].to_numpy(), want, rtol=0, atol=1e-6)


@pytest.mark.torch
def test_torchscript_mlp_from_header_names(tmp_path):
    import torch
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 16)).astype(np.float32)
    df = pd.DataFrame(x, columns=[f"x_{i}" for i in range(16)])
    df.insert(0, "row", range(500))
    inp = tmp_path / "in.csv"
    df.to_csv(inp, index=False)
    out = tmp_path / "out.csv"
    # No `columns` in the mlp's model.yaml: the header names x_0 … x_15.
    batch(EXAMPLES / "mlp", inp, out, "--keep", "row")
    got = pd.read_csv(out)
    assert list(got.columns) == ["row", "probs_0", "probs_1", "probs_2", "probs_3"]
    model = torch.jit.load(str(EXAMPLES / "mlp" / "1" / "model.pt"))
    want = model(torch.from_numpy(pd.read_csv(inp)[[f"x_{i}" for i in range(16)]].to_numpy(np.float32)))
    np.testing.assert_allclose(got[[f"probs_{i}" for i in range(4)]].to_numpy(), want.detach().numpy(),
                               rtol=0, atol=1e-5)


def test_jsonl_in_and_out(tmp_path, identity3):
    inp = tmp_path / "in.jsonl"
    lines = [
        {"id": 1, "x": 1.5, "y": 2, "z": None, "tag": "a\"b"},
        {"id": 2, "x": -1, "y": "3.5", "tag": "日本"},
        {"id": "three", "x": 0, "y": 0, "z": 0},
    ]
    inp.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    out = tmp_path / "out.jsonl"
    batch(identity3, inp, out, "--keep", "id,tag")
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert rows[0] == {"id": 1, "tag": "a\"b", "vals_0": 1.5, "vals_1": 2.0, "vals_2": None}
    assert rows[1] == {"id": 2, "tag": "日本", "vals_0": -1.0, "vals_1": 3.5, "vals_2": None}
    assert rows[2] == {"id": "three", "tag": None, "vals_0": 0.0, "vals_1": 0.0, "vals_2": 0.0}
    # pandas reads the JSONL output the way it reads the CSV output.
    df = pd.read_json(out, lines=True)
    assert list(df.columns) == ["id", "tag", "vals_0", "vals_1", "vals_2"]


def test_rejects_are_written_with_line_and_reason(tmp_path, identity3):
    inp = tmp_path / "in.csv"
    inp.write_text(
        "id,x,y,z\n"
        "1,1,2,3\n"
        "2,abc,2,3\n"      # not a number
        "3,1,2\n"          # wrong column count
        "4,1,2,3\n"
        "5,1,2,3,4\n"      # wrong column count
        '6,1,2,"3\n'       # unterminated quote: swallows the rest
        "7,1,2,3\n")
    out = tmp_path / "out.csv"
    rejects = tmp_path / "bad.csv"
    p = batch(identity3, inp, out, "--keep", "id", "--rejects", rejects, check=False)
    assert p.returncode == 1, p.stderr
    assert "6 rows read = 2 written + 4 rejected" in p.stderr, p.stderr
    assert "more than --max-rejects 0" in p.stderr
    got = pd.read_csv(out)
    assert got["id"].tolist() == [1, 4]
    bad = pd.read_csv(rejects, keep_default_na=False)
    assert bad["line"].tolist() == [3, 4, 6, 7]
    assert "column 'x': 'abc' is not a number" in bad["reason"][0]
    assert "expected 4 fields" in bad["reason"][1] and "got 3" in bad["reason"][1]
    assert "got 5" in bad["reason"][2]
    assert "unterminated" in bad["reason"][3]
    assert bad["record"].tolist() == ["2,abc,2,3", "3,1,2", "5,1,2,3,4", '6,1,2,"3\n7,1,2,3\n']

    # Within --max-rejects the run succeeds.
    p = batch(identity3, inp, tmp_path / "out2.csv", "--max-rejects", "4")
    assert "4 rejected" in p.stderr


def test_out_of_range_integer_is_a_reject(tmp_path):
    model = write_model(tmp_path / "repo", "m", """\
backend: identity
max_batch_size: 4
inputs: [{name: v, datatype: INT8, shape: [1]}]
outputs: [{name: v, datatype: INT8, shape: [1]}]
""")
    inp = tmp_path / "in.csv"
    inp.write_text("v\n1\n2\n300\n4\n-5\n")
    out = tmp_path / "out.csv"
    p = batch(model, inp, out, "--max-rejects", "1")
    assert pd.read_csv(out)["v"].tolist() == [1, 2, 4, -5]
    assert "1 rejected" in p.stderr


def test_a_failing_model_rejects_every_row_with_its_error(tmp_path):
    model = write_model(tmp_path / "repo", "m", IDENTITY3 + "parameters: {fail: 'true'}\nwarmup: {requests: 0}\n")
    inp = tmp_path / "in.csv"
    inp.write_text("x,y,z\n" + "1,2,3\n" * 40)
    out = tmp_path / "out.csv"
    p = batch(model, inp, out, check=False)
    assert p.returncode == 1
    assert "40 rows read = 0 written + 40 rejected" in p.stderr, p.stderr
    bad = pd.read_csv(str(out) + ".rejects.csv")
    assert bad["line"].tolist() == list(range(2, 42))
    assert all("the model failed on this row" in r and "execution failed as configured" in r for r in bad["reason"])
    assert set(bad["record"]) == {"1,2,3"}


def test_transforms(tmp_path):
    model = write_model(tmp_path / "repo", "t", """\
backend: identity
max_batch_size: 8
inputs:
  - {name: f, datatype: FP32, shape: [-1], columns: [age, plan, income]}
outputs:
  - {name: f, datatype: FP32, shape: [5]}
transforms:
  fill_missing: {plan: basic, income: 100}
  standardize: {age: [40, 10]}
  one_hot: {plan: [basic, pro, team]}
warmup: {requests: 0}  # a synthetic request of zeros has 1 value, not the 5 the output declares
""")
    inp = tmp_path / "in.csv"
    inp.write_text("age,plan,income\n50,pro,7\n30,,\n45,gold,1\n20,team,x\n")
    out = tmp_path / "out.csv"
    p = batch(model, inp, out, check=False)
    assert p.returncode == 1
    got = pd.read_csv(out)
    assert got.values.tolist() == [[1, 0, 1, 0, 7], [-1, 1, 0, 0, 100]]
    bad = pd.read_csv(str(out) + ".rejects.csv")
    assert bad["line"].tolist() == [4, 5]
    assert "'gold' is not one of the one_hot categories" in bad["reason"][0]
    assert "column 'income': 'x' is not a number" in bad["reason"][1]


def test_clear_errors(tmp_path, identity3):
    inp = tmp_path / "in.csv"
    inp.write_text("x,y\n1,2\n")
    p = batch(identity3, inp, tmp_path / "o.csv", check=False)
    assert p.returncode == 1
    assert "column 'z' is not in the table" in p.stderr and "x, y" in p.stderr, p.stderr
    inp.write_text("x,y,z\n1,2,3\n")
    p = batch(identity3, inp, tmp_path / "o.csv", "--keep", "nope", check=False)
    assert p.returncode == 1 and "--keep nope: no such column" in p.stderr, p.stderr
    p = batch(identity3, tmp_path / "missing.csv", tmp_path / "o.csv", check=False)
    assert p.returncode == 1 and "missing.csv: cannot open" in p.stderr, p.stderr
    p = batch(identity3, inp, tmp_path / "no" / "dir" / "o.csv", check=False)
    assert p.returncode == 1 and "cannot write" in p.stderr, p.stderr
    p = batch(tmp_path / "nomodel", inp, tmp_path / "o.csv", check=False)
    assert p.returncode == 1 and "not a model directory" in p.stderr, p.stderr
    (tmp_path / "empty.csv").write_text("")
    p = batch(identity3, tmp_path / "empty.csv", tmp_path / "o.csv", check=False)
    assert p.returncode == 1 and "empty" in p.stderr, p.stderr
    assert not (tmp_path / "o.csv").exists()


def test_header_only_gives_header_only(tmp_path, identity3):
    inp = tmp_path / "in.csv"
    inp.write_text("x,y,z\n")
    out = tmp_path / "out.csv"
    p = batch(identity3, inp, out)
    assert out.read_text() == "vals_0,vals_1,vals_2\n"
    assert "0 rows read = 0 written + 0 rejected" in p.stderr


def test_progress_json(tmp_path, identity3):
    inp = tmp_path / "in.csv"
    inp.write_text("x,y,z\n" + "1,2,3\n" * 1000)
    p = batch(identity3, inp, tmp_path / "out.csv", "--progress", "json")
    events = [json.loads(line) for line in p.stderr.splitlines() if line.startswith("{")]
    summary = [e for e in events if e["event"] == "summary"]
    assert len(summary) == 1 and summary[0]["rows_written"] == 1000 and summary[0]["ok"] is True


def write_numbers(path, n):
    with open(path, "w") as f:
        f.write("id,x,y,z\n")
        for start in range(0, n, 100000):
            f.write("".join(f"{i},{i * 0.5},{i % 7},{-i}\n" for i in range(start, min(n, start + 100000))))


def test_sigkill_then_resume_loses_and_duplicates_nothing(tmp_path):
    # A slow model (1 ms per batch of 50 rows) so the kill lands mid-run.
    model = write_model(tmp_path / "repo", "slow", IDENTITY3.replace("max_batch_size: 16", "max_batch_size: 50")
                        + "parameters: {delay_ms: '1'}\n")
    inp = tmp_path / "in.csv"
    write_numbers(inp, 200000)
    ref = tmp_path / "ref.csv"
    batch(model, inp, ref, "--keep", "id", timeout=300)

    out = tmp_path / "out.csv"
    args = [str(BERTH_BIN), "batch", str(model), "--in", str(inp), "--out", str(out), "--keep", "id",
            "--checkpoint-rows", "2000"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = pathlib.Path(str(out) + ".checkpoint")
    deadline = time.time() + 60
    while time.time() < deadline and not ckpt.exists():
        time.sleep(0.01)
    time.sleep(0.3)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists() and pathlib.Path(str(out) + ".partial").exists()
    state = json.loads(ckpt.read_text())
    assert 0 < state["rows_read"] < 200000

    p = batch(model, inp, out, "--keep", "id", "--resume", timeout=300)
    assert "(resumed)" in p.stderr and "200000 rows read = 200000 written" in p.stderr, p.stderr
    assert out.read_bytes() == ref.read_bytes()
    assert not ckpt.exists()


def test_resume_refuses_a_changed_input(tmp_path, identity3):
    inp = tmp_path / "in.csv"
    inp.write_text("x,y,z\n1,2,3\n")
    out = tmp_path / "out.csv"
    pathlib.Path(str(out) + ".partial").write_text("vals_0,vals_1,vals_2\n")
    pathlib.Path(str(out) + ".checkpoint").write_text(json.dumps({
        "berth_batch_checkpoint": 1, "fingerprint": "in=/elsewhere", "input_offset": 6, "input_line": 2,
        "rows_read": 0, "rows_written": 0, "rows_rejected": 0, "out_bytes": 21, "rejects_bytes": 0}))
    p = batch(identity3, inp, out, "--resume", check=False)
    assert p.returncode == 1 and "made for another input file" in p.stderr, p.stderr
    # Without --resume the run starts over.
    batch(identity3, inp, out)
    assert out.read_text() == "vals_0,vals_1,vals_2\n1,2,3\n"


def max_rss_kb(args):
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, proc.stderr.read()
    return usage.ru_maxrss


@pytest.mark.skipif("ASAN_OPTIONS" in os.environ, reason="ASan's quarantine keeps freed memory resident")
def test_memory_is_bounded_by_buffers_not_file_size(tmp_path, identity3):
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    write_numbers(small, 20000)      # ~0.5 MB
    write_numbers(large, 2000000)    # ~50 MB: 50x the 1 MiB read block
    base = [str(BERTH_BIN), "batch", str(identity3), "--keep", "id", "--progress", "none"]
    rss_small = max_rss_kb(base + ["--in", str(small), "--out", str(tmp_path / "s.csv")])
    rss_large = max_rss_kb(base + ["--in", str(large), "--out", str(tmp_path / "l.csv")])
    assert rss_large < rss_small + 16 * 1024, (rss_small, rss_large)
    assert sum(1 for _ in open(tmp_path / "l.csv")) == 2000001


def test_order_is_kept_across_parallel_instances(tmp_path):
    # Three instances finish batches out of order; the writer puts them back in order.
    model = write_model(tmp_path / "repo", "par", IDENTITY3.replace("max_batch_size: 16", "max_batch_size: 7")
                        + "instances: 3\nparameters: {delay_ms: '2'}\n")
    inp = tmp_path / "in.csv"
    write_numbers(inp, 3000)
    out = tmp_path / "out.jsonl"
    batch(model, inp, out, "--keep", "id", "--format", "jsonl")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [str(i) for i in range(3000)]  # CSV text kept as JSON strings
    assert all(r["vals_2"] == -i for i, r in enumerate(rows))


def test_inputs_and_outputs_must_be_different_files(tmp_path, identity3):
    inp = tmp_path / "in.csv"
    inp.write_text("x,y,z\n1,2,3\n")
    before = inp.read_bytes()
    for extra in (["--out", "./in.csv"], ["--out", "o.csv", "--rejects", "in.csv"]):
        p = subprocess.run([str(BERTH_BIN.resolve()), "batch", str(identity3), "--in", "in.csv", *extra],
                           capture_output=True, text=True, cwd=tmp_path)
        assert p.returncode == 1 and "must be three different files" in p.stderr, p.stderr
    (tmp_path / "link.csv").symlink_to(inp)
    p = batch(identity3, inp, tmp_path / "link.csv", check=False)
    assert p.returncode == 1 and "must be three different files" in p.stderr, p.stderr
    assert inp.read_bytes() == before


def test_empty_single_column_output_rows_survive_a_csv_reader(tmp_path):
    model = write_model(tmp_path / "repo", "b", """\
backend: identity
max_batch_size: 4
inputs: [{name: s, datatype: BYTES, shape: [1]}]
outputs: [{name: s, datatype: BYTES, shape: [1]}]
""")
    inp = tmp_path / "in.csv"
    inp.write_text('s\n""\nabc\n"a,b"\n')
    out = tmp_path / "out.csv"
    batch(model, inp, out)
    got = pd.read_csv(out, keep_default_na=False)
    assert got["s"].tolist() == ["", "abc", "a,b"]


def test_a_small_model_queue_never_turns_into_rejects(tmp_path):
    model = write_model(tmp_path / "repo", "q", IDENTITY3.replace("max_batch_size: 16", "max_batch_size: 5")
                        + "instances: 4\ndynamic_batching: {max_queue_size: 2}\n")
    inp = tmp_path / "in.csv"
    write_numbers(inp, 5000)
    p = batch(model, inp, tmp_path / "out.csv")
    assert "5000 rows read = 5000 written + 0 rejected" in p.stderr, p.stderr
