"""Remote pipeline steps: a gateway `berth serve` whose pipelines call a
second `berth serve` (the scorer) and a small fault server of this test's
own, all on loopback: values, error classes naming the step, retries
counted exactly, deadlines on a hanging remote, the circuit breaker, tokens,
and a remote that goes away."""
import http.server
import json
import threading
import time

import pytest

import grpc_client

from conftest import Server, identity_config, write_model
from test_pipeline import infer, out, pipeline_yaml

X = [("x", "FP32", [-1])]
META = {"name": "m", "versions": ["1"], "platform": "fault",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, -1]}],
        "outputs": [{"name": "out_x", "datatype": "FP32", "shape": [-1, -1]}]}


class Faults(http.server.ThreadingHTTPServer):
    """GET /v2/models/M: metadata. POST /v2/models/M/infer: by M, `unavail` 503, `broken` 500, `hang` sleeps."""
    daemon_threads = True

    def __init__(self):
        self.posts = {}
        self.traceparents = []  # as each POST carried it (None: none)
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), Handler)

    def handle_error(self, request, client_address):
        pass  # a client that gave up on `hang` closed its end: expected

    def count(self, model):
        with self.lock:
            return self.posts.get(model, 0)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.reply(200, dict(META, name=self.path.split("/")[3]))

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        model = self.path.split("/")[3]
        with self.server.lock:
            self.server.posts[model] = self.server.posts.get(model, 0) + 1
            self.server.traceparents.append(self.headers.get("traceparent"))
        if model == "ok":
            return self.reply(200, {"model_name": "ok", "outputs": [
                {"name": "out_x", "datatype": "FP32", "shape": [1, 1], "data": [7.0]}]})
        if model == "hang":
            time.sleep(3)
        self.reply(503 if model == "unavail" else 500, {"error": f"{model} says no"})


@pytest.fixture(scope="module")
def faults():
    f = Faults()
    t = threading.Thread(target=f.serve_forever, daemon=True)
    t.start()
    yield f
    f.shutdown()


@pytest.fixture(scope="module")
def scorer(tmp_path_factory):
    repo = tmp_path_factory.mktemp("scorer") / "models"
    repo.mkdir()
    write_model(repo, "score", identity_config(X, mbs=8))
    write_model(repo, "bad", identity_config(X, mbs=8, extra="warmup: {requests: 0}\n", fail="true"))
    token = repo.parent / "token"
    token.write_text("s3cret\n")
    s = Server(repo, ["--auth-token-file", str(token)])
    s.token = token
    yield s
    s.stop()


