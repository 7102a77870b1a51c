"""Open Inference Protocol v2 over HTTP against the identity backend.

No torch needed: every model here uses the `identity` backend (output i is
input i), so these tests also run under the sanitizer build.
"""
import json
import socket
import struct
import threading
import time

import numpy as np
import pytest
import requests

from conftest import Server, error_of, write_model
from rawhttp import Reader, http_request, raw_connect, raw_roundtrip

DATATYPES = ["BOOL", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32",
             "UINT64", "FP16", "FP32", "FP64", "BYTES"]

NP_DTYPE = {
    "BOOL": np.dtype("?"), "INT8": np.dtype("<i1"), "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"), "INT64": np.dtype("<i8"), "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"), "UINT32": np.dtype("<u4"), "UINT64": np.dtype("<u8"),
    "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
}

# Six values per datatype (shape [2, 3]), boundary values included.
VALUES = {
    "BOOL": [True, False, True, False, False, True],
    "INT8": [-128, 127, 0, -1, 5, 6],
    "INT16": [-32768, 32767, 0, -1, 300, 6],
    "INT32": [-2147483648, 2147483647, 0, -1, 70000, 6],
    "INT64": [-9223372036854775808, 9223372036854775807, 0, -1, 4294967296, 6],
    "UINT8": [0, 255, 1, 128, 5, 6],
    "UINT16": [0, 65535, 1, 32768, 5, 6],
    "UINT32": [0, 4294967295, 1, 2147483648, 5, 6],
    "UINT64": [0, 18446744073709551615, 1, 9223372036854775808, 4294967296, 6],
    "FP16": [0.5, -2.0, 65504.0, 0.0, 1.5, -6.103515625e-05],
    "FP32": [1.5, -2.25, 3.4028234663852886e38, 1e-3, 0.0, 123456.789],
    "FP64": [0.1, -1.7976931348623157e308, 5e-324, 2.5, 0.0, 1.0 / 3.0],
    "BYTES": ["hello", "", "w\u00f6rld \u2603", "a b", "x" * 100, "q\"\\\n\t"],
}

IDENTITY = """\
backend: identity
max_batch_size: {mbs}
inputs:
{inputs}
outputs:
{outputs}
instances: {instances}
parameters: {params}
"""


def identity_yaml(inputs, outputs, mbs=0, instances=1, params="{}"):
    """inputs/outputs: [(name, datatype, shape list)]."""
    def fmt(items):
        return "\n".join(f"  - {{name: {n}, datatype: {d}, shape: {list(s)}}}" for n, d, s in items)
    return IDENTITY.format(mbs=mbs, inputs=fmt(inputs), outputs=fmt(outputs),
                           instances=instances, params=params)


def model_name(dt):
    return "id_" + dt.lower()


def flatten(x):
    if isinstance(x, list):
        out = []
        for e in x:
            out.extend(flatten(e))
        return out
    return [x]


