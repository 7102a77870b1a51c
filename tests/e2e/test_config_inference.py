"""model.yaml omitted or giving only the backend: the signature comes from the model file
(ONNX graph, XGBoost booster); `berth inspect` prints it."""
import os
import pathlib
import shutil
import subprocess

import numpy as np
import pytest
import yaml

from conftest import BERTH_BIN, EXAMPLES, write_model

pytestmark = [pytest.mark.xgboost, pytest.mark.onnx, pytest.mark.torch]

ROWS = np.random.default_rng(7).normal(size=(5, 16)).astype(np.float32)


def copy_version(repo, name, src_model, file_name, yaml_text=None):
    d = pathlib.Path(repo) / name
    (d / "1").mkdir(parents=True)
    shutil.copy(src_model, d / "1" / file_name)
    if yaml_text is not None:
        (d / "model.yaml").write_text(yaml_text)
    return d


def inspect(model_dir):
    return subprocess.run([str(BERTH_BIN), "inspect", str(model_dir)], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    from conftest import Server
    repo = tmp_path_factory.mktemp("infer") / "repo"
    copy_version(repo, "churn_bare", EXAMPLES / "churn/1/model.json", "model.json")
    copy_version(repo, "onnx_bare", EXAMPLES / "mlp_onnx/1/model.onnx", "model.onnx")
    copy_version(repo, "onnx_backend_only", EXAMPLES / "mlp_onnx/1/model.onnx", "model.onnx", "backend: onnx\n")
    copy_version(repo, "pt_bare", EXAMPLES / "mlp/1/model.pt", "model.pt")
    (repo / "onnx_garbage" / "1").mkdir(parents=True)
    (repo / "onnx_garbage" / "1" / "model.onnx").write_bytes(os.urandom(4096))
    (repo / "nothing" / "1").mkdir(parents=True)
    s = Server(repo)
    s.repo = repo
    yield s
    s.stop()


def index(srv):
    return {e["name"]: e for e in srv.post("/v2/repository/index").json()}


def test_onnx_without_model_yaml_serves_the_graph_signature(srv):
    import torch
    meta = srv.get("/v2/models/onnx_bare").json()
    assert meta["platform"] == "onnx"
    assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 16]}]
    assert meta["outputs"] == [{"name": "probs", "datatype": "FP32", "shape": [-1, 4]}]
    want = torch.jit.load(str(EXAMPLES / "mlp/1/model.pt"))(torch.from_numpy(ROWS)).detach().numpy()
    for model in ("onnx_bare", "onnx_backend_only"):
        r = srv.infer(model, [{"name": "x", "datatype": "FP32", "shape": [5, 16], "data": ROWS.tolist()}])
        assert r.status_code == 200, r.text
        got = np.array(r.json()["outputs"][0]["data"], dtype=np.float32).reshape(5, 4)
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_xgboost_without_model_yaml_uses_the_booster_feature_count(srv):
    import xgboost as xgb
    meta = srv.get("/v2/models/churn_bare").json()
    assert meta["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 4]}]
    assert meta["outputs"] == [{"name": "predictions", "datatype": "FP32", "shape": [-1, 1]}]
    x = np.random.default_rng(3).uniform(0, 10, size=(6, 4)).astype(np.float32)
    x[1, 2] = np.nan  # JSON null = missing, as XGBoost reads NaN
    x[4, :] = np.nan
    want = xgb.Booster(model_file=str(EXAMPLES / "churn/1/model.json")).predict(
        xgb.DMatrix(x, missing=np.nan))
    data = [[None if np.isnan(v) else float(v) for v in row] for row in x]
    r = srv.infer("churn_bare", [{"name": "features", "datatype": "FP32", "shape": [6, 4], "data": data}])
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(np.array(r.json()["outputs"][0]["data"]), want, atol=1e-6)


def test_models_whose_file_says_too_little_are_unavailable_with_a_reason(srv):
    idx = index(srv)
    assert idx["pt_bare"]["state"] == "UNAVAILABLE"
    assert "model.yaml" in idx["pt_bare"]["reason"] and "cannot infer" in idx["pt_bare"]["reason"]
    assert idx["onnx_garbage"]["state"] == "UNAVAILABLE"
    assert "ONNX" in idx["onnx_garbage"]["reason"]
    assert idx["nothing"]["state"] == "UNAVAILABLE"
    assert "model.yaml: missing" in idx["nothing"]["reason"]
    assert srv.infer("onnx_bare", [{"name": "x", "datatype": "FP32", "shape": [1, 16], "data": [0] * 16}]).ok


def test_inspect_prints_a_model_yaml_that_serves_the_same(srv, tmp_path, start_server):
    p = inspect(srv.repo / "onnx_bare")
    assert p.returncode == 0, p.stderr
    assert "inferred from the model file" in p.stdout
    config = yaml.safe_load(p.stdout)
    assert config["backend"] == "onnx" and config["max_batch_size"] == 64
    assert config["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [16]}]
    repo = tmp_path / "repo"
    d = copy_version(repo, "from_inspect", EXAMPLES / "mlp_onnx/1/model.onnx", "model.onnx", p.stdout)
    s = start_server(repo)
    a = s.infer("from_inspect", [{"name": "x", "datatype": "FP32", "shape": [5, 16], "data": ROWS.tolist()}]).json()
    b = srv.infer("onnx_bare", [{"name": "x", "datatype": "FP32", "shape": [5, 16], "data": ROWS.tolist()}]).json()
    assert a["outputs"][0]["data"] == b["outputs"][0]["data"]
    assert (d / "model.yaml").exists()


def test_inspect_reports_from_model_yaml_and_errors():
    p = inspect(EXAMPLES / "mlp")
    assert p.returncode == 0 and "from model.yaml" in p.stdout and "backend: torchscript" in p.stdout
    bad = inspect(EXAMPLES / "does_not_exist")
    assert bad.returncode != 0 and "not a model directory" in bad.stderr
