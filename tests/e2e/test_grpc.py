"""KServe v2 gRPC and grpc.health.v1 against a real client generated from
Triton's grpc_service.proto (tests/e2e/grpc_client.py), sending raw inputs
exactly as tritonclient does, and typed contents too.

The identity backend (output i is input i) needs no ML library, so these
tests run under the sanitizer build as well; the MLP-against-torch test
carries the torch marker.
"""
import filecmp
import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time

import grpc
import numpy as np
import pytest
import requests

from conftest import EXAMPLES, ROOT, error_of, identity_config, write_model
from grpc_client import PROTOS, Client, deserialize_bytes, kserve_stub_dir, output_array, serialize_bytes

DATATYPES = ["BOOL", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "FP16", "FP32",
             "FP64", "BYTES"]
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
    "BYTES": [b"hello", b"", "w\u00f6rld \u2603".encode(), b"a\x00b", b"x" * 100, b"\xff\xfe"],
}


def value_of(dt):
    if dt == "BYTES":
        return np.array(VALUES[dt], dtype=object).reshape(2, 3)
    from grpc_client import NP
    return np.array(VALUES[dt], dtype=NP[dt]).reshape(2, 3)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from conftest import Server
    repo = tmp_path_factory.mktemp("grpc") / "models"
    repo.mkdir()
    write_model(repo, "alltypes", identity_config([(dt.lower(), dt, [2, 3]) for dt in DATATYPES]))
    write_model(repo, "typed", identity_config([(dt.lower(), dt, [2, 3]) for dt in DATATYPES if dt != "FP16"]))
    write_model(repo, "vec", identity_config([("x", "FP32", [-1])], mbs=8))
    write_model(repo, "pair", identity_config([("a", "INT32", [-1]), ("b", "BYTES", [-1])]))
    write_model(repo, "failing", identity_config([("x", "INT32", [-1])], fail="true",
                                                 extra="warmup: {requests: 0}\n"))
    write_model(repo, "slow", identity_config([("x", "INT32", [-1])], instances=2, delay_ms=150))
    write_model(repo, "queue1", identity_config([("x", "INT32", [-1])], mbs=1, delay_ms=400,
                                                extra="dynamic_batching: {max_queue_size: 1}\n"))
    s = Server(repo, ["--max-request-bytes", str(8 << 20)])
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(server):
    c = Client(server.grpc_target)
    yield c
    c.close()


def code_of(excinfo):
    return excinfo.value.code()


def test_vendored_protocols_match_shared():
    shared = ROOT.parent / "shared" / "protocols"
    if not shared.is_dir():
        pytest.skip("../shared/protocols is absent: nothing to compare the vendored copies with")
    for f in ["grpc_service.proto", "model_config.proto", "health.proto", "kserve_grpc_predict_v2.proto"]:
        assert filecmp.cmp(PROTOS / f, shared / f, shallow=False), f


def test_server_health_and_metadata(server, client):
    pb = client.pb
    assert client.call("ServerLive", pb.ServerLiveRequest()).live
    assert client.call("ServerReady", pb.ServerReadyRequest()).ready
    assert client.call("ModelReady", pb.ModelReadyRequest(name="vec")).ready
    assert client.call("ModelReady", pb.ModelReadyRequest(name="vec", version="1")).ready
    assert not client.call("ModelReady", pb.ModelReadyRequest(name="vec", version="7")).ready
    assert not client.call("ModelReady", pb.ModelReadyRequest(name="nope")).ready
    meta = client.call("ServerMetadata", pb.ServerMetadataRequest())
    http_meta = server.get("/v2").json()
    assert meta.name == http_meta["name"] == "berth"
    assert meta.version == http_meta["version"]
    assert list(meta.extensions) == http_meta["extensions"]
    assert {"model_repository", "model_configuration", "statistics", "binary_tensor_data"} <= set(meta.extensions)
    m = client.call("ModelMetadata", pb.ModelMetadataRequest(name="vec"))
    assert (m.name, list(m.versions), m.platform) == ("vec", ["1"], "identity")
    assert [(t.name, t.datatype, list(t.shape)) for t in m.inputs] == [("x", "FP32", [-1, -1])]
    assert [(t.name, t.datatype, list(t.shape)) for t in m.outputs] == [("out_x", "FP32", [-1, -1])]
    for service in ["", "live", "ready", "inference.GRPCInferenceService"]:
        assert client.serving_name(client.health(service)) == "SERVING", service
    with pytest.raises(grpc.RpcError) as e:
        client.health("no.such.Service")
    assert code_of(e) == grpc.StatusCode.NOT_FOUND