def nest(flat, shape):
    if len(shape) <= 1:
        return list(flat)
    step = len(flat) // shape[0]
    return [nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def assert_values_equal(dt, got, want):
    got, want = flatten(got), flatten(want)
    assert len(got) == len(want), (got, want)
    if dt == "BYTES":
        assert got == want
    elif dt == "BOOL":
        assert got == want and all(isinstance(g, bool) for g in got), got
    elif dt.startswith("FP"):
        np.testing.assert_array_equal(np.array(got, dtype=NP_DTYPE[dt]),
                                      np.array(want, dtype=NP_DTYPE[dt]))
    else:
        assert got == want and all(isinstance(g, int) and not isinstance(g, bool) for g in got), got


# ---------------------------------------------------------------------------
# binary tensor extension helpers

def bytes_to_wire(elems):
    return b"".join(struct.pack("<I", len(e)) + e for e in elems)


def wire_to_bytes(raw):
    out, i = [], 0
    while i < len(raw):
        (n,) = struct.unpack_from("<I", raw, i)
        out.append(raw[i + 4:i + 4 + n])
        i += 4 + n
    assert i == len(raw)
    return out


def binary_body(header, blobs):
    h = json.dumps(header).encode()
    return h + b"".join(blobs), {"Inference-Header-Content-Length": str(len(h)),
                                 "Content-Type": "application/octet-stream"}


def parse_infer_response(resp):
    """Returns (json header, {output name: raw bytes}) for binary or JSON responses."""
    assert resp.status_code == 200, resp.content[:2000]
    hlen = resp.headers.get("Inference-Header-Content-Length")
    body = resp.content
    if hlen is None:
        return json.loads(body), {}
    hlen = int(hlen)
    header = json.loads(body[:hlen])
    raw, pos = {}, hlen
    for out in header["outputs"]:
        size = (out.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            assert "data" not in out, out
            raw[out["name"]] = body[pos:pos + size]
            pos += size
    assert pos == len(body), (pos, len(body))
    return header, raw


# ---------------------------------------------------------------------------
# raw HTTP over sockets: rawhttp.py


# ---------------------------------------------------------------------------
# servers

def main_repo(repo):
    for dt in DATATYPES:
        write_model(repo, model_name(dt), identity_yaml([("x", dt, [-1, -1])], [("y", dt, [-1, -1])]))
    write_model(repo, "pair", identity_yaml([("a", "FP32", [-1]), ("b", "INT32", [-1])],
                                            [("a_out", "FP32", [-1]), ("b_out", "INT32", [-1])]))
    write_model(repo, "batched", identity_yaml([("x", "FP32", [3])], [("y", "FP32", [3])], mbs=4))
    write_model(repo, "fixed", identity_yaml([("x", "INT32", [2, 3])], [("y", "INT32", [2, 3])]))
    write_model(repo, "fail", identity_yaml([("x", "FP32", [-1])], [("y", "FP32", [-1])],
                                            params='{fail: "true"}') + "warmup: {requests: 0}\n")


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    root = tmp_path_factory.mktemp("protocol")
    main_repo(root / "repo")
    s = Server(root / "repo")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    """Small limits and short timeouts."""
    root = tmp_path_factory.mktemp("limited")
    repo = root / "repo"
    write_model(repo, "id_fp32", identity_yaml([("x", "FP32", [-1])], [("y", "FP32", [-1])]))
    s = Server(repo, ["--max-request-bytes", "1000", "--max-header-bytes", "2048",
                      "--read-timeout-secs", "1", "--idle-timeout-secs", "1"])
    yield s
    s.stop()


BROKEN = {
    # name: (model.yaml, key the reason must name)
    "bad_unknown_key": (identity_yaml([("x", "FP32", [-1])], [("y", "FP32", [-1])]) + "colour: blue\n",
                        "colour"),
    "bad_datatype": (identity_yaml([("x", "FLOAT32", [-1])], [("y", "FP32", [-1])]), "datatype"),
    "bad_type": (identity_yaml([("x", "FP32", [-1])], [("y", "FP32", [-1])]).replace(
        "max_batch_size: 0", "max_batch_size: abc"), "max_batch_size"),
    "bad_shape": (identity_yaml([("x", "FP32", [-2])], [("y", "FP32", [-1])]), "shape"),
    "bad_yaml": ("backend: identity\ninputs: [ {name: x\n", "model.yaml"),
    "bad_instances": (identity_yaml([("x", "FP32", [-1])], [("y", "FP32", [-1])], instances=0), "instances"),
    "bad_shape_type": (identity_yaml([("x", "FP32", [-1])], [("y", "FP32", [-1])]).replace("[-1]}\noutputs", "abc}\noutputs"),
                       "shape"),
    "bad_max_batch_negative": (identity_yaml([("x", "FP32", [-1])], [("y", "FP32", [-1])], mbs=-3), "max_batch_size"),
    "bad_missing_backend": (identity_yaml([("x", "FP32", [-1])], [("y", "FP32", [-1])]).replace("backend: identity\n", ""),
                            "backend"),
    "bad_empty": ("", "model.yaml"),
    "bad_top_level_list": ("- backend: identity\n", "model.yaml"),
    "bad_duplicate_input": (identity_yaml([("x", "FP32", [-1]), ("x", "FP32", [-1])],
                                          [("y", "FP32", [-1]), ("z", "FP32", [-1])]), "x"),
    "bad_input_unknown_key": (identity_yaml([("x", "FP32", [-1])], [("y", "FP32", [-1])]).replace(
        "shape: [-1]}", "shape: [-1], dims: 3}", 1), "dims"),
}
# problems the backend (not model.yaml parsing) finds: the reason names the thing, not necessarily model.yaml
BROKEN_BACKEND = {
    "bad_unknown_backend": (identity_yaml([("x", "FP32", [-1])], [("y", "FP32", [-1])]).replace(
        "backend: identity", "backend: nosuchbackend"), "nosuchbackend"),
    "bad_identity_param": (identity_yaml([("x", "FP32", [-1])], [("y", "FP32", [-1])], params="{colour: red}"),
                           "colour"),
    "bad_identity_dtype": (identity_yaml([("x", "FP32", [-1])], [("y", "INT32", [-1])]), "y"),
    "bad_delay": (identity_yaml([("x", "FP32", [-1])], [("y", "FP32", [-1])], params='{delay_ms: "soon"}'),
                  "delay_ms"),
}


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    root = tmp_path_factory.mktemp("broken")
    repo = root / "repo"
    write_model(repo, "good", identity_yaml([("x", "FP32", [-1])], [("y", "FP32", [-1])]))
    for name, (cfg, _) in {**BROKEN, **BROKEN_BACKEND}.items():
        write_model(repo, name, cfg)
    # a model directory that is a symlink leaving the repository
    outside = root / "outside"
    write_model(outside, "escaped", identity_yaml([("x", "FP32", [-1])], [("y", "FP32", [-1])]))
    (repo / "escaped").symlink_to(outside / "escaped")
    s = Server(repo)
    yield s
    s.stop()


def good_request_works(s, model="id_int32"):
    assert s.alive()
    if model == "id_int32":
        r = s.infer(model, [{"name": "x", "datatype": "INT32", "shape": [1, 2], "data": [7, -7]}])
        assert r.status_code == 200, r.text
        assert flatten(r.json()["outputs"][0]["data"]) == [7, -7]
    else:
        r = s.infer(model, [{"name": "x", "datatype": "FP32", "shape": [2], "data": [1.5, 2.5]}])
        assert r.status_code == 200, r.text
        assert flatten(r.json()["outputs"][0]["data"]) == [1.5, 2.5]


# ---------------------------------------------------------------------------
# endpoints

def test_server_metadata(srv):
    r = srv.get("/v2")
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == "berth"
    assert isinstance(body["version"], str) and body["version"]
    assert isinstance(body["extensions"], list)
    assert all(isinstance(e, str) for e in body["extensions"])


def test_health(srv):
    assert srv.get("/v2/health/live").status_code == 200
    assert srv.get("/v2/health/ready").status_code == 200


@pytest.mark.parametrize("suffix", ["", "/versions/1"])
def test_model_metadata(srv, suffix):
    r = srv.get("/v2/models/pair" + suffix)
    assert r.status_code == 200, r.text
    m = r.json()
    assert m["name"] == "pair"
    assert "1" in m["versions"]
    assert isinstance(m["platform"], str)
    assert [(t["name"], t["datatype"], t["shape"]) for t in m["inputs"]] == \
        [("a", "FP32", [-1]), ("b", "INT32", [-1])]
    assert [(t["name"], t["datatype"], t["shape"]) for t in m["outputs"]] == \
        [("a_out", "FP32", [-1]), ("b_out", "INT32", [-1])]


def test_batched_metadata_shape_starts_with_minus_one(srv):
    m = srv.get("/v2/models/batched").json()
    assert m["inputs"][0]["shape"] == [-1, 3]
    assert m["outputs"][0]["shape"] == [-1, 3]


@pytest.mark.parametrize("suffix", ["", "/versions/1"])
def test_model_ready(srv, suffix):
    assert srv.get(f"/v2/models/pair{suffix}/ready").status_code == 200


@pytest.mark.parametrize("path", [
    "/v2/models/nosuch", "/v2/models/nosuch/ready", "/v2/models/nosuch/versions/1",
    "/v2/models/pair/versions/7", "/v2/models/pair/versions/7/ready",
    "/v2/models/pair/versions/0", "/v2/models/pair/versions/abc/ready",
])
def test_unknown_model_or_version_404(srv, path):
    r = srv.get(path)
    # a version segment that is not a positive integer may also be a 400
    assert r.status_code == 404 or (path.endswith(("/abc/ready", "/0")) and r.status_code == 400), r.text
    error_of(r)


@pytest.mark.parametrize("path", ["/nosuch", "/v2/nosuch", "/v2/models", "/v3", "//", "/ui/nosuch", "/ui/a/b",
                                  "/v2/models/pair/metadata", "/v2/health", "/v2/health/live/x"])
def test_unknown_path_404(srv, path):
    r = srv.get(path)
    assert r.status_code == 404, (path, r.status_code, r.text)
    error_of(r)


@pytest.mark.parametrize("method,path", [("GET", "/v2/models/pair/infer"), ("DELETE", "/v2"),
                                         ("GET", "/v2/repository/index"), ("PUT", "/v2/health/live")])
def test_wrong_method_405(srv, method, path):
    r = requests.request(method, srv.url + path, timeout=30)
    assert r.status_code == 405, r.text
    error_of(r)


def test_repository_index(srv):
    r = srv.post("/v2/repository/index")
    assert r.status_code == 200, r.text
    idx = r.json()
    assert isinstance(idx, list)
    by_name = {e["name"]: e for e in idx}
    expected = {model_name(dt) for dt in DATATYPES} | {"pair", "batched", "fixed", "fail"}
    assert set(by_name) == expected
    for e in idx:
        assert set(e) == {"name", "version", "state", "reason"}, e
        assert e["state"] == "READY", e
        assert e["version"] == "1", e
        assert isinstance(e["reason"], str)


def test_repository_index_with_json_body(srv):
    r = srv.post("/v2/repository/index", json={})
    assert r.status_code == 200, r.text
    assert len(r.json()) == len(DATATYPES) + 4


@pytest.mark.parametrize("version", [None, "1"])
def test_infer_with_and_without_version(srv, version):
    r = srv.infer("pair", [{"name": "a", "datatype": "FP32", "shape": [2], "data": [1.0, 2.0]},
                           {"name": "b", "datatype": "INT32", "shape": [1], "data": [3]}],
                  version=version)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_name"] == "pair"
    assert body["model_version"] == "1"
    outs = {o["name"]: o for o in body["outputs"]}
    assert set(outs) == {"a_out", "b_out"}
    assert outs["a_out"]["datatype"] == "FP32" and outs["a_out"]["shape"] == [2]
    assert flatten(outs["a_out"]["data"]) == [1.0, 2.0]
    assert outs["b_out"]["datatype"] == "INT32" and outs["b_out"]["shape"] == [1]
    assert flatten(outs["b_out"]["data"]) == [3]


@pytest.mark.parametrize("path", ["/v2/models/nosuch/infer", "/v2/models/pair/versions/2/infer",
                                  "/v2/models/nosuch/versions/1/infer"])
def test_infer_unknown_model_or_version_404(srv, path):
    r = srv.post(path, json={"inputs": [{"name": "a", "datatype": "FP32", "shape": [1], "data": [1]}]})
    assert r.status_code == 404, r.text
    error_of(r)


# ---------------------------------------------------------------------------
# JSON tensors

@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
@pytest.mark.parametrize("dt", DATATYPES)
def test_json_roundtrip_every_datatype(srv, dt, nested):
    values = VALUES[dt]
    data = nest(values, [2, 3]) if nested else values
    r = srv.post(f"/v2/models/{model_name(dt)}/infer",
                 json={"id": f"req-{dt}", "inputs": [{"name": "x", "datatype": dt, "shape": [2, 3], "data": data}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == f"req-{dt}"
    assert body["model_name"] == model_name(dt)
    assert body["model_version"] == "1"
    [out] = body["outputs"]
    assert out["name"] == "y" and out["datatype"] == dt and out["shape"] == [2, 3]
    assert_values_equal(dt, out["data"], values)


@pytest.mark.parametrize("dt", ["INT32", "FP32", "BYTES", "BOOL"])
def test_json_empty_tensor(srv, dt):
    r = srv.infer(model_name(dt), [{"name": "x", "datatype": dt, "shape": [0, 3], "data": []}])
    assert r.status_code == 200, r.text
    [out] = r.json()["outputs"]
    assert out["shape"] == [0, 3] and flatten(out["data"]) == []


def test_no_id_means_no_id(srv):
    r = srv.infer("id_int32", [{"name": "x", "datatype": "INT32", "shape": [1, 1], "data": [1]}])
    assert r.status_code == 200
    assert "id" not in r.json() or r.json()["id"] in ("", None)


def test_inputs_in_any_order(srv):
    r = srv.infer("pair", [{"name": "b", "datatype": "INT32", "shape": [2], "data": [5, 6]},
                           {"name": "a", "datatype": "FP32", "shape": [1], "data": [0.25]}])
    assert r.status_code == 200, r.text
    outs = {o["name"]: flatten(o["data"]) for o in r.json()["outputs"]}
    assert outs == {"a_out": [0.25], "b_out": [5, 6]}


PAIR_INPUTS = [{"name": "a", "datatype": "FP32", "shape": [2], "data": [1.0, 2.0]},
               {"name": "b", "datatype": "INT32", "shape": [3], "data": [3, 4, 5]}]


def test_requested_output_subset(srv):
    r = srv.infer("pair", PAIR_INPUTS, outputs=[{"name": "b_out"}])
    assert r.status_code == 200, r.text
    [out] = r.json()["outputs"]
    assert out["name"] == "b_out" and flatten(out["data"]) == [3, 4, 5]


def test_unknown_requested_output_400(srv):
    r = srv.infer("pair", PAIR_INPUTS, outputs=[{"name": "b_out"}, {"name": "zzz_out"}])
    assert r.status_code == 400, r.text
    assert "zzz_out" in error_of(r)


def test_batched_model(srv):
    r = srv.infer("batched", [{"name": "x", "datatype": "FP32", "shape": [4, 3], "data": list(range(12))}])
    assert r.status_code == 200, r.text
    [out] = r.json()["outputs"]
    assert out["shape"] == [4, 3] and flatten(out["data"]) == list(range(12))


def test_fixed_shape_model(srv):
    r = srv.infer("fixed", [{"name": "x", "datatype": "INT32", "shape": [2, 3], "data": [[1, 2, 3], [4, 5, 6]]}])
    assert r.status_code == 200, r.text
    assert flatten(r.json()["outputs"][0]["data"]) == [1, 2, 3, 4, 5, 6]


def test_backend_failure_500(srv):
    r = srv.infer("fail", [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}])
    assert r.status_code == 500, r.text
    error_of(r)
    good_request_works(srv)


# ---------------------------------------------------------------------------
# binary tensor extension

def to_wire(dt, values):
    if dt == "BYTES":
        return bytes_to_wire([v.encode() if isinstance(v, str) else v for v in values])
    return np.array(values, dtype=NP_DTYPE[dt]).tobytes()


@pytest.mark.parametrize("dt", DATATYPES)
def test_binary_input_and_output(srv, dt):
    values = VALUES[dt]
    blob = to_wire(dt, values)
    body, headers = binary_body(
        {"id": "bin", "inputs": [{"name": "x", "datatype": dt, "shape": [2, 3],
                                  "parameters": {"binary_data_size": len(blob)}}],
         "parameters": {"binary_data_output": True}}, [blob])
    r = srv.post(f"/v2/models/{model_name(dt)}/infer", data=body, headers=headers)
    header, raw = parse_infer_response(r)
    assert "Inference-Header-Content-Length" in r.headers
    assert header["id"] == "bin"
    [out] = header["outputs"]
    assert out["name"] == "y" and out["datatype"] == dt and out["shape"] == [2, 3]
    assert out["parameters"]["binary_data_size"] == len(blob)
    assert raw["y"] == blob


@pytest.mark.parametrize("dt", ["INT64", "UINT64", "FP16", "BOOL", "BYTES"])
def test_binary_input_json_output(srv, dt):
    values = VALUES[dt]
    blob = to_wire(dt, values)
    body, headers = binary_body(
        {"inputs": [{"name": "x", "datatype": dt, "shape": [2, 3],
                     "parameters": {"binary_data_size": len(blob)}}]}, [blob])
    r = srv.post(f"/v2/models/{model_name(dt)}/infer", data=body, headers=headers)
    assert r.status_code == 200, r.content[:1000]
    assert "Inference-Header-Content-Length" not in r.headers
    [out] = r.json()["outputs"]
    assert_values_equal(dt, out["data"], values)


@pytest.mark.parametrize("dt", ["INT8", "UINT64", "FP64", "BOOL", "BYTES"])
def test_json_input_binary_output(srv, dt):
    values = VALUES[dt]
    r = srv.post(f"/v2/models/{model_name(dt)}/infer",
                 json={"inputs": [{"name": "x", "datatype": dt, "shape": [2, 3], "data": values}],
                       "outputs": [{"name": "y", "parameters": {"binary_data": True}}]})
    header, raw = parse_infer_response(r)
    assert raw["y"] == to_wire(dt, values)


def test_binary_bytes_arbitrary_content(srv):
    elems = [b"\x00\xff\x01", b"", b"\xc3(", b"z" * 1000]
    blob = bytes_to_wire(elems)
    body, headers = binary_body(
        {"inputs": [{"name": "x", "datatype": "BYTES", "shape": [2, 2],
                     "parameters": {"binary_data_size": len(blob)}}],
         "parameters": {"binary_data_output": True}}, [blob])
    r = srv.post("/v2/models/id_bytes/infer", data=body, headers=headers)
    header, raw = parse_infer_response(r)
    assert wire_to_bytes(raw["y"]) == elems


def test_binary_mixed_inputs_and_per_output_flag(srv):
    a = np.array([1.5, -3.0, 7.25], dtype="<f4")
    body, headers = binary_body(
        {"inputs": [{"name": "b", "datatype": "INT32", "shape": [2], "data": [10, 20]},
                    {"name": "a", "datatype": "FP32", "shape": [3],
                     "parameters": {"binary_data_size": a.nbytes}}],
         "outputs": [{"name": "a_out", "parameters": {"binary_data": True}}, {"name": "b_out"}]},
        [a.tobytes()])
    r = srv.post("/v2/models/pair/infer", data=body, headers=headers)
    header, raw = parse_infer_response(r)
    outs = {o["name"]: o for o in header["outputs"]}
    assert set(outs) == {"a_out", "b_out"}
    assert raw["a_out"] == a.tobytes()
    assert outs["a_out"]["parameters"]["binary_data_size"] == a.nbytes
    assert flatten(outs["b_out"]["data"]) == [10, 20]
    assert "b_out" not in raw


def test_binary_two_inputs_in_request_order(srv):
    # request order (b, a) differs from config order (a, b); the binary blobs follow request order
    a = np.array([0.5, 1.5], dtype="<f4")
    b = np.array([1, 2, 3, 4], dtype="<i4")
    body, headers = binary_body(
        {"inputs": [{"name": "b", "datatype": "INT32", "shape": [4], "parameters": {"binary_data_size": b.nbytes}},
                    {"name": "a", "datatype": "FP32", "shape": [2], "parameters": {"binary_data_size": a.nbytes}}],
         "parameters": {"binary_data_output": True}},
        [b.tobytes(), a.tobytes()])
    r = srv.post("/v2/models/pair/infer", data=body, headers=headers)
    header, raw = parse_infer_response(r)
    assert raw == {"a_out": a.tobytes(), "b_out": b.tobytes()}


# ---------------------------------------------------------------------------
# bad requests

def X(dt="INT32", shape=(1, 2), data=(1, 2), name="x"):
    return {"name": name, "datatype": dt, "shape": list(shape), "data": list(data)}


# (id, model, body (dict -> JSON, bytes -> raw), extra headers, expected status, words one of which the error mentions)
BAD = [
    ("truncated-json", "id_int32", b'{"inputs": [{"name": "x", "datatype": "INT32"', {}, 400, []),
    ("not-an-object", "id_int32", b'[1, 2, 3]', {}, 400, []),
    ("string-json", "id_int32", b'"inputs"', {}, 400, []),
    ("trailing-garbage", "id_int32",
     json.dumps({"inputs": [X()]}).encode() + b"xyz", {}, 400, []),
    ("empty-body", "id_int32", b"", {}, 400, []),
    ("not-json", "id_int32", b"hello world", {}, 400, []),
    ("missing-inputs", "id_int32", {"id": "1"}, {}, 400, ["inputs"]),
    ("inputs-not-array", "id_int32", {"inputs": {"x": 1}}, {}, 400, ["inputs"]),
    ("input-not-object", "id_int32", {"inputs": [5]}, {}, 400, ["input"]),
    ("missing-input", "pair", {"inputs": [{"name": "a", "datatype": "FP32", "shape": [1], "data": [1]}]},
     {}, 400, ["b"]),
    ("no-inputs", "id_int32", {"inputs": []}, {}, 400, ["x"]),
    ("unknown-input", "id_int32", {"inputs": [X(), X(name="zzz")]}, {}, 400, ["zzz"]),
    ("duplicate-input", "id_int32", {"inputs": [X(), X()]}, {}, 400, ["x", "duplicate"]),
    ("input-without-name", "id_int32", {"inputs": [{"datatype": "INT32", "shape": [1, 1], "data": [1]}]},
     {}, 400, ["name"]),
    ("wrong-datatype", "id_int32", {"inputs": [X(dt="FP32")]}, {}, 400, ["datatype", "fp32", "int32"]),
    ("unknown-datatype", "id_int32", {"inputs": [X(dt="FLOAT")]}, {}, 400, ["datatype", "float"]),
    ("datatype-not-string", "id_int32", {"inputs": [{**X(), "datatype": 7}]}, {}, 400, ["datatype"]),
    ("missing-datatype", "id_int32", {"inputs": [{"name": "x", "shape": [1, 1], "data": [1]}]},
     {}, 400, ["datatype"]),
    ("shape-not-array", "id_int32", {"inputs": [{**X(), "shape": "1,2"}]}, {}, 400, ["shape"]),
    ("shape-element-not-int", "id_int32", {"inputs": [{**X(), "shape": [1, 2.5]}]}, {}, 400, ["shape"]),
    ("missing-shape", "id_int32", {"inputs": [{"name": "x", "datatype": "INT32", "data": [1]}]},
     {}, 400, ["shape"]),
    ("negative-dim", "id_int32", {"inputs": [X(shape=(-1, 2))]}, {}, 400, ["shape", "-1", "negative"]),
    ("overflowing-dims", "id_int32",
     {"inputs": [X(shape=(4294967296, 4294967296, 4294967296))]}, {}, 400, ["shape", "overflow", "large"]),
    ("overflowing-dims-2", "id_int32",
     {"inputs": [X(shape=(9223372036854775807, 2))]}, {}, 400, ["shape", "overflow", "large"]),
    ("huge-dim-beyond-int64", "id_int32",
     {"inputs": [X(shape=(18446744073709551617, 1))]}, {}, 400, ["shape", "number", "integer", "64"]),
    ("too-few-data", "id_int32", {"inputs": [X(shape=(1, 3))]}, {}, 400, ["data", "shape", "3"]),
    ("too-many-data", "id_int32", {"inputs": [X(shape=(1, 1))]}, {}, 400, ["data", "shape"]),
    ("missing-data", "id_int32", {"inputs": [{"name": "x", "datatype": "INT32", "shape": [1, 1]}]},
     {}, 400, ["data"]),
    ("string-in-fp32", "id_fp32", {"inputs": [X(dt="FP32", data=(1.0, "a"))]}, {}, 400, ["x", "data", "fp32"]),
    ("float-in-int32", "id_int32", {"inputs": [X(data=(1, 1.5))]}, {}, 400, ["x", "data", "int32"]),
    ("300-in-uint8", "id_uint8", {"inputs": [X(dt="UINT8", data=(1, 300))]}, {}, 400, ["x", "data", "uint8", "300"]),
    ("minus1-in-uint32", "id_uint32", {"inputs": [X(dt="UINT32", data=(1, -1))]}, {}, 400, ["x", "data", "uint32"]),
    ("128-in-int8", "id_int8", {"inputs": [X(dt="INT8", data=(1, 128))]}, {}, 400, ["x", "data", "int8"]),
    ("int64-overflow", "id_int64", {"inputs": [X(dt="INT64", data=(1, 9223372036854775808))]},
     {}, 400, ["x", "data", "int64"]),
    ("uint64-overflow", "id_uint64", {"inputs": [X(dt="UINT64", data=(1, 18446744073709551616))]},
     {}, 400, ["x", "data", "uint64", "number", "integer", "64"]),
    ("number-in-bytes", "id_bytes", {"inputs": [X(dt="BYTES", data=("a", 5))]}, {}, 400, ["x", "data", "bytes"]),
    ("int-in-bool", "id_bool", {"inputs": [X(dt="BOOL", data=(True, "yes"))]}, {}, 400, ["x", "data", "bool"]),
    ("null-in-int32", "id_int32", {"inputs": [X(data=(1, None))]}, {}, 400, ["x", "data", "int32"]),
    ("object-in-data", "id_int32", {"inputs": [X(data=(1, {"v": 2}))]}, {}, 400, ["x", "data", "int32"]),
    ("batch-over-max", "batched", {"inputs": [X(dt="FP32", shape=(5, 3), data=range(15))]},
     {}, 400, ["batch", "max_batch_size", "5", "4"]),
    ("rank-wrong-batched", "batched", {"inputs": [X(dt="FP32", shape=(3,), data=range(3))]},
     {}, 400, ["shape", "rank", "x"]),
    ("rank-wrong", "id_int32", {"inputs": [X(shape=(2,))]}, {}, 400, ["shape", "rank", "x"]),
    ("fixed-dim-wrong", "fixed", {"inputs": [X(shape=(3, 2), data=range(6))]}, {}, 400, ["shape", "x"]),
    ("outputs-not-array", "id_int32", {"inputs": [X()], "outputs": "y"}, {}, 400, ["outputs"]),
    ("unknown-output", "id_int32", {"inputs": [X()], "outputs": [{"name": "nope"}]}, {}, 400, ["nope"]),
    ("unknown-model", "nosuch_model", {"inputs": [X()]}, {}, 404, ["nosuch_model"]),
]

BLOB = np.array([1, 2], dtype="<i4").tobytes()  # 8 bytes, shape [1, 2] INT32


def _bin(size, blob=BLOB, shape=(1, 2), dt="INT32", hlen=None):
    h = json.dumps({"inputs": [{"name": "x", "datatype": dt, "shape": list(shape),
                                "parameters": {"binary_data_size": size}}]}).encode()
    return h + blob, {"Inference-Header-Content-Length": str(len(h)) if hlen is None else hlen}


BAD_BINARY = [
    ("bin-size-too-big",) + _bin(16) + (400, ["binary", "size", "x"]),
    ("bin-size-too-small",) + _bin(4) + (400, ["binary", "size", "x"]),
    ("bin-size-not-shape",) + _bin(8, shape=(1, 3)) + (400, ["binary", "size", "x", "shape"]),
    ("bin-trailing-bytes",) + _bin(8, blob=BLOB + b"\0\0\0\0") + (400, ["binary", "size", "bytes"]),
    ("bin-header-longer-than-body", _bin(8)[0], {"Inference-Header-Content-Length": "100000"},
     400, ["inference-header-content-length", "header"]),
    ("bin-header-not-numeric", _bin(8)[0], {"Inference-Header-Content-Length": "abc"},
     400, ["inference-header-content-length", "header"]),
    ("bin-header-negative", _bin(8)[0], {"Inference-Header-Content-Length": "-5"},
     400, ["inference-header-content-length", "header"]),
    ("bin-header-cuts-json", _bin(8)[0], {"Inference-Header-Content-Length": "10"}, 400, []),
    ("bin-size-negative",) + _bin(-8) + (400, ["binary", "size"]),
    ("bin-size-not-number",) + _bin("8") + (400, ["binary", "size"]),
]
BAD_BINARY_BYTES = [
    ("bin-bytes-bad-prefix",) + _bin(7, blob=struct.pack("<I", 100) + b"abc", shape=(1, 1), dt="BYTES")
    + (400, ["bytes", "x", "length", "size"]),
    ("bin-bytes-short-prefix",) + _bin(2, blob=b"\x01\x00", shape=(1, 1), dt="BYTES") + (400, []),
    ("bin-bytes-count-mismatch",) + _bin(10, blob=bytes_to_wire([b"ab", b"cd"])[:10], shape=(1, 2),
                                         dt="BYTES") + (400, []),
]


@pytest.mark.parametrize("case", BAD + [(c[0], "id_int32", *c[1:]) for c in BAD_BINARY]
                         + [(c[0], "id_bytes", *c[1:]) for c in BAD_BINARY_BYTES],
                         ids=lambda c: c[0])
def test_bad_request(srv, case):
    _, model, body, headers, status, words = case
    if isinstance(body, dict):
        r = srv.post(f"/v2/models/{model}/infer", json=body, headers=headers)
    else:
        r = srv.post(f"/v2/models/{model}/infer", data=body,
                     headers={"Content-Type": "application/json", **headers})
    assert r.status_code == status, (r.status_code, r.text)
    err = error_of(r)
    if words:
        assert any(w.lower() in err.lower() for w in words), err
    good_request_works(srv)
    # and another model answers correctly too
    r = srv.infer("pair", PAIR_INPUTS)
    assert r.status_code == 200, r.text


def test_body_over_max_request_bytes_413(limited):
    body = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [500], "data": [1.0] * 500}]})
    assert len(body) > 1000
    r = limited.post("/v2/models/id_fp32/infer", data=body)
    assert r.status_code == 413, r.text
    error_of(r)
    good_request_works(limited, "id_fp32")


