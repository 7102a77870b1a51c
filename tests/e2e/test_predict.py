"""`berth predict MODEL_DIR --input NAME=JSON|@FILE ...` end to end."""
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from conftest import BERTH_BIN, EXAMPLES, write_model

MULTIPLY = EXAMPLES / "multiply"
MLP = EXAMPLES / "mlp"
IDENTITY = EXAMPLES / "identity"


def predict(model_dir, *args, timeout=120):
    return subprocess.run([str(BERTH_BIN), "predict", str(model_dir), *args],
                          capture_output=True, text=True, timeout=timeout)


def predict_ok(model_dir, *args):
    p = predict(model_dir, *args)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    return json.loads(p.stdout)


def predict_fails(model_dir, *args):
    p = predict(model_dir, *args)
    assert p.returncode != 0, (p.stdout, p.stderr)
    assert p.stderr.strip(), "no message on stderr"
    return p.stderr


# ---------------------------------------------------------------- identity (no torch)

def test_predict_identity_unbatched_becomes_batch_of_one():
    body = predict_ok(IDENTITY, "--input", "INPUT0=[1.5, 2.5, -3.0]")
    assert body["model_name"] == "identity"
    assert body["model_version"] == "1"
    assert body["outputs"] == [{"name": "OUTPUT0", "datatype": "FP32", "shape": [1, 3],
                                "data": [1.5, 2.5, -3.0]}]


def test_predict_identity_batched_input():
    body = predict_ok(IDENTITY, "--input", "INPUT0=[[1, 2], [3, 4], [5, 6]]")
    out = body["outputs"][0]
    assert out["shape"] == [3, 2]
    assert np.array(out["data"], dtype=np.float32).ravel().tolist() == [1, 2, 3, 4, 5, 6]


def test_predict_identity_input_from_file(tmp_path):
    f = tmp_path / "in.json"
    f.write_text(json.dumps([0.25, 0.5]))
    body = predict_ok(IDENTITY, "--input", f"INPUT0=@{f}")
    assert body["outputs"][0]["data"] == [0.25, 0.5]


def test_predict_identity_unknown_input():
    err = predict_fails(IDENTITY, "--input", "BOGUS_INPUT=[1.0]")
    assert "BOGUS_INPUT" in err


def test_predict_identity_missing_input():
    err = predict_fails(IDENTITY)
    assert "INPUT0" in err or "--input" in err


# ---------------------------------------------------------------- torchscript

@pytest.mark.torch
def test_predict_multiply_readme_example():
    body = predict_ok(MULTIPLY, "--input", "x=[3.0]", "--input", "y=[4.0]")
    assert body["model_name"] == "multiply"
    assert body["model_version"] == "1"
    assert body["outputs"][0]["name"] == "z"
    assert body["outputs"][0]["datatype"] == "FP32"
    assert body["outputs"][0]["shape"] == [1]
    assert body["outputs"][0]["data"] == [12.0]


@pytest.mark.torch
def test_predict_input_from_file(tmp_path):
    fx = tmp_path / "x.json"
    fx.write_text(json.dumps([3.0, 5.0, -1.0]))
    body = predict_ok(MULTIPLY, "--input", f"x=@{fx}", "--input", "y=[4.0, 2.0, 8.0]")
    out = body["outputs"][0]
    assert out["name"] == "z" and out["shape"] == [3]
    assert out["data"] == [12.0, 10.0, -8.0]


@pytest.mark.torch
def test_predict_mlp_flat_input_is_batch_of_one():
    import torch
    x = np.random.default_rng(0).standard_normal(16).astype(np.float32)
    body = predict_ok(MLP, "--input", "x=" + json.dumps([float(v) for v in x]))
    out = body["outputs"][0]
    assert out["name"] == "probs" and out["datatype"] == "FP32"
    assert out["shape"] == [1, 4]
    with torch.no_grad():
        ref = torch.jit.load(str(MLP / "1" / "model.pt"))(torch.from_numpy(x).reshape(1, 16))
    np.testing.assert_allclose(np.array(out["data"], dtype=np.float32).reshape(1, 4),
                               ref.numpy(), rtol=0, atol=1e-5)


