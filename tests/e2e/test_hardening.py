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
                        "--http-port", "0", "--metrics-port", "0", "--auth-token-file", str(tmp_path / "token")],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode != 0
    assert "FIFO" in p.stdout + p.stderr
