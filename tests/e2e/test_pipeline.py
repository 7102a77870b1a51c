"""Pipelines (`kind: pipeline`): models whose steps are other models of the
repository, served as one model. Identity models make every answer
predictable (output i is input i); the TorchScript test compares a pipeline
around the example MLP with the MLP called directly, and with Python torch."""
import concurrent.futures
import json
import threading
import time

import numpy as np
import pytest

import grpc_client
from conftest import EXAMPLES, identity_config, write_model

X = [("x", "FP32", [-1])]


def pipeline_yaml(steps, outputs, inputs=(("x", "FP32", [-1]),), mbs=8, optional=(), extra=""):
    def inp(n, d, s):
        return f"  - {{name: {n}, datatype: {d}, shape: {list(s)}" + (", optional: true" if n in optional else "") + "}"
    lines = ["kind: pipeline", f"max_batch_size: {mbs}", "inputs:", *[inp(*i) for i in inputs], "outputs:"]
    for o in outputs:
        lines.append("  - " + json.dumps(o))
    lines.append("steps:")
    for s in steps:
        lines.append("  - " + json.dumps(s))
    return "\n".join(lines) + "\n" + extra


def stats(server, model):
    r = server.get(f"/v2/models/{model}/stats")
    assert r.status_code == 200, r.text
    return r.json()["model_stats"][0]


def infer(server, model, x, outputs=None, **inputs):
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [len(x), 1] if isinstance(x[0], list) else [1, len(x)],
                        "data": x}]}
    for name, v in inputs.items():
        body["inputs"].append({"name": name, "datatype": "FP32", "shape": [1, len(v)], "data": v})
    if outputs:
        body["outputs"] = [{"name": o} for o in outputs]
    return server.post(f"/v2/models/{model}/infer", json=body)


