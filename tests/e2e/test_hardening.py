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


# ---------------------------------------------------------------------------
# 3. model.yaml is held to the symlink rule, and no error quotes a file or
#    names where the server keeps it
# 4. only regular files of bounded size are read, never blocking

SECRET = "TOP-SECRET-a1b2c3d4e5"


def all_text_a_client_sees(s, name):
    """Everything the v2 API says about model `name`: index, metadata, ready, infer."""
    parts = [s.post("/v2/repository/index").text, s.get(f"/v2/models/{name}").text,
             s.get(f"/v2/models/{name}/ready").text, s.post(f"/v2/models/{name}/infer", data=INFER_BODY).text,
             s.get(f"/v2/models/{name}/versions/1").text]
    return "\n".join(parts)


def reason_of(s, name):
    rows = [e for e in s.post("/v2/repository/index").json() if e["name"] == name]
    assert rows, s.post("/v2/repository/index").json()
    return " ".join(e["reason"] for e in rows), rows


@pytest.mark.parametrize("secret_text", [
    f"{SECRET}\n",                                   # a scalar: would have been quoted as the top level
    f"backend: {SECRET}\noutputs: []\n",             # a value in the right place
    f"root:x:0:0:{SECRET}:/root:/bin/bash\n",       # /etc/passwd-like
])
def test_model_yaml_linking_outside_the_repository_is_refused_unread(tmp_path, start_server, secret_text):
    repo = make_repo(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.yaml").write_text(secret_text)
    d = repo / "leak"
    (d / "1").mkdir(parents=True)
    (d / "model.yaml").symlink_to(outside / "secret.yaml")
    s = start_server(repo)
    reason, rows = reason_of(s, "leak")
    assert all(e["state"] == "UNAVAILABLE" for e in rows), rows
    assert "outside" in reason and "model.yaml" in reason, reason
    seen = all_text_a_client_sees(s, "leak")
    assert SECRET not in seen and "TOP-SECRET" not in seen, seen
    assert str(tmp_path) not in seen, seen  # no server paths either
    still_serves(s)


def test_config_errors_never_quote_the_file(tmp_path, start_server):
    repo = make_repo(tmp_path)
    write_model(repo, "badtype", ID_YAML.replace("datatype: INT32, shape: [-1]}\noutputs",
                                                 f"datatype: {SECRET}, shape: [-1]}}\noutputs"))
    write_model(repo, "badbackend", ID_YAML.replace("backend: identity", f"backend: ../{SECRET}"))
    write_model(repo, "scalar", f"{SECRET} and more text\n")
    s = start_server(repo)
    for name, key in [("badtype", "datatype"), ("badbackend", "backend"), ("scalar", "model.yaml")]:
        reason, _ = reason_of(s, name)
        assert key in reason, reason
        assert SECRET not in all_text_a_client_sees(s, name)


def test_reasons_name_no_server_paths(tmp_path, start_server):
    repo = make_repo(tmp_path)
    write_model(repo, "nobackend", ID_YAML.replace("backend: identity", "backend: nosuch"))
    write_model(repo, "noversions", ID_YAML, versions=())
    s = start_server(repo)
    text = s.post("/v2/repository/index").text
    assert "nosuch" in text and "noversions" in text, text
    assert str(tmp_path) not in text, text
    assert "/lib/berth/backends" not in text, text
    assert str(repo) in s.logs()  # the log keeps where things are


def test_model_yaml_link_inside_the_model_directory_is_followed(tmp_path, start_server):
    repo = make_repo(tmp_path)
    d = repo / "linked"
    (d / "1").mkdir(parents=True)
    (d / "configs").mkdir()
    (d / "configs" / "real.yaml").write_text(ID_YAML)
    (d / "model.yaml").symlink_to("configs/real.yaml")
    s = start_server(repo)
    r = s.post("/v2/models/linked/infer", data=INFER_BODY)
    assert r.status_code == 200, r.text


def test_model_yaml_fifo_does_not_block_loading(tmp_path, start_server):
    import os
    repo = make_repo(tmp_path)
    d = repo / "fifo"
    (d / "1").mkdir(parents=True)
    os.mkfifo(d / "model.yaml")
    t0 = time.time()
    s = start_server(repo, ["--model-control-mode", "poll", "--repository-poll-secs", "1",
                            "--shutdown-grace-secs", "5"])
    assert time.time() - t0 < 20
    reason, _ = reason_of(s, "fifo")
    assert "FIFO" in reason, reason
    still_serves(s)
    # later loads (poll) still happen: a new model appears and serves
    write_model(repo, "later", ID_YAML)
    deadline = time.time() + 15
    while time.time() < deadline and s.post("/v2/models/later/infer", data=INFER_BODY).status_code != 200:
        time.sleep(0.2)
    assert s.post("/v2/models/later/infer", data=INFER_BODY).status_code == 200
    t0 = time.time()
    assert s.stop() == 0
    assert time.time() - t0 < 5  # drain does not wait on a FIFO


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_model_yaml_device_is_refused(tmp_path, start_server, target):
    repo = make_repo(tmp_path)
    d = repo / "dev"
    (d / "1").mkdir(parents=True)
    (d / "model.yaml").symlink_to(target)
    s = start_server(repo)
    reason, rows = reason_of(s, "dev")
    assert all(e["state"] == "UNAVAILABLE" for e in rows), rows
    assert "refused" in reason, reason
    still_serves(s)


def test_huge_model_yaml_is_refused(tmp_path, start_server):
    repo = make_repo(tmp_path)
    write_model(repo, "huge", ID_YAML + "#" + "x" * (2 << 20) + "\n")
    s = start_server(repo)
    reason, _ = reason_of(s, "huge")
    assert "larger than the limit" in reason, reason
    still_serves(s)


def test_explicit_load_of_a_fifo_model_answers_at_once(tmp_path, start_server):
    import os
    repo = make_repo(tmp_path)
    d = repo / "fifo"
    (d / "1").mkdir(parents=True)
    os.mkfifo(d / "model.yaml")
    token = tmp_path / "admin"
    token.write_text("adm\n")
    s = start_server(repo, ["--model-control-mode", "explicit", "--load-model", "m",
                            "--admin-token-file", str(token)])
    hdr = {"Authorization": "Bearer adm"}
    r = s.post("/v2/repository/models/fifo/load", headers=hdr, timeout=10)
    assert r.status_code == 400 and "FIFO" in error_of(r), r.text
    assert s.post("/v2/repository/models/m/unload", headers=hdr, timeout=10).status_code == 200
    assert s.post("/v2/repository/models/m/load", headers=hdr, timeout=10).status_code == 200
    still_serves(s)


def test_token_file_that_is_a_fifo_is_refused_at_start(tmp_path):
    import os
    import subprocess
    from conftest import BERTH_BIN
    repo = make_repo(tmp_path)
    os.mkfifo(tmp_path / "token")
    p = subprocess.run([str(BERTH_BIN), "serve", "--model-repository", str(repo), "--host", "127.0.0.1",
                        "--http-port", "0", "--metrics-port", "0", "--grpc-port", "0", "--auth-token-file", str(tmp_path / "token")],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode != 0
    assert "FIFO" in p.stdout + p.stderr


# ---------------------------------------------------------------------------
# 7. memory a large body took comes back

def asan_build():
    from conftest import BERTH_BIN
    return "asan" in str(BERTH_BIN)


@pytest.mark.skipif(asan_build(), reason="RSS is the sanitizer's allocator's, not berth's")
def test_a_large_json_body_does_not_keep_its_memory(tmp_path, start_server):
    repo = tmp_path / "repo"
    # Only the small output is asked for, so that the answer stays small.
    write_model(repo, "big", """\
backend: identity
max_batch_size: 0
inputs:
  - {name: s, datatype: FP32, shape: [1]}
  - {name: big, datatype: FP32, shape: [-1]}
outputs:
  - {name: s_out, datatype: FP32, shape: [1]}
  - {name: big_out, datatype: FP32, shape: [-1]}
""")
    s = start_server(repo, ["--max-request-bytes", str(100 << 20)])
    n = 10_000_000
    body = ('{"inputs":[{"name":"s","datatype":"FP32","shape":[1],"data":[1]},'
            '{"name":"big","datatype":"FP32","shape":[%d],"data":[' % n + "0.25," * (n - 1) + '0.25]}],'
            '"outputs":[{"name":"s_out"}]}').encode()
    assert len(body) > 45 << 20
    before = rss_bytes(s.proc.pid)
    r = s.post("/v2/models/big/infer", data=body, timeout=120)
    assert r.status_code == 200, r.text[:500]
    del body
    peak_allowed = before + (300 << 20)
    deadline = time.time() + 30
    while time.time() < deadline and rss_bytes(s.proc.pid) > peak_allowed:
        time.sleep(0.5)
    assert rss_bytes(s.proc.pid) <= peak_allowed, (before, rss_bytes(s.proc.pid))
    still_serves_big = s.post("/v2/models/big/infer", json={"inputs": [
        {"name": "s", "datatype": "FP32", "shape": [1], "data": [2]},
        {"name": "big", "datatype": "FP32", "shape": [1], "data": [0]}]})
    assert still_serves_big.status_code == 200


# ---------------------------------------------------------------------------
# 8. global bounds: connections, body bytes in flight, auth before the body


def test_at_max_connections_health_checks_still_get_through(tmp_path, start_server):
    s = start_server(make_repo(tmp_path), ["--max-connections", "4"])
    idle = [raw_connect(s.port) for _ in range(4)]  # every ordinary slot taken by connections that send nothing
    try:
        time.sleep(0.2)
        live = raw_connect(s.port)
        live.sendall(http_request("GET", "/v2/health/live"))
        assert Reader(live).response().status == 200
        live.close()
        busy = raw_connect(s.port)
        busy.sendall(http_request("POST", "/v2/models/m/infer", INFER_BODY))
        r = Reader(busy).response()
        assert r.status == 503 and "max-connections" in r.json()["error"], r
        assert r.headers.get("retry-after") == "1"
        busy.close()
    finally:
        for c in idle:
            c.close()
    time.sleep(0.3)
    still_serves(s)


def test_low_descriptor_limit_and_a_flood_of_idle_connections(tmp_path):
    import subprocess
    from conftest import BERTH_BIN, free_port
    port = free_port()
    proc = subprocess.Popen(["/bin/sh", "-c", 'ulimit -n 128 && exec "$0" "$@"', str(BERTH_BIN), "serve",
                             "--model-repository", str(make_repo(tmp_path)), "--host", "127.0.0.1",
                             "--http-port", str(port), "--metrics-port", "0", "--grpc-port", "0", "--log-level", "warn"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    conns = []
    try:
        deadline = time.time() + 30
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.time() < deadline and proc.poll() is None
            time.sleep(0.05)
        for _ in range(300):  # far more than the descriptor limit
            try:
                conns.append(socket.create_connection(("127.0.0.1", port), timeout=2))
            except OSError:
                break
        ok = False
        t0 = time.time()
        while time.time() - t0 < 10 and not ok:
            try:
                ok = requests.get(f"http://127.0.0.1:{port}/v2/health/live", timeout=2).status_code == 200
            except requests.RequestException:
                time.sleep(0.2)
        assert ok, "health checks locked out by idle connections"
        assert proc.poll() is None
    finally:
        for c in conns:
            c.close()
        proc.terminate()
        proc.wait(timeout=10)


def test_body_budget_refuses_before_reading(tmp_path, start_server):
    s = start_server(make_repo(tmp_path), ["--max-inflight-body-bytes", str(1 << 20),
                                           "--max-request-bytes", str(8 << 20)])
    # one body larger than the whole budget: refused on its headers
    with raw_connect(s.port) as sock:
        sock.sendall(b"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n")
        r = Reader(sock).response()
        assert r.status == 503 and "max-inflight-body-bytes" in r.json()["error"], r
    # two that each fit but not together: the second waits for nothing, it gets 503
    first = raw_connect(s.port)
    first.sendall(b"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 700000\r\n\r\n" + b" " * 1000)
    time.sleep(0.2)
    with raw_connect(s.port) as sock:
        sock.sendall(b"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 700000\r\n\r\n")
        r = Reader(sock).response()
        assert r.status == 503, r
    first.close()
    time.sleep(0.3)  # the first one's reservation is released with its connection
    still_serves(s)


def test_chunked_bodies_count_against_the_budget(tmp_path, start_server):
    s = start_server(make_repo(tmp_path), ["--max-inflight-body-bytes", str(256 << 10)])
    with raw_connect(s.port) as sock:
        sock.sendall(CHUNKED_HEAD)
        chunk = b"x" * (100 << 10)
        try:
            for _ in range(5):
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = Reader(sock).response()
        assert r.status == 503, r
    still_serves(s)


def test_a_request_without_its_token_is_refused_before_its_body(tmp_path, start_server):
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    s = start_server(make_repo(tmp_path), ["--auth-token-file", str(token)])
    with raw_connect(s.port) as sock:
        sock.sendall(b"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        rd = Reader(sock)
        r = rd.response()
        assert r.status == 401, r  # not 100 Continue: no invitation to send 50 MB
        assert r.headers.get("www-authenticate") == "Bearer"
        assert rd.closed_within(5)
    r = s.get("/v2/health/live")  # health needs no token
    assert r.status_code == 200
    ok = s.post("/v2/models/m/infer", data=INFER_BODY, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200


# ---------------------------------------------------------------------------
# 9. health answers fast while large bodies are decoded

def test_health_is_fast_while_large_bodies_are_decoded(tmp_path, start_server):
    import threading
    repo = tmp_path / "repo"
    write_model(repo, "big", """\
backend: identity
max_batch_size: 0
inputs:
  - {name: s, datatype: FP32, shape: [1]}
  - {name: big, datatype: FP32, shape: [-1]}
outputs:
  - {name: s_out, datatype: FP32, shape: [1]}
  - {name: big_out, datatype: FP32, shape: [-1]}
""")
    s = start_server(repo, ["--max-request-bytes", str(64 << 20)])
    n = 3_000_000
    body = ('{"inputs":[{"name":"s","datatype":"FP32","shape":[1],"data":[1]},'
            '{"name":"big","datatype":"FP32","shape":[%d],"data":[' % n + "0.5," * (n - 1) + '0.5]}],'
            '"outputs":[{"name":"s_out"}]}').encode()
    stop = threading.Event()
    statuses = []

    def post_loop():
        while not stop.is_set():
            statuses.append(requests.post(s.url + "/v2/models/big/infer", data=body, timeout=60).status_code)

    threads = [threading.Thread(target=post_loop) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    worst = 0.0
    with requests.Session() as session:
        for _ in range(40):
            t0 = time.time()
            assert session.get(s.url + "/v2/health/live", timeout=5).status_code == 200
            worst = max(worst, time.time() - t0)
            time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join()
    assert statuses and all(st == 200 for st in statuses), statuses
    assert worst < 0.25, f"/v2/health/live took {worst * 1000:.0f} ms while large bodies were decoded"


# ---------------------------------------------------------------------------
# 10. timeouts: queued requests expire on time; a hung execution fails with 504

def slow_yaml(delay_ms, extra=""):
    return ID_YAML + f'parameters: {{delay_ms: "{delay_ms}"}}\nwarmup: {{requests: 0}}\n' + extra


def test_a_queued_request_expires_on_time(tmp_path, start_server):
    import threading
    repo = tmp_path / "repo"
    write_model(repo, "slow", slow_yaml(2000))
    s = start_server(repo)
    first = threading.Thread(target=lambda: s.post("/v2/models/slow/infer", data=INFER_BODY, timeout=10))
    first.start()
    time.sleep(0.2)  # the first executes for 2 s; the second waits behind it
    body = json.loads(INFER_BODY)
    body["parameters"] = {"timeout": 200000}  # 200 ms
    t0 = time.time()
    r = s.post("/v2/models/slow/infer", json=body, timeout=10)
    took = time.time() - t0
    first.join()
    assert r.status_code == 504, r.text
    assert took < 1.0, f"the 504 came after {took:.2f} s, not when the 200 ms ran out"


def test_an_execution_past_its_limit_fails_with_504_and_is_reported_stuck(tmp_path, start_server):
    repo = tmp_path / "repo"
    write_model(repo, "hung", slow_yaml(4000, "execution_timeout_ms: 300\ninstances: 2\n"))
    s = start_server(repo)
    t0 = time.time()
    r = s.post("/v2/models/hung/infer", data=INFER_BODY, timeout=10)
    assert r.status_code == 504, r.text
    assert "execution took longer than 300 ms" in r.json()["error"]
    assert time.time() - t0 < 2.0
    metrics = requests.get(s.metrics_url, timeout=5).text
    assert 'berth_stuck_instances{model="hung",version="1"} 1' in metrics, metrics
    assert "still executing after 300 ms" in s.logs()
    # the other instance still takes requests; once the hung one returns it is not stuck any more
    time.sleep(4.5)
    metrics = requests.get(s.metrics_url, timeout=5).text
    assert 'berth_stuck_instances{model="hung",version="1"} 0' in metrics, metrics


# ---------------------------------------------------------------------------
# 11. errors stay one line without server paths; repeated ones are not logged each time

def test_repeated_model_errors_are_rate_limited_in_the_log(tmp_path, start_server):
    repo = tmp_path / "repo"
    write_model(repo, "bad", ID_YAML + 'parameters: {fail: "true"}\nwarmup: {requests: 0}\n')
    s = start_server(repo)
    with requests.Session() as session:
        for _ in range(200):
            r = session.post(s.url + "/v2/models/bad/infer", data=INFER_BODY)
            assert r.status_code == 500
            assert "\n" not in r.json()["error"]
    logged = s.logs().count("execution failed as configured")
    assert 1 <= logged <= 3, logged


# ---------------------------------------------------------------------------
# 13. poll mode: a new version whose warm-up fails is never promoted

def test_a_new_version_that_fails_its_warm_up_is_not_promoted(tmp_path, start_server):
    repo = make_repo(tmp_path)
    s = start_server(repo, ["--model-control-mode", "poll", "--repository-poll-secs", "1"])
    still_serves(s)
    d = repo / "m"
    (d / "model.yaml").write_text(ID_YAML + "version_policy: {latest: 1}\n")
    (d / "2").mkdir()
    # version 2: same model.yaml, but the model fails every request (a parameter per version is not a thing: a
    # failing version is made by a model.yaml change that applies to the new version only when it loads)
    (d / "model.yaml").write_text(ID_YAML + 'parameters: {fail: "true"}\n')
    deadline = time.time() + 15
    rows = []
    while time.time() < deadline:
        rows = [e for e in s.post("/v2/repository/index").json() if e["name"] == "m"]
        if any("warm-up" in e["reason"] for e in rows):
            break
        time.sleep(0.2)
    assert any("warm-up" in e["reason"] for e in rows), rows
    r = s.post("/v2/models/m/infer", data=INFER_BODY)
    assert r.status_code == 200 and r.json()["model_version"] == "1", r.text


# ---------------------------------------------------------------------------
# 14. the smaller ones

def test_http11_without_host_is_400(srv):
    r, closed = send_and_read(srv.port, b"GET /v2/health/live HTTP/1.1\r\n\r\n")
    assert r.status == 400 and "Host" in r.json()["error"], r
    r, _ = send_and_read(srv.port, b"GET /v2/health/live HTTP/1.0\r\n\r\n")  # 1.0 needs none
    assert r.status == 200, r


def test_unknown_expectation_is_417(srv):
    r, closed = send_and_read(srv.port, http_request("POST", "/v2/models/m/infer", INFER_BODY,
                                                     {"Expect": "something-else"}))
    assert r.status == 417, r
    assert closed


@pytest.mark.parametrize("coding", ["br", "compress", "zstd"])
def test_unknown_content_encoding_is_415(srv, coding):
    r = srv.post("/v2/models/m/infer", data=INFER_BODY, headers={"Content-Encoding": coding})
    assert r.status_code == 415, r.text
    assert "Content-Encoding" in error_of(r)


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_compressed_bodies_are_decoded(srv, coding):
    import gzip
    import zlib
    data = gzip.compress(INFER_BODY) if coding == "gzip" else zlib.compress(INFER_BODY)
    r = srv.post("/v2/models/m/infer", data=data, headers={"Content-Encoding": coding})
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == [4, 2]
    bad = srv.post("/v2/models/m/infer", data=b"not compressed", headers={"Content-Encoding": coding})
    assert bad.status_code == 400, bad.text


def test_a_zip_bomb_is_413_not_an_allocation(tmp_path, start_server):
    import gzip
    s = start_server(make_repo(tmp_path), ["--max-request-bytes", str(1 << 20)])
    bomb = gzip.compress(b"[" + b"0," * (50 << 20) + b"0]")  # ~100 MB inflated, ~100 KB sent
    assert len(bomb) < 1 << 20
    rss_before = rss_bytes(s.proc.pid)
    r = s.post("/v2/models/m/infer", data=bomb, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 413, r.text
    assert rss_bytes(s.proc.pid) - rss_before < 32 << 20
    still_serves(s)


@pytest.mark.parametrize("data", [
    [[1, 2, 3], [4]],          # ragged
    [[1, 2], [3, 4], [5, 6]],  # 3 rows for a shape of 2
    [[1, 2], 3, 4],            # arrays and values mixed
    [[[1, 2]], [[3, 4]]],      # deeper than the shape
])
def test_mis_shaped_nested_data_is_400(tmp_path, start_server, data):
    repo = tmp_path / "repo"
    write_model(repo, "g", ID_YAML.replace("shape: [-1]}", "shape: [-1, -1]}"))
    s = start_server(repo)
    r = s.post("/v2/models/g/infer", json={"inputs": [{"name": "x", "datatype": "INT32", "shape": [2, 2],
                                                       "data": data}]})
    assert r.status_code == 400, r.text
    ok = s.post("/v2/models/g/infer", json={"inputs": [{"name": "x", "datatype": "INT32", "shape": [2, 2],
                                                        "data": [[1, 2], [3, 4]]}]})
    assert ok.status_code == 200 and ok.json()["outputs"][0]["data"] == [1, 2, 3, 4]
    flat = s.post("/v2/models/g/infer", json={"inputs": [{"name": "x", "datatype": "INT32", "shape": [2, 2],
                                                          "data": [1, 2, 3, 4]}]})
    assert flat.status_code == 200


@pytest.mark.parametrize("body", [
    b'{"inputs": [], "inputs": [{"name": "x", "datatype": "INT32", "shape": [1], "data": [1]}]}',
    b'{"inputs": [{"name": "x", "name": "y", "datatype": "INT32", "shape": [1], "data": [1]}]}',
    b'{"inputs": [{"name": "x", "datatype": "INT32", "shape": [1], "data": [1],'
    b' "parameters": {"a": 1, "a": 2}}]}',
])
def test_duplicate_json_keys_are_400(srv, body):
    r = srv.post("/v2/models/m/infer", data=body)
    assert r.status_code == 400, r.text
    assert "more than once" in error_of(r)


def test_non_finite_floats_are_valid_json_both_ways(tmp_path, start_server):
    import math
    import numpy as np
    repo = tmp_path / "repo"
    write_model(repo, "f", ID_YAML.replace("INT32", "FP32"))
    s = start_server(repo)
    a = np.array([np.inf, -np.inf, np.nan, 1.5], dtype="<f4")
    header = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [4],
                                     "parameters": {"binary_data_size": a.nbytes}}]}).encode()
    r = s.post("/v2/models/f/infer", data=header + a.tobytes(),
               headers={"Inference-Header-Content-Length": str(len(header))})
    assert r.status_code == 200, r.text
    assert b"NaN" not in r.content and b"Infinity" not in r.content, r.content
    strict = json.loads(r.content, parse_constant=lambda c: pytest.fail(f"not JSON: {c}"))
    got = strict["outputs"][0]["data"]
    assert got[0] == math.inf and got[1] == -math.inf and got[2] is None and got[3] == 1.5
    # and what berth writes, it reads back
    back = s.post("/v2/models/f/infer", data=b'{"inputs":[{"name":"x","datatype":"FP32","shape":[4],'
                                             b'"data":[1e999,-1e999,null,1.5]}]}')
    assert back.status_code == 200, back.text
    assert json.loads(back.content)["outputs"][0]["data"] == got
