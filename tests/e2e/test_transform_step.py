"""`kind: transform`: the table transforms of `berth batch` (fill_missing,
standardize, one_hot) as a model with no weights, so a pipeline preprocesses
online exactly as `berth batch` does offline. Oracles: numpy on the same
rows, Python xgboost on pandas' filled columns, and `berth batch` itself."""
import csv
import io
import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import EXAMPLES, error_of, write_model
from test_batch import FEATURES, batch, churn_rows

PREP = """\
kind: transform
max_batch_size: 64
inputs:
  - {name: age, datatype: FP32, shape: [1]}
  - {name: plan, datatype: BYTES, shape: [1]}
  - {name: income, datatype: BYTES, shape: [1]}
  - {name: tag, datatype: BYTES, shape: [1]}
outputs:
  - {name: f, datatype: FP32, shape: [5], columns: [age, plan, income]}
  - {name: tag_out, datatype: BYTES, shape: [1], columns: [tag]}
transforms:
  fill_missing: {plan: basic, income: "100"}
  standardize: {age: [40, 10]}
  one_hot: {plan: [basic, pro, team]}
"""


def prep_request(rows):
    n = len(rows)
    col = lambda k: [r[k] for r in rows]  # noqa: E731
    return [{"name": "age", "datatype": "FP32", "shape": [n, 1], "data": col("age")},
            {"name": "plan", "datatype": "BYTES", "shape": [n, 1], "data": col("plan")},
            {"name": "income", "datatype": "BYTES", "shape": [n, 1], "data": col("income")},
            {"name": "tag", "datatype": "BYTES", "shape": [n, 1], "data": col("tag")}]


def outputs(resp):
    assert resp.status_code == 200, resp.text
    return {o["name"]: o for o in resp.json()["outputs"]}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    r = tmp_path_factory.mktemp("transform") / "models"
    write_model(r, "prep", PREP)
    return r


@pytest.fixture(scope="module")
def server(repo):
    from conftest import Server
    s = Server(repo)
    yield s
    s.stop()


def test_values_equal_numpy_on_the_same_rows(server):
    rng = np.random.default_rng(3)
    n = 50
    plans = rng.choice(["basic", "pro", "team", "", "NA"], n)
    incomes = [("" if i % 7 == 0 else f"{v:.2f}") for i, v in enumerate(rng.uniform(0, 1e5, n))]
    rows = [{"age": float(a), "plan": str(p), "income": inc, "tag": f"t{i},\"q\""}
            for i, (a, p, inc) in enumerate(zip(rng.uniform(18, 90, n).astype(np.float32), plans, incomes))]
    got = outputs(server.infer("prep", prep_request(rows)))
    assert got["f"]["shape"] == [n, 5] and got["f"]["datatype"] == "FP32"
    assert got["tag_out"]["data"] == [r["tag"] for r in rows]
    # The oracle: pandas reads the same rows as a CSV (its default missing values), numpy transforms them.
    text = io.StringIO()
    w = csv.writer(text)
    w.writerow(["age", "plan", "income"])
    for r in rows:
        w.writerow([repr(r["age"]), r["plan"], r["income"]])
    df = pd.read_csv(io.StringIO(text.getvalue()))
    plan = df["plan"].fillna("basic")
    want = np.column_stack([(df["age"].to_numpy(np.float64) - 40) / 10,
                            *[(plan == c).to_numpy(np.float64) for c in ["basic", "pro", "team"]],
                            df["income"].fillna(100).to_numpy(np.float64)]).astype(np.float32)
    np.testing.assert_allclose(np.array(got["f"]["data"], np.float32).reshape(n, 5), want, rtol=1e-6, atol=1e-6)


def test_bad_values_are_400s_naming_the_row_and_input(server):
    good = {"age": 50.0, "plan": "pro", "income": "7", "tag": ""}
    r = server.infer("prep", prep_request([good, {**good, "income": "x"}]))
    assert r.status_code == 400
    assert error_of(r).endswith("row 1: input 'income': 'x' is not a number"), r.text
    r = server.infer("prep", prep_request([{**good, "plan": "gold"}]))
    assert r.status_code == 400
    assert "row 0: input 'plan': 'gold' is not one of the one_hot categories (basic, pro, team)" in error_of(r)
    assert outputs(server.infer("prep", prep_request([good])))["f"]["data"] == [1, 0, 1, 0, 7]


