"""The gunicorn + Flask contender of bench/serve_mlp.sh.

The same TorchScript model as berth, behind Flask (served by gunicorn), at the
same path and with the same Open Inference Protocol v2 JSON request and
response shape. Model loading, request parsing and the response body are in
bench/mlp_model.py (shared with bench/fastapi_app.py; its docstring lists the
BENCH_* environment variables, BENCH_MODEL_PATH is required).

Run with Debian's interpreter: /usr/bin/python3 -m gunicorn -w 2 \
  --pythonpath bench flask_app:app
"""

from flask import Flask, Response, request

import mlp_model

app = Flask(__name__)


def health():
    return Response(status=200)


for _path in mlp_model.HEALTH_PATHS:
    app.add_url_rule(_path, endpoint=f"health:{_path}", view_func=health, methods=["GET"])


@app.post(mlp_model.INFER_PATH)
def infer():
    status, body = mlp_model.infer(request.get_data())
    return Response(body, status=status, mimetype="application/json")
