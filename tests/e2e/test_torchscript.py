"""TorchScript backend end to end: the example models, binary tensors,
tuple/dict results, datatypes, runtime failures and models that fail to load.

Outputs are compared with Python torch running the very same model.pt.
"""
import io
import json
import re
import random
import time

import numpy as np
import pytest

from conftest import EXAMPLES, error_of, write_model

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch")

MLP_PT = EXAMPLES / "mlp" / "1" / "model.pt"
MULTIPLY_PT = EXAMPLES / "multiply" / "1" / "model.pt"

NP_DTYPES = {
    "BOOL": np.bool_, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32,
    "INT64": np.int64, "UINT8": np.uint8, "FP16": np.float16, "FP32": np.float32,
    "FP64": np.float64,
}
TORCH_DTYPES = {
    "BOOL": torch.bool, "INT8": torch.int8, "INT16": torch.int16, "INT32": torch.int32,
    "INT64": torch.int64, "UINT8": torch.uint8, "FP16": torch.float16,
    "FP32": torch.float32, "FP64": torch.float64,
}


# ---------------------------------------------------------------- helpers

def scripted_bytes(module):
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(module.eval()), buf)
    return buf.getvalue()


def torch_mlp():
    return torch.jit.load(str(MLP_PT))


def mlp_reference(x):
    with torch.no_grad():
        return torch_mlp()(torch.from_numpy(x)).numpy()


def infer_binary(server, model, inputs, binary_output=True, extra=None):
    """POSTs inputs [(name, datatype, ndarray)] with the binary tensor extension."""
    header = {"inputs": [], **(extra or {})}
    blobs = []
    for name, datatype, arr in inputs:
        arr = np.ascontiguousarray(arr, dtype=NP_DTYPES[datatype]).astype(
            np.dtype(NP_DTYPES[datatype]).newbyteorder("<"), copy=False)
        raw = arr.tobytes()
        header["inputs"].append({"name": name, "datatype": datatype,
                                 "shape": list(arr.shape),
                                 "parameters": {"binary_data_size": len(raw)}})
        blobs.append(raw)
    if binary_output:
        header.setdefault("parameters", {})["binary_data_output"] = True
    head = json.dumps(header).encode()
    return server.post(f"/v2/models/{model}/infer", data=head + b"".join(blobs),
                       headers={"Inference-Header-Content-Length": str(len(head)),
                                "Content-Type": "application/octet-stream"})