def test_header_over_max_header_bytes(limited):
    r = limited.get("/v2/health/live", headers={"X-Big": "a" * 4000})
    assert r.status_code in (431, 400), r.text
    error_of(r)
    good_request_works(limited, "id_fp32")


def test_many_headers_over_max_header_bytes(limited):
    r = limited.get("/v2/health/live", headers={f"X-H{i}": "v" * 20 for i in range(200)})
    assert r.status_code in (431, 400), r.text
    good_request_works(limited, "id_fp32")


# ---------------------------------------------------------------------------
# HTTP hygiene (raw sockets)

def infer_bytes(model="id_int32", values=(1, 2, 3), extra_headers=None):
    body = json.dumps({"inputs": [{"name": "x", "datatype": "INT32", "shape": [1, len(values)],
                                   "data": list(values)}]}).encode()
    return http_request("POST", f"/v2/models/{model}/infer", body,
                        {"Content-Type": "application/json", **(extra_headers or {})})


def test_keep_alive_several_requests_one_connection(srv):
    with raw_connect(srv.port) as s:
        rd = Reader(s)
        for i in range(5):
            s.sendall(http_request("GET", "/v2/health/live"))
            assert rd.response().status == 200
            s.sendall(infer_bytes(values=(i, i + 1)))
            r = rd.response()
            assert r.status == 200, r
            assert flatten(r.json()["outputs"][0]["data"]) == [i, i + 1]
        s.sendall(http_request("GET", "/v2/models/nosuch"))
        assert rd.response().status == 404
        s.sendall(http_request("GET", "/v2"))
        assert rd.response().json()["name"] == "berth"


