"""TensorFlow Serving's REST API (/v1) on berth's HTTP port, as TF Serving's
documentation specifies it (tensorflow.org/tfx/serving/api_rest): version
status, metadata, :predict in row and columnar format, b64 values, NaN and
Infinity tokens, {"error": ...} answers. Identity backend, plus the MLP
against Python torch.
"""
import base64
import gzip
import json
import math

import numpy as np
import pytest
import requests

from conftest import EXAMPLES, Server, error_of, identity_config, write_model


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    repo = tmp_path_factory.mktemp("tfs") / "models"
    repo.mkdir()
    write_model(repo, "vec", identity_config([("x", "FP32", [3])], mbs=128))
    write_model(repo, "multi", identity_config([("tag", "BYTES", [1]), ("signal", "INT64", [5]),
                                                ("sensor", "FP64", [2, 2])], mbs=8))
    write_model(repo, "img", identity_config([("image_bytes", "BYTES", [-1])], mbs=8))
    write_model(repo, "free", identity_config([("a", "INT32", [-1]), ("b", "INT32", [-1])]))
    write_model(repo, "two", identity_config([("x", "FP32", [2])], mbs=8), versions=(1, 2))
    s = Server(repo)
    yield s
    s.stop()


def predict(srv, model, body, version=None, **kw):
    path = f"/v1/models/{model}" + (f"/versions/{version}" if version else "") + ":predict"
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return srv.post(path, data=data, **kw)