def test_raw_round_trip_every_datatype(client):
    inputs = [(dt.lower(), dt, value_of(dt)) for dt in DATATYPES]
    r = client.infer("alltypes", inputs, id="req-1")
    assert (r.model_name, r.model_version, r.id) == ("alltypes", "1", "req-1")
    assert len(r.raw_output_contents) == len(DATATYPES)
    for i, dt in enumerate(DATATYPES):
        o = r.outputs[i]
        assert (o.name, o.datatype, list(o.shape)) == ("out_" + dt.lower(), dt, [2, 3])
        got = output_array(r, i)
        if dt == "BYTES":
            assert list(got.ravel()) == VALUES[dt]
        else:
            np.testing.assert_array_equal(got, value_of(dt))
        # typed contents stay empty when the request was raw (tritonclient reads raw only)
        assert not o.HasField("contents") or o.contents.ByteSize() == 0


def test_typed_round_trip_every_datatype(client):
    typed = [dt for dt in DATATYPES if dt != "FP16"]
    r = client.infer("typed", [(dt.lower(), dt, value_of(dt)) for dt in typed], raw=False)
    assert len(r.raw_output_contents) == 0  # typed in, typed out
    for i, dt in enumerate(typed):
        assert (r.outputs[i].name, r.outputs[i].datatype, list(r.outputs[i].shape)) == ("out_" + dt.lower(), dt, [2, 3])
        got = output_array(r, i)
        if dt == "BYTES":
            assert list(got.ravel()) == VALUES[dt]
        else:
            np.testing.assert_array_equal(got, value_of(dt))


def test_fp16_needs_raw_form(client):
    # FP16 has no typed field: a typed FP16 input is refused, and a typed request's FP16 output comes raw.
    req = client.infer_request("alltypes", [(dt.lower(), dt, value_of(dt)) for dt in DATATYPES], raw=False)
    with pytest.raises(grpc.RpcError) as e:
        client.call("ModelInfer", req)
    assert code_of(e) == grpc.StatusCode.INVALID_ARGUMENT
    assert "FP16" in e.value.details() and "raw_input_contents" in e.value.details()


def test_requested_outputs_in_request_order(client):
    r = client.infer("pair", [("a", "INT32", np.array([5, 6], np.int32)), ("b", "BYTES", [b"p", b"q"])],
                     outputs=["out_b", "out_a"])
    assert [o.name for o in r.outputs] == ["out_b", "out_a"]
    assert deserialize_bytes(r.raw_output_contents[0]) == [b"p", b"q"]
    assert np.frombuffer(r.raw_output_contents[1], "<i4").tolist() == [5, 6]


def test_unknown_parameters_are_ignored(client):
    req = client.infer_request("vec", [("x", "FP32", np.ones((1, 4), np.float32))])
    req.parameters["priority"].uint64_param = 3  # as tritonclient sends it
    req.parameters["sequence_id"].int64_param = 12
    req.parameters["no_such_thing"].string_param = "whatever"
    req.parameters["some_double"].double_param = 0.5
    req.inputs[0].parameters["also_unknown"].bool_param = True
    req.outputs.add(name="out_x").parameters["binary_data"].bool_param = True
    r = client.call("ModelInfer", req)
    np.testing.assert_array_equal(output_array(r, 0), np.ones((1, 4), np.float32))


