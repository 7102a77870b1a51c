"""Hardening: what an adversarial or careless client sends must never crash,
leak from or smuggle past the server (issue: hardening). Identity backend
only, so these run under the sanitizer build too.
"""
import json
import socket
import time

import pytest
import requests

from conftest import Server, error_of, write_model
from rawhttp import Reader, http_request, raw_connect

ID_YAML = """\
backend: identity
max_batch_size: 0
inputs:
  - {name: x, datatype: INT32, shape: [-1]}
outputs:
  - {name: y, datatype: INT32, shape: [-1]}
"""

INFER_BODY = json.dumps({"inputs": [{"name": "x", "datatype": "INT32", "shape": [2], "data": [4, 2]}]}).encode()


def make_repo(root):
    repo = root / "repo"
    write_model(repo, "m", ID_YAML)
    return repo


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = Server(make_repo(tmp_path_factory.mktemp("hardening")))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def big_headers(tmp_path_factory):
    """--max-header-bytes high enough for one field to pass Beast's 64 KiB field limit."""
    s = Server(make_repo(tmp_path_factory.mktemp("big_headers")), ["--max-header-bytes", str(4 << 20)])
    yield s
    s.stop()


def still_serves(s):
    assert s.proc.poll() is None, s.logs()
    r = s.post("/v2/models/m/infer", data=INFER_BODY)
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == [4, 2]


def chunked_with_trailer(trailer_lines, body=INFER_BODY):
    return (f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n" + b"".join(t + b"\r\n" for t in trailer_lines) +
            b"\r\n")