def out(resp, name):
    for o in resp.json()["outputs"]:
        if o["name"] == name:
            return o["data"]
    raise KeyError(name)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from conftest import Server
    repo = tmp_path_factory.mktemp("pipelines") / "models"
    repo.mkdir()
    write_model(repo, "a", identity_config(X, mbs=8))
    write_model(repo, "b", identity_config(X, mbs=8))
    write_model(repo, "two", identity_config([("x", "FP32", [-1]), ("y", "FP32", [-1])], mbs=8))
    write_model(repo, "fail", identity_config(X, mbs=8, extra="warmup: {requests: 0}\n", fail="true"))
    write_model(repo, "fixed", identity_config([("x", "FP32", [3])], mbs=8))
    write_model(repo, "slow", identity_config(X, mbs=8, delay_ms="300"))
    write_model(repo, "batcher", identity_config(X, mbs=8, instances=1,
                                                 extra="dynamic_batching: {max_queue_delay_us: 2000}\n"))
    # Pipelines (loaded after the models they run, whatever their names).
    write_model(repo, "seq", pipeline_yaml(
        [{"name": "first", "model": "a", "inputs": {"x": "$in.x"}},
         {"name": "second", "model": "b", "inputs": {"x": "first.out_x"}}],
        [{"name": "y", "from": "second.out_x"}]))
    write_model(repo, "fan", pipeline_yaml(
        [{"name": "left", "model": "a", "inputs": {"x": "$in.x"}},
         {"name": "right", "model": "b", "inputs": {"x": "$in.x"}},
         {"name": "join", "model": "two", "inputs": {"x": "left.out_x", "y": "right.out_x"}}],
        [{"name": "p", "from": "join.out_x"}, {"name": "q", "from": "join.out_y"}, {"name": "r", "from": "left.out_x"}]))
    write_model(repo, "fallback", pipeline_yaml(
        [{"name": "flaky", "model": "fail", "inputs": {"x": "$in.x"}, "on_error": "skip"},
         {"name": "steady", "model": "a", "inputs": {"x": "$in.x"}}],
        [{"name": "y", "from": "flaky.out_x ?? steady.out_x"}]))
    write_model(repo, "opt", pipeline_yaml(
        [{"name": "main", "model": "a", "inputs": {"x": "$in.x"}},
         {"name": "extra", "model": "b", "inputs": {"x": "$in.note"}}],
        [{"name": "y", "from": "main.out_x"}, {"name": "n", "from": "extra.out_x", "optional": True}],
        inputs=(("x", "FP32", [-1]), ("note", "FP32", [-1])), optional=("note",)))
    write_model(repo, "nest", pipeline_yaml(
        [{"name": "inner", "model": "seq", "inputs": {"x": "$in.x"}}], [{"name": "z", "from": "inner.y"}]))
    write_model(repo, "failing", pipeline_yaml(
        [{"name": "broken", "model": "fail", "inputs": {"x": "$in.x"}}], [{"name": "y", "from": "broken.out_x"}],
        extra="warmup: {requests: 0}\n"))
    write_model(repo, "strict", pipeline_yaml(
        [{"name": "three", "model": "fixed", "inputs": {"x": "$in.x"}}], [{"name": "y", "from": "three.out_x"}],
        extra="warmup: {requests: 0}\n"))
    write_model(repo, "bounded", pipeline_yaml(
        [{"name": "wait", "model": "slow", "inputs": {"x": "$in.x"}}], [{"name": "y", "from": "wait.out_x"}],
        extra="limits: {max_inflight: 2, timeout_ms: 5000}\nwarmup: {requests: 0}\n"))
    write_model(repo, "hurried", pipeline_yaml(
        [{"name": "wait", "model": "slow", "inputs": {"x": "$in.x"}}], [{"name": "y", "from": "wait.out_x"}],
        extra="limits: {timeout_ms: 100}\nwarmup: {requests: 0}\n"))
    write_model(repo, "merge", pipeline_yaml(
        [{"name": "b", "model": "batcher", "inputs": {"x": "$in.x"}}], [{"name": "y", "from": "b.out_x"}]))
    write_model(repo, "gate", pipeline_yaml(
        [{"name": "first", "model": "a", "inputs": {"x": "$in.x"}},
         {"name": "second", "model": "b", "inputs": {"x": "$in.x"}, "when": "any(first.out_x > 0.9)"},
         {"name": "third", "model": "two", "inputs": {"x": "$in.x", "y": "$in.x"},
          "when": "0 <= $in.x and not (all(first.out_x >= 5) or $in.x == 3)"}],
        [{"name": "y", "from": "second.out_x ?? first.out_x"},
         {"name": "fired", "from": "second.out_x", "optional": True},
         {"name": "third", "from": "third.out_x", "optional": True}]))
    s = Server(repo)
    yield s
    s.stop()


@pytest.mark.parametrize("x,fired,third", [
    ([0.5], False, True), ([0.95], True, True), ([0.1, 0.99], True, True), ([3.0], True, False),
    ([-1.0, 1.0], True, False), ([5.0, 6.0], True, False),
])
def test_when_conditions(server, x, fired, third):
    before = stats(server, "b")["inference_count"]
    r = infer(server, "gate", x)
    assert r.status_code == 200, r.text
    names = [o["name"] for o in r.json()["outputs"]]
    assert out(r, "y") == x
    assert ("fired" in names) == fired and ("third" in names) == third, names
    assert stats(server, "b")["inference_count"] == before + (1 if fired else 0)  # skipped: never ran


def test_sequence_runs_both_steps_in_order(server):
    before_a, before_b = stats(server, "a")["inference_count"], stats(server, "b")["inference_count"]
    r = infer(server, "seq", [1.5, -2.0, 3.0])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_name"] == "seq" and [o["name"] for o in body["outputs"]] == ["y"]
    assert out(r, "y") == [1.5, -2.0, 3.0] and body["outputs"][0]["shape"] == [1, 3]
    assert stats(server, "a")["inference_count"] == before_a + 1
    assert stats(server, "b")["inference_count"] == before_b + 1


def test_metadata_types_outputs_from_the_steps(server):
    m = server.get("/v2/models/fan").json()
    assert m["platform"] == "pipeline"
    assert [o["name"] for o in m["outputs"]] == ["p", "q", "r"]
    assert all(o["datatype"] == "FP32" and o["shape"] == [-1, -1] for o in m["outputs"])
    assert server.get("/v2/models/fan/ready").status_code == 200


