"""examples/microservices as the README runs it: the MLP and the churn model
as two services (two `berth serve` on loopback), and the gateway pipeline
calling both. Answers equal the services called directly; a service that
goes away gives 503s naming its step; when it comes back, so do the answers."""
import time

import pytest

from conftest import EXAMPLES, ROOT

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