def test_errors_map_to_grpc_codes_with_http_messages(server, client):
    cases = [
        # (model, inputs, expected code, the same request over HTTP as JSON)
        ("nope", [("x", "FP32", np.ones((1, 2), np.float32))], grpc.StatusCode.NOT_FOUND,
         {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [1, 1]}]}),
        ("vec", [("y", "FP32", np.ones((1, 2), np.float32))], grpc.StatusCode.INVALID_ARGUMENT,
         {"inputs": [{"name": "y", "datatype": "FP32", "shape": [1, 2], "data": [1, 1]}]}),
        ("vec", [("x", "INT32", np.ones((1, 2), np.int32))], grpc.StatusCode.INVALID_ARGUMENT,
         {"inputs": [{"name": "x", "datatype": "INT32", "shape": [1, 2], "data": [1, 1]}]}),
        ("vec", [("x", "FP32", np.ones((9, 2), np.float32))], grpc.StatusCode.INVALID_ARGUMENT,
         {"inputs": [{"name": "x", "datatype": "FP32", "shape": [9, 2], "data": [1] * 18}]}),
        ("failing", [("x", "INT32", np.ones(2, np.int32))], grpc.StatusCode.INTERNAL,
         {"inputs": [{"name": "x", "datatype": "INT32", "shape": [2], "data": [1, 1]}]}),
    ]
    for model, inputs, code, body in cases:
        with pytest.raises(grpc.RpcError) as e:
            client.infer(model, inputs)
        assert code_of(e) == code, (model, e.value.details())
        http = server.post(f"/v2/models/{model}/infer", json=body)
        assert e.value.details() == error_of(http), model
        assert str(ROOT) not in e.value.details()


def test_malformed_requests_are_invalid_argument(client):
    pb = client.pb
    bad = []
    r = client.infer_request("vec", [("x", "FP32", np.ones((1, 4), np.float32))])
    r.raw_input_contents[0] = b"\x00" * 15  # one byte short
    bad.append((r, "needs 16"))
    r = client.infer_request("vec", [("x", "FP32", np.ones((1, 4), np.float32))])
    r.raw_input_contents.append(b"")  # more raw entries than inputs
    bad.append((r, "raw_input_contents has 2 entries for 1 inputs"))
    r = client.infer_request("vec", [("x", "FP32", np.ones((1, 4), np.float32))])
    r.inputs[0].datatype = "FLOAT"
    bad.append((r, "unknown datatype"))
    r = client.infer_request("vec", [("x", "FP32", np.ones((1, 4), np.float32))], raw=False)
    r.inputs[0].contents.int_contents.append(3)  # a second field
    bad.append((r, "fp32_contents"))
    r = client.infer_request("vec", [("x", "FP32", np.ones((1, 4), np.float32))], version="one")
    bad.append((r, "model_version"))
    r = client.infer_request("pair", [("a", "INT32", np.ones(2, np.int32)), ("b", "BYTES", [b"x", b"y"])])
    r.raw_input_contents[1] = b"\x05\x00\x00\x00ab"  # the length prefix runs past the end
    bad.append((r, "inputs[1] 'b'"))
    r = pb.ModelInferRequest(model_name="pair")
    r.inputs.add(name="a", datatype="INT32", shape=[1]).contents.int_contents.append(1)
    r.inputs.add(name="a", datatype="INT32", shape=[1]).contents.int_contents.append(1)
    bad.append((r, "appears twice"))
    r = pb.ModelInferRequest(model_name="alltypes")
    r.inputs.add(name="int8", datatype="INT8", shape=[1]).contents.int_contents.append(300)
    bad.append((r, "out of range"))
    r = client.infer_request("vec", [("x", "FP32", np.ones((1, 4), np.float32))])
    r.inputs[0].shape[:] = [-1, 4]
    bad.append((r, "negative"))
    for req, needle in bad:
        with pytest.raises(grpc.RpcError) as e:
            client.call("ModelInfer", req)
        assert code_of(e) == grpc.StatusCode.INVALID_ARGUMENT, (needle, e.value.details())
        assert needle in e.value.details()
    assert client.call("ServerLive", pb.ServerLiveRequest()).live