CHUNKED_HEAD = (b"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                b"Content-Type: application/json\r\n\r\n")


def send_and_read(port, data, timeout=10):
    with raw_connect(port, timeout) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        rd = Reader(sock)
        r = rd.response()
        closed = rd.closed_within(5)
        return r, closed


# ---------------------------------------------------------------------------
# 1. a field value Beast cannot hold (>= 64 KiB) is a 431, never a crash


@pytest.mark.parametrize("size", [65535, 70000, 1 << 20])
def test_huge_trailer_value_is_refused_and_server_survives(big_headers, size):
    data = CHUNKED_HEAD + chunked_with_trailer([b"X-Trailer: " + b"a" * size])
    r, closed = send_and_read(big_headers.port, data)
    assert r.status == 431, r
    assert "trailer" in r.json()["error"]
    assert closed
    still_serves(big_headers)


def test_huge_trailer_value_default_limits(srv):
    data = CHUNKED_HEAD + chunked_with_trailer([b"X-Trailer: " + b"a" * 70000])
    r, closed = send_and_read(srv.port, data)
    assert r.status == 431, r
    assert closed
    still_serves(srv)


@pytest.mark.parametrize("where", ["value", "name"])
def test_huge_header_field_with_high_header_limit_is_431(big_headers, where):
    field = (b"X-Big: " + b"v" * 70000) if where == "value" else (b"X-" + b"n" * 70000 + b": v")
    data = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n" + field + b"\r\n\r\n"
    r, closed = send_and_read(big_headers.port, data)
    assert r.status == 431, r
    assert "longer than" in r.json()["error"]
    still_serves(big_headers)


def test_huge_trailer_on_the_metrics_port(big_headers):
    data = (b"POST /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
            chunked_with_trailer([b"X-T: " + b"m" * 70000], body=b"x"))
    r, _ = send_and_read(big_headers.metrics_port, data)
    assert r.status == 431, r
    still_serves(big_headers)
    assert requests.get(big_headers.metrics_url, timeout=10).status_code == 200


def test_many_oversized_requests_in_parallel_keep_the_server_up(big_headers):
    socks = []
    for i in range(20):
        s = raw_connect(big_headers.port)
        s.sendall(CHUNKED_HEAD + chunked_with_trailer([b"X-T: " + b"z" * (65536 + i)]))
        socks.append(s)
    for s in socks:
        assert Reader(s).response().status == 431
        s.close()
    still_serves(big_headers)


# ---------------------------------------------------------------------------
# 6. trailers are bounded, and never become headers


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def test_unbounded_trailers_are_cut_off(srv):
    """Trailer lines that never end: 431 once they pass the header limit, not after 200 MB were buffered."""
    rss_before = rss_bytes(srv.proc.pid)
    sent = 0
    answered_at = None
    with raw_connect(srv.port, timeout=10) as sock:
        sock.sendall(CHUNKED_HEAD + f"{len(INFER_BODY):x}\r\n".encode() + INFER_BODY + b"\r\n0\r\n")
        sock.setblocking(False)
        line = (b"X-Filler: " + b"f" * 1000 + b"\r\n") * 64
        got = b""
        deadline = time.time() + 30
        while sent < 200 << 20 and time.time() < deadline:
            try:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                got += chunk
                if answered_at is None and b"\r\n\r\n" in got:
                    answered_at = sent
            except BlockingIOError:
                pass
            except (ConnectionResetError, BrokenPipeError):
                break
            try:
                sent += sock.send(line)
            except BlockingIOError:
                time.sleep(0.001)
            except (BrokenPipeError, ConnectionResetError):
                break
    assert got.startswith(b"HTTP/1.1 431"), got[:200]
    assert answered_at is not None and answered_at < 16 << 20, (answered_at, sent)
    assert rss_bytes(srv.proc.pid) - rss_before < 64 << 20
    still_serves(srv)


def test_trailer_fields_do_not_become_headers(tmp_path, start_server):
    repo = make_repo(tmp_path)
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    s = start_server(repo, ["--auth-token-file", str(token)])
    data = CHUNKED_HEAD + chunked_with_trailer([b"Authorization: Bearer s3cret"])
    with raw_connect(s.port) as sock:
        sock.sendall(data)
        r = Reader(sock).response()
    assert r.status == 401, r
    ok = s.post("/v2/models/m/infer", data=INFER_BODY, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200, ok.text


def test_normal_trailers_still_accepted(srv):
    data = CHUNKED_HEAD + chunked_with_trailer([b"X-Checksum: abc", b"X-Other: 1"])
    with raw_connect(srv.port) as sock:
        sock.sendall(data)
        r = Reader(sock).response()
    assert r.status == 200, r
    assert r.json()["outputs"][0]["data"] == [4, 2]


# ---------------------------------------------------------------------------
# 5. request smuggling: a Transfer-Encoding berth cannot frame is refused and
#    the connection closed; the body never runs as a next request

SMUGGLED = http_request("POST", "/v2/models/m/infer", INFER_BODY)


@pytest.mark.parametrize("te,status", [
    ("xchunked", 400), ("gzip", 400), ("identity", 400), ("chunked, gzip", 400), ("chunked, identity", 400),
    ("gzip, chunked", 501), ("deflate,chunked", 501), ("chunked, chunked", 400), ("", 400), (" , ", 400),
])
def test_transfer_encoding_not_ending_in_chunked_is_refused(srv, te, status):
    head = f"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {te}\r\n\r\n".encode()
    with raw_connect(srv.port) as sock:
        sock.sendall(head + SMUGGLED)
        rd = Reader(sock)
        r = rd.response()
        assert r.status == status, (te, r)
        assert "Transfer-Encoding" in r.json()["error"]
        assert r.headers.get("connection", "").lower() == "close"
        # nothing more: the smuggled request is never answered
        assert rd.closed_within(5)
        assert b"HTTP/1.1" not in rd.buf, rd.buf
    still_serves(srv)


def test_transfer_encoding_split_over_two_fields(srv):
    head = (b"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    r, closed = send_and_read(srv.port, head + chunked_with_trailer([]))
    assert r.status == 501, r
    assert closed


def test_transfer_encoding_in_http10_is_refused(srv):
    head = b"POST /v2/models/m/infer HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    r, closed = send_and_read(srv.port, head + chunked_with_trailer([]))
    assert r.status == 400, r
    assert closed


@pytest.mark.parametrize("te", ["chunked", "Chunked", "CHUNKED", " chunked "])
def test_plain_chunked_still_works(srv, te):
    head = f"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {te}\r\n\r\n".encode()
    with raw_connect(srv.port) as sock:
        sock.sendall(head + chunked_with_trailer([]))
        r = Reader(sock).response()
    assert r.status == 200, r
    assert r.json()["outputs"][0]["data"] == [4, 2]


def test_content_length_then_transfer_encoding_is_refused(srv):
    head = (f"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: {len(INFER_BODY)}\r\n"
            f"Transfer-Encoding: gzip\r\n\r\n").encode()
    with raw_connect(srv.port) as sock:
        sock.sendall(head + INFER_BODY + SMUGGLED)
        rd = Reader(sock)
        r = rd.response()
        assert r.status == 400, r
        assert rd.closed_within(5)
        assert b"HTTP/1.1" not in rd.buf