def remote_step(name, url, model, **extra):
    return {"name": name, "remote": {"url": url, "model": model, **extra.pop("remote", {})},
            "inputs": {"x": "$in.x"}, **extra}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, scorer, faults):
    repo = tmp_path_factory.mktemp("gateway") / "models"
    repo.mkdir()
    fault_url = f"http://127.0.0.1:{faults.server_address[1]}"
    tok = {"token_file": str(scorer.token)}
    write_model(repo, "a", identity_config(X, mbs=8))
    write_model(repo, "both", pipeline_yaml(
        [{"name": "local", "model": "a", "inputs": {"x": "$in.x"}},
         remote_step("far", scorer.url, "score", remote=tok)],
        [{"name": "near", "from": "local.out_x"}, {"name": "remote", "from": "far.out_x"}]))
    write_model(repo, "remote_fails", pipeline_yaml(
        [remote_step("r", scorer.url, "bad", remote=tok)], [{"name": "y", "from": "r.out_x"}],
        extra="warmup: {requests: 0}\n"))
    write_model(repo, "retrying", pipeline_yaml(
        [remote_step("r", fault_url, "unavail", retries=2)], [{"name": "y", "from": "r.out_x"}],
        extra="warmup: {requests: 0}\n"))
    write_model(repo, "hanging", pipeline_yaml(
        [remote_step("r", fault_url, "hang")], [{"name": "y", "from": "r.out_x"}],
        extra="warmup: {requests: 0}\nlimits: {timeout_ms: 200}\n"))
    write_model(repo, "tripping", pipeline_yaml(
        [remote_step("r", fault_url, "broken")], [{"name": "y", "from": "r.out_x"}],
        extra="warmup: {requests: 0}\n"))
    write_model(repo, "breaker", pipeline_yaml(
        [remote_step("r", fault_url, "broken2")], [{"name": "y", "from": "r.out_x"}],
        extra="warmup: {requests: 0}\n"))
    write_model(repo, "no_token", pipeline_yaml(
        [remote_step("r", scorer.url, "score")], [{"name": "y", "from": "r.out_x"}]))
    write_model(repo, "nowhere", pipeline_yaml(
        [remote_step("r", "http://127.0.0.1:9", "score")], [{"name": "y", "from": "r.out_x"}]))
    grpc_tok = {"token_file": str(scorer.token), "protocol": "grpc"}
    grpc_url = f"http://{scorer.grpc_target}"
    write_model(repo, "both_grpc", pipeline_yaml(
        [{"name": "local", "model": "a", "inputs": {"x": "$in.x"}},
         remote_step("far", grpc_url, "score", remote=grpc_tok)],
        [{"name": "near", "from": "local.out_x"}, {"name": "remote", "from": "far.out_x"}]))
    write_model(repo, "grpc_fails", pipeline_yaml(
        [remote_step("r", grpc_url, "bad", remote=grpc_tok)], [{"name": "y", "from": "r.out_x"}],
        extra="warmup: {requests: 0}\n"))
    write_model(repo, "grpc_no_token", pipeline_yaml(
        [remote_step("r", grpc_url, "score", remote={"protocol": "grpc"})], [{"name": "y", "from": "r.out_x"}]))
    write_model(repo, "traced", pipeline_yaml(
        [remote_step("r", fault_url, "ok")], [{"name": "y", "from": "r.out_x"}], extra="warmup: {requests: 0}\n"))
    s = Server(repo)
    yield s
    s.stop()


def test_local_and_remote_steps_side_by_side(gateway, scorer):
    before = scorer.get("/v2/models/score/stats", headers={"Authorization": "Bearer s3cret"}).json()
    r = infer(gateway, "both", [[1.0], [3.0]])
    assert r.status_code == 200, r.text
    assert out(r, "near") == out(r, "remote") == [1.0, 3.0]
    after = scorer.get("/v2/models/score/stats", headers={"Authorization": "Bearer s3cret"}).json()
    count = lambda s: s["model_stats"][0]["inference_count"]  # noqa: E731
    assert count(after) == count(before) + 2  # two rows, one request


def test_remote_error_keeps_its_class_and_names_the_step(gateway, scorer):
    r = infer(gateway, "remote_fails", [1.0])
    assert r.status_code == 500
    assert r.json()["error"].startswith(f"step 'r' (remote {scorer.url} model bad): answered 500: "), r.text


def test_retries_only_on_503_and_exactly_as_many_as_asked(gateway, faults):
    before = faults.count("unavail")
    r = infer(gateway, "retrying", [1.0])
    assert r.status_code == 503 and "answered 503: unavail says no" in r.json()["error"], r.text
    assert faults.count("unavail") - before == 3  # the try and 2 retries
    before = faults.count("broken")
    r = infer(gateway, "tripping", [1.0])
    assert r.status_code == 500 and faults.count("broken") - before == 1  # a 500 is not retried


def test_a_hanging_remote_answers_504_at_the_deadline(gateway):
    t0 = time.time()
    r = infer(gateway, "hanging", [1.0])
    took = time.time() - t0
    assert r.status_code == 504, r.text
    assert r.json()["error"].startswith("step 'r' (remote ") and took < 1.0, (took, r.text)
    assert gateway.alive()


def test_circuit_breaker_opens_and_closes(gateway, faults):
    for _ in range(5):
        assert infer(gateway, "breaker", [1.0]).status_code == 500
    assert faults.count("broken2") == 5
    r = infer(gateway, "breaker", [1.0])
    assert r.status_code == 503 and "marked down after 5 failures in a row" in r.json()["error"], r.text
    assert faults.count("broken2") == 5  # failed fast: the remote was not called
    # Readiness follows: the pipeline cannot answer while its remote is marked down.
    ready = gateway.get("/v2/models/breaker/ready")
    assert ready.status_code == 503, ready.text
    assert gateway.get("/v2/models/both/ready").status_code == 200
    time.sleep(1.1)
    assert gateway.get("/v2/models/breaker/ready").status_code == 200
    assert infer(gateway, "breaker", [1.0]).status_code == 500
    assert faults.count("broken2") == 6


