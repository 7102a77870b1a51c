"""The uvicorn + FastAPI contender of bench/serve_mlp.sh.

The same TorchScript model as berth and bench/flask_app.py, at the same path
and with the same Open Inference Protocol v2 JSON request and response shape;
model loading, request parsing and the response body are shared with the
Flask app (bench/mlp_model.py; its docstring lists the BENCH_* environment
variables, BENCH_MODEL_PATH is required).

The infer endpoint is `async def` and reads the raw body: one forward pass of
this model takes tens of microseconds, so it runs on the event loop rather
than behind FastAPI's threadpool hop for sync endpoints, and the JSON goes
through the same json.loads/json.dumps as Flask's rather than through pydantic
models (which would only add validation cost to the framework comparison).

BENCH_TCP_NODELAY=1 (the default; 0 turns it off) works around uvicorn issue
Kludex/uvicorn#3149, still open and present in Debian's uvicorn 0.17: with
--workers N the supervisor binds the listener with proto 0, accepted sockets
inherit it, and asyncio only sets TCP_NODELAY where proto is IPPROTO_TCP. uvicorn
writes the response headers and body separately, so with Nagle on every
keep-alive response after the first few waits for the client's delayed ACK
(~40 ms on Linux: ~350 req/s instead of thousands). The work-around makes
asyncio set TCP_NODELAY on every TCP socket in the worker, which is what
`--workers 1` gets anyway.

Run with Debian's interpreter: /usr/bin/python3 -m uvicorn --workers 2 \
  --host 127.0.0.1 --port 8000 --log-level warning --app-dir bench fastapi_app:app
"""

import asyncio.base_events
import os
import socket

from fastapi import FastAPI, Request, Response

import mlp_model


def _set_nodelay(sock):
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


if os.environ.get("BENCH_TCP_NODELAY", "1") == "1":
    asyncio.base_events._set_nodelay = _set_nodelay

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


async def health():
    return Response(status_code=200)


for _path in mlp_model.HEALTH_PATHS:
    app.add_api_route(_path, health, methods=["GET"])


@app.post(mlp_model.INFER_PATH)
async def infer(request: Request):
    status, body = mlp_model.infer(await request.body())
    return Response(body, status_code=status, media_type="application/json")