def test_fan_out_and_join(server):
    r = infer(server, "fan", [[1.0], [2.0]])
    assert r.status_code == 200, r.text
    assert out(r, "p") == out(r, "q") == out(r, "r") == [1.0, 2.0]


def test_only_the_steps_the_requested_outputs_need_run(server):
    before = {m: stats(server, m)["inference_count"] for m in ("a", "b", "two")}
    r = infer(server, "fan", [4.0], outputs=["r"])
    assert r.status_code == 200, r.text
    assert [o["name"] for o in r.json()["outputs"]] == ["r"]
    after = {m: stats(server, m)["inference_count"] for m in ("a", "b", "two")}
    assert after == {"a": before["a"] + 1, "b": before["b"], "two": before["two"]}


def test_on_error_skip_and_first_present_alternative(server):
    before = stats(server, "fail")["inference_stats"]["fail"]["count"]
    r = infer(server, "fallback", [7.0, 8.0])
    assert r.status_code == 200, r.text
    assert out(r, "y") == [7.0, 8.0]
    assert stats(server, "fail")["inference_stats"]["fail"]["count"] == before + 1  # it did run, and failed


def test_optional_input_skips_the_steps_that_read_it(server):
    r = infer(server, "opt", [1.0])
    assert r.status_code == 200, r.text
    assert [o["name"] for o in r.json()["outputs"]] == ["y"]
    r = infer(server, "opt", [1.0], note=[9.0, 9.5])
    assert r.status_code == 200, r.text
    assert out(r, "y") == [1.0] and out(r, "n") == [9.0, 9.5]


def test_nested_pipeline(server):
    r = infer(server, "nest", [0.25])
    assert r.status_code == 200, r.text
    assert out(r, "z") == [0.25]


def test_a_failing_step_fails_the_request_naming_the_step(server):
    r = infer(server, "failing", [1.0])
    assert r.status_code == 500
    assert r.json()["error"].startswith("step 'broken' (model 'fail'): ")


def test_a_client_error_inside_a_step_stays_a_client_error(server):
    r = infer(server, "strict", [1.0, 2.0])  # the step model takes 3 values per row
    assert r.status_code == 400
    err = r.json()["error"]
    assert err.startswith("step 'three' (model 'fixed'): ") and "shape" in err
    assert infer(server, "strict", [1.0, 2.0, 3.0]).status_code == 200


def test_pipeline_inputs_are_validated_like_a_model(server):
    r = server.post("/v2/models/seq/infer", json={"inputs": [{"name": "x", "datatype": "INT32", "shape": [1, 1],
                                                              "data": [1]}]})
    assert r.status_code == 400 and "datatype INT32" in r.json()["error"]
    r = server.post("/v2/models/seq/infer", json={"inputs": []})
    assert r.status_code == 400 and "missing input 'x'" in r.json()["error"]


def test_batched_requests_keep_their_rows(server):
    rows = [[float(i)] for i in range(8)]
    r = infer(server, "fan", rows)
    assert r.status_code == 200 and out(r, "p") == [float(i) for i in range(8)]
    assert r.json()["outputs"][0]["shape"] == [8, 1]


def test_max_inflight_answers_503_with_retry_after(server):
    def one(_):
        return infer(server, "bounded", [1.0])
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(one, range(6)))
    codes = sorted(a.status_code for a in answers)
    assert codes.count(200) >= 2 and codes.count(503) >= 1, codes
    refused = next(a for a in answers if a.status_code == 503)
    assert refused.headers.get("Retry-After") == "1" and "limits.max_inflight" in refused.json()["error"]


def test_the_pipeline_deadline_answers_504_naming_the_running_step(server):
    t0 = time.time()
    r = infer(server, "hurried", [1.0])
    took = time.time() - t0
    assert r.status_code == 504, r.text
    assert r.json()["error"].startswith("step 'wait' (model 'slow')") and "limits.timeout_ms 100" in r.json()["error"]
    assert took < 0.28, took  # the step takes 300 ms; the answer comes at the deadline
    # The client's own timeout (parameters.timeout, µs) bounds it too.
    r = server.post("/v2/models/bounded/infer", json={
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 1], "data": [1]}], "parameters": {"timeout": 50000}})
    assert r.status_code == 504