@pytest.mark.torch
def test_predict_mlp_batched_input():
    import torch
    x = np.random.default_rng(1).standard_normal((3, 16)).astype(np.float32)
    body = predict_ok(MLP, "--input", "x=" + json.dumps(x.astype(float).tolist()))
    out = body["outputs"][0]
    assert out["shape"] == [3, 4]
    with torch.no_grad():
        ref = torch.jit.load(str(MLP / "1" / "model.pt"))(torch.from_numpy(x))
    np.testing.assert_allclose(np.array(out["data"], dtype=np.float32).reshape(3, 4),
                               ref.numpy(), rtol=0, atol=1e-5)


@pytest.mark.torch
def test_predict_picks_highest_version_and_version_flag(tmp_path):
    import io
    import torch

    class Add(torch.nn.Module):
        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return x + y

    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(Add()), buf)
    d = write_model(tmp_path, "arith", (MULTIPLY / "model.yaml").read_text(), versions=(1, 2),
                    files={"1/model.pt": (MULTIPLY / "1" / "model.pt").read_bytes(),
                           "2/model.pt": buf.getvalue()})
    args = ("--input", "x=[3.0]", "--input", "y=[4.0]")
    body = predict_ok(d, *args)
    assert body["model_version"] == "2"
    assert body["outputs"][0]["data"] == [7.0]
    body = predict_ok(d, *args, "--version", "1")
    assert body["model_version"] == "1"
    assert body["outputs"][0]["data"] == [12.0]


@pytest.mark.torch
def test_predict_unknown_input_name():
    err = predict_fails(MULTIPLY, "--input", "x=[3.0]", "--input", "y=[4.0]",
                        "--input", "bogus_input=[1.0]")
    assert "bogus_input" in err


@pytest.mark.torch
def test_predict_missing_input():
    err = predict_fails(MULTIPLY, "--input", "x=[3.0]")
    assert re.search(r"\by\b", err), err


@pytest.mark.torch
@pytest.mark.parametrize("bad", ["x=[3.0", "x=[3.0,]", "x=three", "x={\"a\": 1}"])
def test_predict_malformed_json(bad):
    err = predict_fails(MULTIPLY, "--input", bad, "--input", "y=[4.0]")
    assert re.search(r"\bx\b", err) or "json" in err.lower(), err


@pytest.mark.torch
def test_predict_missing_input_file(tmp_path):
    missing = tmp_path / "does-not-exist.json"
    err = predict_fails(MULTIPLY, "--input", f"x=@{missing}", "--input", "y=[4.0]")
    assert "does-not-exist.json" in err


@pytest.mark.torch
def test_predict_model_error_exits_nonzero():
    # x and y of different lengths: the multiply fails inside torch (or is refused)
    predict_fails(MULTIPLY, "--input", "x=[1.0, 2.0, 3.0]", "--input", "y=[1.0, 2.0]")


def test_predict_nonexistent_model_dir(tmp_path):
    missing = tmp_path / "no_such_model"
    err = predict_fails(missing, "--input", "x=[1.0]")
    assert "no_such_model" in err


def test_predict_input_without_equals():
    err = predict_fails(IDENTITY, "--input", "INPUT0")
    assert "INPUT0" in err or "--input" in err


def test_predict_bad_model_yaml(tmp_path):
    d = tmp_path / "broken"
    shutil.copytree(IDENTITY, d)
    (d / "model.yaml").write_text((IDENTITY / "model.yaml").read_text() + "bogus_key: 1\n")
    err = predict_fails(d, "--input", "INPUT0=[1.0]")
    assert "model.yaml" in err and "bogus_key" in err
