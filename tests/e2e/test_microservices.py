"""examples/microservices as the README runs it: the MLP and the churn model
as two services (two `berth serve` on loopback), and the gateway pipeline
calling both. Answers equal the services called directly; a service that
goes away gives 503s naming its step; when it comes back, so do the answers.
A gateway started before its services (compose and Kubernetes start them in
any order) loads once they answer, and takes their URLs from MLP_URL and
CHURN_URL."""
import time

import pytest

from conftest import EXAMPLES, ROOT, free_port

GATEWAY = ROOT / "examples" / "microservices" / "gateway"

pytestmark = [pytest.mark.torch, pytest.mark.xgboost]

BODY = {"inputs": [
    {"name": "x", "datatype": "FP32", "shape": [2, 16], "data": [[i / 16 for i in range(16)], [1.0] * 16]},
    {"name": "features", "datatype": "FP32", "shape": [2, 4], "data": [[12, 70.5, 1, 12], [3, 99.0, None, 1]]},
]}


def service(start_server, model, port=None):
    return start_server(EXAMPLES, ["--model-control-mode", "explicit", "--load-model", model, "--grpc-port", "0"],
                        port=port)


def test_gateway_calls_both_services(tmp_path, start_server):
    mlp = service(start_server, "mlp")
    churn = service(start_server, "churn")
    repo = tmp_path / "gateway"
    (repo / "gateway" / "1").mkdir(parents=True)
    yaml = (GATEWAY / "gateway" / "model.yaml").read_text()
    yaml = yaml.replace("http://127.0.0.1:8100", mlp.url).replace("http://127.0.0.1:8200", churn.url)
    (repo / "gateway" / "model.yaml").write_text(yaml)
    gw = start_server(repo, ["--grpc-port", "0"])

    r = gw.post("/v2/models/gateway/infer", json=BODY)
    assert r.status_code == 200, r.text
    got = {o["name"]: o for o in r.json()["outputs"]}
    direct_mlp = mlp.post("/v2/models/mlp/infer", json={"inputs": [BODY["inputs"][0]]}).json()["outputs"][0]
    direct_churn = churn.post("/v2/models/churn/infer", json={"inputs": [BODY["inputs"][1]]}).json()["outputs"][0]
    assert got["probs"]["data"] == direct_mlp["data"] and got["probs"]["shape"] == [2, 4]
    assert got["churn_probability"]["data"] == direct_churn["data"]

    port = mlp.port
    mlp.stop()
    r = gw.post("/v2/models/gateway/infer", json=BODY)
    assert r.status_code == 503, r.text
    assert r.json()["error"].startswith(f"step 'mlp' (remote http://127.0.0.1:{port} model mlp): "), r.text
    assert gw.alive()

    service(start_server, "mlp", port=port)
    deadline = time.time() + 10  # the circuit breaker may hold it down for a second
    while True:
        r = gw.post("/v2/models/gateway/infer", json=BODY)
        if r.status_code == 200 or time.time() > deadline:
            break
        time.sleep(0.2)
    assert r.status_code == 200, r.text
    assert {o["name"]: o for o in r.json()["outputs"]}["probs"]["data"] == direct_mlp["data"]


def gateway_index(gw):
    """The repository index once the gateway's first load has failed."""
    deadline = time.time() + 20
    while True:
        index = {m["name"]: m for m in gw.post("/v2/repository/index", json={}).json()}
        if index.get("gateway", {}).get("state") == "UNAVAILABLE" or time.time() > deadline:
            assert index["gateway"]["state"] == "UNAVAILABLE", index
            return index
        time.sleep(0.05)


def test_gateway_started_before_its_services_loads_when_they_answer(start_server):
    ports = {"mlp": free_port(), "churn": free_port()}
    env = {"MLP_URL": f"http://127.0.0.1:{ports['mlp']}", "CHURN_URL": f"http://127.0.0.1:{ports['churn']}"}
    # The example's own model.yaml, unchanged: its URLs are ${MLP_URL:-...} and ${CHURN_URL:-...}.
    gw = start_server(GATEWAY, ["--grpc-port", "0"], wait_ready=False, env=env)
    index = gateway_index(gw)
    assert gw.get("/v2/models/gateway/ready").status_code != 200
    assert f"remote http://127.0.0.1:{ports['mlp']} model mlp" in index["gateway"]["reason"], index

    mlp = service(start_server, "mlp", port=ports["mlp"])
    churn = service(start_server, "churn", port=ports["churn"])
    started = time.time()
    # Tried again after 1 s, then 2, 4, ... while a step stays unavailable: no reload, no restart.
    while gw.get("/v2/models/gateway/ready").status_code != 200:
        assert time.time() - started < 40, gw.logs()
        time.sleep(0.1)
    assert "a step was unavailable; loading it again" in gw.logs()
    r = gw.post("/v2/models/gateway/infer", json=BODY)
    assert r.status_code == 200, r.text
    got = {o["name"]: o for o in r.json()["outputs"]}
    direct_mlp = mlp.post("/v2/models/mlp/infer", json={"inputs": [BODY["inputs"][0]]}).json()["outputs"][0]
    direct_churn = churn.post("/v2/models/churn/infer", json={"inputs": [BODY["inputs"][1]]}).json()["outputs"][0]
    assert got["probs"]["data"] == direct_mlp["data"]
    assert got["churn_probability"]["data"] == direct_churn["data"]


def test_a_remote_url_variable_that_is_not_an_http_url_is_refused(start_server):
    env = {"MLP_URL": "ftp://secret.example/x", "CHURN_URL": "http://127.0.0.1:9"}
    gw = start_server(GATEWAY, ["--grpc-port", "0"], wait_ready=False, env=env)
    index = gateway_index(gw)
    reason = index["gateway"]["reason"]
    assert "remote.url: expected an http:// or https:// URL (from the environment variable it names)" in reason
    assert "secret.example" not in reason


def test_a_remote_url_variable_holding_credentials_is_refused_unquoted(start_server):
    env = {"MLP_URL": "http://user:s3cret-token@127.0.0.1:9", "CHURN_URL": "http://127.0.0.1:9/#frag"}
    gw = start_server(GATEWAY, ["--grpc-port", "0"], wait_ready=False, env=env)
    reason = gateway_index(gw)["gateway"]["reason"]
    assert "remote.url, from the environment variable it names: no user information allowed" in reason, reason
    assert "s3cret" not in reason and "s3cret" not in gw.logs()