def test_concurrent_pipeline_and_direct_traffic_get_their_own_answers(server):
    before = stats(server, "batcher")
    errors = []

    def one(i):
        model = "merge" if i % 2 else "batcher"
        r = infer(server, model, [float(i), float(-i)])
        if r.status_code != 200:
            errors.append(r.text)
            return
        name = "y" if model == "merge" else "out_x"
        if out(r, name) != [float(i), float(-i)]:
            errors.append(f"{i}: {r.text}")

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        list(pool.map(one, range(1000)))
    assert not errors, errors[:3]
    after = stats(server, "batcher")
    assert after["inference_count"] - before["inference_count"] == 1000
    # The step model's batcher merged pipeline and direct requests: fewer executions than requests.
    assert after["execution_count"] - before["execution_count"] < 1000


def test_grpc_reaches_pipelines(server):
    pb = grpc_client.triton()[0]
    client = grpc_client.Client(server.grpc_target)
    try:
        req = pb.ModelInferRequest(model_name="fan")
        req.inputs.add(name="x", datatype="FP32", shape=[1, 2])
        req.raw_input_contents.append(np.array([[3, 4]], dtype=np.float32).tobytes())
        req.outputs.add(name="q")
        res = client.call("ModelInfer", req)
        assert [o.name for o in res.outputs] == ["q"]
        assert np.frombuffer(res.raw_output_contents[0], dtype=np.float32).tolist() == [3.0, 4.0]
    finally:
        client.close()


BAD = {
    "unknown_step": (pipeline_yaml([{"name": "s", "model": "a", "inputs": {"x": "nope.out_x"}}],
                                   [{"name": "y", "from": "s.out_x"}]),
                     "steps[0].inputs.x: unknown step 'nope'"),
    "unknown_input": (pipeline_yaml([{"name": "s", "model": "a", "inputs": {"x": "$in.w"}}],
                                    [{"name": "y", "from": "s.out_x"}]),
                      "steps[0].inputs.x: the pipeline has no input 'w'"),
    "cycle": (pipeline_yaml([{"name": "s", "model": "a", "inputs": {"x": "t.out_x"}},
                             {"name": "t", "model": "b", "inputs": {"x": "s.out_x"}}],
                            [{"name": "y", "from": "t.out_x"}]),
              "depends on itself (a cycle through its inputs)"),
    "no_such_model": (pipeline_yaml([{"name": "s", "model": "ghost", "inputs": {"x": "$in.x"}}],
                                    [{"name": "y", "from": "s.out_x"}]),
                      "steps.s.model: model 'ghost' does not serve"),
    "no_such_step_input": (pipeline_yaml([{"name": "s", "model": "a", "inputs": {"w": "$in.x"}}],
                                         [{"name": "y", "from": "s.out_x"}]),
                           "steps.s.inputs.w: model 'a' has no input 'w' (it has: x)"),
    "unwired": (pipeline_yaml([{"name": "s", "model": "two", "inputs": {"x": "$in.x"}}],
                              [{"name": "y", "from": "s.out_x"}]),
                "steps.s.inputs: model 'two' input 'y' is not wired"),
    "dtype": (pipeline_yaml([{"name": "s", "model": "a", "inputs": {"x": "$in.x"}}],
                            [{"name": "y", "from": "s.out_x"}], inputs=(("x", "INT32", [-1]),)),
              "steps.s.inputs.x: $in.x is INT32, model 'a' takes FP32"),
    "shape": (pipeline_yaml([{"name": "s", "model": "fixed", "inputs": {"x": "$in.x"}}],
                            [{"name": "y", "from": "s.out_x"}], inputs=(("x", "FP32", [4]),)),
              "steps.s.inputs.x: $in.x has shape [-1,4], model 'fixed' takes [-1,3]"),
    "maybe_absent": (pipeline_yaml([{"name": "s", "model": "a", "inputs": {"x": "$in.x"}, "on_error": "skip"}],
                                   [{"name": "y", "from": "s.out_x"}]),
                     "outputs[0]: output 'y' may be absent (step 's' has on_error: skip)"),
    "no_output": (pipeline_yaml([{"name": "s", "model": "a", "inputs": {"x": "$in.x"}}],
                                [{"name": "y", "from": "s.probs"}]),
                  "outputs[0].from: step 's' has no output 'probs'"),
    "batch": (pipeline_yaml([{"name": "s", "model": "a", "inputs": {"x": "$in.x"}}],
                            [{"name": "y", "from": "s.out_x"}], mbs=64),
              "model 'a' takes batches of at most 8 rows, the pipeline's max_batch_size is 64"),
    "bad_key": (pipeline_yaml([{"name": "s", "model": "a", "inputs": {"x": "$in.x"}, "retry": 3}],
                              [{"name": "y", "from": "s.out_x"}]),
                "steps[0].retry: unknown key"),
    "bad_when": (pipeline_yaml([{"name": "s", "model": "a", "inputs": {"x": "$in.x"}, "when": "any($in.x >)"}],
                               [{"name": "y", "from": "s.out_x", "optional": True}]),
                 "steps[0].when: at character 12: expected a number"),
    "when_unknown_tensor": (pipeline_yaml([{"name": "s", "model": "a", "inputs": {"x": "$in.x"},
                                            "when": "$in.nope > 1"}],
                                          [{"name": "y", "from": "s.out_x", "optional": True}]),
                            "steps[0].when: the pipeline has no input 'nope'"),
    "when_not_optional": (pipeline_yaml([{"name": "s", "model": "a", "inputs": {"x": "$in.x"}, "when": "$in.x > 1"}],
                                        [{"name": "y", "from": "s.out_x"}]),
                          "output 'y' may be absent (step 's' runs only when its condition holds)"),
    "bad_ref": (pipeline_yaml([{"name": "s", "model": "a", "inputs": {"x": "just-a-name"}}],
                              [{"name": "y", "from": "s.out_x"}]),
                "steps[0].inputs.x: expected a tensor reference, $in.NAME or STEP.OUTPUT"),
}


