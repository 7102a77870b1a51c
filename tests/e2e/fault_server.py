"""A small v2 server that misbehaves on purpose, for the pipeline fault tests
(tests/e2e/test_pipeline_faults.py). It runs as its own process (its own GIL,
so it keeps up with thousands of requests a second) on loopback:

    /usr/bin/python3 tests/e2e/fault_server.py    # prints its port, then serves

GET  /v2/models/M           metadata of an identity-like model M (x -> out_x, FP32 [-1, -1])
GET  /counts                {"<x0>": POSTs seen with that first input value, ...} as JSON
POST /v2/models/M/infer     takes binary tensors (what berth's remote steps send) or JSON; what it
                            does is chosen by the first value x0 of input x:
    x0 >= 0   answers 200 with out_x = x (JSON), keep-alive
    x0 == -1  starts a 200 answer (Content-Length 4096), sends part of the body, then resets the
              connection (SO_LINGER 0: RST)
    x0 == -2  the same, but closes cleanly (FIN) in the middle of the body
    x0 == -3  sends the head of a 200 answer at once, then trickles its body, 1 byte every 20 ms,
              for at most 5 s
    x0 == -4  trickles the head itself, 1 byte every 20 ms, for at most 5 s
    x0 == -5  500 {"error": ...}, keep-alive
    x0 == -6  400 {"error": ...} with Connection: close, then closes
    x0 == -7  400 {"error": ...}, keep-alive

FaultServer() starts one as a subprocess and stops it by its PID.
"""
import array
import json
import pathlib
import socket
import struct
import subprocess
import sys
import threading
import time

from procs import stop_process

META_INPUTS = [{"name": "x", "datatype": "FP32", "shape": [-1, -1]}]
META_OUTPUTS = [{"name": "out_x", "datatype": "FP32", "shape": [-1, -1]}]
TRICKLE_FOR_S = 5.0
TRICKLE_EVERY_S = 0.02

_counts = {}
_lock = threading.Lock()


def _count(key):
    with _lock:
        _counts[key] = _counts.get(key, 0) + 1


def _send(conn, status, body, close=False, reason=None):
    data = json.dumps(body).encode()
    reason = reason or {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}[status]
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            + ("Connection: close\r\n" if close else "") + "\r\n")
    conn.sendall(head.encode() + data)


def _first_value(headers, body):
    """x and its shape from a v2 infer body (binary tensors or JSON)."""
    json_len = headers.get("inference-header-content-length")
    if json_len is not None:
        n = int(json_len)
        req = json.loads(body[:n])
        binary = body[n:]
        offset = 0
        for inp in req.get("inputs", []):
            size = int(inp.get("parameters", {}).get("binary_data_size", 0))
            if inp["name"] == "x":
                values = array.array("f", binary[offset:offset + size]).tolist()
                return req, values, inp["shape"]
            offset += size
        raise ValueError("no input x")
    req = json.loads(body)
    for inp in req.get("inputs", []):
        if inp["name"] == "x":
            return req, [float(v) for v in inp["data"]], inp["shape"]
    raise ValueError("no input x")


def _trickle(conn, data):
    end = time.monotonic() + TRICKLE_FOR_S
    for i in range(len(data)):
        if time.monotonic() > end:
            return
        conn.sendall(data[i:i + 1])
        time.sleep(TRICKLE_EVERY_S)


def _infer(conn, model, headers, body):
    """Answers one infer request; returns whether the connection stays open."""
    try:
        req, values, shape = _first_value(headers, body)
    except (ValueError, KeyError, json.JSONDecodeError) as e:
        _count("undecodable")
        _send(conn, 400, {"error": f"fault server: cannot read the request: {e}"})
        return True
    x0 = values[0] if values else 0.0
    _count(str(int(x0)) if x0 < 0 else "ok")
    if x0 >= 0:
        answer = {"model_name": model, "model_version": "1",
                  "outputs": [{"name": "out_x", "datatype": "FP32", "shape": shape, "data": values}]}
        if "id" in req:
            answer["id"] = req["id"]
        _send(conn, 200, answer)
        return True
    code = int(x0)
    if code in (-1, -2):
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n"
        conn.sendall(head + b'{"model_name": "' + model.encode() + b'", "outputs": [{"name": "out_x", "data": [1,')
        time.sleep(0.01)  # the head and part of the body are on their way
        if code == -1:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return False
    if code == -3:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
        _trickle(conn, b" " * 1000)
        return False
    if code == -4:
        _trickle(conn, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Pad: " + b"p" * 400 + b"\r\n")
        return False
    if code == -5:
        _send(conn, 500, {"error": f"{model} broke (fault server)"})
        return True
    if code == -6:
        _send(conn, 400, {"error": f"{model} refuses this (fault server)"}, close=True)
        return False
    if code == -7:
        _send(conn, 400, {"error": f"{model} refuses this (fault server)"})
        return True
    _send(conn, 400, {"error": f"fault server: no fault {code}"})
    return True


def _serve(conn):
    buf = b""
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            n = int(headers.get("content-length", 0))
            while len(buf) < n:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
            body, buf = buf[:n], buf[n:]
            parts = path.split("?")[0].strip("/").split("/")
            if method == "GET" and parts == ["counts"]:
                with _lock:
                    _send(conn, 200, dict(_counts))
                keep = True
            elif method == "GET" and len(parts) == 3 and parts[:2] == ["v2", "models"]:
                _send(conn, 200, {"name": parts[2], "versions": ["1"], "platform": "fault",
                                  "inputs": META_INPUTS, "outputs": META_OUTPUTS})
                keep = True
            elif method == "POST" and len(parts) == 4 and parts[:2] == ["v2", "models"] and parts[3] == "infer":
                keep = _infer(conn, parts[2], headers, body)
            else:
                _send(conn, 404, {"error": f"fault server: no {method} {path}"})
                keep = True
            if not keep or headers.get("connection", "").lower() == "close":
                return
    except OSError:
        return  # the peer went away (a client that gave up on a trickle): expected
    finally:
        conn.close()


def main():
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0))
    listener.listen(512)
    print(listener.getsockname()[1], flush=True)
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=_serve, args=(conn,), daemon=True).start()


class FaultServer:
    """The fault server as a subprocess on a free loopback port; stop() ends it by its PID."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, str(pathlib.Path(__file__).resolve())],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()  # the port, once it listens
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"fault server did not start: {line!r}")
        self.port = int(line)
        self.url = f"http://127.0.0.1:{self.port}"

    def counts(self):
        import requests
        return requests.get(self.url + "/counts", timeout=10).json()

    def count(self, key):
        return self.counts().get(str(key), 0)

    def stop(self):
        stop_process(self.proc)
        if self.proc.stdout:
            self.proc.stdout.close()


if __name__ == "__main__":
    main()