def test_load_errors_for_remotes(gateway, scorer):
    index = {e["name"]: e for e in gateway.post("/v2/repository/index", json={}).json()}
    assert index["both"]["state"] == "READY"
    assert index["no_token"]["state"] == "UNAVAILABLE"
    assert "steps.r.remote: " in index["no_token"]["reason"] and "answered 401" in index["no_token"]["reason"]
    assert index["nowhere"]["state"] == "UNAVAILABLE"
    assert "steps.r.remote: " in index["nowhere"]["reason"] and "metadata" in index["nowhere"]["reason"]


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_a_remote_that_goes_away_gives_503_naming_the_step(tmp_path, start_server, protocol):
    srepo = tmp_path / "s"
    write_model(srepo, "score", identity_config(X, mbs=8))
    remote = start_server(srepo, [] if protocol == "grpc" else ["--grpc-port", "0"])
    url = remote.url if protocol == "http" else f"http://{remote.grpc_target}"
    grepo = tmp_path / "g"
    write_model(grepo, "p", pipeline_yaml([remote_step("far", url, "score", retries=1, remote={"protocol": protocol})],
                                          [{"name": "y", "from": "far.out_x"}]))
    gw = start_server(grepo, ["--grpc-port", "0"])
    assert infer(gw, "p", [5.0]).status_code == 200
    remote.stop()
    r = infer(gw, "p", [5.0])
    assert r.status_code == 503, r.text
    over = " over gRPC" if protocol == "grpc" else ""
    assert r.json()["error"].startswith(f"step 'far' (remote {url} model score{over}): "), r.text
    assert gw.alive()


class FakeGrpcRemote:
    """A v2 gRPC server of the test's own (Triton's stubs): ModelMetadata, and
    ModelInfer answering UNAVAILABLE `unavailable` times before echoing x;
    it records each call's metadata."""

    def __init__(self, unavailable=0):
        import grpc
        from concurrent import futures
        pb, pbg, _ = grpc_client.triton()
        fake = self
        self.calls, self.unavailable = [], unavailable

        class Servicer(pbg.GRPCInferenceServiceServicer):
            def ModelMetadata(self, request, context):
                t = dict(datatype="FP32", shape=[-1, -1])
                return pb.ModelMetadataResponse(name=request.name, versions=["1"], platform="fake",
                                                inputs=[pb.ModelMetadataResponse.TensorMetadata(name="x", **t)],
                                                outputs=[pb.ModelMetadataResponse.TensorMetadata(name="out_x", **t)])

            def ModelInfer(self, request, context):
                fake.calls.append(dict(context.invocation_metadata()))
                if len(fake.calls) <= fake.unavailable:
                    context.abort(grpc.StatusCode.UNAVAILABLE, "busy")
                res = pb.ModelInferResponse(model_name=request.model_name, model_version="1")
                o = res.outputs.add(name="out_x", datatype="FP32", shape=list(request.inputs[0].shape))
                res.raw_output_contents.append(request.raw_input_contents[0])
                assert o.name == "out_x"
                return res

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        pbg.add_GRPCInferenceServiceServicer_to_server(Servicer(), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def stop(self):
        self.server.stop(0)


def test_grpc_remote_gets_traceparent_token_and_exact_retries(tmp_path, start_server):
    fake = FakeGrpcRemote(unavailable=2)
    try:
        token = tmp_path / "token"
        token.write_text("t0k\n")
        grepo = tmp_path / "g"
        write_model(grepo, "p", pipeline_yaml(
            [remote_step("far", f"http://127.0.0.1:{fake.port}", "m", retries=2,
                         remote={"protocol": "grpc", "token_file": str(token)})],
            [{"name": "y", "from": "far.out_x"}], extra="warmup: {requests: 0}\n"))
        gw = start_server(grepo, ["--grpc-port", "0"])
        valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [1.0, 2.0]}]}
        r = gw.post("/v2/models/p/infer", json=body, headers={"traceparent": valid})
        assert r.status_code == 200 and out(r, "y") == [1.0, 2.0], r.text
        assert len(fake.calls) == 3  # two UNAVAILABLE answers retried, the third try answered
        for md in fake.calls:
            assert md.get("traceparent") == valid and md.get("authorization") == "Bearer t0k", md
        # Out of retries: the UNAVAILABLE keeps its class.
        fake.calls.clear()
        fake.unavailable = 3
        r = gw.post("/v2/models/p/infer", json=body)
        assert r.status_code == 503 and "answered UNAVAILABLE: busy" in r.json()["error"], r.text
        assert len(fake.calls) == 3 and "traceparent" not in fake.calls[0]
    finally:
        fake.stop()