def test_load_errors_name_the_file_the_step_and_the_key(tmp_path, start_server):
    repo = tmp_path / "models"
    write_model(repo, "a", identity_config(X, mbs=8))
    write_model(repo, "b", identity_config(X, mbs=8))
    write_model(repo, "two", identity_config([("x", "FP32", [-1]), ("y", "FP32", [-1])], mbs=8))
    write_model(repo, "fixed", identity_config([("x", "FP32", [3])], mbs=8))
    for name, (yaml, _) in BAD.items():
        write_model(repo, "p_" + name, yaml)
    server = start_server(repo)
    index = {e["name"]: e for e in server.post("/v2/repository/index", json={}).json()}
    for name, (_, message) in BAD.items():
        e = index["p_" + name]
        assert e["state"] == "UNAVAILABLE", e
        assert message in e["reason"], (name, e["reason"])
        assert f"p_{name}/model.yaml: " in e["reason"], e["reason"]  # relative: no server path
        assert str(tmp_path) not in e["reason"]
    assert index["a"]["state"] == "READY"
    assert server.alive()


@pytest.mark.torch
def test_pipeline_around_the_mlp_equals_the_mlp(tmp_path, start_server):
    import shutil
    import torch
    repo = tmp_path / "models"
    repo.mkdir()
    shutil.copytree(EXAMPLES / "mlp", repo / "mlp")
    write_model(repo, "wrapped", pipeline_yaml(
        [{"name": "net", "model": "mlp", "inputs": {"x": "$in.x"}}], [{"name": "probs", "from": "net.probs"}],
        inputs=(("x", "FP32", [16]),), mbs=64))
    server = start_server(repo)
    x = np.random.default_rng(3).standard_normal((5, 16)).astype(np.float32)
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [5, 16], "data": x.flatten().tolist()}]}
    direct = server.post("/v2/models/mlp/infer", json=body).json()["outputs"][0]["data"]
    via = server.post("/v2/models/wrapped/infer", json=body)
    assert via.status_code == 200, via.text
    assert via.json()["outputs"][0]["data"] == direct
    model = torch.jit.load(str(EXAMPLES / "mlp" / "1" / "model.pt"))
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy().flatten()
    np.testing.assert_allclose(via.json()["outputs"][0]["data"], expected, rtol=1e-5, atol=1e-6)


