"""`berth batch --shard I/N` and `berth batch merge`: N processes each take the
records that start in one N-th of the input's bytes; the merged parts are
byte-identical to a single run's output and rejects (original line
numbers), whatever the cut points hit: quoted newlines, bad rows, empty
shards. A killed shard resumed or re-run, and a shard started twice, change
nothing. Oracles: the single run, and Python's own record offsets."""
import json
import os
import pathlib
import signal
import subprocess
import time

import pandas as pd
import pytest

from conftest import BERTH_BIN, write_model
from test_batch import IDENTITY3, batch


def shard_cuts(path, n):
    """The byte offsets where shards begin before moving to a record start (as berth computes them)."""
    data = open(path, "rb").read()
    start = data.index(b"\n") + 1
    return [start + (len(data) - start) * k // n for k in range(n)]


def write_multiline_csv(path, rows=400):
    """Records whose text field holds quoted newlines (and quotes); every 37th row has a bad x.
    Returns (start, end) byte spans of the records that span several lines."""
    spans = []
    with open(path, "wb") as f:
        f.write(b"id,text,x,y,z\n")
        for i in range(rows):
            lines = [f'part {j} says ""hi""' for j in range(i % 6)]
            text = '"' + "\n".join(lines) + '"'
            x = "bad" if i % 37 == 5 else str(i * 0.5)
            rec = f"{i},{text},{x},{i % 7},{-i}\n".encode()
            if b"\n" in rec[:-1]:
                spans.append((f.tell(), f.tell() + len(rec)))
            f.write(rec)
    return spans


def run_shards(model, inp, out, n, *args):
    procs = [subprocess.Popen([str(BERTH_BIN), "batch", str(model), "--in", str(inp), "--out", str(out),
                               "--shard", f"{i}/{n}", *map(str, args)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(n)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode in (0, 1), err  # 1: more rejects than --max-rejects, all written
    return merge(out, n)


def merge(out, n, check=True):
    p = subprocess.run([str(BERTH_BIN), "batch", "merge", "--out", str(out), "--shards", str(n)],
                       capture_output=True, text=True, timeout=60)
    if check:
        assert p.returncode == 0, p.stderr
    return p


@pytest.fixture
def model(tmp_path):
    return write_model(tmp_path / "repo", "ident", IDENTITY3)


@pytest.mark.parametrize("n", [1, 3, 7, 1000])
def test_csv_shards_merge_to_the_single_run(tmp_path, model, n):
    inp = tmp_path / "in.csv"
    spans = write_multiline_csv(inp)
    single = tmp_path / "single.csv"
    batch(model, inp, single, "--keep", "id,text", "--max-rejects", "100")
    out = tmp_path / "sharded.csv"
    run_shards(model, inp, out, n, "--keep", "id,text", "--max-rejects", "100")
    assert out.read_bytes() == single.read_bytes()
    assert pathlib.Path(f"{out}.rejects.csv").read_bytes() == pathlib.Path(f"{single}.rejects.csv").read_bytes()
    got = pd.read_csv(out)
    assert len(got) == 400 - len(range(5, 400, 37))
    rejects = pd.read_csv(f"{out}.rejects.csv")
    assert len(rejects) == len(range(5, 400, 37)) and rejects["line"].is_monotonic_increasing
    if n == 7:
        # The hard case is really exercised: cut points inside quoted multi-line fields.
        inside = [c for c in shard_cuts(inp, n) if any(a < c < b for a, b in spans)]
        assert len(inside) >= 3, inside
    if n == 1000:  # more shards than records: most parts are a header only
        sizes = [pathlib.Path(f"{out}.part-{i}").stat().st_size for i in range(n)]
        assert sizes.count(min(sizes)) > 500
    assert not list(tmp_path.glob("*.lock")) and not list(tmp_path.glob("*.partial"))


def test_jsonl_shards_merge_to_the_single_run(tmp_path, model):
    inp = tmp_path / "in.jsonl"
    with open(inp, "w") as f:
        for i in range(300):
            f.write(json.dumps({"id": i, "note": "a\nb \u00e9" * (i % 4), "x": i, "y": "bad" if i == 77 else 1,
                                "z": -i}) + "\n")
    single = tmp_path / "single.jsonl"
    batch(model, inp, single, "--keep", "id,note", "--max-rejects", "5")
    out = tmp_path / "sharded.jsonl"
    run_shards(model, inp, out, 4, "--keep", "id,note", "--max-rejects", "5")
    assert out.read_bytes() == single.read_bytes()
    assert pathlib.Path(f"{out}.rejects.jsonl").read_bytes() == pathlib.Path(f"{single}.rejects.jsonl").read_bytes()


def slow_model(tmp_path):
    return write_model(tmp_path / "slow", "slow", IDENTITY3.replace("max_batch_size: 16", "max_batch_size: 50")
                       + "parameters: {delay_ms: '2'}\n")


def write_numbers(path, n):
    with open(path, "w") as f:
        f.write("id,x,y,z\n")
        f.write("".join(f"{i},{i * 0.5},{i % 7},{-i}\n" for i in range(n)))


def start_shard(model, inp, out, shard, *args):
    return subprocess.Popen([str(BERTH_BIN), "batch", str(model), "--in", str(inp), "--out", str(out),
                             "--keep", "id", "--shard", shard, "--checkpoint-rows", "500", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_a_killed_shard_resumed_or_rerun_changes_nothing(tmp_path):
    model = slow_model(tmp_path)
    inp = tmp_path / "in.csv"
    write_numbers(inp, 60000)
    single = tmp_path / "single.csv"
    batch(model, inp, single, "--keep", "id", timeout=300)
    out = tmp_path / "out.csv"
    for i in (0, 2):
        assert start_shard(model, inp, out, f"{i}/3").wait(timeout=300) == 0
    for resume in (True, False):
        proc = start_shard(model, inp, out, "1/3")
        ckpt = pathlib.Path(f"{out}.part-1.checkpoint")
        deadline = time.time() + 60
        while time.time() < deadline and not ckpt.exists():
            time.sleep(0.01)
        time.sleep(0.2)
        assert proc.poll() is None, "the shard finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert 0 < json.loads(ckpt.read_text())["rows_read"] < 20000
        p = merge(out, 3, check=False)
        assert p.returncode == 1 and "shard 1 has not finished" in p.stderr, p.stderr
        again = start_shard(model, inp, out, "1/3", *(["--resume"] if resume else []))
        _, err = again.communicate(timeout=300)
        assert again.returncode == 0, err
        assert ("(resumed)" in err) == resume, err
        merge(out, 3)
        assert out.read_bytes() == single.read_bytes()
        for done in (out, pathlib.Path(f"{out}.part-1"), pathlib.Path(f"{out}.rejects.csv.part-1")):
            done.unlink()


def test_a_shard_started_twice_is_refused_while_the_first_runs(tmp_path):
    model = slow_model(tmp_path)
    inp = tmp_path / "in.csv"
    write_numbers(inp, 20000)
    out = tmp_path / "out.csv"
    first = start_shard(model, inp, out, "0/2")
    deadline = time.time() + 60
    while time.time() < deadline and not pathlib.Path(f"{out}.part-0.lock").exists():
        time.sleep(0.01)
    second = start_shard(model, inp, out, "0/2")
    _, err = second.communicate(timeout=60)
    assert second.returncode == 1
    assert "another berth batch is writing it" in err, err
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert start_shard(model, inp, out, "1/2").wait(timeout=300) == 0
    merge(out, 2)
    single = tmp_path / "single.csv"
    batch(model, inp, single, "--keep", "id", timeout=300)
    assert out.read_bytes() == single.read_bytes()


def test_clear_errors(tmp_path, model):
    inp = tmp_path / "in.csv"
    write_numbers(inp, 100)
    out = tmp_path / "o.csv"
    for bad in ("3/3", "1", "a/2", "-1/2", "1/0", "/2", "1/"):
        p = subprocess.run([str(BERTH_BIN), "batch", str(model), "--in", str(inp), "--out", str(out), "--shard", bad],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 2 and "--shard: expected I/N with 0 <= I < N" in p.stderr, (bad, p.stderr)
    p = merge(out, 2, check=False)
    assert p.returncode == 1 and f"{out}.part-0: missing; run shard 0 of 2" in p.stderr, p.stderr
    run_shards(model, inp, out, 3)
    p = merge(out, 2, check=False)
    assert p.returncode == 1 and "the run had more than 2 shards" in p.stderr, p.stderr
    other = tmp_path / "other"
    other.mkdir()
    run_shards(write_model(tmp_path / "repo2", "ident", IDENTITY3), inp, other / "o.csv", 3, "--keep", "id")
    os.replace(other / "o.csv.part-2", f"{out}.part-2")
    p = merge(out, 3, check=False)
    assert p.returncode == 1 and "its header differs" in p.stderr, p.stderr
    p = subprocess.run([str(BERTH_BIN), "batch", "--in", str(inp), "--out", str(out)], capture_output=True, text=True)
    assert p.returncode == 2 and "model_dir is required" in p.stderr, p.stderr