def test_berth_batch_on_the_transform_equals_the_online_answer(server, repo, tmp_path):
    rows = [{"age": 50.0, "plan": "pro", "income": "7", "tag": "a"},
            {"age": 30.0, "plan": "", "income": "", "tag": "b"},
            {"age": 45.5, "plan": "team", "income": "1e3", "tag": "c"}]
    online = outputs(server.infer("prep", prep_request(rows)))
    inp = tmp_path / "in.csv"
    pd.DataFrame(rows).to_csv(inp, index=False)
    out = tmp_path / "out.csv"
    batch(repo / "prep", inp, out)
    got = pd.read_csv(out, keep_default_na=False)
    assert list(got.columns) == [f"f_{i}" for i in range(5)] + ["tag_out"]
    np.testing.assert_allclose(got[[f"f_{i}" for i in range(5)]].to_numpy(np.float32).ravel(),
                               np.array(online["f"]["data"], np.float32), rtol=0, atol=1e-6)
    assert got["tag_out"].tolist() == online["tag_out"]["data"]


def test_a_broken_transform_reports_why_and_the_rest_serve(start_server, tmp_path):
    r = tmp_path / "models"
    write_model(r, "prep", PREP)
    write_model(r, "broken", PREP.replace("columns: [age, plan, income]", "columns: [age, plan, incom]"))
    s = start_server(r, wait_ready=False)
    index = s.post("/v2/repository/index", json={}).json()
    states = {m["name"]: m for m in index}
    assert states["prep"]["state"] == "READY"
    assert states["broken"]["state"] == "UNAVAILABLE"
    assert "outputs[0] 'f'.columns: 'incom' is not an input of this transform" in states["broken"]["reason"]
    assert str(tmp_path) not in states["broken"]["reason"]


@pytest.mark.xgboost
def test_pipeline_transform_then_xgboost_equals_berth_batch_and_python(start_server, tmp_path):
    """The churn model's missing support_calls filled by a transform step online, and by model.yaml
    transforms in `berth batch`: the same scores, equal to Python xgboost on pandas' fillna."""
    import xgboost as xgb
    r = tmp_path / "models"
    churn = r / "churn"
    shutil.copytree(EXAMPLES / "churn", churn)
    prep = "kind: transform\nmax_batch_size: 64\ninputs:\n" + "".join(
        f"  - {{name: {f}, datatype: BYTES, shape: [1]}}\n" for f in FEATURES) + (
        "outputs:\n"
        f"  - {{name: features, datatype: FP32, shape: [4], columns: [{', '.join(FEATURES)}]}}\n"
        "transforms:\n  fill_missing: {support_calls: \"0\"}\n")
    write_model(r, "churn_prep", prep)
    pipeline = "kind: pipeline\nmax_batch_size: 64\ninputs:\n" + "".join(
        f"  - {{name: {f}, datatype: BYTES, shape: [1]}}\n" for f in FEATURES) + (
        "outputs:\n  - {name: churn_probability, from: score.churn_probability}\n"
        "steps:\n"
        "  - name: prep\n    model: churn_prep\n    inputs: {"
        + ", ".join(f"{f}: $in.{f}" for f in FEATURES) + "}\n"
        "  - {name: score, model: churn, inputs: {features: prep.features}}\n")
    write_model(r, "churn_online", pipeline)
    df = churn_rows(200, seed=5)
    inp = tmp_path / "customers.csv"
    df.to_csv(inp, index=False)
    with open(inp, newline="") as f:
        rows = list(csv.DictReader(f))  # the CSV's text, as a client holding it would send it
    assert sum(row["support_calls"] == "" for row in rows) > 5

    s = start_server(r)
    online = []
    for start in range(0, len(rows), 64):
        part = rows[start:start + 64]
        body = [{"name": f, "datatype": "BYTES", "shape": [len(part), 1], "data": [row[f] for row in part]}
                for f in FEATURES]
        online += outputs(s.infer("churn_online", body))["churn_probability"]["data"]

    filled = tmp_path / "churn_filled"
    shutil.copytree(EXAMPLES / "churn", filled)
    (filled / "model.yaml").write_text((EXAMPLES / "churn" / "model.yaml").read_text() +
                                       "transforms:\n  fill_missing: {support_calls: \"0\"}\n")
    out = tmp_path / "scores.csv"
    batch(filled, inp, out)
    offline = pd.read_csv(out)["churn_probability"].to_numpy()

    booster = xgb.Booster()
    booster.load_model(str(EXAMPLES / "churn" / "1" / "model.json"))
    want = booster.predict(xgb.DMatrix(df[FEATURES].fillna({"support_calls": 0}).to_numpy(np.float32)))
    np.testing.assert_allclose(np.array(online), want, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.array(online), offline, rtol=0, atol=1e-6)
