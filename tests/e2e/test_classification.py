"""Triton's classification extension: an output requested with parameters.classification = k comes back as
its top k classes per row, BYTES "<value>:<index>[:<label>]", over HTTP (JSON and binary) and gRPC, for models
and pipelines. The oracle is the extension's documented rule (highest value first; C's %f; the label of the
index from the output's labels file), written here in Python, and the documented example
([1, 5, 10, 4] -> indices 2, 1)."""
import numpy as np
import pytest

from conftest import Server, error_of, write_model
from grpc_client import Client, deserialize_bytes
from test_pipeline import pipeline_yaml
from test_image_step import settled
from test_model_control import wait_for
from test_protocol import parse_infer_response, wire_to_bytes

LABELS = ["cat", "dog", "bird", "fish", "ünïcode label"]


def scores_model(dtype="FP32", labels="labels.txt", classes=5):
    lab = f", labels: {labels}" if labels else ""
    return (f"backend: identity\nmax_batch_size: 8\ninputs:\n  - {{name: x, datatype: {dtype}, shape: [{classes}]}}\n"
            f"outputs:\n  - {{name: probs, datatype: {dtype}, shape: [{classes}]{lab}}}\n")


def expected(rows, k, labels=LABELS, fmt=lambda v: "%f" % v):
    out = []
    for row in rows:
        order = sorted(range(len(row)), key=lambda i: (-row[i], i))[:k]
        out.append([f"{fmt(row[i])}:{i}" + (f":{labels[i]}" if labels and i < len(labels) else "") for i in order])
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    repo = tmp_path_factory.mktemp("classification") / "models"
    files = {"labels.txt": ("\n".join(LABELS) + "\n").encode()}
    write_model(repo, "scores", scores_model(), files=files)
    write_model(repo, "ints", scores_model("INT32", labels=None))
    write_model(repo, "crlf", scores_model(), files={"labels.txt": "\r\n".join(LABELS).encode()})
    write_model(repo, "text", "backend: identity\nmax_batch_size: 8\ninputs: [{name: t, datatype: BYTES, shape: [1]}]\n"
                              "outputs: [{name: out_t, datatype: BYTES, shape: [1]}]\n")
    write_model(repo, "pipe", pipeline_yaml([{"name": "s", "model": "scores", "inputs": {"x": "$in.x"}}],
                                            [{"name": "probs", "from": "s.probs"}], inputs=(("x", "FP32", [5]),)))
    s = Server(repo)
    yield s
    s.stop()


def infer(server, model, rows, k, dtype="FP32", binary=False):
    params = {"classification": k, **({"binary_data": True} if binary else {})}
    return server.infer(model, [{"name": "x", "datatype": dtype, "shape": [len(rows), len(rows[0])],
                                 "data": [v for r in rows for v in r]}],
                        outputs=[{"name": "probs", "parameters": params}])


def test_the_documented_example(server):
    assert "classification" in server.get("/v2").json()["extensions"]
    r = infer(server, "ints", [[1, 5, 10, 4, 0]], 2, dtype="INT32")
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    assert out["datatype"] == "BYTES" and out["shape"] == [1, 2]
    assert out["data"] == ["10:2", "5:1"]


@pytest.mark.parametrize("k", [1, 3, 5, 9])
def test_top_k_with_labels_per_row(server, k):
    rows = [[0.1, 0.7, 0.05, 0.15, 0.0], [0.3, 0.3, 0.4, -1.5, 0.3], [2.5e-7, 1e6, -3.0, 0.5, 0.125]]
    r = infer(server, "scores", rows, k)
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    want = expected(np.asarray(rows, np.float32).tolist(), k)
    assert out["shape"] == [3, min(k, 5)]
    assert np.asarray(out["data"]).reshape(out["shape"]).tolist() == want
    # The same in binary form, and from a pipeline's output.
    header, raw = parse_infer_response(infer(server, "scores", rows, k, binary=True))
    assert [b.decode() for b in wire_to_bytes(raw["probs"])] == [e for row in want for e in row]
    p = infer(server, "pipe", rows, k)
    assert p.status_code == 200, p.text
    assert p.json()["outputs"][0]["data"] == [e for row in expected(np.asarray(rows, np.float32).tolist(), k, None)
                                              for e in row]


def test_labels_file_with_crlf_and_no_final_newline(server):
    r = infer(server, "crlf", [[0, 0, 0, 0, 1]], 1)
    assert r.json()["outputs"][0]["data"] == ["1.000000:4:ünïcode label"]


def test_zero_means_the_tensor_itself_and_bad_values_are_400(server):
    r = infer(server, "scores", [[1, 2, 3, 4, 5]], 0)
    assert r.json()["outputs"][0]["data"] == [1, 2, 3, 4, 5]
    r = infer(server, "scores", [[1, 2, 3, 4, 5]], -1)
    assert r.status_code == 400
    assert error_of(r) == ("outputs[0].parameters.classification: expected a class count (a non-negative integer)")
    r = server.infer("text", [{"name": "t", "datatype": "BYTES", "shape": [1, 1], "data": ["a"]}],
                     outputs=[{"name": "out_t", "parameters": {"classification": 1}}])
    assert r.status_code == 400
    assert error_of(r).endswith("outputs[0]: output 'out_t' is BYTES: parameters.classification needs numeric "
                                "classes")


def test_over_grpc(server):
    c = Client(server.grpc_target)
    try:
        req = c.infer_request("scores", [("x", "FP32", np.asarray([[0.2, 0.1, 0.9, 0.3, 0.0]], np.float32))])
        req.outputs.add(name="probs").parameters["classification"].int64_param = 2
        r = c.call("ModelInfer", req)
        assert r.outputs[0].datatype == "BYTES" and list(r.outputs[0].shape) == [1, 2]
        got = [b.decode() for b in deserialize_bytes(r.raw_output_contents[0])]
        assert got == expected([np.asarray([0.2, 0.1, 0.9, 0.3, 0.0], np.float32).tolist()], 2)[0]
    finally:
        c.close()


@pytest.mark.parametrize("setup,why", [
    (lambda d: None, "outputs[0].labels: 'labels.txt': "),
    (lambda d: (d / "labels.txt").write_text(""), "the file is empty (one label per line expected)"),
    (lambda d: (d / "labels.txt").write_text("a\nb\n"), "2 labels for 5 classes (the output's last dimension)"),
    (lambda d: (d / "labels.txt").symlink_to("/etc/passwd"), "resolves outside the model directory; refused"),
])
def test_labels_file_errors_fail_the_load(tmp_path, start_server, setup, why):
    repo = tmp_path / "models"
    d = write_model(repo, "bad", scores_model())
    setup(d)
    write_model(repo, "ok", scores_model(labels=None))
    s = start_server(repo, wait_ready=False)
    index = wait_for(lambda: settled(s, "bad", "ok"), timeout=20, what="both models loaded or failed")
    assert index["bad"]["state"] == "UNAVAILABLE", index
    assert why in index["bad"]["reason"], index["bad"]["reason"]
    assert "root:" not in index["bad"]["reason"]