def test_pipelined_requests(srv):
    with raw_connect(srv.port) as s:
        s.sendall(infer_bytes(values=(1,)) + infer_bytes(values=(2,)) + http_request("GET", "/v2/health/ready"))
        rd = Reader(s)
        r1, r2, r3 = rd.response(), rd.response(), rd.response()
        assert flatten(r1.json()["outputs"][0]["data"]) == [1]
        assert flatten(r2.json()["outputs"][0]["data"]) == [2]
        assert r3.status == 200


def test_connection_close_honoured(srv):
    with raw_connect(srv.port) as s:
        s.sendall(http_request("GET", "/v2/health/live", headers={"Connection": "close"}))
        rd = Reader(s)
        assert rd.response().status == 200
        assert rd.closed_within(5)


def test_http10_request(srv):
    with raw_connect(srv.port) as s:
        s.sendall(b"GET /v2/health/live HTTP/1.0\r\n\r\n")
        rd = Reader(s)
        assert rd.response().status == 200
        assert rd.closed_within(5)


def chunked(body, size):
    out = b""
    for i in range(0, len(body), size):
        part = body[i:i + size]
        out += f"{len(part):x}\r\n".encode() + part + b"\r\n"
    return out + b"0\r\n\r\n"


def test_chunked_request_body(srv):
    values = list(range(-50, 50))
    body = json.dumps({"id": "chunky", "inputs": [{"name": "x", "datatype": "INT32", "shape": [4, 25],
                                                    "data": values}]}).encode()
    head = (b"POST /v2/models/id_int32/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    with raw_connect(srv.port) as s:
        s.sendall(head)
        enc = chunked(body, 7)
        # many small writes
        for i in range(0, len(enc), 64):
            s.sendall(enc[i:i + 64])
        rd = Reader(s)
        r = rd.response()
        assert r.status == 200, r
        assert r.json()["id"] == "chunky"
        assert flatten(r.json()["outputs"][0]["data"]) == values
        # connection still usable
        s.sendall(http_request("GET", "/v2/health/live"))
        assert rd.response().status == 200


def test_chunked_binary_request_body(srv):
    a = np.arange(50, dtype="<i4")
    body, headers = binary_body({"inputs": [{"name": "x", "datatype": "INT32", "shape": [5, 10],
                                             "parameters": {"binary_data_size": a.nbytes}}],
                                 "parameters": {"binary_data_output": True}}, [a.tobytes()])
    head = ("POST /v2/models/id_int32/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            f"Inference-Header-Content-Length: {headers['Inference-Header-Content-Length']}\r\n\r\n").encode()
    with raw_connect(srv.port) as s:
        s.sendall(head + chunked(body, 13))
        r = Reader(s).response()
        assert r.status == 200, r
        hlen = int(r.headers["inference-header-content-length"])
        assert r.body[hlen:] == a.tobytes()


def test_chunked_body_over_limit_413_and_closed(limited):
    head = b"POST /v2/models/id_fp32/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1000], "data": [' + \
        b",".join([b"1.0"] * 1000) + b"]}]}"
    with raw_connect(limited.port) as s:
        s.sendall(head)
        enc = chunked(body, 50)
        try:
            for i in range(0, len(enc), 200):
                s.sendall(enc[i:i + 200])
        except (BrokenPipeError, ConnectionResetError):
            pass
        rd = Reader(s)
        r = rd.response()
        assert r.status == 413, r
        assert set(r.json()) == {"error"}
        assert rd.closed_within(5)
    good_request_works(limited, "id_fp32")