def decode_response(resp):
    """Returns (json_header, {output name: ndarray}) for JSON or binary responses."""
    assert resp.status_code == 200, (resp.status_code, resp.text[:2000])
    hlen = resp.headers.get("Inference-Header-Content-Length")
    body = resp.content
    if hlen is None:
        header, rest = json.loads(body), b""
    else:
        n = int(hlen)
        assert 0 < n <= len(body), (n, len(body))
        header, rest = json.loads(body[:n]), body[n:]
    arrays = {}
    offset = 0
    for out in header["outputs"]:
        dt = NP_DTYPES[out["datatype"]]
        size = (out.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            assert "data" not in out, out
            chunk = rest[offset:offset + size]
            assert len(chunk) == size, (out, len(rest), offset)
            offset += size
            arr = np.frombuffer(chunk, dtype=np.dtype(dt).newbyteorder("<")).astype(dt)
        else:
            arr = np.array(out["data"], dtype=dt)
        arrays[out["name"]] = arr.reshape(out["shape"])
    assert offset == len(rest), f"{len(rest) - offset} trailing bytes after binary outputs"
    return header, arrays


def index_of(server):
    r = server.post("/v2/repository/index")
    assert r.status_code == 200, r.text
    return {e["name"]: e for e in r.json()}


def wait_loaded(server, names, timeout=60):
    """Waits until every model in names is listed and none is still loading;
    returns the repository index."""
    deadline = time.time() + timeout
    while True:
        idx = index_of(server)
        done = set(names) <= set(idx) and \
            all(e["state"] in ("READY", "UNAVAILABLE") for e in idx.values())
        if done or time.time() > deadline:
            return idx
        time.sleep(0.1)


MULTIPLY_YAML = """\
backend: torchscript
max_batch_size: 0
inputs:
  - {name: x, datatype: FP32, shape: [-1]}
  - {name: y, datatype: FP32, shape: [-1]}
outputs:
  - {name: z, datatype: FP32, shape: [-1]}
"""


def add_good_multiply(repo, name="good"):
    write_model(repo, name, MULTIPLY_YAML, files={"1/model.pt": MULTIPLY_PT.read_bytes()})


def check_good_multiply(server, name="good"):
    r = server.infer(name, [{"name": "x", "datatype": "FP32", "shape": [2], "data": [2, 3]},
                            {"name": "y", "datatype": "FP32", "shape": [2], "data": [5, 7]}])
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == [10.0, 21.0]


# ---------------------------------------------------------------- mlp

@pytest.mark.parametrize("batch", [1, 7, 64])
def test_mlp_json_matches_torch(examples_server, batch):
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((batch, 16)).astype(np.float32)
    r = examples_server.infer("mlp", [{"name": "x", "datatype": "FP32", "shape": [batch, 16],
                                       "data": [float(v) for v in x.ravel()]}], id=f"req-{batch}")
    header, out = decode_response(r)
    assert r.headers.get("Inference-Header-Content-Length") is None
    assert header["model_name"] == "mlp"
    assert header["model_version"] == "1"
    assert header["id"] == f"req-{batch}"
    assert len(header["outputs"]) == 1
    o = header["outputs"][0]
    assert o["name"] == "probs" and o["datatype"] == "FP32" and o["shape"] == [batch, 4]
    np.testing.assert_allclose(out["probs"], mlp_reference(x), rtol=0, atol=1e-5)


def test_mlp_nested_json_data(examples_server):
    x = np.random.default_rng(3).standard_normal((2, 16)).astype(np.float32)
    r = examples_server.infer("mlp", [{"name": "x", "datatype": "FP32", "shape": [2, 16],
                                       "data": x.astype(float).tolist()}])
    _, out = decode_response(r)
    np.testing.assert_allclose(out["probs"], mlp_reference(x), rtol=0, atol=1e-5)


@pytest.mark.parametrize("batch", [1, 7, 64])
def test_mlp_binary_output_matches_torch(examples_server, batch):
    rng = np.random.default_rng(100 + batch)
    x = rng.standard_normal((batch, 16)).astype(np.float32)
    r = examples_server.infer("mlp", [{"name": "x", "datatype": "FP32", "shape": [batch, 16],
                                       "data": [float(v) for v in x.ravel()]}],
                              parameters={"binary_data_output": True})
    assert r.status_code == 200, r.text[:2000]
    assert "Inference-Header-Content-Length" in r.headers
    header, out = decode_response(r)
    o = header["outputs"][0]
    assert o["parameters"]["binary_data_size"] == batch * 4 * 4
    assert o["shape"] == [batch, 4] and o["datatype"] == "FP32"
    np.testing.assert_allclose(out["probs"], mlp_reference(x), rtol=0, atol=1e-5)


@pytest.mark.parametrize("batch", [1, 7, 64])
@pytest.mark.parametrize("binary_output", [False, True])
def test_mlp_binary_input_matches_torch(examples_server, batch, binary_output):
    rng = np.random.default_rng(200 + batch)
    x = rng.standard_normal((batch, 16)).astype(np.float32)
    r = infer_binary(examples_server, "mlp", [("x", "FP32", x)], binary_output=binary_output)
    header, out = decode_response(r)
    assert ("Inference-Header-Content-Length" in r.headers) == binary_output
    np.testing.assert_allclose(out["probs"], mlp_reference(x), rtol=0, atol=1e-5)


def test_mlp_per_output_binary_data(examples_server):
    x = np.random.default_rng(5).standard_normal((3, 16)).astype(np.float32)
    r = examples_server.infer("mlp", [{"name": "x", "datatype": "FP32", "shape": [3, 16],
                                       "data": [float(v) for v in x.ravel()]}],
                              outputs=[{"name": "probs", "parameters": {"binary_data": True}}])
    assert "Inference-Header-Content-Length" in r.headers
    header, out = decode_response(r)
    assert header["outputs"][0]["parameters"]["binary_data_size"] == 3 * 4 * 4
    np.testing.assert_allclose(out["probs"], mlp_reference(x), rtol=0, atol=1e-5)


def test_mlp_probabilities_sum_to_one(examples_server):
    r = examples_server.infer("mlp", [{"name": "x", "datatype": "FP32", "shape": [1, 16],
                                       "data": list(range(16))}])
    _, out = decode_response(r)
    np.testing.assert_allclose(out["probs"].sum(axis=-1), [1.0], atol=1e-5)
    np.testing.assert_allclose(out["probs"], mlp_reference(np.arange(16, dtype=np.float32)
                                                          .reshape(1, 16)), atol=1e-5)


def test_mlp_metadata(examples_server):
    r = examples_server.get("/v2/models/mlp")
    assert r.status_code == 200, r.text
    m = r.json()
    assert m["name"] == "mlp"
    assert "1" in m["versions"]
    assert m["platform"] == "torchscript"
    assert m["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 16]}]
    assert m["outputs"] == [{"name": "probs", "datatype": "FP32", "shape": [-1, 4]}]
    r1 = examples_server.get("/v2/models/mlp/versions/1")
    assert r1.status_code == 200, r1.text
    assert r1.json()["inputs"] == m["inputs"]


def test_examples_all_ready(examples_server):
    idx = index_of(examples_server)
    for name in ("mlp", "multiply", "random_matrix", "identity"):
        assert idx[name]["state"] == "READY", idx
        assert examples_server.get(f"/v2/models/{name}/ready").status_code == 200


# ---------------------------------------------------------------- multiply

def test_multiply_scalar(examples_server):
    r = examples_server.infer("multiply", [
        {"name": "x", "datatype": "FP32", "shape": [1], "data": [3]},
        {"name": "y", "datatype": "FP32", "shape": [1], "data": [4]}])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_name"] == "multiply"
    assert body["outputs"] == [{"name": "z", "datatype": "FP32", "shape": [1], "data": [12.0]}]


def test_multiply_vectors(examples_server):
    x = [1.5, -2.0, 0.0, 4.25, 100.0]
    y = [2.0, 3.0, 7.0, -1.0, 0.5]
    r = examples_server.infer("multiply", [
        {"name": "x", "datatype": "FP32", "shape": [5], "data": x},
        {"name": "y", "datatype": "FP32", "shape": [5], "data": y}])
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    assert out["shape"] == [5]
    assert out["data"] == [a * b for a, b in zip(x, y)]


def test_multiply_binary_roundtrip(examples_server):
    x = np.linspace(-3, 3, 11, dtype=np.float32)
    y = np.linspace(1, 2, 11, dtype=np.float32)
    r = infer_binary(examples_server, "multiply", [("x", "FP32", x), ("y", "FP32", y)])
    _, out = decode_response(r)
    np.testing.assert_array_equal(out["z"], x * y)


# ---------------------------------------------------------------- random_matrix

def test_random_matrix(examples_server):
    r1 = examples_server.infer("random_matrix", [])
    r2 = examples_server.infer("random_matrix", [])
    h1, o1 = decode_response(r1)
    _, o2 = decode_response(r2)
    out = h1["outputs"][0]
    assert out["name"] == "matrix" and out["datatype"] == "FP32" and out["shape"] == [10, 10]
    m = o1["matrix"]
    assert m.shape == (10, 10)
    assert abs(float(m.mean())) < 0.5, m.mean()
    assert 0.6 < float(m.std()) < 1.4, m.std()
    assert not np.array_equal(o1["matrix"], o2["matrix"])


# ---------------------------------------------------------------- tuple / dict results

class TupleModel(torch.nn.Module):
    def forward(self, x: torch.Tensor):
        return x + 1.0, (x * 2.0).sum(dim=-1, keepdim=True)


class DictModel(torch.nn.Module):
    def forward(self, x: torch.Tensor):
        # insertion order differs from the config order on purpose
        return {"doubled": x * 2.0, "plus_one": x + 1.0}


TUPLE_YAML = """\
backend: torchscript
max_batch_size: 4
inputs:
  - {name: x, datatype: FP32, shape: [3]}
outputs:
  - {name: plus_one, datatype: FP32, shape: [3]}
  - {name: total, datatype: FP32, shape: [1]}
"""

DICT_YAML = """\
backend: torchscript
max_batch_size: 4
inputs:
  - {name: x, datatype: FP32, shape: [3]}
outputs:
  - {name: plus_one, datatype: FP32, shape: [3]}
  - {name: doubled, datatype: FP32, shape: [3]}
"""


@pytest.fixture
def multi_output_server(tmp_path, start_server):
    repo = tmp_path / "repo"
    write_model(repo, "tuple", TUPLE_YAML, files={"1/model.pt": scripted_bytes(TupleModel())})
    write_model(repo, "dict", DICT_YAML, files={"1/model.pt": scripted_bytes(DictModel())})
    return start_server(repo)


X23 = [[1.0, 2.0, 3.0], [-1.0, 0.5, 10.0]]


def test_tuple_result(multi_output_server):
    r = multi_output_server.infer("tuple", [{"name": "x", "datatype": "FP32", "shape": [2, 3],
                                             "data": X23}])
    header, out = decode_response(r)
    assert [o["name"] for o in header["outputs"]] == ["plus_one", "total"]
    ref = TupleModel()(torch.tensor(X23))
    np.testing.assert_array_equal(out["plus_one"], ref[0].numpy())
    np.testing.assert_array_equal(out["total"], ref[1].numpy())
    assert header["outputs"][1]["shape"] == [2, 1]


def test_tuple_result_output_subset(multi_output_server):
    r = multi_output_server.infer("tuple", [{"name": "x", "datatype": "FP32", "shape": [2, 3],
                                             "data": X23}], outputs=[{"name": "total"}])
    header, out = decode_response(r)
    assert [o["name"] for o in header["outputs"]] == ["total"]
    np.testing.assert_array_equal(out["total"], [[12.0], [19.0]])


def test_dict_result_mapped_by_name(multi_output_server):
    r = multi_output_server.infer("dict", [{"name": "x", "datatype": "FP32", "shape": [2, 3],
                                            "data": X23}])
    header, out = decode_response(r)
    ref = DictModel()(torch.tensor(X23))
    assert sorted(o["name"] for o in header["outputs"]) == ["doubled", "plus_one"]
    np.testing.assert_array_equal(out["plus_one"], ref["plus_one"].numpy())
    np.testing.assert_array_equal(out["doubled"], ref["doubled"].numpy())


def test_dict_result_binary(multi_output_server):
    x = np.array(X23, dtype=np.float32)
    r = infer_binary(multi_output_server, "dict", [("x", "FP32", x)])
    _, out = decode_response(r)
    np.testing.assert_array_equal(out["plus_one"], x + 1)
    np.testing.assert_array_equal(out["doubled"], x * 2)


# ---------------------------------------------------------------- datatypes

class Double(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2


class Negate(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.logical_not(x)


DTYPE_VALUES = {
    "BOOL": [[True, False, True], [False, False, True]],
    "INT8": [[-64, 0, 63], [1, -1, 7]],
    "INT16": [[-16000, 0, 16000], [3, -3, 255]],
    "INT32": [[-1000000000, 0, 1000000000], [3, -3, 65537]],
    "INT64": [[-(2 ** 61), 0, 2 ** 61 + 3], [3, -3, 2 ** 40]],
    "UINT8": [[0, 1, 127], [100, 2, 60]],
    "FP16": [[0.5, -1.25, 1024.0], [0.0, 3.0, -0.001]],
    "FP64": [[0.1, -1e300, 1e-300], [3.141592653589793, 0.0, -2.5]],
}


@pytest.fixture(scope="module")
def dtype_server(tmp_path_factory):
    from conftest import Server
    repo = tmp_path_factory.mktemp("dtypes") / "repo"
    for dt in DTYPE_VALUES:
        module = Negate() if dt == "BOOL" else Double()
        yaml = (f"backend: torchscript\nmax_batch_size: 4\n"
                f"inputs:\n  - {{name: x, datatype: {dt}, shape: [3]}}\n"
                f"outputs:\n  - {{name: y, datatype: {dt}, shape: [3]}}\n")
        write_model(repo, f"dt_{dt.lower()}", yaml, files={"1/model.pt": scripted_bytes(module)})
    s = Server(repo)
    yield s
    s.stop()


def dtype_reference(dt):
    module = torch.jit.script(Negate() if dt == "BOOL" else Double())
    x = torch.tensor(DTYPE_VALUES[dt], dtype=TORCH_DTYPES[dt])
    y = module(x)
    assert y.dtype == TORCH_DTYPES[dt]
    return y.numpy()


@pytest.mark.parametrize("dt", list(DTYPE_VALUES))
def test_dtype_roundtrip_json(dtype_server, dt):
    r = dtype_server.infer(f"dt_{dt.lower()}", [{"name": "x", "datatype": dt, "shape": [2, 3],
                                                 "data": DTYPE_VALUES[dt]}])
    header, out = decode_response(r)
    o = header["outputs"][0]
    assert o["datatype"] == dt and o["shape"] == [2, 3]
    if dt == "BOOL":
        assert all(isinstance(v, bool) for v in np.array(o["data"], dtype=object).ravel()), o
    np.testing.assert_array_equal(out["y"], dtype_reference(dt))


@pytest.mark.parametrize("dt", list(DTYPE_VALUES))
def test_dtype_roundtrip_binary(dtype_server, dt):
    x = np.array(DTYPE_VALUES[dt], dtype=NP_DTYPES[dt])
    r = infer_binary(dtype_server, f"dt_{dt.lower()}", [("x", dt, x)])
    header, out = decode_response(r)
    o = header["outputs"][0]
    assert o["datatype"] == dt
    assert o["parameters"]["binary_data_size"] == x.size * np.dtype(NP_DTYPES[dt]).itemsize
    np.testing.assert_array_equal(out["y"], dtype_reference(dt))


# ---------------------------------------------------------------- runtime failures

class Boom(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch._assert(bool(x.sum() < 100.0), "boom: sum too large")
        return x


class BadMatmul(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(x, self.w)


ONE_IN_ONE_OUT = """\
backend: torchscript
max_batch_size: 0
inputs:
  - {name: x, datatype: FP32, shape: [-1]}
outputs:
  - {name: y, datatype: FP32, shape: [-1]}
"""


@pytest.fixture
def failing_server(tmp_path, start_server):
    repo = tmp_path / "repo"
    write_model(repo, "boom", ONE_IN_ONE_OUT, files={"1/model.pt": scripted_bytes(Boom())})
    # a warm-up request ([1] zeros) would fail it: this one is about failing at run time
    write_model(repo, "badmatmul", ONE_IN_ONE_OUT + "warmup: {requests: 0}\n",
                files={"1/model.pt": scripted_bytes(BadMatmul())})
    add_good_multiply(repo)
    return start_server(repo)


def test_runtime_assert_is_500_and_server_survives(failing_server):
    s = failing_server
    ok = s.infer("boom", [{"name": "x", "datatype": "FP32", "shape": [3], "data": [1, 2, 3]}])
    assert ok.status_code == 200, ok.text
    assert ok.json()["outputs"][0]["data"] == [1.0, 2.0, 3.0]
    for _ in range(3):
        r = s.infer("boom", [{"name": "x", "datatype": "FP32", "shape": [3],
                              "data": [100, 200, 300]}])
        assert r.status_code == 500, (r.status_code, r.text)
        assert "boom: sum too large" in error_of(r)
    assert s.alive()
    check_good_multiply(s)
    ok = s.infer("boom", [{"name": "x", "datatype": "FP32", "shape": [1], "data": [5]}])
    assert ok.status_code == 200, ok.text


def test_torchscript_errors_are_one_line_without_server_paths(failing_server):
    s = failing_server
    for name, data in [("boom", [100, 200, 300]), ("badmatmul", [1] * 5)]:
        r = s.infer(name, [{"name": "x", "datatype": "FP32", "shape": [len(data)], "data": data}])
        assert r.status_code == 500, r.text
        msg = error_of(r)
        assert "\n" not in msg and "Traceback" not in msg, msg
        assert not re.search(r"(^|[ (\"'])/[^ ]*/", msg), msg  # no absolute paths
        assert "RuntimeError" in msg or "Error" in msg, msg


def test_runtime_shape_mismatch_is_500(failing_server):
    s = failing_server
    r = s.infer("badmatmul", [{"name": "x", "datatype": "FP32", "shape": [5], "data": [1] * 5}])
    assert r.status_code == 500, (r.status_code, r.text)
    assert "shapes cannot be multiplied" in error_of(r)
    ok = s.infer("badmatmul", [{"name": "x", "datatype": "FP32", "shape": [3], "data": [1, 2, 3]}])
    assert ok.status_code == 200, ok.text
    assert ok.json()["outputs"][0]["data"] == [6.0, 6.0, 6.0]
    assert s.alive()
    check_good_multiply(s)


# ---------------------------------------------------------------- load failures

MLP_YAML = (EXAMPLES / "mlp" / "model.yaml").read_text()


def start_repo_with_failures(start_server, repo):
    """Starts without waiting for readiness, then waits until loading finished."""
    s = start_server(repo, wait_ready=False)
    idx = wait_loaded(s, [d.name for d in repo.iterdir() if d.is_dir()])
    return s, idx


def assert_unavailable(server, idx, name, *reason_words):
    assert name in idx, idx
    e = idx[name]
    assert e["state"] == "UNAVAILABLE", e
    assert isinstance(e.get("reason"), str) and e["reason"], e
    for w in reason_words:
        assert w in e["reason"], (w, e)
    assert server.get(f"/v2/models/{name}/ready").status_code == 503
    r = server.infer(name, [{"name": "x", "datatype": "FP32", "shape": [1, 16], "data": [0] * 16}])
    assert r.status_code == 503, (r.status_code, r.text)
    error_of(r)
    return e["reason"]


def test_corrupt_model_files(tmp_path, start_server):
    repo = tmp_path / "repo"
    pt = MLP_PT.read_bytes()
    write_model(repo, "random_bytes", MLP_YAML,
                files={"1/model.pt": random.Random(0).randbytes(4096)})
    write_model(repo, "truncated", MLP_YAML, files={"1/model.pt": pt[: len(pt) // 2]})
    write_model(repo, "mlp", MLP_YAML, files={"1/model.pt": pt})
    add_good_multiply(repo)
    s, idx = start_repo_with_failures(start_server, repo)
    assert idx["mlp"]["state"] == "READY", idx
    assert idx["good"]["state"] == "READY", idx
    assert_unavailable(s, idx, "random_bytes", "model.pt")
    assert_unavailable(s, idx, "truncated", "model.pt")
    # loading finished: the server is ready even though two models failed
    r = s.get("/v2/health/ready")
    assert r.status_code == 200, (r.status_code, r.text, idx)
    check_good_multiply(s)
    x = np.random.default_rng(9).standard_normal((2, 16)).astype(np.float32)
    _, out = decode_response(s.infer("mlp", [{"name": "x", "datatype": "FP32", "shape": [2, 16],
                                              "data": [float(v) for v in x.ravel()]}]))
    np.testing.assert_allclose(out["probs"], mlp_reference(x), atol=1e-5)


def test_missing_model_file(tmp_path, start_server):
    repo = tmp_path / "repo"
    write_model(repo, "nofile", MLP_YAML)
    add_good_multiply(repo)
    s, idx = start_repo_with_failures(start_server, repo)
    assert_unavailable(s, idx, "nofile", "model.pt")
    assert s.get("/v2/health/ready").status_code == 200
    check_good_multiply(s)


BAD_YAMLS = {
    # name: (model.yaml, words the reason must contain)
    "unknown_key": (MLP_YAML + "max_batch: 4\n", ["model.yaml", "max_batch"]),
    "bad_datatype": (MLP_YAML.replace("{name: x, datatype: FP32", "{name: x, datatype: FP33"),
                     ["model.yaml", "inputs[0].datatype", "expected one of"]),  # the value itself is not quoted
    "wrong_type": (MLP_YAML.replace("max_batch_size: 64", "max_batch_size: lots"),
                   ["model.yaml", "max_batch_size"]),
    "wrong_type_list": (MLP_YAML.replace("instances: 1", "instances: [1, 2]"),
                        ["model.yaml", "instances"]),
    "bad_shape": (MLP_YAML.replace("shape: [16]", "shape: [16, x]"), ["model.yaml", "shape"]),
}


def test_bad_model_yaml(tmp_path, start_server):
    repo = tmp_path / "repo"
    for name, (yaml, _) in BAD_YAMLS.items():
        assert yaml != MLP_YAML
        write_model(repo, name, yaml, files={"1/model.pt": MLP_PT.read_bytes()})
    write_model(repo, "mlp", MLP_YAML, files={"1/model.pt": MLP_PT.read_bytes()})
    s, idx = start_repo_with_failures(start_server, repo)
    for name, (_, words) in BAD_YAMLS.items():
        assert_unavailable(s, idx, name, *words)
    assert idx["mlp"]["state"] == "READY", idx
    assert s.get("/v2/health/ready").status_code == 200
    x = np.ones((1, 16), dtype=np.float32)
    _, out = decode_response(s.infer("mlp", [{"name": "x", "datatype": "FP32", "shape": [1, 16],
                                              "data": [1.0] * 16}]))
    np.testing.assert_allclose(out["probs"], mlp_reference(x), atol=1e-5)


def test_config_not_matching_model_fails_at_inference_not_crash(tmp_path, start_server):
    """A model whose forward takes two inputs but config lists one: a 500 (or a
    load failure), never a crash."""
    repo = tmp_path / "repo"
    write_model(repo, "mismatch", ONE_IN_ONE_OUT, files={"1/model.pt": MULTIPLY_PT.read_bytes()})
    add_good_multiply(repo)
    s, idx = start_repo_with_failures(start_server, repo)
    if idx["mismatch"]["state"] == "READY":
        r = s.infer("mismatch", [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}])
        assert r.status_code == 500, (r.status_code, r.text)
        error_of(r)
    else:
        assert idx["mismatch"]["state"] == "UNAVAILABLE" and idx["mismatch"]["reason"]
    assert s.alive()
    check_good_multiply(s)


class Picky(torch.nn.Module):
    """Refuses negative input as the client's error, and fails on a zero sum as its own."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool((x < 0).any()):
            raise ValueError("x must not be negative; got " + str(int((x < 0).sum())) + " negative values")
        if float(x.sum()) == 0.0:
            raise RuntimeError("a zero sum")
        return x * 2


def test_a_models_value_error_is_a_400_with_its_message_and_other_errors_stay_500s(tmp_path, start_server):
    repo = tmp_path / "repo"
    write_model(repo, "picky", "backend: torchscript\nmax_batch_size: 4\n"
                "inputs:\n  - {name: x, datatype: FP32, shape: [2]}\n"
                "outputs:\n  - {name: y, datatype: FP32, shape: [2]}\nwarmup: {requests: 0}\n",
                files={"1/model.pt": scripted_bytes(Picky())})
    s = start_server(repo)

    def infer(data):
        return s.infer("picky", [{"name": "x", "datatype": "FP32", "shape": [1, 2], "data": data}])

    r = infer([-1.0, -2.0])
    assert r.status_code == 400, r.text
    msg = error_of(r)
    assert "x must not be negative; got 2 negative values" in msg and "Traceback" not in msg, msg
    assert "\n" not in msg and "/" not in msg.replace("picky", ""), msg
    r = infer([0.0, 0.0])
    assert r.status_code == 500 and "a zero sum" in error_of(r), r.text
    r = infer([1.0, 2.0])
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [2.0, 4.0], r.text
