"""The Python side of bench/serve_mlp.sh's "stack users have today" contenders,
shared by bench/flask_app.py (gunicorn + Flask) and bench/fastapi_app.py
(uvicorn + FastAPI) so that the two differ only in the web framework.

Loads the TorchScript model (once per importing process, i.e. per worker, like
a typical deployment) and turns an Open Inference Protocol v2 JSON request
body into the response body:

  POST /v2/models/<name>/infer
  {"inputs":[{"name":"x","datatype":"FP32","shape":[B,16],"data":[...]}]}
  -> {"model_name":..,"model_version":..,"outputs":[{"name":"probs",
      "datatype":"FP32","shape":[B,4],"data":[...]}]}

Environment:
  BENCH_MODEL_PATH     path to model.pt (required)
  BENCH_MODEL_NAME     model name in the URL (default mlp)
  BENCH_MODEL_VERSION  version reported in responses (default 1)
  BENCH_INPUT_NAME     input tensor name (default x)
  BENCH_OUTPUT_NAME    output tensor name (default probs)
"""

import json
import os

import torch

torch.set_num_threads(1)

MODEL_PATH = os.environ["BENCH_MODEL_PATH"]
MODEL_NAME = os.environ.get("BENCH_MODEL_NAME", "mlp")
MODEL_VERSION = os.environ.get("BENCH_MODEL_VERSION", "1")
INPUT_NAME = os.environ.get("BENCH_INPUT_NAME", "x")
OUTPUT_NAME = os.environ.get("BENCH_OUTPUT_NAME", "probs")

INFER_PATH = f"/v2/models/{MODEL_NAME}/infer"
HEALTH_PATHS = ("/v2/health/live", "/v2/health/ready", f"/v2/models/{MODEL_NAME}/ready")

model = torch.jit.load(MODEL_PATH, map_location="cpu")
model.eval()


def _error(status, message):
    return status, json.dumps({"error": message})


def infer(raw):
    """Request body (bytes) -> (HTTP status, JSON response body as str)."""
    try:
        req = json.loads(raw)
    except ValueError as e:
        return _error(400, f"malformed JSON: {e}")
    inputs = req.get("inputs") if isinstance(req, dict) else None
    if not isinstance(inputs, list) or len(inputs) != 1:
        return _error(400, f"expected exactly one input '{INPUT_NAME}'")
    t = inputs[0]
    if not isinstance(t, dict) or t.get("name") != INPUT_NAME:
        return _error(400, f"unknown input '{t.get('name') if isinstance(t, dict) else t}'")
    if t.get("datatype") != "FP32":
        return _error(400, "input datatype must be FP32")
    shape = t.get("shape")
    data = t.get("data")
    if (not isinstance(shape, list) or len(shape) != 2 or shape[1] != 16
            or not isinstance(shape[0], int) or shape[0] < 1):
        return _error(400, f"input shape must be [batch,16], got {shape}")
    try:
        x = torch.tensor(data, dtype=torch.float32)
        if x.numel() != shape[0] * 16:
            return _error(400, "data count does not match the shape")
        x = x.reshape(shape)
    except (TypeError, ValueError, RuntimeError) as e:
        return _error(400, f"bad input data: {e}")
    with torch.inference_mode():
        y = model(x)
    resp = {
        "model_name": MODEL_NAME,
        "model_version": MODEL_VERSION,
        "outputs": [{
            "name": OUTPUT_NAME,
            "datatype": "FP32",
            "shape": list(y.shape),
            "data": y.reshape(-1).tolist(),
        }],
    }
    if "id" in req:
        resp["id"] = req["id"]
    return 200, json.dumps(resp, separators=(",", ":"))
