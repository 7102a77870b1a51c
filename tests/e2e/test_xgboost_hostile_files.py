"""Model files that crash, hang or exhaust XGBoost 1.7.4 itself (each case
below was reproduced against Debian's libxgboost in a forked process: a
segfault, an abort, SIGFPE, an endless loop or a multi-GB allocation inside
XGBoosterLoadModel, SaveModelToBuffer or PredictFromDense). Served by berth,
each is refused with a reason naming the spot, and the server goes on
serving: at start, and when one appears as a new version in poll mode.
"""
import copy
import json
import pathlib
import struct
import time

import numpy as np
import pandas as pd
import pytest

from conftest import write_model

pytestmark = pytest.mark.xgboost
xgb = pytest.importorskip("xgboost")

FEATURES = 4


def yaml(features=FEATURES, width=1):
    return (f"backend: xgboost\nmax_batch_size: 16\n"
            f"inputs:\n  - {{name: x, datatype: FP32, shape: [{features}]}}\n"
            f"outputs:\n  - {{name: y, datatype: FP32, shape: [{width}]}}\n")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile_xgb")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, FEATURES)).astype(np.float32)
    y = (x[:, 0] + (x[:, 1] > 0) > 0.5).astype(np.float32)
    out = {}
    reg = xgb.train({"objective": "binary:logistic", "max_depth": 2, "nthread": 1, "seed": 0},
                    xgb.DMatrix(x, y), 3)
    df = pd.DataFrame({"a": pd.Categorical(rng.integers(0, 40, 300)), "b": x[:, 1]})
    yy = ((df["a"].cat.codes % 3 == 0).astype(float) + x[:, 1] > 0.5).astype(np.float32)
    cat = xgb.train({"objective": "binary:logistic", "max_depth": 2, "tree_method": "hist", "max_cat_to_onehot": 1,
                     "nthread": 1, "seed": 0}, xgb.DMatrix(df, yy, enable_categorical=True), 2)
    for name, b in (("reg", reg), ("cat", cat)):
        for ext in ("json", "ubj"):
            p = d / f"{name}.{ext}"
            b.save_model(str(p))
            out[f"{name}.{ext}"] = p.read_bytes()
    out["reg_booster"] = reg
    return out


def ubj_length(n):
    return b"L" + struct.pack(">q", n)


def mutate(good_json, edit):
    doc = json.loads(good_json)
    edit(doc["learner"], doc["learner"]["gradient_booster"]["model"])
    return json.dumps(doc, allow_nan=True).encode()


def first_categorical_tree(m):
    return next(t for t in m["trees"] if t["categories_nodes"])