def test_content_length_over_limit_raw_413(limited):
    with raw_connect(limited.port) as s:
        s.sendall(b"POST /v2/models/id_fp32/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n{")
        rd = Reader(s)
        r = rd.response()
        assert r.status == 413, r
        assert rd.closed_within(5)


@pytest.mark.parametrize("garbage", [
    b"\x00\xff\xfe\x01garbage\r\n\r\n",
    b"HELLO\r\n\r\n",
    b"GET /v2 HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    b"POST /v2/models/id_int32/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n{}{}{}{",
    b"POST /v2/models/id_int32/infer HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    b"GET /v2 HTTP/1.1\r\nNo colon header\r\n\r\n",
], ids=["binary", "no-version", "negative-length", "double-length", "bad-chunk", "bad-header"])
def test_garbage_gets_400_or_close(srv, garbage):
    with raw_connect(srv.port) as bad, raw_connect(srv.port) as good:
        bad.sendall(garbage)
        rd = Reader(bad)
        closed = rd.answered_or_closed_within(5)
        if rd.buf:
            assert rd.buf.startswith(b"HTTP/1.1 400") or rd.buf.startswith(b"HTTP/1.1 505") or \
                rd.buf.startswith(b"HTTP/1.0 400"), rd.buf[:200]
        else:
            assert closed, "server neither answered nor closed a garbage connection"
        good.sendall(infer_bytes(values=(9, 8)))
        r = Reader(good).response()
        assert r.status == 200
        assert flatten(r.json()["outputs"][0]["data"]) == [9, 8]
    assert srv.alive()


def test_silent_client_disconnected(limited):
    with raw_connect(limited.port) as s:
        t0 = time.time()
        assert Reader(s).closed_within(8), "silent client not disconnected"
        assert time.time() - t0 < 6


def test_idle_keepalive_connection_closed(limited):
    with raw_connect(limited.port) as s:
        s.sendall(http_request("GET", "/v2/health/live"))
        rd = Reader(s)
        assert rd.response().status == 200
        t0 = time.time()
        assert rd.closed_within(8), "idle keep-alive connection not closed"
        assert time.time() - t0 < 6


def test_partial_request_times_out(limited):
    with raw_connect(limited.port) as s:
        s.sendall(b"POST /v2/models/id_fp32/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n{\"inp")
        t0 = time.time()
        assert Reader(s).closed_within(8)
        assert time.time() - t0 < 6


def test_partial_header_times_out(limited):
    with raw_connect(limited.port) as s:
        s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Slow: ab")
        t0 = time.time()
        assert Reader(s).closed_within(8)
        assert time.time() - t0 < 6


def test_trickling_request_times_out(limited):
    """A client sending one byte every 0.25 s must not hold a connection forever."""
    msg = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 200
    with raw_connect(limited.port) as s:
        t0 = time.time()
        closed = False
        for i in range(len(msg)):
            if time.time() - t0 > 6:
                break
            try:
                s.sendall(msg[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if Reader(s).closed_within(0.25):
                closed = True
                break
        assert closed, "trickling client was never disconnected"
        assert time.time() - t0 < 6
    good_request_works(limited, "id_fp32")


def test_timeouts_do_not_hurt_other_clients(limited):
    silent = [raw_connect(limited.port) for _ in range(20)]
    try:
        for _ in range(5):
            good_request_works(limited, "id_fp32")
    finally:
        for s in silent:
            s.close()


# ---------------------------------------------------------------------------
# broken model.yaml

def test_broken_models_unavailable_with_reason(broken):
    idx = {e["name"]: e for e in broken.post("/v2/repository/index").json()}
    assert idx["good"]["state"] == "READY"
    for name, (_, key) in BROKEN.items():
        assert name in idx, idx
        e = idx[name]
        assert e["state"] == "UNAVAILABLE", e
        assert "model.yaml" in e["reason"], e
        assert key in e["reason"], e
    for name, (_, key) in BROKEN_BACKEND.items():
        e = idx[name]
        assert e["state"] == "UNAVAILABLE", e
        assert key in e["reason"], e


def test_server_ready_despite_broken_models(broken):
    assert broken.get("/v2/health/ready").status_code == 200


@pytest.mark.parametrize("name", list(BROKEN) + list(BROKEN_BACKEND))
def test_broken_model_endpoints(broken, name):
    r = broken.get(f"/v2/models/{name}/ready")
    assert r.status_code == 503, r.text
    r = broken.get(f"/v2/models/{name}/versions/1/ready")
    assert r.status_code == 503, r.text
    r = broken.get(f"/v2/models/{name}")
    assert r.status_code in (200, 503), r.text
    if r.status_code == 503:
        error_of(r)
    r = broken.infer(name, [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}])
    assert r.status_code in (503, 400), r.text
    error_of(r)
    good_request_works(broken, "good")


def test_symlink_leaving_repository_refused(broken):
    idx = {e["name"]: e for e in broken.post("/v2/repository/index").json()}
    assert "escaped" not in idx or idx["escaped"]["state"] != "READY", idx.get("escaped")
    r = broken.infer("escaped", [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}])
    assert r.status_code in (404, 503), r.text
    good_request_works(broken, "good")


# ---------------------------------------------------------------------------
# path safety

@pytest.mark.parametrize("path", [
    "/v2/models/../ready", "/v2/models/..", "/v2/models/%2e%2e", "/v2/models/%2e%2e/ready",
    "/v2/models/../etc", "/v2/models/../etc/infer", "/v2/models/..%2fetc", "/v2/models/..%2Fetc/ready",
    "/v2/models/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/v2/models/.", "/v2/models/./ready",
    "/v2/models/pair%00", "/v2/models/%00/ready", "/v2/models/%zz",
    "/v2/models//ready", "/v2/models/pair/versions/../1", "/v2/models/pair/versions/-1",
    "/v2/models/pair/versions/99999999999999999999999", "/v2/models/" + "a" * 1000,
    "/../../etc/passwd", "/v2/models/~root",
])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_path_safety(srv, path, method):
    body = b'{"inputs": []}' if method == "POST" else b""
    r = raw_roundtrip(srv.port, http_request(method, path, body))
    assert r.status in (400, 404, 405), r
    assert set(r.json()) == {"error"}, r
    assert srv.alive()


def test_path_query_string_ignored(srv):
    r = srv.get("/v2/models/pair/ready?x=1")
    assert r.status_code == 200


def test_absolute_form_and_odd_targets(srv):
    r = raw_roundtrip(srv.port, b"GET * HTTP/1.1\r\nHost: x\r\n\r\n")
    assert r.status in (400, 404, 405)
    assert srv.alive()


# ---------------------------------------------------------------------------
# more protocol details

MORE_BAD = [
    ("output-requested-twice", "id_int32", {"inputs": [X()], "outputs": [{"name": "y"}, {"name": "y"}]},
     {}, 400, ["y", "twice", "duplicate"]),
    ("output-not-object", "id_int32", {"inputs": [X()], "outputs": ["y"]}, {}, 400, ["outputs"]),
    ("id-not-string", "id_int32", {"id": 5, "inputs": [X()]}, {}, 400, ["id"]),
    ("binary-output-not-bool", "id_int32", {"inputs": [X()], "parameters": {"binary_data_output": "yes"}},
     {}, 400, ["binary_data_output"]),
    ("binary-data-not-bool", "id_int32", {"inputs": [X()], "outputs": [{"name": "y", "parameters": {"binary_data": 1}}]},
     {}, 400, ["binary_data"]),
    ("parameters-not-object", "id_int32", {"inputs": [X()], "parameters": [1]}, {}, 400, ["parameters"]),
    ("invalid-utf8", "id_bytes", b'{"inputs": [{"name": "x", "datatype": "BYTES", "shape": [1, 1], "data": ["\xff\xfe"]}]}',
     {}, 400, ["utf", "json"]),
    ("data-nested-too-deep", "id_int32",
     b'{"inputs": [{"name": "x", "datatype": "INT32", "shape": [1, 1], "data": ' + b"[" * 80 + b"1" + b"]" * 80 + b"}]}",
     {}, 400, ["deep", "nest", "depth"]),
    ("json-nested-absurdly", "id_int32", b'{"inputs": ' + b"[" * 100000 + b"]" * 100000 + b"}", {}, 400, []),
    ("nan-literal", "id_fp32", b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 1], "data": [NaN]}]}',
     {}, 400, []),
    ("header-length-empty", "id_int32", json.dumps({"inputs": [X()]}).encode(),
     {"Inference-Header-Content-Length": ""}, 400, ["inference-header-content-length"]),
    ("header-length-zero", "id_int32", json.dumps({"inputs": [X()]}).encode(),
     {"Inference-Header-Content-Length": "0"}, 400, []),
    ("header-length-huge", "id_int32", json.dumps({"inputs": [X()]}).encode(),
     {"Inference-Header-Content-Length": "99999999999999999999999"}, 400, ["inference-header-content-length"]),
]