def test_deadlines(server, client):
    pb = client.pb
    one = [("x", "INT32", np.ones((1, 1), np.int32))]

    def busy():  # queue1 takes 400 ms per request, one at a time
        t = threading.Thread(target=lambda: client.infer("queue1", one))
        t.start()
        time.sleep(0.1)
        return t
    stats0 = client.call("ModelStatistics", pb.ModelStatisticsRequest(name="queue1")).model_stats[0]
    # The request's own timeout parameter (microseconds): the server answers DEADLINE_EXCEEDED.
    t = busy()
    req = client.infer_request("queue1", one)
    req.parameters["timeout"].int64_param = 100000
    with pytest.raises(grpc.RpcError) as e:
        client.call("ModelInfer", req)
    assert code_of(e) == grpc.StatusCode.DEADLINE_EXCEEDED, e.value.details()
    t.join()
    # A gRPC deadline becomes the request's: expired in the queue, it never executes.
    t = busy()
    with pytest.raises(grpc.RpcError) as e:
        client.infer("queue1", one, timeout=0.15)
    assert code_of(e) == grpc.StatusCode.DEADLINE_EXCEEDED
    t.join()
    time.sleep(0.5)
    stats = client.call("ModelStatistics", pb.ModelStatisticsRequest(name="queue1")).model_stats[0]
    assert stats.execution_count - stats0.execution_count == 2  # the two busy requests only
    assert stats.inference_stats.fail.count - stats0.inference_stats.fail.count == 2


def test_full_queue_is_resource_exhausted(client):
    results = []

    def one():
        try:
            client.infer("queue1", [("x", "INT32", np.ones((1, 1), np.int32))])
            results.append("ok")
        except grpc.RpcError as e:
            results.append(e.code())
    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
        time.sleep(0.02)
    for t in threads:
        t.join()
    assert results.count("ok") >= 2
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in results, results