def hostile(models):
    """{name: (ext, bytes, what the reason must name)}"""
    reg, cat = models["reg.json"], models["cat.json"]
    cases = {}

    def j(name, base, edit, says):
        cases[name] = ("json", mutate(base, edit), says)

    # inside XGBoosterLoadModel
    j("tree_count_past_tree_info", reg,
      lambda l, m: m["gbtree_model_param"].__setitem__("num_trees", "1000"), "trees")
    j("parent_minus_one", reg, lambda l, m: m["trees"][0]["parents"].__setitem__(1, -1), "parents[1]")
    j("parent_far_away", reg, lambda l, m: m["trees"][0]["parents"].__setitem__(1, 100000000), "parents[1]")
    j("split_type_short", reg, lambda l, m: m["trees"][0].__setitem__("split_type", [0]), "split_type")
    j("categories_segments_short", cat,
      lambda l, m: first_categorical_tree(m).__setitem__("categories_segments", []), "categories_segments")
    j("categories_segment_far_away", cat,
      lambda l, m: first_categorical_tree(m)["categories_segments"].__setitem__(0, 100000000), "categories_segments")
    j("category_negative", cat,
      lambda l, m: first_categorical_tree(m)["categories"].__setitem__(0, -1), "categories[0]")
    # later: saving or predicting
    j("duplicate_tree_ids", reg, lambda l, m: m["trees"][1].__setitem__("id", 0), "trees[1].id")
    j("categorical_node_not_listed", cat,
      lambda l, m: first_categorical_tree(m).__setitem__("categories_nodes", [5]), "split_type")
    j("tree_info_past_outputs", reg, lambda l, m: m["tree_info"].__setitem__(0, 100000000), "tree_info[0]")

    def left_plus_one_loop(l, m):  # every child in range with one parent, yet 1 -> 3 -> 1 through left + 1
        t = m["trees"][0]
        n = 9
        t.update({"left_children": [3, 2, -1, 1, -1, -1, -1, -1, -1],
                  "right_children": [4, 8, -1, 7, -1, -1, -1, -1, -1],
                  "parents": [2147483647, 3, 1, 0, 0, 0, 0, 3, 1], "split_indices": [0] * n,
                  "split_conditions": [10.0, -10.0, 0.1, 10.0, 0.2, 0.3, 0.4, 0.5, 0.6], "default_left": [0] * n,
                  "split_type": [0] * n, "base_weights": [0.0] * n, "loss_changes": [0.0] * n,
                  "sum_hessian": [1.0] * n})
        t["tree_param"]["num_nodes"] = str(n)
    j("loop_through_left_plus_one", reg, left_plus_one_loop, "trees[0] node 1")

    def fpe(l, m):  # outputs x num_parallel_tree wraps to 0 in a uint32: SIGFPE on every prediction
        l["learner_model_param"]["num_class"] = "65536"
        m["gbtree_model_param"]["num_parallel_tree"] = "65536"
    j("division_by_zero", reg, fpe, "num_parallel_tree")
    j("num_feature_wraps", reg, lambda l, m: l["learner_model_param"].__setitem__("num_feature", "-1"), "num_feature")
    j("num_feature_huge", reg,
      lambda l, m: l["learner_model_param"].__setitem__("num_feature", "100000000"), "num_feature")
    j("num_class_huge", reg, lambda l, m: l["learner_model_param"].__setitem__("num_class", "2147483647"),
      "num_class")

    # UBJ: lengths and counts XGBoost believes, truncation, an array never closed
    header = b"{" + ubj_length(1) + b"a"
    cases["ubj_typed_count_huge"] = ("ubj", header + b"[$d#" + ubj_length(10 ** 8) + b"\0" * 16 + b"}", "UBJSON")
    cases["ubj_string_huge"] = ("ubj", header + b"S" + ubj_length(10 ** 9) + b"abc}", "UBJSON")
    cases["ubj_count_huge"] = ("ubj", header + b"[#" + ubj_length(10 ** 8) + b"Z}", "UBJSON")
    cases["ubj_array_never_closed"] = ("ubj", header + b"[U", "UBJSON")
    good_ubj = models["reg.ubj"]
    for cut in range(3, len(good_ubj), max(1, len(good_ubj) // 40)):
        cases[f"ubj_cut_at_{cut}"] = ("ubj", good_ubj[:cut], "UBJSON")
    return cases


def index(server):
    return {e["name"]: e for e in server.post("/v2/repository/index").json()}


def wait_settled(server, n, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        idx = index(server)
        if len(idx) >= n and all(e["state"] != "LOADING" for e in idx.values()):
            return idx
        time.sleep(0.1)
    return index(server)


def predict_ok(server, booster, model="good"):
    x = np.random.default_rng(1).normal(size=(5, FEATURES)).astype(np.float32)
    r = server.post(f"/v2/models/{model}/infer",
                    json={"inputs": [{"name": "x", "datatype": "FP32", "shape": [5, FEATURES],
                                      "data": x.ravel().tolist()}]})
    assert r.status_code == 200, r.text
    got = np.array(r.json()["outputs"][0]["data"], dtype=np.float32)
    np.testing.assert_allclose(got, booster.predict(xgb.DMatrix(x)), atol=1e-6)


def test_files_that_crash_xgboost_are_refused_and_the_server_serves_on(models, tmp_path, start_server):
    repo = tmp_path / "models"
    write_model(repo, "good", yaml(), files={"1/model.json": models["reg.json"]})
    cases = hostile(models)
    for name, (ext, data, _) in cases.items():
        write_model(repo, name, yaml(), files={f"1/model.{ext}": data})
    server = start_server(repo, wait_ready=False)
    idx = wait_settled(server, len(cases) + 1)
    assert server.proc.poll() is None, server.logs()[-3000:]
    assert idx["good"]["state"] == "READY", idx["good"]
    for name, (ext, _, says) in cases.items():
        e = idx[name]
        assert e["state"] == "UNAVAILABLE", e
        assert f"model.{ext}" in e["reason"] and says in e["reason"], e
        assert all(32 <= ord(c) < 127 for c in e["reason"]), e
    predict_ok(server, models["reg_booster"])


def test_a_crashing_file_as_a_new_version_in_poll_mode_leaves_the_old_one_serving(models, tmp_path, start_server):
    repo = tmp_path / "models"
    d = write_model(repo, "good", yaml() + "version_policy: {latest: 1}\n", files={"1/model.json": models["reg.json"]})
    server = start_server(repo, ["--model-control-mode", "poll", "--repository-poll-secs", "1"])
    predict_ok(server, models["reg_booster"])
    for name in ("parent_minus_one", "tree_count_past_tree_info", "ubj_typed_count_huge", "division_by_zero"):
        ext, data, says = hostile(models)[name]
        version = d / "2"
        version.mkdir(exist_ok=True)
        for old in version.iterdir():
            old.unlink()
        tmp = d / f"model.{ext}.tmp"
        tmp.write_bytes(data)
        tmp.rename(version / f"model.{ext}")
        deadline = time.time() + 20
        while time.time() < deadline:
            rows = [e for e in server.post("/v2/repository/index").json() if e["version"] == "2"]
            if rows and says in rows[0]["reason"]:
                break
            time.sleep(0.2)
        assert rows and rows[0]["state"] == "UNAVAILABLE" and says in rows[0]["reason"], (name, rows)
        assert server.proc.poll() is None, server.logs()[-3000:]
        predict_ok(server, models["reg_booster"])  # version 1 still answers


def test_all_checked_models_xgboost_wrote_still_load(models, tmp_path, start_server):
    repo = tmp_path / "models"
    for name in ("reg", "cat"):
        for ext in ("json", "ubj"):
            features = FEATURES if name == "reg" else 2
            write_model(repo, f"{name}_{ext}", yaml(features), files={f"1/model.{ext}": models[f"{name}.{ext}"]})
    server = start_server(repo)
    idx = index(server)
    assert all(e["state"] == "READY" for e in idx.values()), idx