@pytest.mark.parametrize("case", MORE_BAD, ids=lambda c: c[0])
def test_more_bad_requests(srv, case):
    test_bad_request(srv, case)


def test_id_with_escapes_echoed(srv):
    rid = "a\"b\\c\n\t\u2603\u0001 end"
    r = srv.post("/v2/models/id_int32/infer", json={"id": rid, "inputs": [X()]})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == rid


def test_bytes_control_characters_roundtrip(srv):
    values = ["a\u0000b", "\u0001\u001f\u007f", "\r\n", "\"\\/", "\U0001F600", "\u00e9"]
    r = srv.infer("id_bytes", [{"name": "x", "datatype": "BYTES", "shape": [2, 3], "data": values}])
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == values


def test_non_utf8_bytes_with_json_output_is_valid_json(srv):
    """Binary BYTES that are not UTF-8, answered as JSON: the body must still be valid JSON (or a 400)."""
    blob = bytes_to_wire([b"\xff\xfe", b"ok"])
    body, headers = binary_body({"inputs": [{"name": "x", "datatype": "BYTES", "shape": [1, 2],
                                             "parameters": {"binary_data_size": len(blob)}}]}, [blob])
    r = srv.post("/v2/models/id_bytes/infer", data=body, headers=headers)
    assert r.status_code in (200, 400), r.content
    json.loads(r.content.decode("utf-8"))  # strict: raises on invalid UTF-8