def test_message_size_limit(client):
    limit = 8 << 20  # --max-request-bytes of the server fixture; gRPC's own default is 4 MiB
    fits = client.infer_request("vec", [("x", "FP32", np.zeros((1, (limit - 4096) // 4), np.float32))])
    assert 4 << 20 < fits.ByteSize() < limit
    resp = client.call("ModelInfer", fits)
    assert len(resp.raw_output_contents[0]) == (limit - 4096) // 4 * 4
    over = client.infer_request("vec", [("x", "FP32", np.zeros((1, limit // 4 + 16), np.float32))])
    with pytest.raises(grpc.RpcError) as e:
        client.call("ModelInfer", over)
    assert code_of(e) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert client.call("ServerLive", client.pb.ServerLiveRequest()).live


def test_stream_answers_in_order_and_survives_errors(client):
    n = 24

    def requests_():
        for i in range(n):
            if i == 7:  # an unknown model mid-stream
                yield client.infer_request("nope", [("x", "INT32", np.array([i], np.int32))], id=str(i))
            elif i == 13:  # a malformed one
                req = client.infer_request("slow", [("x", "INT32", np.array([i], np.int32))], id=str(i))
                req.raw_input_contents[0] = b"\x01"
                yield req
            else:
                # slow has two instances taking 150 ms: answers may complete out of order
                yield client.infer_request("slow" if i % 3 else "vec",
                                           [("x", "INT32" if i % 3 else "FP32",
                                             np.array([i], np.int32) if i % 3 else np.full((1, 1), i, np.float32))],
                                           id=str(i))
    answers = list(client.stub.ModelStreamInfer(requests_(), timeout=60))
    assert [a.infer_response.id for a in answers] == [str(i) for i in range(n)]
    for i, a in enumerate(answers):
        if i == 7:
            assert a.error_message == "unknown model 'nope'"
        elif i == 13:
            assert "raw_input_contents" in a.error_message
        else:
            assert a.error_message == ""
            assert float(output_array(a.infer_response, 0).ravel()[0]) == i


def test_stream_runs_requests_concurrently(client):
    # 8 requests of 150 ms on two instances: well under 8 x 150 ms when they overlap.
    def requests_():
        for i in range(8):
            yield client.infer_request("slow", [("x", "INT32", np.array([i], np.int32))], id=str(i))
    t0 = time.time()
    answers = list(client.stub.ModelStreamInfer(requests_(), timeout=60))
    elapsed = time.time() - t0
    assert [a.infer_response.id for a in answers] == [str(i) for i in range(8)]
    assert elapsed < 8 * 0.15 * 0.8, elapsed


def test_model_config_and_statistics(server, client):
    pb = client.pb
    cfg = client.call("ModelConfig", pb.ModelConfigRequest(name="vec")).config
    assert (cfg.name, cfg.platform, cfg.backend, cfg.max_batch_size) == ("vec", "identity", "identity", 8)
    assert [(i.name, client.pb.model__config__pb2.DataType.Name(i.data_type), list(i.dims)) for i in cfg.input] \
        == [("x", "TYPE_FP32", [-1])]
    http_cfg = server.get("/v2/models/vec/config").json()
    assert http_cfg["input"] == [{"name": "x", "data_type": "TYPE_FP32", "dims": [-1]}]
    assert http_cfg["max_batch_size"] == 8

    before = client.call("ModelStatistics", pb.ModelStatisticsRequest(name="pair", version="1")).model_stats[0]
    for _ in range(3):
        client.infer("pair", [("a", "INT32", np.ones(2, np.int32)), ("b", "BYTES", [b"x", b"y"])])
    after = client.call("ModelStatistics", pb.ModelStatisticsRequest(name="pair")).model_stats[0]
    assert (after.name, after.version) == ("pair", "1")
    assert after.inference_stats.success.count - before.inference_stats.success.count == 3
    assert after.execution_count - before.execution_count == 3
    assert after.inference_stats.success.ns > before.inference_stats.success.ns
    assert after.last_inference >= before.last_inference
    http = server.get("/v2/models/pair/stats").json()["model_stats"][0]
    assert http["inference_stats"]["success"]["count"] == after.inference_stats.success.count
    every = client.call("ModelStatistics", pb.ModelStatisticsRequest())
    assert {m.name for m in every.model_stats} >= {"vec", "pair", "alltypes"}
    with pytest.raises(grpc.RpcError) as e:
        client.call("ModelStatistics", pb.ModelStatisticsRequest(name="nope"))
    assert code_of(e) == grpc.StatusCode.NOT_FOUND


def test_repository_index(client):
    idx = client.call("RepositoryIndex", client.pb.RepositoryIndexRequest(ready=True))
    assert {(m.name, m.version, m.state) for m in idx.models} >= {("vec", "1", "READY"), ("pair", "1", "READY")}


def test_model_control_needs_the_admin_token(client):
    pb = client.pb
    with pytest.raises(grpc.RpcError) as e:
        client.call("RepositoryModelLoad", pb.RepositoryModelLoadRequest(model_name="vec"))
    assert code_of(e) == grpc.StatusCode.PERMISSION_DENIED


def test_gzip_compressed_requests(server):
    c = Client(server.grpc_target, compression=grpc.Compression.Gzip)
    try:
        x = np.arange(1 << 16, dtype=np.float32).reshape(1, -1)
        r = c.infer("vec", [("x", "FP32", x)])
        np.testing.assert_array_equal(output_array(r, 0), x)
        # A request that inflates past --max-request-bytes (8 MiB) is refused, small as it travels.
        zeros = c.infer_request("vec", [("x", "FP32", np.zeros((1, 3 << 20), np.float32))])  # 12 MiB of zeros
        with pytest.raises(grpc.RpcError) as e:
            c.call("ModelInfer", zeros)
        assert code_of(e) == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert c.call("ServerLive", c.pb.ServerLiveRequest()).live
    finally:
        c.close()


def test_kserve_client(server, tmp_path):
    """KServe's own grpc_predict_v2.proto (no Triton extensions) in a process of its own."""
    stubs = kserve_stub_dir()
    script = f"""
import sys
sys.path.insert(0, {stubs!r})
import grpc, struct
import kserve_grpc_predict_v2_pb2 as pb, kserve_grpc_predict_v2_pb2_grpc as pbg
stub = pbg.GRPCInferenceServiceStub(grpc.insecure_channel({server.grpc_target!r}))
assert stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready
m = stub.ModelMetadata(pb.ModelMetadataRequest(name="vec"), timeout=10)
assert m.inputs[0].name == "x", m
req = pb.ModelInferRequest(model_name="vec")
t = req.inputs.add(name="x", datatype="FP32", shape=[1, 3])
t.contents.fp32_contents.extend([1.5, 2.5, -3.0])
r = stub.ModelInfer(req, timeout=10)
assert list(r.outputs[0].contents.fp32_contents) == [1.5, 2.5, -3.0], r
req.ClearField("inputs")
req.inputs.add(name="x", datatype="FP32", shape=[1, 2])
req.raw_input_contents.append(struct.pack("<2f", 4.0, 5.0))
r = stub.ModelInfer(req, timeout=10)
assert struct.unpack("<2f", r.raw_output_contents[0]) == (4.0, 5.0), r
print("kserve ok")
"""
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "kserve ok" in p.stdout, p.stderr


def test_auth_token_in_metadata(start_server, tmp_path):
    repo = tmp_path / "models"
    write_model(repo, "vec", identity_config([("x", "FP32", [-1])], mbs=8))
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    s = start_server(repo, ["--auth-token-file", str(token)])
    x = [("x", "FP32", np.ones((1, 2), np.float32))]
    anonymous, wrong, right = Client(s.grpc_target), Client(s.grpc_target, token="nope"), \
        Client(s.grpc_target, token="s3cret-token")
    try:
        for c in (anonymous, wrong):
            with pytest.raises(grpc.RpcError) as e:
                c.infer("vec", x)
            assert code_of(e) == grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(grpc.RpcError) as e:
                c.call("ModelMetadata", c.pb.ModelMetadataRequest(name="vec"))
            assert code_of(e) == grpc.StatusCode.UNAUTHENTICATED
            # health stays open, as for the HTTP probes
            assert c.serving_name(c.health("ready")) == "SERVING"
            assert c.call("ServerLive", c.pb.ServerLiveRequest()).live
        np.testing.assert_array_equal(output_array(right.infer("vec", x), 0), np.ones((1, 2), np.float32))
        assert "s3cret-token" not in s.logs()
    finally:
        for c in (anonymous, wrong, right):
            c.close()


def test_model_control_over_grpc(start_server, tmp_path):
    repo = tmp_path / "models"
    write_model(repo, "vec", identity_config([("x", "FP32", [-1])], mbs=8))
    token = tmp_path / "admin"
    token.write_text("admin-token")
    s = start_server(repo, ["--model-control-mode", "explicit", "--admin-token-file", str(token)])
    admin, other = Client(s.grpc_target, token="admin-token"), Client(s.grpc_target, token="guess")
    pb = admin.pb
    try:
        assert not admin.call("ModelReady", pb.ModelReadyRequest(name="vec")).ready
        with pytest.raises(grpc.RpcError) as e:
            other.call("RepositoryModelLoad", pb.RepositoryModelLoadRequest(model_name="vec"))
        assert code_of(e) == grpc.StatusCode.UNAUTHENTICATED
        admin.call("RepositoryModelLoad", pb.RepositoryModelLoadRequest(model_name="vec"))
        assert admin.call("ModelReady", pb.ModelReadyRequest(name="vec")).ready
        admin.infer("vec", [("x", "FP32", np.ones((1, 1), np.float32))])
        with pytest.raises(grpc.RpcError) as e:
            admin.call("RepositoryModelLoad", pb.RepositoryModelLoadRequest(model_name="missing"))
        assert code_of(e) == grpc.StatusCode.NOT_FOUND, e.value.details()
        with pytest.raises(grpc.RpcError) as e:
            admin.call("RepositoryModelLoad", pb.RepositoryModelLoadRequest(model_name="../etc"))
        assert code_of(e) == grpc.StatusCode.INVALID_ARGUMENT
        admin.call("RepositoryModelUnload", pb.RepositoryModelUnloadRequest(model_name="vec"))
        assert not admin.call("ModelReady", pb.ModelReadyRequest(name="vec")).ready
    finally:
        admin.close()
        other.close()


def test_health_watch_follows_readiness_and_drain(start_server, tmp_path):
    repo = tmp_path / "models"
    # warm-up of 1.5 s: "ready" is NOT_SERVING while it loads
    write_model(repo, "slowload", identity_config([("x", "INT32", [-1])], delay_ms=1500))
    s = start_server(repo, wait_ready=False)
    c = Client(s.grpc_target)
    deadline = time.time() + 20
    while True:  # the gRPC port answers once the process started
        try:
            c.health("live", timeout=1)
            break
        except grpc.RpcError:
            assert time.time() < deadline
            time.sleep(0.05)
    seen = []
    live_seen = []
    watch = c.watch("ready", timeout=60)
    live_watch = c.watch("live", timeout=60)

    def follow(stream, out):
        try:
            for msg in stream:
                out.append(c.serving_name(msg.status))
        except grpc.RpcError as e:
            out.append(e.code())
    threads = [threading.Thread(target=follow, args=(watch, seen)),
               threading.Thread(target=follow, args=(live_watch, live_seen))]
    for t in threads:
        t.start()
    while "SERVING" not in seen:
        assert time.time() < deadline, seen
        time.sleep(0.05)
    assert seen[0] == "NOT_SERVING", seen
    assert c.serving_name(c.health("ready")) == "SERVING"
    # a request keeps the drain going for a moment: "ready" turns NOT_SERVING before the stream ends
    write_model(repo, "unused", identity_config([("x", "INT32", [-1])]))
    inflight = threading.Thread(target=lambda: c.infer("slowload", [("x", "INT32", np.ones(1, np.int32))]))
    inflight.start()
    time.sleep(0.2)
    s.proc.send_signal(signal.SIGTERM)
    inflight.join()
    for t in threads:
        t.join(timeout=30)
    assert s.proc.wait(timeout=30) == 0, s.logs()
    assert seen[:2] == ["NOT_SERVING", "SERVING"] and seen[2] == "NOT_SERVING", seen
    assert seen[-1] == grpc.StatusCode.UNAVAILABLE, seen
    assert live_seen[0] == "SERVING" and "NOT_SERVING" not in live_seen, live_seen
    c.close()


def test_drain_answers_in_flight_and_refuses_new_calls(start_server, tmp_path):
    repo = tmp_path / "models"
    write_model(repo, "slow", identity_config([("x", "INT32", [-1])], delay_ms=1500, extra="warmup: {requests: 0}\n"))
    s = start_server(repo)
    c = Client(s.grpc_target)
    result = {}

    def first():
        result["r"] = c.infer("slow", [("x", "INT32", np.array([42], np.int32))])
    t = threading.Thread(target=first)
    t.start()
    time.sleep(0.3)
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    with pytest.raises(grpc.RpcError) as e:
        c.infer("slow", [("x", "INT32", np.array([1], np.int32))], timeout=5)
    assert code_of(e) == grpc.StatusCode.UNAVAILABLE
    t.join()
    assert output_array(result["r"], 0).tolist() == [42]
    assert s.proc.wait(timeout=30) == 0, s.logs()
    c.close()


def test_grpc_port_zero_disables_and_port_in_use_fails(start_server, tmp_path):
    repo = tmp_path / "models"
    write_model(repo, "vec", identity_config([("x", "FP32", [-1])], mbs=8))
    s = start_server(repo, ["--grpc-port", "0"])
    assert s.get("/v2/health/ready").status_code == 200
    assert "gRPC (KServe v2" not in s.logs()
    other = start_server(repo)
    from conftest import BERTH_BIN, free_port
    p = subprocess.run([str(BERTH_BIN), "serve", "--model-repository", str(repo), "--host", "127.0.0.1",
                        "--http-port", str(free_port()), "--metrics-port", "0", "--grpc-port", str(other.grpc_port)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert f"cannot listen on 127.0.0.1:{other.grpc_port}" in p.stderr + p.stdout


@pytest.mark.torch
def test_mlp_over_grpc_matches_torch(examples_server):
    torch = pytest.importorskip("torch")
    model = torch.jit.load(str(EXAMPLES / "mlp" / "1" / "model.pt"))
    c = Client(examples_server.grpc_target)
    try:
        x = np.random.default_rng(7).standard_normal((5, 16)).astype(np.float32)
        want = model(torch.from_numpy(x)).detach().numpy()
        raw = c.infer("mlp", [("x", "FP32", x)])
        np.testing.assert_allclose(output_array(raw, 0), want, rtol=1e-5, atol=1e-6)
        typed = c.infer("mlp", [("x", "FP32", x)], raw=False)
        assert len(typed.raw_output_contents) == 0
        np.testing.assert_allclose(output_array(typed, 0), want, rtol=1e-5, atol=1e-6)

        def reqs():
            for i in range(5):
                yield c.infer_request("mlp", [("x", "FP32", x[i:i + 1])], id=str(i))
        for i, a in enumerate(c.stub.ModelStreamInfer(reqs(), timeout=60)):
            assert a.infer_response.id == str(i)
            np.testing.assert_allclose(output_array(a.infer_response, 0), want[i:i + 1], rtol=1e-5, atol=1e-6)
    finally:
        c.close()


def _frames_until_closed(sock, limit_s):
    """HTTP/2 frame types the server sends until it closes the connection (None: still open at limit_s)."""
    sock.settimeout(0.2)
    data, deadline = b"", time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            types, i = [], 0
            while i + 9 <= len(data):
                length = int.from_bytes(data[i:i + 3], "big")
                types.append(data[i + 3])
                i += 9 + length
            return types
        data += chunk
    return None


def test_slow_and_idle_connections_are_closed(tmp_path):
    """--read-timeout-secs and --idle-timeout-secs hold for the gRPC port as for HTTP: a connection that never
    sends HTTP/2's preface is dropped, one with no call open gets GOAWAY; an open stream is not idle."""
    from conftest import Server
    repo = tmp_path / "models"
    repo.mkdir()
    write_model(repo, "vec", identity_config([("x", "FP32", [-1])], mbs=8))
    s = Server(repo, ["--read-timeout-secs", "1", "--idle-timeout-secs", "2"])
    try:
        silent = socket.create_connection(("127.0.0.1", s.grpc_port))
        idle = socket.create_connection(("127.0.0.1", s.grpc_port))
        idle.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))  # preface, SETTINGS
        t0 = time.monotonic()
        assert _frames_until_closed(silent, 10) is not None, "a connection that sends nothing stays open"
        assert time.monotonic() - t0 < 5
        types = _frames_until_closed(idle, 15)
        assert types is not None, "an idle HTTP/2 connection stays open"
        assert 7 in types, f"no GOAWAY among the frames {types}"  # 7 = GOAWAY
        assert time.monotonic() - t0 < 10
        silent.close()
        idle.close()

        c = Client(s.grpc_target)
        try:
            def slow_requests():
                for i in range(3):
                    if i:
                        time.sleep(1.5)  # 3 s in all with the stream open: longer than the idle limit
                    yield c.infer_request("vec", [("x", "FP32", np.full((1, 1), i, np.float32))], id=str(i))
            answers = list(c.stub.ModelStreamInfer(slow_requests(), timeout=30))
            assert [a.error_message for a in answers] == ["", "", ""]
            assert [float(output_array(a.infer_response, 0).ravel()[0]) for a in answers] == [0, 1, 2]
            assert c.infer("vec", [("x", "FP32", np.ones((1, 1), np.float32))]) is not None
        finally:
            c.close()
    finally:
        s.stop()