def step_counts(server, model):
    """{(step, outcome): count} from /metrics, read with prometheus_client's parser."""
    import requests
    from prometheus_client.parser import text_string_to_metric_families
    text = requests.get(server.metrics_url, timeout=10).text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "berth_pipeline_step_total" and s.labels["model"] == model:
                out[(s.labels["step"], s.labels["outcome"])] = s.value
            if s.name == "berth_pipeline_step_duration_seconds_count" and s.labels["model"] == model:
                out[(s.labels["step"], "timed")] = s.value
    return out


def test_per_step_metrics(server):
    before = step_counts(server, "gate")
    assert infer(server, "gate", [0.5]).status_code == 200
    after = step_counts(server, "gate")
    delta = {k: after[k] - before.get(k, 0) for k in after}
    assert delta[("first", "ok")] == 1 and delta[("first", "timed")] == 1
    assert delta[("second", "skipped")] == 1 and delta[("second", "timed")] == 0
    assert delta[("third", "ok")] == 1
    before = step_counts(server, "hurried")
    assert infer(server, "hurried", [1.0]).status_code == 504
    after = step_counts(server, "hurried")
    assert after[("wait", "timeout")] - before.get(("wait", "timeout"), 0) == 1
    before = step_counts(server, "fallback")
    assert infer(server, "fallback", [1.0]).status_code == 200
    after = step_counts(server, "fallback")
    assert after[("flaky", "error")] - before.get(("flaky", "error"), 0) == 1


def test_berth_batch_runs_a_pipeline_like_its_models(tmp_path):
    import subprocess
    import pandas as pd
    from conftest import BERTH_BIN
    repo = tmp_path / "models"
    step = ("backend: identity\nmax_batch_size: 8\n"
            "inputs: [{name: x, datatype: FP32, shape: [3], columns: [p, q, r]}]\n"
            "outputs: [{name: out_x, datatype: FP32, shape: [3]}]\n")
    write_model(repo, "a", step)
    write_model(repo, "b", step)
    pipe = pipeline_yaml([{"name": "s1", "model": "a", "inputs": {"x": "$in.x"}},
                          {"name": "s2", "model": "b", "inputs": {"x": "s1.out_x"}}],
                         [{"name": "out_x", "from": "s2.out_x"}], inputs=(("x", "FP32", [3]),))
    write_model(repo, "pipe", pipe.replace("shape: [3]}", "shape: [3], columns: [p, q, r]}"))
    rows = ["id,p,q,r"] + [f"{i},{i * 0.5},{-i},{i * i}" for i in range(40)]
    rows[7] = "6,1.0,abc,2"  # rejected by both, with its line number
    data = tmp_path / "in.csv"
    data.write_text("\n".join(rows) + "\n")

    def run(model, name):
        out = tmp_path / name
        p = subprocess.run([str(BERTH_BIN), "batch", str(repo / model), "--in", str(data), "--out", str(out),
                            "--keep", "id", "--progress", "none", "--max-rejects", "1"],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        return pd.read_csv(out), pd.read_csv(str(out) + ".rejects.csv")

    via_pipe, rejects_pipe = run("pipe", "pipe.csv")
    direct, rejects_direct = run("a", "direct.csv")
    assert len(via_pipe) == 39 and list(via_pipe.columns) == list(direct.columns)
    pd.testing.assert_frame_equal(via_pipe, direct)
    pd.testing.assert_frame_equal(rejects_pipe, rejects_direct)
    src = pd.read_csv(data, dtype=str)
    src = src[src["q"] != "abc"].astype(float).reset_index(drop=True)
    assert (via_pipe.iloc[:, 1:].to_numpy() == src[["p", "q", "r"]].to_numpy()).all()


def test_each_model_yaml_is_opened_once_per_load_pipelines_included(tmp_path):
    """The inference-core rule, with a pipeline whose load order is read from its model.yaml too."""
    import shutil
    import subprocess
    from conftest import BERTH_BIN, free_port
    if shutil.which("strace") is None:
        pytest.skip("needs strace")
    repo = tmp_path / "models"
    write_model(repo, "zstep", identity_config(X, mbs=8))  # sorts after the pipeline that runs it
    write_model(repo, "apipe", pipeline_yaml([{"name": "s", "model": "zstep", "inputs": {"x": "$in.x"}}],
                                             [{"name": "y", "from": "s.out_x"}]))
    trace = tmp_path / "trace"
    port = free_port()
    proc = subprocess.Popen(["strace", "-f", "-e", "trace=openat", "-o", str(trace), str(BERTH_BIN), "serve",
                             "--model-repository", str(repo), "--host", "127.0.0.1", "--http-port", str(port),
                             "--grpc-port", "0", "--metrics-port", "0"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        import requests
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)
        r = requests.post(f"http://127.0.0.1:{port}/v2/models/apipe/infer", timeout=10, json={
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 1], "data": [2.0]}]})
        assert r.status_code == 200, r.text
    finally:
        # SIGTERM to berth itself (strace's child); strace exits with it.
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        for pid in children:
            subprocess.run(["kill", "-TERM", pid])
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    opens = [line for line in trace.read_text().splitlines() if "model.yaml" in line and "openat" in line]
    assert sum("zstep/model.yaml" in line for line in opens) == 1, opens
    assert sum("apipe/model.yaml" in line for line in opens) == 1, opens


