"""Triton's HTTP extensions that tritonclient.http calls (model configuration,
statistics), and compressed responses. Identity backend only (runs under the
sanitizer build too).
"""
import gzip
import json
import time
import zlib

import numpy as np
import pytest
import requests

from conftest import Server, error_of, identity_config, write_model


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    repo = tmp_path_factory.mktemp("triton") / "models"
    repo.mkdir()
    write_model(repo, "batched", identity_config([("x", "FP32", [4]), ("s", "BYTES", [1])], mbs=16, instances=2,
                                                 extra="dynamic_batching: {max_queue_delay_us: 500, "
                                                       "preferred_batch_sizes: [4, 8]}\n"
                                                       "version_policy: {specific: [1, 2]}\n"),
                versions=(1, 2))
    write_model(repo, "plain", identity_config([("x", "INT64", [-1])]))
    s = Server(repo)
    yield s
    s.stop()


def infer_plain(srv, values):
    r = srv.post("/v2/models/plain/infer",
                 json={"inputs": [{"name": "x", "datatype": "INT64", "shape": [len(values)], "data": values}]})
    assert r.status_code == 200, r.text
    return r


def test_extensions_listed(srv):
    ext = srv.get("/v2").json()["extensions"]
    assert {"binary_tensor_data", "model_repository", "model_configuration", "statistics"} <= set(ext)


def test_model_config_as_triton_writes_it(srv):
    c = srv.get("/v2/models/batched/config").json()
    assert c["name"] == "batched"
    assert c["platform"] == c["backend"] == "identity"
    assert c["max_batch_size"] == 16
    assert c["input"] == [{"name": "x", "data_type": "TYPE_FP32", "dims": [4]},
                          {"name": "s", "data_type": "TYPE_STRING", "dims": [1]}]
    assert c["output"] == [{"name": "out_x", "data_type": "TYPE_FP32", "dims": [4]},
                           {"name": "out_s", "data_type": "TYPE_STRING", "dims": [1]}]
    assert c["dynamic_batching"] == {"preferred_batch_size": [4, 8], "max_queue_delay_microseconds": 500}
    assert c["instance_group"] == [{"name": "batched", "kind": "KIND_CPU", "count": 2}]
    assert c["version_policy"] == {"specific": {"versions": [1, 2]}}
    assert srv.get("/v2/models/batched/versions/2/config").json() == c
    p = srv.get("/v2/models/plain/config").json()
    assert p["max_batch_size"] == 0 and "dynamic_batching" not in p
    assert p["version_policy"] == {"latest": {"num_versions": 1}}


def test_model_config_errors(srv):
    r = srv.get("/v2/models/nope/config")
    assert r.status_code == 404 and "nope" in error_of(r)
    r = srv.get("/v2/models/batched/versions/9/config")
    assert r.status_code == 404 or r.status_code == 503, r.text
    r = srv.post("/v2/models/batched/config", data=b"{}")
    assert r.status_code == 405 and r.headers["Allow"] == "GET"


def stats_of(srv, path):
    r = srv.get(path)
    assert r.status_code == 200, r.text
    return r.json()["model_stats"]


def test_statistics_count_what_clients_sent(srv):
    before = stats_of(srv, "/v2/models/plain/stats")[0]
    assert set(before) >= {"name", "version", "last_inference", "inference_count", "execution_count",
                           "inference_stats", "batch_stats"}
    assert set(before["inference_stats"]) == {"success", "fail", "queue", "compute_input", "compute_infer",
                                              "compute_output"}
    for _ in range(4):
        infer_plain(srv, [1, 2, 3])
    bad = srv.post("/v2/models/plain/infer",
                   json={"inputs": [{"name": "nope", "datatype": "INT64", "shape": [1], "data": [1]}]})
    assert bad.status_code == 400
    after = stats_of(srv, "/v2/models/plain/stats")[0]
    d = lambda *k: _get(after, k) - _get(before, k)  # noqa: E731
    assert (after["name"], after["version"]) == ("plain", "1")
    assert d("inference_stats", "success", "count") == 4
    assert d("inference_stats", "fail", "count") == 1
    assert d("inference_stats", "queue", "count") == 4
    assert d("inference_stats", "compute_infer", "count") == 4
    assert d("execution_count") == 4
    assert d("inference_count") == 4  # unbatched: a request is one inference
    assert d("inference_stats", "success", "ns") > 0
    assert abs(after["last_inference"] - time.time() * 1000) < 60_000  # ms since the epoch
    sizes = {b["batch_size"]: b["compute_infer"]["count"] for b in after["batch_stats"]}
    assert sizes.get(1, 0) >= 4