def test_remote_steps_over_grpc(gateway, scorer):
    auth = {"Authorization": "Bearer s3cret"}
    before = scorer.get("/v2/models/score/stats", headers=auth).json()["model_stats"][0]["inference_count"]
    r = infer(gateway, "both_grpc", [[1.5], [-3.0]])
    assert r.status_code == 200, r.text
    assert out(r, "near") == out(r, "remote") == [1.5, -3.0]
    after = scorer.get("/v2/models/score/stats", headers=auth).json()["model_stats"][0]["inference_count"]
    assert after == before + 2
    # An error over gRPC keeps its class (INTERNAL -> 500) and names the step and the protocol.
    r = infer(gateway, "grpc_fails", [1.0])
    assert r.status_code == 500, r.text
    assert r.json()["error"].startswith(f"step 'r' (remote http://{scorer.grpc_target} model bad over gRPC): "
                                        "answered INTERNAL: "), r.text
    index = {e["name"]: e for e in gateway.post("/v2/repository/index", json={}).json()}
    assert index["both_grpc"]["state"] == "READY"
    assert index["grpc_no_token"]["state"] == "UNAVAILABLE"
    assert "answered UNAUTHENTICATED" in index["grpc_no_token"]["reason"], index["grpc_no_token"]


def test_trace_covers_remote_steps(gateway):
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 1], "data": [1.0]}],
            "parameters": {"trace": True}}
    for model in ("both", "both_grpc"):
        r = gateway.post(f"/v2/models/{model}/infer", json=body)
        assert r.status_code == 200, r.text
        p = r.json()["parameters"]
        assert p["trace.far.outcome"] == "ok" and p["trace.local.outcome"] == "ok", p
        assert p["trace.far.duration_us"] > 0 and p["trace.total_us"] >= p["trace.far.duration_us"]


def test_traceparent_is_passed_on_when_valid(gateway, faults):
    valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    for header, expect in [(valid, valid), ("00-zz-bad-01", None), (None, None)]:
        n = len(faults.traceparents)
        headers = {"traceparent": header} if header else {}
        body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 1], "data": [1.0]}]}
        r = gateway.post("/v2/models/traced/infer", json=body, headers=headers)
        assert r.status_code == 200 and out(r, "y") == [7.0], r.text
        assert faults.traceparents[n:] == [expect]


def test_pooled_connections_the_remote_closed_while_idle_are_replaced(tmp_path, start_server):
    """A burst leaves several kept-alive connections in the gateway's pool; the scorer closes them when idle.
    Each later request that picks a closed one is sent again on a new connection, not on the next pooled
    (equally closed) one: no request fails (the old client answered 503 here)."""
    srepo = tmp_path / "scorer"
    write_model(srepo, "s", identity_config(X, mbs=8))
    scorer = start_server(srepo, ["--grpc-port", "0", "--idle-timeout-secs", "1"])
    grepo = tmp_path / "gateway"
    write_model(grepo, "g", pipeline_yaml([remote_step("r", scorer.url, "s")], [{"name": "y", "from": "r.out_x"}]))
    gw = start_server(grepo, ["--grpc-port", "0"])
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(lambda i: infer(gw, "g", [float(i)]).status_code, range(200)))
    assert set(codes) == {200}
    time.sleep(2.5)  # past the scorer's idle timeout: every pooled connection is closed
    codes = [infer(gw, "g", [1.0]).status_code for _ in range(20)]
    assert codes == [200] * 20, codes