def test_model_status(srv):
    r = srv.get("/v1/models/two")
    assert r.status_code == 200
    status = r.json()["model_version_status"]
    assert sorted(s["version"] for s in status) == ["2"]  # the latest version serves (version_policy latest 1)
    assert status[0] == {"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    one = srv.get("/v1/models/two/versions/2").json()["model_version_status"]
    assert [s["version"] for s in one] == ["2"]
    r = srv.get("/v1/models/nope")
    assert r.status_code == 404 and "nope" in error_of(r)
    r = srv.get("/v1/models/two/versions/9")
    assert r.status_code == 404 and "no version 9" in error_of(r)
    r = srv.get("/v1/models/two/labels/stable")
    assert r.status_code == 404 and "labels" in error_of(r)


def test_metadata(srv):
    m = srv.get("/v1/models/multi/metadata").json()
    assert m["model_spec"] == {"name": "multi", "signature_name": "", "version": "1"}
    sig = m["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sig["method_name"] == "tensorflow/serving/predict"
    assert sig["inputs"]["tag"]["dtype"] == "DT_STRING"
    assert sig["inputs"]["signal"]["dtype"] == "DT_INT64"
    assert sig["inputs"]["sensor"] == {"dtype": "DT_DOUBLE", "name": "sensor", "tensor_shape": {
        "dim": [{"size": "-1", "name": ""}, {"size": "2", "name": ""}, {"size": "2", "name": ""}],
        "unknown_rank": False}}
    assert set(sig["outputs"]) == {"out_tag", "out_signal", "out_sensor"}
    assert srv.get("/v1/models/two/versions/2/metadata").json()["model_spec"]["version"] == "2"
    assert srv.get("/v1/models/nope/metadata").status_code == 404


def test_row_format_single_input(srv):
    r = predict(srv, "vec", {"instances": [[1.0, 2.0, 5.0], [0.5, -1.0, 3.25]]})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": [[1.0, 2.0, 5.0], [0.5, -1.0, 3.25]]}


def test_columnar_format_single_input(srv):
    r = predict(srv, "vec", {"inputs": [[1.0, 2.0, 5.0]]})
    assert r.json() == {"outputs": [[1.0, 2.0, 5.0]]}
    r = predict(srv, "vec", {"inputs": {"x": [[1.0, 2.0, 5.0]]}})
    assert r.json() == {"outputs": [[1.0, 2.0, 5.0]]}


def test_row_format_named_inputs_as_in_the_tf_docs(srv):
    body = {"instances": [
        {"tag": ["foo"], "signal": [1, 2, 3, 4, 5], "sensor": [[1, 2], [3, 4]]},
        {"tag": ["bar"], "signal": [3, 4, 1, 2, 5], "sensor": [[4, 5], [6, 8]]},
    ]}
    r = predict(srv, "multi", body)
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert preds == [
        {"out_tag": ["foo"], "out_signal": [1, 2, 3, 4, 5], "out_sensor": [[1.0, 2.0], [3.0, 4.0]]},
        {"out_tag": ["bar"], "out_signal": [3, 4, 1, 2, 5], "out_sensor": [[4.0, 5.0], [6.0, 8.0]]},
    ]
    columnar = {"inputs": {"tag": [["foo"], ["bar"]], "signal": [[1, 2, 3, 4, 5], [3, 4, 1, 2, 5]],
                           "sensor": [[[1, 2], [3, 4]], [[4, 5], [6, 8]]]}}
    out = predict(srv, "multi", columnar).json()["outputs"]
    assert out == {"out_tag": [["foo"], ["bar"]], "out_signal": [[1, 2, 3, 4, 5], [3, 4, 1, 2, 5]],
                   "out_sensor": [[[1.0, 2.0], [3.0, 4.0]], [[4.0, 5.0], [6.0, 8.0]]]}


def test_columnar_inputs_of_different_sizes(srv):
    # "Use this format if individual named inputs do not have the same 0-th dimension."
    out = predict(srv, "free", {"inputs": {"a": [1, 2, 3], "b": [7]}}).json()["outputs"]
    assert out == {"out_a": [1, 2, 3], "out_b": [7]}
    # the row format cannot answer them: outputs of different 0-th dimensions
    r = predict(srv, "free", {"instances": [{"a": 1, "b": 2}]})
    assert r.status_code == 200 and r.json() == {"predictions": [{"out_a": 1, "out_b": 2}]}


def test_b64_values(srv):
    raw = [b"\x89PNG\r\n\x1a\n\x00\xff", b"plain text"]
    body = {"instances": [[{"b64": base64.b64encode(v).decode()}] for v in raw]}
    r = predict(srv, "img", body)
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    # an output named *_bytes answers in b64, text or not
    assert [base64.b64decode(p[0]["b64"]) for p in preds] == raw
    # elsewhere b64 only where the bytes are not UTF-8
    out = predict(srv, "multi", {"inputs": {"tag": [[{"b64": base64.b64encode(b"\xff\xfe").decode()}], ["ok"]],
                                            "signal": [[0] * 5] * 2, "sensor": [[[0, 0], [0, 0]]] * 2}})
    tags = out.json()["outputs"]["out_tag"]
    assert tags[0] == [{"b64": base64.b64encode(b"\xff\xfe").decode()}] and tags[1] == ["ok"]


def test_nan_and_infinity_tokens(srv):
    body = '{"instances": [[NaN, Infinity, -Infinity], [1.5, -0.0, 1e-3]]}'
    r = predict(srv, "vec", body)
    assert r.status_code == 200, r.text
    assert "NaN" in r.text and "-Infinity" in r.text  # TF Serving's tokens, which Python's json reads
    preds = json.loads(r.text)["predictions"]
    assert math.isnan(preds[0][0]) and preds[0][1] == math.inf and preds[0][2] == -math.inf
    assert preds[1] == [1.5, -0.0, 0.001]
    # the tokens inside strings stay strings (a BYTES input)
    out = predict(srv, "img", '{"instances": [["NaN"], ["Infinity"]]}').json()["predictions"]
    assert [base64.b64decode(p[0]["b64"]) for p in out] == [b"NaN", b"Infinity"]


def test_versions(srv):
    r = predict(srv, "two", {"instances": [[1, 2]]}, version=2)
    assert r.status_code == 200 and r.json()["predictions"] == [[1.0, 2.0]]
    r = predict(srv, "two", {"instances": [[1, 2]]}, version=1)
    assert r.status_code in (404, 503) and "version 1" in error_of(r)


@pytest.mark.parametrize("body,needle", [
    ({}, "either \"instances\""),
    ({"instances": [[1, 2, 3]], "inputs": [[1, 2, 3]]}, "either \"instances\""),
    ({"instances": []}, "empty"),
    ({"instances": [[1, 2, 3], [4, 5]]}, "ragged"),
    ({"instances": [[1, 2, 3], 4]}, "equally deep"),
    ({"instances": [[1, "a", 3]]}, "expected a number"),
    ({"instances": [[1, 2]]}, "shape"),
    ({"inputs": {"y": [[1, 2, 3]]}}, "unknown input 'y'"),
    ({"instances": [[1, 2, 3]], "signature_name": "classify"}, "signature"),
    ("{not json", "malformed JSON"),
    ("[1, 2]", "expected a JSON object"),
])
def test_bad_requests_are_400_with_an_error(srv, body, needle):
    r = predict(srv, "vec", body)
    assert r.status_code == 400, r.text
    assert needle in error_of(r)


@pytest.mark.parametrize("body,needle", [
    ({"instances": [{"tag": ["a"], "signal": [1] * 5}]}, "missing input 'sensor'"),
    ({"instances": [[1, 2]]}, "each instance must be an object"),
    ({"instances": [{"tag": ["a"], "signal": [1] * 5, "sensor": [[0, 0], [0, 0]]},
                    {"tag": ["b"], "signal": [1] * 5}]}, "instances[1]"),
    ({"instances": [{"tag": [1], "signal": [1] * 5, "sensor": [[0, 0], [0, 0]]}]}, "expected a string"),
    ({"instances": [{"tag": ["a"], "signal": [1.5] * 5, "sensor": [[0, 0], [0, 0]]}]}, "expected an integer"),
    ({"instances": [{"tag": [{"b64": "%%%"}], "signal": [1] * 5, "sensor": [[0, 0], [0, 0]]}]}, "not base64"),
])
def test_bad_named_inputs(srv, body, needle):
    r = predict(srv, "multi", body)
    assert r.status_code == 400, r.text
    assert needle in error_of(r)


def test_routing_errors(srv):
    r = srv.post("/v1/models/vec:classify", data=b"{}")
    assert r.status_code == 501 and ":predict" in error_of(r)
    r = srv.get("/v1/models/vec:predict")
    assert r.status_code == 405 and r.headers["Allow"] == "POST"
    r = predict(srv, "nope", {"instances": [[1, 2, 3]]})
    assert r.status_code == 404 and error_of(r) == "unknown model 'nope'"
    r = srv.post("/v1/models/vec/metadata", data=b"{}")
    assert r.status_code == 405
    assert srv.get("/v1/nothing").status_code == 404
    assert srv.get("/v1/models/vec/versions/x").status_code == 400


def test_compressed_request_and_response(srv):
    rows = np.arange(3 * 100, dtype=np.float32).reshape(100, 3) / 7
    body = gzip.compress(json.dumps({"instances": rows.tolist()}).encode())
    r = requests.post(srv.url + "/v1/models/vec:predict", data=body, timeout=30,
                      headers={"Content-Encoding": "gzip", "Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip"
    np.testing.assert_allclose(np.array(r.json()["predictions"], np.float32), rows)


def test_large_body_is_decoded_off_the_io_thread(srv):
    rows = np.random.default_rng(1).standard_normal((32, 3)).astype(np.float32)
    body = json.dumps({"instances": rows.tolist(), "pad": "x" * (200 << 10)})  # over the 64 KiB offload size
    r = predict(srv, "vec", body)
    assert r.status_code == 200, r.text
    np.testing.assert_array_equal(np.array(r.json()["predictions"], np.float32), rows)


def test_auth_token_applies_to_v1(start_server, tmp_path):
    repo = tmp_path / "models"
    write_model(repo, "vec", identity_config([("x", "FP32", [3])], mbs=4))
    token = tmp_path / "token"
    token.write_text("tf-token")
    s = start_server(repo, ["--auth-token-file", str(token)])
    assert s.post("/v1/models/vec:predict", json={"instances": [[1, 2, 3]]}).status_code == 401
    assert s.get("/v1/models/vec").status_code == 401
    ok = s.post("/v1/models/vec:predict", json={"instances": [[1, 2, 3]]},
                headers={"Authorization": "Bearer tf-token"})
    assert ok.status_code == 200 and ok.json() == {"predictions": [[1.0, 2.0, 3.0]]}


@pytest.mark.torch
def test_mlp_row_and_columnar_match_torch(examples_server):
    torch = pytest.importorskip("torch")
    model = torch.jit.load(str(EXAMPLES / "mlp" / "1" / "model.pt"))
    x = np.random.default_rng(3).standard_normal((4, 16)).astype(np.float32)
    want = model(torch.from_numpy(x)).detach().numpy()
    row = examples_server.post("/v1/models/mlp:predict", json={"instances": x.tolist()})
    assert row.status_code == 200, row.text
    np.testing.assert_allclose(np.array(row.json()["predictions"], np.float32), want, rtol=1e-5, atol=1e-6)
    col = examples_server.post("/v1/models/mlp/versions/1:predict", json={"inputs": {"x": x.tolist()}})
    np.testing.assert_allclose(np.array(col.json()["outputs"], np.float32), want, rtol=1e-5, atol=1e-6)
