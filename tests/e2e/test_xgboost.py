"""XGBoost backend end to end: predictions against Python xgboost (the oracle)
for binary:logistic, multi:softprob and reg:squarederror models saved as
model.json and model.ubj, missing values (NaN, sent with the binary tensor
extension since JSON cannot carry NaN), model.yaml checks against the booster,
corrupt model files, `berth predict` and the example `churn` model.
"""
import concurrent.futures
import json
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import BERTH_BIN, EXAMPLES, Server, error_of, write_model

pytestmark = pytest.mark.xgboost
xgb = pytest.importorskip("xgboost")

CHURN = EXAMPLES / "churn"
BACKEND_DIR = BERTH_BIN.resolve().parent.parent / "lib" / "berth" / "backends"

# kind: (objective params, features, output width)
KINDS = {
    "binary": ({"objective": "binary:logistic"}, 6, 1),
    "multi": ({"objective": "multi:softprob", "num_class": 3}, 5, 3),
    "reg": ({"objective": "reg:squarederror"}, 7, 1),
}


def model_yaml(features, width, datatype="FP32", extra=""):
    return (f"backend: xgboost\nmax_batch_size: 128\n"
            f"inputs:\n  - {{name: x, datatype: {datatype}, shape: [{features}]}}\n"
            f"outputs:\n  - {{name: y, datatype: FP32, shape: [{width}]}}\n{extra}")


def with_missing(x, rng, fraction=0.15):
    x = x.copy()
    x[rng.uniform(size=x.shape) < fraction] = np.nan
    return x