def test_statistics_cover_warm_up_not(tmp_path, start_server):
    # A fresh server: the warm-up request is not a client's, and the statistics start at zero.
    repo = tmp_path / "models"
    write_model(repo, "m", identity_config([("x", "INT64", [-1])]))
    s = start_server(repo)
    st = stats_of(s, "/v2/models/m/stats")[0]
    assert st["inference_count"] == 0 and st["execution_count"] == 0 and st["batch_stats"] == []
    assert st["inference_stats"]["success"]["count"] == 0


def test_statistics_of_versions_and_all(srv):
    x = np.zeros((3, 4), np.float32).tolist()
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [3, 4], "data": x},
                       {"name": "s", "datatype": "BYTES", "shape": [3, 1], "data": ["a", "b", "c"]}]}
    assert srv.post("/v2/models/batched/versions/1/infer", json=body).status_code == 200
    v1 = stats_of(srv, "/v2/models/batched/versions/1/stats")
    assert [(m["name"], m["version"]) for m in v1] == [("batched", "1")]
    assert v1[0]["inference_count"] >= 3  # rows, for a batched model
    both = stats_of(srv, "/v2/models/batched/stats")
    assert sorted(m["version"] for m in both) == ["1", "2"]
    every = stats_of(srv, "/v2/models/stats")
    assert {(m["name"], m["version"]) for m in every} == {("batched", "1"), ("batched", "2"), ("plain", "1")}
    r = srv.get("/v2/models/nope/stats")
    assert r.status_code == 404


def _get(d, keys):
    for k in keys:
        d = d[k]
    return d


@pytest.mark.parametrize("accept,coding", [("gzip", "gzip"), ("deflate", "deflate"), ("gzip, deflate", "gzip"),
                                           ("deflate, gzip;q=0", "deflate"), ("*", "gzip"),
                                           ("br;q=1.0, gzip;q=0.5", "gzip")])
def test_responses_honour_accept_encoding(srv, accept, coding):
    values = list(range(2000))
    r = requests.post(srv.url + "/v2/models/plain/infer", stream=True, headers={"Accept-Encoding": accept},
                      json={"inputs": [{"name": "x", "datatype": "INT64", "shape": [2000], "data": values}]},
                      timeout=30)
    assert r.status_code == 200
    assert r.headers["Content-Encoding"] == coding
    assert r.headers["Vary"] == "Accept-Encoding"
    raw = r.raw.read(decode_content=False)
    assert int(r.headers["Content-Length"]) == len(raw)
    body = gzip.decompress(raw) if coding == "gzip" else zlib.decompress(raw)
    assert len(raw) < len(body) / 2
    assert json.loads(body)["outputs"][0]["data"] == values


@pytest.mark.parametrize("accept", ["identity", "gzip;q=0", "br", "gzip;q=0.000, deflate;q=0"])
def test_responses_uncompressed_when_not_accepted(srv, accept):
    r = requests.post(srv.url + "/v2/models/plain/infer", headers={"Accept-Encoding": accept},
                      json={"inputs": [{"name": "x", "datatype": "INT64", "shape": [2000],
                                        "data": list(range(2000))}]}, timeout=30)
    assert "Content-Encoding" not in r.headers
    assert r.json()["outputs"][0]["data"][-1] == 1999


def test_small_responses_stay_uncompressed(srv):
    r = requests.get(srv.url + "/v2/health/ready", headers={"Accept-Encoding": "gzip"}, timeout=10)
    assert r.status_code == 200 and "Content-Encoding" not in r.headers
    r = infer_plain(srv, [1])
    assert "Content-Encoding" not in r.headers


def test_binary_responses_compress_whole(srv):
    values = np.arange(3000, dtype=np.int64)
    body = json.dumps({"inputs": [{"name": "x", "datatype": "INT64", "shape": [3000], "data": values.tolist()}],
                       "parameters": {"binary_data_output": True}}).encode()
    r = requests.post(srv.url + "/v2/models/plain/infer", data=body, stream=True,
                      headers={"Accept-Encoding": "gzip"}, timeout=30)
    assert r.headers["Content-Encoding"] == "gzip"
    plain = gzip.decompress(r.raw.read(decode_content=False))
    n = int(r.headers["Inference-Header-Content-Length"])  # counts in the decompressed body
    header = json.loads(plain[:n])
    assert header["outputs"][0]["parameters"]["binary_data_size"] == 3000 * 8
    assert np.frombuffer(plain[n:], "<i8").tolist() == values.tolist()


def test_metrics_compress_for_prometheus(srv):
    r = requests.get(srv.metrics_url, headers={"Accept-Encoding": "gzip"}, stream=True, timeout=10)
    assert r.headers.get("Content-Encoding") == "gzip"
    assert b"berth_" in gzip.decompress(r.raw.read(decode_content=False))