@pytest.mark.parametrize("raw", [
    b"GET /v2/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /v2/models/\xc3\x28/ready HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /v2/models/id_int32/infer HTTP/1.1\r\nHost: x\r\nInference-Header-Content-Length: \xff1\r\n"
    b"Content-Length: 2\r\n\r\n{}",
], ids=["path", "model-name", "header-value"])
def test_error_bodies_are_valid_json_for_non_utf8_input(srv, raw):
    r = raw_roundtrip(srv.port, raw)
    assert r.status in (400, 404), r
    body = json.loads(r.body.decode("utf-8"))  # strict: raises on invalid UTF-8
    assert set(body) == {"error"}


def test_binary_output_request_level_with_per_output_override(srv):
    r = srv.post("/v2/models/pair/infer",
                 json={"inputs": PAIR_INPUTS, "parameters": {"binary_data_output": True},
                       "outputs": [{"name": "a_out"}, {"name": "b_out", "parameters": {"binary_data": False}}]})
    header, raw = parse_infer_response(r)
    outs = {o["name"]: o for o in header["outputs"]}
    assert raw == {"a_out": np.array([1.0, 2.0], dtype="<f4").tobytes()}
    assert flatten(outs["b_out"]["data"]) == [3, 4, 5]


def test_binary_output_request_level_without_outputs(srv):
    r = srv.post("/v2/models/pair/infer", json={"inputs": PAIR_INPUTS, "parameters": {"binary_data_output": True}})
    header, raw = parse_infer_response(r)
    assert raw == {"a_out": np.array([1.0, 2.0], dtype="<f4").tobytes(),
                   "b_out": np.array([3, 4, 5], dtype="<i4").tobytes()}


def test_large_binary_roundtrip(srv):
    a = np.random.default_rng(0).standard_normal(1 << 20).astype("<f4")  # 4 MiB
    body, headers = binary_body({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1024, 1024],
                                             "parameters": {"binary_data_size": a.nbytes}}],
                                 "parameters": {"binary_data_output": True}}, [a.tobytes()])
    r = srv.post("/v2/models/id_fp32/infer", data=body, headers=headers)
    header, raw = parse_infer_response(r)
    assert raw["y"] == a.tobytes()


def test_405_has_allow_header(srv):
    r = srv.get("/v2/models/pair/infer")
    assert r.status_code == 405
    assert r.headers.get("Allow") == "POST"
    r = requests.delete(srv.url + "/v2/health/ready", timeout=10)
    assert r.status_code == 405
    assert r.headers.get("Allow") == "GET"


def test_expect_100_continue(srv):
    body = json.dumps({"inputs": [X(data=(4, 2))]}).encode()
    head = (f"POST /v2/models/id_int32/infer HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
            "Expect: 100-continue\r\n\r\n").encode()
    with raw_connect(srv.port) as s:
        s.sendall(head)
        rd = Reader(s)
        r = rd.response()
        assert r.status == 100, r
        s.sendall(body)
        r = rd.response()
        assert r.status == 200, r
        assert flatten(r.json()["outputs"][0]["data"]) == [4, 2]


def test_chunked_with_extensions_and_trailer(srv):
    body = json.dumps({"inputs": [X(data=(6, 7))]}).encode()
    enc = b"".join(f"{len(body[i:i + 5]):x};ext=1\r\n".encode() + body[i:i + 5] + b"\r\n"
                   for i in range(0, len(body), 5)) + b"0\r\nX-Trailer: yes\r\n\r\n"
    head = b"POST /v2/models/id_int32/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    r = raw_roundtrip(srv.port, head + enc)
    assert r.status == 200, r
    assert flatten(r.json()["outputs"][0]["data"]) == [6, 7]


def test_repository_index_ready_filter(broken):
    r = broken.post("/v2/repository/index", json={"ready": True})
    assert r.status_code == 200, r.text
    assert [e["name"] for e in r.json()] == ["good"]
    r = broken.post("/v2/repository/index", json={"ready": False})
    assert len(r.json()) == 1 + len(BROKEN) + len(BROKEN_BACKEND) + ("escaped" in {e["name"] for e in r.json()})
    r = broken.post("/v2/repository/index", json={"ready": "yes"})
    assert r.status_code == 400
    assert "ready" in error_of(r)
    r = broken.post("/v2/repository/index", data=b"{nope")
    assert r.status_code == 400
    error_of(r)


def test_highest_version_serves(tmp_path, start_server):
    repo = tmp_path / "repo"
    write_model(repo, "multi", identity_yaml([("x", "INT32", [-1])], [("y", "INT32", [-1])]), versions=(1, 3, 2))
    (repo / "multi" / "notaversion").mkdir()
    s = start_server(repo)
    idx = s.post("/v2/repository/index").json()
    assert [(e["name"], e["version"], e["state"]) for e in idx] == [("multi", "3", "READY")]
    m = s.get("/v2/models/multi").json()
    assert "3" in m["versions"]
    r = s.infer("multi", [{"name": "x", "datatype": "INT32", "shape": [1], "data": [1]}])
    assert r.json()["model_version"] == "3"
    r = s.infer("multi", [{"name": "x", "datatype": "INT32", "shape": [1], "data": [1]}], version="3")
    assert r.status_code == 200 and r.json()["model_version"] == "3"
    assert s.get("/v2/models/multi/versions/3/ready").status_code == 200
    r = s.infer("multi", [{"name": "x", "datatype": "INT32", "shape": [1], "data": [1]}], version="4")
    assert r.status_code == 404
    error_of(r)
    # version 1 exists on disk but is not served
    r = s.get("/v2/models/multi/versions/1/ready")
    assert r.status_code in (404, 503), r.text