def trace_of(params):
    return {k: v for k, v in params.items() if k.startswith("trace.")}


def test_trace_gives_per_step_timings(server):
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 1], "data": [0.5]}],
            "parameters": {"trace": True}}
    r = server.post("/v2/models/gate/infer", json=body)
    assert r.status_code == 200, r.text
    t = trace_of(r.json()["parameters"])
    # `first` ran; `second`'s condition was false: skipped, no timings; `third` ran after `first`.
    assert t["trace.first.outcome"] == "ok" and t["trace.third.outcome"] == "ok"
    assert t["trace.second.outcome"] == "skipped" and "trace.second.duration_us" not in t
    for step in ("first", "third"):
        assert t[f"trace.{step}.start_us"] >= 0 and t[f"trace.{step}.duration_us"] >= 0
        assert t[f"trace.{step}.start_us"] + t[f"trace.{step}.duration_us"] <= t["trace.total_us"]
    assert t["trace.third.start_us"] >= t["trace.first.start_us"] + t["trace.first.duration_us"]
    # Without the parameter there is none; a wrong type is a 400 naming it.
    assert "parameters" not in infer(server, "gate", [0.5]).json()
    body["parameters"]["trace"] = "yes"
    r = server.post("/v2/models/gate/infer", json=body)
    assert r.status_code == 400 and "parameters.trace" in r.json()["error"], r.text


def test_trace_of_a_skipped_error_and_of_a_nested_pipeline(server):
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 1], "data": [2.0]}],
            "parameters": {"trace": True}}
    t = trace_of(server.post("/v2/models/fallback/infer", json=body).json()["parameters"])
    assert t["trace.flaky.outcome"] == "error" and t["trace.steady.outcome"] == "ok", t
    t = trace_of(server.post("/v2/models/nest/infer", json=body).json()["parameters"])
    # The inner pipeline's own steps, under the outer step's name.
    assert t["trace.inner.outcome"] == "ok"
    assert t["trace.inner.first.outcome"] == "ok" and t["trace.inner.second.outcome"] == "ok", t
    assert t["trace.inner.total_us"] <= t["trace.inner.duration_us"] <= t["trace.total_us"]


def test_trace_over_grpc(server):
    client = grpc_client.Client(server.grpc_target)
    try:
        req = client.infer_request("seq", [("x", "FP32", np.array([[1.0, 2.0]], dtype=np.float32))], trace=True)
        res = client.call("ModelInfer", req)
        params = {k: (v.int64_param if v.WhichOneof("parameter_choice") == "int64_param" else v.string_param)
                  for k, v in res.parameters.items()}
        assert params["trace.first.outcome"] == "ok" and params["trace.second.outcome"] == "ok", params
        assert params["trace.total_us"] >= params["trace.second.duration_us"] >= 0
    finally:
        client.close()