class Trained:
    def __init__(self, kind, booster, features, width, files):
        self.kind, self.booster, self.features, self.width, self.files = \
            kind, booster, features, width, files

    def reference(self, x):
        """Python xgboost's prediction, shaped [N, width]."""
        out = self.booster.predict(xgb.DMatrix(x, missing=np.nan))
        return np.asarray(out, dtype=np.float32).reshape(len(x), self.width)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny deterministic model per kind, saved as model.json and model.ubj."""
    d = tmp_path_factory.mktemp("xgb_models")
    models = {}
    for i, (kind, (params, features, width)) in enumerate(KINDS.items()):
        rng = np.random.default_rng(100 + i)
        x = with_missing(rng.normal(size=(400, features)).astype(np.float32), rng, 0.1)
        signal = np.nan_to_num(x[:, 0]) + 0.5 * np.nan_to_num(x[:, 1]) - np.isnan(x[:, 2])
        if kind == "binary":
            y = (signal > 0).astype(np.float32)
        elif kind == "multi":
            y = np.digitize(signal, [-0.5, 0.5]).astype(np.float32)
        else:
            y = (3 * signal + rng.normal(scale=0.1, size=len(x))).astype(np.float32)
        booster = xgb.train({**params, "max_depth": 3, "eta": 0.3, "tree_method": "exact",
                             "nthread": 1, "seed": 0},
                            xgb.DMatrix(x, label=y, missing=np.nan), num_boost_round=15)
        files = {}
        for ext in ("json", "ubj"):
            p = d / f"{kind}.{ext}"
            booster.save_model(str(p))
            files[ext] = p.read_bytes()
        models[kind] = Trained(kind, booster, features, width, files)
    return models


def add_model(repo, name, t, ext="json", yaml=None):
    write_model(repo, name, yaml or model_yaml(t.features, t.width),
                files={f"1/model.{ext}": t.files[ext]})


def infer_binary(server, model, x, datatype="FP32", binary_output=True):
    """POSTs x with the binary tensor extension (the only way to send NaN)."""
    raw = np.ascontiguousarray(x, dtype="<f4" if datatype == "FP32" else "<f8").tobytes()
    header = {"inputs": [{"name": "x", "datatype": datatype, "shape": list(x.shape),
                          "parameters": {"binary_data_size": len(raw)}}]}
    if binary_output:
        header["parameters"] = {"binary_data_output": True}
    head = json.dumps(header).encode()
    return server.post(f"/v2/models/{model}/infer", data=head + raw,
                       headers={"Inference-Header-Content-Length": str(len(head)),
                                "Content-Type": "application/octet-stream"})


def output_of(resp):
    """The single output as an ndarray, from a JSON or a binary response."""
    assert resp.status_code == 200, (resp.status_code, resp.text[:2000])
    hlen = resp.headers.get("Inference-Header-Content-Length")
    if hlen is None:
        out = resp.json()["outputs"]
        assert len(out) == 1, out
        return np.array(out[0]["data"], dtype=np.float32).reshape(out[0]["shape"]), out[0]
    n = int(hlen)
    header = json.loads(resp.content[:n])
    out = header["outputs"]
    assert len(out) == 1, out
    raw = resp.content[n:]
    assert out[0]["parameters"]["binary_data_size"] == len(raw)
    return np.frombuffer(raw, dtype="<f4").reshape(out[0]["shape"]), out[0]


def index_of(server):
    r = server.post("/v2/repository/index")
    assert r.status_code == 200, r.text
    return {e["name"]: e for e in r.json()}


def wait_loaded(server, count, timeout=60):
    deadline = time.time() + timeout
    while True:
        idx = index_of(server)
        if (len(idx) >= count and all(e["state"] in ("READY", "UNAVAILABLE") for e in idx.values())) \
                or time.time() > deadline:
            return idx
        time.sleep(0.1)


@pytest.fixture
def repo(tmp_path):
    r = tmp_path / "models"
    r.mkdir()
    return r


@pytest.fixture
def all_models_server(trained, repo, start_server):
    for kind, t in trained.items():
        for ext in ("json", "ubj"):
            add_model(repo, f"{kind}_{ext}", t, ext)
    add_model(repo, "binary_fp64", trained["binary"],
              yaml=model_yaml(trained["binary"].features, 1, datatype="FP64"))
    return start_server(repo)


# ---------------------------------------------------------------- predictions

@pytest.mark.parametrize("batch", [1, 100])
def test_predictions_with_missing_values_match_python(trained, all_models_server, batch):
    for kind, t in trained.items():
        rng = np.random.default_rng(batch)
        x = with_missing(rng.normal(size=(batch, t.features)).astype(np.float32), rng, 0.2)
        if batch > 1:
            x[0, :] = np.nan  # a row with every value missing
        expected = t.reference(x)
        for ext in ("json", "ubj"):
            for binary_output in (True, False):
                got, out = output_of(infer_binary(all_models_server, f"{kind}_{ext}", x,
                                                  binary_output=binary_output))
                assert out["name"] == "y" and out["datatype"] == "FP32"
                assert out["shape"] == [batch, t.width], (kind, ext, out)
                np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6, err_msg=f"{kind}_{ext}")


@pytest.mark.parametrize("batch", [1, 100])
def test_json_request_matches_python(trained, all_models_server, batch):
    for kind, t in trained.items():
        x = np.random.default_rng(7 + batch).normal(size=(batch, t.features)).astype(np.float32)
        r = all_models_server.infer(f"{kind}_json", [{"name": "x", "datatype": "FP32",
                                                      "shape": [batch, t.features],
                                                      "data": x.ravel().tolist()}])
        got, _ = output_of(r)
        np.testing.assert_allclose(got, t.reference(x), rtol=0, atol=1e-6, err_msg=kind)


def test_probabilities(trained, all_models_server):
    x = np.random.default_rng(3).normal(size=(50, 5)).astype(np.float32)
    got, _ = output_of(infer_binary(all_models_server, "multi_json", x))
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
    x = np.random.default_rng(3).normal(size=(50, 6)).astype(np.float32)
    got, _ = output_of(infer_binary(all_models_server, "binary_json", x))
    assert ((got >= 0) & (got <= 1)).all()


def test_fp64_input(trained, all_models_server):
    t = trained["binary"]
    rng = np.random.default_rng(11)
    x = with_missing(rng.normal(size=(30, t.features)), rng)
    got, _ = output_of(infer_binary(all_models_server, "binary_fp64", x, datatype="FP64"))
    np.testing.assert_allclose(got, t.reference(x.astype(np.float32)), rtol=0, atol=1e-6)


def test_metadata(all_models_server):
    r = all_models_server.get("/v2/models/multi_ubj")
    assert r.status_code == 200, r.text
    meta = r.json()
    assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 5]}]
    assert meta["outputs"] == [{"name": "y", "datatype": "FP32", "shape": [-1, 3]}]


def test_request_with_wrong_feature_count_is_400(all_models_server):
    r = infer_binary(all_models_server, "binary_json", np.zeros((2, 5), dtype=np.float32))
    assert r.status_code == 400, r.text
    assert "x" in error_of(r)


def test_concurrent_requests_on_several_instances(trained, repo, start_server):
    t = trained["multi"]
    add_model(repo, "m", t, "ubj", yaml=model_yaml(t.features, t.width, extra="instances: 3\nthreads: 2\n"))
    server = start_server(repo)
    rng = np.random.default_rng(5)
    batches = [with_missing(rng.normal(size=(int(n), t.features)).astype(np.float32), rng)
               for n in rng.integers(1, 128, 60)]

    def one(x):
        got, _ = output_of(infer_binary(server, "m", x))
        np.testing.assert_allclose(got, t.reference(x), rtol=0, atol=1e-6)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(one, batches))


def test_model_json_preferred_over_ubj(trained, repo, start_server):
    # Both files present: model.json is the one loaded (here a different model).
    b, r = trained["binary"], trained["reg"]
    write_model(repo, "both", model_yaml(b.features, 1),
                files={"1/model.json": b.files["json"], "1/model.ubj": r.files["ubj"]})
    server = start_server(repo)
    x = np.random.default_rng(2).normal(size=(10, b.features)).astype(np.float32)
    got, _ = output_of(infer_binary(server, "both", x))
    np.testing.assert_allclose(got, b.reference(x), rtol=0, atol=1e-6)


# ---------------------------------------------------------------- load failures

def test_config_mismatches_fail_the_load_and_others_keep_serving(trained, repo, start_server):
    b, m = trained["binary"], trained["multi"]
    add_model(repo, "good", b)
    add_model(repo, "too_many_features", b, yaml=model_yaml(b.features + 1, 1))
    add_model(repo, "too_few_features", b, "ubj", yaml=model_yaml(b.features - 1, 1))
    add_model(repo, "wrong_width", m, yaml=model_yaml(m.features, 1))
    add_model(repo, "binary_as_two", b, yaml=model_yaml(b.features, 2))
    add_model(repo, "unbatched", b, yaml=model_yaml(b.features, 1).replace("max_batch_size: 128",
                                                                           "max_batch_size: 0"))
    add_model(repo, "int_input", b, yaml=model_yaml(b.features, 1, datatype="INT32"))
    add_model(repo, "two_outputs", b, yaml=model_yaml(b.features, 1) +
              "  - {name: z, datatype: FP32, shape: [1]}\n")
    add_model(repo, "params", b, yaml=model_yaml(b.features, 1, extra="parameters: {foo: bar}\n"))
    write_model(repo, "no_file", model_yaml(b.features, 1))
    server = start_server(repo, wait_ready=False)
    idx = wait_loaded(server, 10)

    assert idx["good"]["state"] == "READY", idx["good"]
    x = np.random.default_rng(1).normal(size=(4, b.features)).astype(np.float32)
    got, _ = output_of(infer_binary(server, "good", x))
    np.testing.assert_allclose(got, b.reference(x), rtol=0, atol=1e-6)

    def reason(name):
        e = idx[name]
        assert e["state"] == "UNAVAILABLE", e
        assert e["reason"], e
        r = server.get(f"/v2/models/{name}/ready")
        assert r.status_code == 503, (name, r.status_code)
        return e["reason"]

    for name, expected in [("too_many_features", f"[{b.features}]"),
                           ("too_few_features", f"[{b.features}]")]:
        why = reason(name)
        assert "model.yaml" in why and "inputs[0].shape" in why, why
        assert f"num_feature {b.features}" in why and expected in why, why
    why = reason("wrong_width")
    assert "model.yaml" in why and "outputs[0].shape" in why, why
    assert "expected [3]" in why and "multi:softprob" in why and "num_class 3" in why, why
    why = reason("binary_as_two")
    assert "outputs[0].shape" in why and "expected [1]" in why and "binary:logistic" in why, why
    assert "max_batch_size" in reason("unbatched")
    assert "inputs[0].datatype" in reason("int_input")
    assert "outputs" in reason("two_outputs")
    assert "parameters.foo" in reason("params")
    why = reason("no_file")
    assert "model.json" in why and "model.ubj" in why, why

    r = infer_binary(server, "too_many_features", np.zeros((1, b.features + 1), dtype=np.float32))
    assert r.status_code == 503, r.text
    assert server.alive()


def rows_yaml(in_shape, out_shape):
    return (f"backend: xgboost\nmax_batch_size: 16\n"
            f"inputs:\n  - {{name: x, datatype: FP32, shape: {in_shape}}}\n"
            f"outputs:\n  - {{name: y, datatype: FP32, shape: {out_shape}}}\n")


def test_an_input_of_several_rows_per_request_predicts_each_row(trained, repo, start_server):
    """inputs [..., F]: every leading dimension is rows (co2_xgb takes [-1, F] rows per forecast); the
    output keeps them: [..., W]. Leading dimensions that differ between input and output fail the load."""
    m = trained["multi"]
    add_model(repo, "rows", m, yaml=rows_yaml(f"[-1, {m.features}]", f"[-1, {m.width}]"))
    add_model(repo, "grid", m, yaml=rows_yaml(f"[2, 3, {m.features}]", f"[2, 3, {m.width}]"))
    add_model(repo, "rows_flat_output", m, yaml=rows_yaml(f"[-1, {m.features}]", f"[{m.width}]"))
    add_model(repo, "rows_other_dims", m, yaml=rows_yaml(f"[4, {m.features}]", f"[5, {m.width}]"))
    server = start_server(repo, wait_ready=False)
    idx = wait_loaded(server, 4)
    assert idx["rows"]["state"] == "READY" and idx["grid"]["state"] == "READY", idx
    rng = np.random.default_rng(5)
    x = with_missing(rng.normal(size=(3, 7, m.features)).astype(np.float32), rng)  # 3 requests' 7 rows each
    got, meta = output_of(infer_binary(server, "rows", x))
    assert meta["shape"] == [3, 7, m.width]
    np.testing.assert_allclose(got.reshape(-1, m.width), m.reference(x.reshape(-1, m.features)), rtol=0, atol=1e-6)
    x = rng.normal(size=(2, 2, 3, m.features)).astype(np.float32)
    got, meta = output_of(infer_binary(server, "grid", x))
    assert meta["shape"] == [2, 2, 3, m.width]
    np.testing.assert_allclose(got.reshape(-1, m.width), m.reference(x.reshape(-1, m.features)), rtol=0, atol=1e-6)
    empty, meta = output_of(infer_binary(server, "rows", np.zeros((1, 0, m.features), np.float32)))
    assert meta["shape"] == [1, 0, m.width] and empty.size == 0
    for name, expected in [("rows_flat_output", f"expected [-1,{m.width}]"),
                           ("rows_other_dims", f"expected [4,{m.width}]")]:
        e = idx[name]
        assert e["state"] == "UNAVAILABLE" and "outputs[0].shape" in e["reason"], e
        assert expected in e["reason"] and "leading dimensions" in e["reason"], e


def corrupt_files(trained):
    """{name: (ext, bytes, what the reason says)}"""
    good_json = trained["binary"].files["json"]
    good_ubj = trained["binary"].files["ubj"]
    rand = np.random.default_rng(9).bytes(4000)
    unloadable = "not a loadable XGBoost model"
    files = {
        "random_json": ("json", rand, unloadable),
        "random_json_ascii": ("json", bytes(np.random.default_rng(9).integers(32, 127, 4000, dtype=np.uint8)),
                              unloadable),
        "truncated_json": ("json", good_json[:len(good_json) // 2], unloadable),
        "invalid_json": ("json", b'{"learner": {"attributes": {}, ,,] ', unloadable),
        "empty_json": ("json", b"", unloadable),
        "empty_object_json": ("json", b"{}", unloadable),
        "random_ubj": ("ubj", rand, unloadable),
        "truncated_ubj": ("ubj", good_ubj[:len(good_ubj) // 2], unloadable),
        "json_named_ubj": ("ubj", good_json[:100], unloadable),
        # XGBoost's own readers recurse per level, and its UBJ reader believes
        # length fields: these would overflow the stack or allocate exabytes.
        "deeply_nested_json": ("json", b'{"learner":' + b"[" * 200000, unloadable),
        "deeply_nested_ubj": ("ubj", b"{L" + (1).to_bytes(8, "big") + b"a" + b"[" * 200000, unloadable),
        "huge_typed_array_ubj": ("ubj", b"{L" + (1).to_bytes(8, "big") + b"a[$d#L" +
                                 (2 ** 62).to_bytes(8, "big") + b"\0" * 64 + b"}", unloadable),
        "huge_string_ubj": ("ubj", b"{L" + (2 ** 40).to_bytes(8, "big") + b"abc", unloadable),
    }

    def edited(edit):
        doc = json.loads(good_json)
        edit(doc["learner"]["gradient_booster"]["model"])
        return json.dumps(doc).encode()

    def set_tree0(key, i, value):
        return lambda m: m["trees"][0][key].__setitem__(i, value)

    def set_info(m):
        m["tree_info"][0] = 7

    files["trees_not_a_list"] = ("json", edited(lambda m: m.__setitem__("trees", "x")), unloadable)
    # These load in XGBoost but read out of bounds when predicting (one of
    # them crashes Python xgboost itself): the file check refuses them before
    # XGBoost reads them, naming the spot.
    files["child_out_of_range"] = ("json", edited(set_tree0("left_children", 0, 100000000)), "trees[0] node 0")
    files["child_negative"] = ("json", edited(set_tree0("right_children", 0, -5)), "trees[0] node 0")
    files["child_loop"] = ("json", edited(set_tree0("left_children", 1, 0)), "trees[0] node 1")
    files["split_feature_out_of_range"] = ("json", edited(set_tree0("split_indices", 0, 1000)),
                                           "trees[0].split_indices[0]")
    files["tree_info_out_of_range"] = ("json", edited(set_info), "tree_info[0]")
    return files


def test_corrupt_model_files_fail_the_load_and_others_keep_serving(trained, repo, start_server):
    b = trained["binary"]
    add_model(repo, "good", b)
    bad = corrupt_files(trained)
    for name, (ext, data, _) in bad.items():
        write_model(repo, name, model_yaml(b.features, 1), files={f"1/model.{ext}": data})
    server = start_server(repo, wait_ready=False)
    idx = wait_loaded(server, len(bad) + 1)
    assert idx["good"]["state"] == "READY", idx["good"]
    for name, (ext, _, says) in bad.items():
        e = idx[name]
        assert e["state"] == "UNAVAILABLE", e
        assert f"model.{ext}" in e["reason"] and says in e["reason"], e
        # The reason is one printable ASCII line, whatever bytes the file held.
        assert all(32 <= ord(c) < 127 for c in e["reason"]), e["reason"]
    x = np.random.default_rng(4).normal(size=(8, b.features)).astype(np.float32)
    got, _ = output_of(infer_binary(server, "good", x))
    np.testing.assert_allclose(got, b.reference(x), rtol=0, atol=1e-6)
    assert server.alive()



# ---------------------------------------------------------------- berth predict and the example

def predict(model_dir, *args):
    p = subprocess.run([str(BERTH_BIN), "predict", str(model_dir), *args],
                       capture_output=True, text=True, timeout=120)
    return p


def test_berth_predict(trained, repo):
    t = trained["multi"]
    add_model(repo, "multi", t, "ubj")
    x = np.random.default_rng(8).normal(size=(3, t.features)).astype(np.float32)
    p = predict(repo / "multi", "--input", "x=" + json.dumps(x.astype(float).tolist()))
    assert p.returncode == 0, (p.stdout, p.stderr)
    out = json.loads(p.stdout)["outputs"][0]
    assert out["shape"] == [3, 3]
    np.testing.assert_allclose(np.array(out["data"], dtype=np.float32).reshape(3, 3), t.reference(x),
                               rtol=0, atol=1e-6)


def test_berth_predict_example_churn():
    booster = xgb.Booster(model_file=str(CHURN / "1" / "model.json"))
    row = [24.0, 85.5, 3.0, 1.0]
    p = predict(CHURN, "--input", "features=" + json.dumps(row))
    assert p.returncode == 0, (p.stdout, p.stderr)
    body = json.loads(p.stdout)
    assert body["model_name"] == "churn"
    out = body["outputs"][0]
    assert out["name"] == "churn_probability" and out["shape"] == [1, 1]
    expected = booster.predict(xgb.DMatrix(np.array([row], dtype=np.float32)))
    np.testing.assert_allclose(out["data"], expected, rtol=0, atol=1e-6)


def test_berth_predict_corrupt_model(repo):
    write_model(repo, "bad", model_yaml(4, 1), files={"1/model.json": b"{not json"})
    p = predict(repo / "bad", "--input", "x=[1, 2, 3, 4]")
    assert p.returncode != 0
    assert "model.json" in p.stderr and "not a loadable XGBoost model" in p.stderr, p.stderr


def test_example_repository_loads(tmp_path):
    """Every example model whose backend this build has is READY; churn serves."""
    link = tmp_path / "models"
    link.symlink_to(EXAMPLES)
    server = Server(link, wait_ready=False)
    try:
        idx = wait_loaded(server, len([d for d in EXAMPLES.iterdir() if d.is_dir()]))
        for d in sorted(p for p in EXAMPLES.iterdir() if (p / "model.yaml").is_file()):
            backend = next(line.split(":", 1)[1].strip() for line in (d / "model.yaml").read_text().splitlines()
                           if line.startswith("backend:"))
            if (BACKEND_DIR / f"libberth_backend_{backend}.so").exists():
                assert idx[d.name]["state"] == "READY", idx[d.name]
        booster = xgb.Booster(model_file=str(CHURN / "1" / "model.json"))
        x = np.array([[1, 110, 5, 1], [60, 30, 0, 24], [np.nan, 70, 1, 12]], dtype=np.float32)
        got, out = output_of(infer_binary_named(server, "churn", "features", x))
        assert out["shape"] == [3, 1]
        np.testing.assert_allclose(got.ravel(), booster.predict(xgb.DMatrix(x, missing=np.nan)),
                                   rtol=0, atol=1e-6)
    finally:
        server.stop()


def infer_binary_named(server, model, name, x):
    raw = np.ascontiguousarray(x, dtype="<f4").tobytes()
    head = json.dumps({"inputs": [{"name": name, "datatype": "FP32", "shape": list(x.shape),
                                   "parameters": {"binary_data_size": len(raw)}}]}).encode()
    return server.post(f"/v2/models/{model}/infer", data=head + raw,
                       headers={"Inference-Header-Content-Length": str(len(head))})


def test_example_script_is_deterministic(tmp_path):
    """examples/make_xgboost_model.py reproduces the committed churn model byte for byte."""
    script = EXAMPLES.parent / "make_xgboost_model.py"
    src = script.read_text().replace('HERE / "models" / "churn"', f'pathlib.Path({str(tmp_path)!r}) / "churn"')
    copy = tmp_path / "make.py"
    copy.write_text(src)
    p = subprocess.run([sys.executable, str(copy)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "churn" / "1" / "model.json").read_bytes() == (CHURN / "1" / "model.json").read_bytes()
    assert (tmp_path / "churn" / "model.yaml").read_text() == (CHURN / "model.yaml").read_text()