def test_repository_with_odd_entries(tmp_path, start_server):
    repo = tmp_path / "repo"
    write_model(repo, "ok", identity_yaml([("x", "INT32", [-1])], [("y", "INT32", [-1])]))
    write_model(repo, "my.model-v2_X", identity_yaml([("x", "INT32", [-1])], [("y", "INT32", [-1])]))
    write_model(repo, "no_versions", identity_yaml([("x", "INT32", [-1])], [("y", "INT32", [-1])]), versions=())
    (repo / "no_yaml" / "1").mkdir(parents=True)
    (repo / "stray_file").write_text("not a model")
    (repo / ".hidden").mkdir()
    (repo / "bad name!").mkdir()
    s = start_server(repo)
    idx = {e["name"]: e for e in s.post("/v2/repository/index").json()}
    assert idx["ok"]["state"] == "READY"
    for name in ("no_versions", "no_yaml"):
        if name in idx:
            assert idx[name]["state"] == "UNAVAILABLE" and idx[name]["reason"], idx[name]
    assert ".hidden" not in idx and "bad name!" not in idx
    r = s.infer("ok", [{"name": "x", "datatype": "INT32", "shape": [1], "data": [5]}])
    assert r.status_code == 200 and flatten(r.json()["outputs"][0]["data"]) == [5]

    assert idx["my.model-v2_X"]["state"] == "READY"
    r = s.infer("my.model-v2_X", [{"name": "x", "datatype": "INT32", "shape": [2], "data": [5, 6]}])
    assert r.status_code == 200 and r.json()["model_name"] == "my.model-v2_X"


def test_lowercase_binary_header_and_empty_binary_tensor(srv):
    h = json.dumps({"inputs": [{"name": "x", "datatype": "INT32", "shape": [1, 0],
                                "parameters": {"binary_data_size": 0}}]}).encode()
    raw = (b"POST /v2/models/id_int32/infer HTTP/1.1\r\nHost: x\r\ninference-header-content-length: %d\r\n"
           b"Content-Length: %d\r\n\r\n" % (len(h), len(h))) + h
    r = raw_roundtrip(srv.port, raw)
    assert r.status == 200, r
    [out] = r.json()["outputs"]
    assert out["shape"] == [1, 0] and flatten(out["data"]) == []


def test_fp_special_values_from_binary(srv):
    a = np.array([np.inf, -np.inf, np.nan, -0.0], dtype="<f4")
    body, headers = binary_body({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4],
                                             "parameters": {"binary_data_size": a.nbytes}}]}, [a.tobytes()])
    r = srv.post("/v2/models/id_fp32/infer", data=body, headers=headers)
    assert r.status_code == 200, r.text
    got = np.array(r.json()["outputs"][0]["data"], dtype="<f4")
    assert got[0] == np.inf and got[1] == -np.inf and np.isnan(got[2]) and got[3] == 0.0


def test_batch_size_mismatch_between_inputs(tmp_path, start_server):
    repo = tmp_path / "repo"
    write_model(repo, "b2", identity_yaml([("a", "INT32", [2]), ("b", "INT32", [1])],
                                          [("a_out", "INT32", [2]), ("b_out", "INT32", [1])], mbs=8))
    s = start_server(repo)
    ok = s.infer("b2", [{"name": "a", "datatype": "INT32", "shape": [3, 2], "data": list(range(6))},
                        {"name": "b", "datatype": "INT32", "shape": [3, 1], "data": [7, 8, 9]}])
    assert ok.status_code == 200, ok.text
    assert [o["shape"] for o in ok.json()["outputs"]] == [[3, 2], [3, 1]]
    r = s.infer("b2", [{"name": "a", "datatype": "INT32", "shape": [3, 2], "data": list(range(6))},
                       {"name": "b", "datatype": "INT32", "shape": [2, 1], "data": [7, 8]}])
    assert r.status_code == 400, r.text
    assert "batch" in error_of(r)


def test_absolute_form_request_target(srv):
    """RFC 9112 3.2.2: a server MUST accept the absolute-form request-target."""
    r = raw_roundtrip(srv.port, b"GET http://127.0.0.1/v2/models/pair/ready HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert r.status == 200, r


def test_content_length_and_chunked_together_rejected(srv):
    body = json.dumps({"inputs": [X()]}).encode()
    raw = (b"POST /v2/models/id_int32/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n") + chunked(body, 10)
    with raw_connect(srv.port) as s:
        s.sendall(raw)
        rd = Reader(s)
        closed = rd.answered_or_closed_within(5)
        # either refused (400) or the chunked body wins; never Content-Length framing
        assert closed or rd.buf.startswith((b"HTTP/1.1 400", b"HTTP/1.1 200")), rd.buf[:200]
    assert srv.alive()


def _padded_body(total):
    base = {"id": "", "inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1.0]}]}
    n = len(json.dumps(base))
    base["id"] = "p" * (total - n)
    body = json.dumps(base).encode()
    assert len(body) == total
    return body


def test_max_request_bytes_boundary(limited):
    r = limited.post("/v2/models/id_fp32/infer", data=_padded_body(1000))
    assert r.status_code == 200, r.text
    r = limited.post("/v2/models/id_fp32/infer", data=_padded_body(1001))
    assert r.status_code == 413, r.text
    error_of(r)


def test_many_pipelined_requests(srv):
    n = 100
    with raw_connect(srv.port) as s:
        s.sendall(b"".join(infer_bytes(values=(i,)) for i in range(n)))
        rd = Reader(s)
        for i in range(n):
            r = rd.response()
            assert r.status == 200, (i, r)
            assert flatten(r.json()["outputs"][0]["data"]) == [i]


def test_connection_survives_handler_errors(srv):
    with raw_connect(srv.port) as s:
        rd = Reader(s)
        for req, status in [(http_request("POST", "/v2/models/id_int32/infer", b"{bad"), 400),
                            (http_request("GET", "/v2/models/nosuch"), 404),
                            (http_request("GET", "/v2/models/id_int32/infer"), 405),
                            (http_request("POST", "/v2/models/fail/infer",
                                          json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1],
                                                                  "data": [1]}]}).encode()), 500),
                            (infer_bytes(values=(3,)), 200)]:
            s.sendall(req)
            r = rd.response()
            assert r.status == status, r
            assert r.headers.get("connection", "").lower() != "close", r


def test_content_types(srv):
    r = srv.infer("id_int32", [X()])
    assert r.headers["Content-Type"].startswith("application/json")
    r = srv.post("/v2/models/id_int32/infer", json={"inputs": [X()], "parameters": {"binary_data_output": True}})
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/octet-stream")
    r = srv.get("/v2/models/nosuch")
    assert r.headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("path", ["/v2", "/v2/health/live", "/v2/models/pair", "/v2/nosuch"])
def test_head_response_has_no_body(srv, path):
    """RFC 9110 9.3.2: a response to HEAD carries no content, whatever its status; otherwise the
    bytes are taken as the start of the next response on a kept-alive connection."""
    with raw_connect(srv.port) as s:
        s.sendall(http_request("HEAD", path) + http_request("GET", "/v2/health/live"))
        rd = Reader(s)
        while b"\r\n\r\n" not in rd.buf:
            rd._fill()
        head, rd.buf = rd.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 "), head
        while len(rd.buf) < 9:
            rd._fill()
        # the GET's response must follow the HEAD's header block directly
        assert rd.buf.startswith(b"HTTP/1.1 "), (head, rd.buf[:200])
        r = rd.response()
        assert r.status == 200, r


def test_request_line_over_header_limit(limited):
    r = raw_roundtrip(limited.port, http_request("GET", "/v2/models/" + "a" * 5000 + "/ready"))
    assert r.status in (400, 414, 431), r
    assert set(r.json()) == {"error"}
    good_request_works(limited, "id_fp32")
