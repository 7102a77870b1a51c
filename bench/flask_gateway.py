"""The Python way of examples/microservices, for bench/remote_hop.py: a
gateway in Flask that calls two Flask services with `requests` and combines
their answers, each of the three served by gunicorn (as bench/flask_app.py is
in bench/serve_mlp.sh).

  MLP service    bench/flask_app.py (the TorchScript MLP, examples/models/mlp)
  churn service  churn_app() below: the XGBoost churn model (examples/models/churn),
                 loaded with Python's xgboost, 1 thread, Booster.inplace_predict
  gateway        gateway_app() below: POST /v2/models/gateway/infer with the
                 v2 JSON body berth's gateway pipeline takes (inputs x [B,16]
                 and features [B,4]); sends {"inputs": [x]} to the MLP service
                 and {"inputs": [features]} to the churn service, each over its
                 own requests.Session (one pair per worker), and answers
                 {"outputs": [probs, churn_probability]} as berth's gateway does.
                 GET /v2/models/gateway is the metadata `berth bench` reads.

Environment:
  BENCH_MLP_URL, BENCH_CHURN_URL   the services' base URLs (gateway; required)
  BENCH_GATEWAY_PARALLEL           1: call both services at once from a thread
                                   pool of 2 (berth's gateway calls them at once);
                                   0 (default): one after the other
  BENCH_CHURN_MODEL_PATH           the churn model.json (churn service; required)
  BENCH_CHURN_THREADS              XGBoost threads (default 1, as model.yaml's threads: 1)

Run with Debian's interpreter, e.g.
  /usr/bin/python3 -m gunicorn -w 2 --pythonpath bench 'flask_gateway:gateway_app()'
  /usr/bin/python3 -m gunicorn -w 2 --pythonpath bench 'flask_gateway:churn_app()'
"""

import json
import os

from flask import Flask, Response, request

HEALTH_PATHS = ("/v2/health/live", "/v2/health/ready")


def _json(status, obj):
    return Response(json.dumps(obj, separators=(",", ":")), status=status, mimetype="application/json")


def _health_routes(app, model):
    def health():
        return Response(status=200)

    for path in HEALTH_PATHS + (f"/v2/models/{model}/ready",):
        app.add_url_rule(path, endpoint=f"health:{path}", view_func=health, methods=["GET"])


def _tensor(t, name, width):
    """A v2 JSON input tensor [B, width] FP32 -> (B, data) or raise ValueError."""
    if not isinstance(t, dict) or t.get("name") != name or t.get("datatype") != "FP32":
        raise ValueError(f"input '{name}' must be FP32")
    shape, data = t.get("shape"), t.get("data")
    if (not isinstance(shape, list) or len(shape) != 2 or shape[1] != width or not isinstance(shape[0], int)
            or shape[0] < 1 or not isinstance(data, list) or len(data) != shape[0] * width):
        raise ValueError(f"input '{name}' must have shape [batch,{width}] and as many values")
    return shape[0], data


def churn_app():
    import numpy as np
    import xgboost

    booster = xgboost.Booster(model_file=os.environ["BENCH_CHURN_MODEL_PATH"])
    booster.set_param({"nthread": int(os.environ.get("BENCH_CHURN_THREADS", "1"))})
    app = Flask("churn")
    _health_routes(app, "churn")

    @app.post("/v2/models/churn/infer")
    def infer():
        try:
            req = json.loads(request.get_data())
            inputs = req["inputs"]
            if len(inputs) != 1:
                raise ValueError("expected exactly one input 'features'")
            rows, data = _tensor(inputs[0], "features", 4)
            x = np.asarray(data, dtype=np.float32).reshape(rows, 4)
        except (ValueError, KeyError, TypeError) as e:
            return _json(400, {"error": str(e)})
        p = booster.inplace_predict(x)
        return _json(200, {"model_name": "churn", "model_version": "1", "outputs": [
            {"name": "churn_probability", "datatype": "FP32", "shape": [rows, 1],
             "data": p.astype(np.float32).reshape(-1).tolist()}]})

    return app


METADATA = {"name": "gateway", "versions": ["1"], "platform": "flask",
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 16]},
                       {"name": "features", "datatype": "FP32", "shape": [-1, 4]}],
            "outputs": [{"name": "probs", "datatype": "FP32", "shape": [-1, 4]},
                        {"name": "churn_probability", "datatype": "FP32", "shape": [-1, 1]}]}


def gateway_app():
    import requests

    mlp_url = os.environ["BENCH_MLP_URL"].rstrip("/") + "/v2/models/mlp/infer"
    churn_url = os.environ["BENCH_CHURN_URL"].rstrip("/") + "/v2/models/churn/infer"
    parallel = os.environ.get("BENCH_GATEWAY_PARALLEL", "0") == "1"
    # Created lazily: gunicorn forks its workers after importing the app, and
    # a Session (its pool of sockets) must not be shared across processes.
    state = {}

    def clients():
        if not state:
            state["mlp"], state["churn"] = requests.Session(), requests.Session()
            if parallel:
                from concurrent.futures import ThreadPoolExecutor
                state["pool"] = ThreadPoolExecutor(2)
        return state

    def call(session, url, tensor):
        r = session.post(url, json={"inputs": [tensor]}, timeout=2)
        if r.status_code != 200:
            raise RuntimeError(f"{url} answered {r.status_code}: {r.text[:200]}")
        return r.json()["outputs"][0]

    app = Flask("gateway")
    _health_routes(app, "gateway")

    @app.get("/v2/models/gateway")
    def metadata():
        return _json(200, METADATA)

    @app.post("/v2/models/gateway/infer")
    def infer():
        try:
            req = json.loads(request.get_data())
            by_name = {t.get("name"): t for t in req["inputs"]}
            x, features = by_name["x"], by_name["features"]
            _tensor(x, "x", 16)
            _tensor(features, "features", 4)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            return _json(400, {"error": f"bad request: {e}"})
        c = clients()
        try:
            if parallel:
                f = c["pool"].submit(call, c["churn"], churn_url, features)
                probs = call(c["mlp"], mlp_url, x)
                churn = f.result()
            else:
                probs = call(c["mlp"], mlp_url, x)
                churn = call(c["churn"], churn_url, features)
        except (requests.RequestException, RuntimeError, KeyError, ValueError) as e:
            return _json(503, {"error": f"a service failed: {e}"})
        resp = {"model_name": "gateway", "model_version": "1", "outputs": [probs, churn]}
        if "id" in req:
            resp["id"] = req["id"]
        return _json(200, resp)

    return app
