"""Process lifecycle: signals and draining, concurrency, and the CLI. Identity backend only."""
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests

from conftest import BERTH_BIN, error_of, free_port, write_model


def identity_model(repo, name, delay_ms=None, instances=1, dt="INT32"):
    params = f'{{delay_ms: "{delay_ms}"}}' if delay_ms is not None else "{}"
    write_model(repo, name, f"""\
backend: identity
max_batch_size: 0
inputs:
  - {{name: x, datatype: {dt}, shape: [-1]}}
outputs:
  - {{name: y, datatype: {dt}, shape: [-1]}}
instances: {instances}
parameters: {params}
""")


def flat(x):
    return [v for e in x for v in flat(e)] if isinstance(x, list) else [x]


def infer_body(values):
    return {"inputs": [{"name": "x", "datatype": "INT32", "shape": [len(values)], "data": list(values)}]}


def run_in_threads(fn, n):
    results = [None] * n
    errors = []

    def target(i):
        try:
            results[i] = fn(i)
        except Exception as e:  # noqa: BLE001 - reported by the test
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    return threads, results, errors


def connect_refused(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except (ConnectionRefusedError, socket.timeout, OSError):
        return True


def send_infer(port, model, values):
    """Sends a whole infer request on a new connection and returns the socket (the request is on the wire)."""
    body = json.dumps(infer_body(values)).encode()
    c = socket.create_connection(("127.0.0.1", port), timeout=20)
    c.sendall(b"POST /v2/models/%s/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % (model.encode(), len(body)) + body)
    return c


def read_response(c):
    """(status, JSON body) of one response; raises ConnectionError if the server closed without one."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = c.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed without a (complete) response: {buf!r}")
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    length = int(re.search(rb"content-length:\s*(\d+)", head, re.I).group(1))
    while len(body) < length:
        chunk = c.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the middle of the body")
        body += chunk
    return int(head.split()[1]), json.loads(body)


@pytest.mark.parametrize("instances,delay_ms", [(4, 2000), (1, 500)], ids=["running", "queued"])
def test_sigterm_drains_in_flight_requests(tmp_path, start_server, instances, delay_ms):
    """instances=4: all four execute at once; instances=1: three of them wait in the queue."""
    repo = tmp_path / "repo"
    identity_model(repo, "slow", delay_ms=delay_ms, instances=instances)
    s = start_server(repo, ["--shutdown-grace-secs", "8"])

    conns = [send_infer(s.port, "slow", [i, i * 10, -i]) for i in range(4)]
    time.sleep(0.3)  # all four are now in flight (executing or queued); they need >= 2 s in all
    t_sig = time.time()
    s.proc.send_signal(signal.SIGTERM)

    # while the in-flight requests still run, a new connection is answered 503 with Connection: close (a clean
    # refusal a load balancer understands), not refused at the TCP level
    time.sleep(0.2)
    assert s.proc.poll() is None
    late = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    late.sendall(b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n")
    got = b""
    late.settimeout(5)
    try:
        while True:
            chunk = late.recv(4096)
            if not chunk:
                break
            got += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    late.close()
    assert got.startswith(b"HTTP/1.1 503"), got
    assert b"connection: close" in got.lower() and b"shutting down" in got, got

    for i, c in enumerate(conns):
        status, body = read_response(c)
        c.close()
        assert status == 200, body
        assert flat(body["outputs"][0]["data"]) == [i, i * 10, -i]

    rc = s.proc.wait(timeout=8 + 5)
    assert rc == 0, s.logs()[-3000:]
    assert time.time() - t_sig < 8 + 5
    assert connect_refused(s.port)  # once it exited


@pytest.mark.parametrize("n_requests", [1, 3], ids=["executing", "with-queue"])
def test_sigterm_grace_period_bounds_shutdown(tmp_path, start_server, n_requests):
    repo = tmp_path / "repo"
    identity_model(repo, "very_slow", delay_ms=10000)
    s = start_server(repo, ["--shutdown-grace-secs", "1"])
    conns = [send_infer(s.port, "very_slow", [i]) for i in range(n_requests)]
    c = conns[0]
    time.sleep(0.5)  # the first executes now (10 s), the others wait in the queue
    t0 = time.time()
    s.proc.send_signal(signal.SIGTERM)
    try:
        rc = s.proc.wait(timeout=1 + 4)
    except subprocess.TimeoutExpired:
        s.proc.kill()
        pytest.fail("still running 5 s after SIGTERM with --shutdown-grace-secs 1 "
                    "(it waits for the 10 s execution to finish)")
    finally:
        for c in conns:
            c.close()
    assert time.time() - t0 < 1 + 4
    # requests were dropped: a failed shutdown, and the log says how many
    assert rc == 1, s.logs()[-3000:]
    assert f"{n_requests} requests unanswered" in s.logs(), s.logs()[-3000:]


def test_sigterm_idle_server_exits_quickly(tmp_path, start_server):
    repo = tmp_path / "repo"
    identity_model(repo, "m")
    s = start_server(repo, ["--shutdown-grace-secs", "10"])
    # an idle keep-alive connection must not hold up the shutdown
    idle = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    idle.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
    assert idle.recv(100).startswith(b"HTTP/1.1 200")
    t0 = time.time()
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(timeout=12) == 0
    assert time.time() - t0 < 5, "idle keep-alive connection delayed shutdown"
    idle.close()


def test_sigint_exits_zero(tmp_path, start_server):
    repo = tmp_path / "repo"
    identity_model(repo, "m")
    s = start_server(repo)
    r = requests.post(s.url + "/v2/models/m/infer", json=infer_body([4]), timeout=10)
    assert r.status_code == 200
    s.proc.send_signal(signal.SIGINT)
    assert s.proc.wait(timeout=15) == 0


def test_concurrent_clients_get_their_own_data(tmp_path, start_server):
    repo = tmp_path / "repo"
    identity_model(repo, "m1", instances=2)
    identity_model(repo, "m2", instances=1, dt="INT64")
    s = start_server(repo)
    n_threads, n_requests = 8, 50

    def client(t):
        bad = []
        with requests.Session() as sess:
            for k in range(n_requests):
                values = [t, k, t * 1000 + k] + list(range(k % 7))
                model, dt = ("m1", "INT32") if (t + k) % 2 else ("m2", "INT64")
                body = {"id": f"{t}-{k}",
                        "inputs": [{"name": "x", "datatype": dt, "shape": [len(values)], "data": values}]}
                r = sess.post(f"{s.url}/v2/models/{model}/infer", json=body, timeout=30)
                if r.status_code != 200:
                    bad.append((t, k, r.status_code, r.text))
                    continue
                j = r.json()
                if j.get("id") != f"{t}-{k}" or j["model_name"] != model or \
                        flat(j["outputs"][0]["data"]) != values:
                    bad.append((t, k, j))
        return bad

    threads, results, errors = run_in_threads(client, n_threads)
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "clients hung"
    assert not errors, errors
    assert all(r == [] for r in results), [r for r in results if r][:3]
    assert s.alive()


def test_queue_full_or_served_under_overload(tmp_path, start_server):
    """Many more requests than executors: each answers 200 or 503 (with Retry-After), none hangs."""
    repo = tmp_path / "repo"
    identity_model(repo, "slowish", delay_ms=50, instances=1)
    s = start_server(repo)

    def call(i):
        r = requests.post(s.url + "/v2/models/slowish/infer", json=infer_body([i]), timeout=30)
        if r.status_code == 200:
            assert flat(r.json()["outputs"][0]["data"]) == [i]
        else:
            assert r.status_code == 503, r.text
            error_of(r)
            assert "Retry-After" in r.headers
        return r.status_code

    threads, results, errors = run_in_threads(call, 24)
    for t in threads:
        t.join(timeout=40)
    assert not errors, errors
    assert 200 in results
    assert s.alive()


# ---------------------------------------------------------------------------
# CLI

def run_cli(*args, timeout=20):
    return subprocess.run([str(BERTH_BIN), *args], capture_output=True, text=True, timeout=timeout)


def test_version_flag(tmp_path, start_server):
    p = run_cli("--version")
    assert p.returncode == 0, p.stderr
    out = p.stdout.strip()
    assert out and any(ch.isdigit() for ch in out), out
    # the same version as GET /v2 reports
    repo = tmp_path / "repo"
    identity_model(repo, "m")
    s = start_server(repo)
    assert s.get("/v2").json()["version"] in out


@pytest.mark.parametrize("args", [["help"], ["--help"], ["serve", "--help"], ["predict", "--help"]])
def test_help(args):
    p = run_cli(*args)
    assert p.returncode == 0, p.stderr
    text = p.stdout + p.stderr
    assert "serve" in text or "model-repository" in text or "predict" in text, text


def test_serve_nonexistent_repository(tmp_path):
    missing = tmp_path / "does-not-exist"
    p = run_cli("serve", "--model-repository", str(missing), "--host", "127.0.0.1", "--http-port", "0")
    assert p.returncode != 0
    text = p.stdout + p.stderr
    assert str(missing) in text or "does-not-exist" in text, text


def test_serve_repository_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    p = run_cli("serve", "--model-repository", str(f), "--host", "127.0.0.1", "--http-port", "0")
    assert p.returncode != 0
    assert "file" in p.stdout + p.stderr


@pytest.mark.parametrize("args", [
    ["serve"],
    ["serve", "--model-repository"],
    ["serve", "--model-repository", "{repo}", "--http-port", "0", "--no-such-flag"],
    ["serve", "--model-repository", "{repo}", "--http-port", "notaport"],
    ["serve", "--model-repository", "{repo}", "--http-port", "70000"],
    ["serve", "--model-repository", "{repo}", "--http-port", "-1"],
    ["serve", "--model-repository", "{repo}", "--http-port", "0", "--max-request-bytes", "-5"],
    ["serve", "--model-repository", "{repo}", "--http-port", "0", "--read-timeout-secs", "0"],
    ["serve", "--model-repository", "{repo}", "--http-port", "0", "--host", "not-an-ip"],
    ["serve", "--model-repository", "{repo}", "--http-port", "0", "--log-level", "loud"],
    ["frobnicate"],
], ids=lambda a: " ".join(a[2:] if len(a) > 2 else a).replace("{repo}", "R"))
def test_bad_cli_exits_nonzero(tmp_path, args):
    repo = tmp_path / "repo"
    identity_model(repo, "m")
    args = [a.replace("{repo}", str(repo)) for a in args]
    try:
        p = run_cli(*args, timeout=5)
    except subprocess.TimeoutExpired:
        pytest.fail(f"berth {' '.join(args)} did not exit (it started serving?)")
    assert p.returncode != 0, (args, p.stdout, p.stderr)
    assert (p.stdout + p.stderr).strip(), "no message"


def test_port_in_use_exits_nonzero(tmp_path):
    repo = tmp_path / "repo"
    identity_model(repo, "m")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        try:
            p = run_cli("serve", "--model-repository", str(repo), "--host", "127.0.0.1", "--http-port", str(port),
                        "--grpc-port", "0", timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail("berth kept running on a port that is already in use")
    assert p.returncode != 0
    assert (p.stdout + p.stderr).strip()


def test_draining_server_reports_not_ready_on_open_connection(tmp_path, start_server):
    repo = tmp_path / "repo"
    identity_model(repo, "slow", delay_ms=1500)
    s = start_server(repo, ["--shutdown-grace-secs", "8"])
    conn = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    conn.sendall(b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n")
    assert conn.recv(4096).startswith(b"HTTP/1.1 200")

    inflight = send_infer(s.port, "slow", [7])
    time.sleep(0.3)
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    # the kept-alive connection still gets answers while draining: not ready (503), then it is closed
    conn.sendall(b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n")
    conn.settimeout(5)
    got = b""
    try:
        while True:
            chunk = conn.recv(4096)
            if not chunk:
                break
            got += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    conn.close()
    if got:
        assert got.startswith(b"HTTP/1.1 503"), got
        assert b"connection: close" in got.lower(), got
    status, body = read_response(inflight)
    inflight.close()
    assert status == 200 and flat(body["outputs"][0]["data"]) == [7], body
    assert s.proc.wait(timeout=10) == 0


def test_client_disconnects_mid_inference(tmp_path, start_server):
    repo = tmp_path / "repo"
    identity_model(repo, "slow", delay_ms=300, instances=2)
    s = start_server(repo)
    body = b'{"inputs": [{"name": "x", "datatype": "INT32", "shape": [1], "data": [1]}]}'
    req = (b"POST /v2/models/slow/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
    for _ in range(10):
        c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        c.sendall(req)
        c.close()
    # and one that resets the connection (SO_LINGER 0)
    c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    c.sendall(req)
    c.close()
    r = requests.post(s.url + "/v2/models/slow/infer", json=infer_body([3, 4]), timeout=20)
    assert r.status_code == 200 and flat(r.json()["outputs"][0]["data"]) == [3, 4]
    assert s.alive()
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(timeout=10) == 0


def test_many_simultaneous_connections(tmp_path, start_server):
    repo = tmp_path / "repo"
    identity_model(repo, "m", instances=2)
    s = start_server(repo)
    conns = [socket.create_connection(("127.0.0.1", s.port), timeout=10) for _ in range(200)]
    try:
        for i, c in enumerate(conns):
            body = ('{"inputs": [{"name": "x", "datatype": "INT32", "shape": [1], "data": [%d]}]}' % i).encode()
            c.sendall(b"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        for i, c in enumerate(conns):
            got = b""
            while b"]}]}" not in got:
                chunk = c.recv(4096)
                assert chunk, f"connection {i} closed without an answer"
                got += chunk
            assert got.startswith(b"HTTP/1.1 200"), got
            assert b'"data":[%d]' % i in got, got
    finally:
        for c in conns:
            c.close()
    assert s.alive()


def test_running_out_of_file_descriptors_does_not_spin(tmp_path):
    """With its fd limit reached the server must not busy-loop on accept() and flood the log."""
    repo = tmp_path / "repo"
    identity_model(repo, "m")
    port = free_port()
    log_path = tmp_path / "fd.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", 'ulimit -n 64 && exec "$0" "$@"', str(BERTH_BIN), "serve",
             "--model-repository", str(repo), "--host", "127.0.0.1", "--http-port", str(port),
             "--grpc-port", "0", "--log-level", "info"], stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 30
        while True:
            assert proc.poll() is None, log_path.read_text()
            try:
                if requests.get(url + "/v2/health/ready", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.time() < deadline, "not ready"
            time.sleep(0.05)
        conns = []
        for _ in range(100):
            try:
                conns.append(socket.create_connection(("127.0.0.1", port), timeout=2))
            except OSError:
                break
        time.sleep(1.5)
        for c in conns:
            c.close()
        time.sleep(0.5)
        # it still serves once descriptors are free again
        r = requests.post(url + "/v2/models/m/infer", json=infer_body([1, 2]), timeout=10)
        assert r.status_code == 200 and flat(r.json()["outputs"][0]["data"]) == [1, 2]
        lines = log_path.read_text(errors="replace").count("\n")
        assert lines < 2000, f"{lines} log lines in 2 s of fd exhaustion (accept() busy loop?)"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_second_signal_during_drain_still_exits_zero(tmp_path, start_server):
    repo = tmp_path / "repo"
    identity_model(repo, "slow", delay_ms=800)
    s = start_server(repo, ["--shutdown-grace-secs", "5"])
    c = send_infer(s.port, "slow", [5])
    time.sleep(0.2)
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(0.1)
    s.proc.send_signal(signal.SIGINT)
    s.proc.send_signal(signal.SIGTERM)
    status, body = read_response(c)
    c.close()
    assert status == 200 and flat(body["outputs"][0]["data"]) == [5]
    assert s.proc.wait(timeout=8) == 0


def test_io_thread_not_blocked_by_inference(tmp_path, start_server):
    """With one HTTP thread, a slow inference must not stall other requests."""
    repo = tmp_path / "repo"
    identity_model(repo, "slow", delay_ms=1500)
    identity_model(repo, "fast")
    s = start_server(repo, ["--http-threads", "1"])
    c = send_infer(s.port, "slow", [1])
    time.sleep(0.2)
    t0 = time.time()
    assert s.get("/v2/health/live", timeout=5).status_code == 200
    r = s.post("/v2/models/fast/infer", json=infer_body([2]), timeout=5)
    assert r.status_code == 200
    assert time.time() - t0 < 1.0, "requests waited for the slow inference"
    status, body = read_response(c)
    c.close()
    assert status == 200


def loop_cpu_ns(pid):
    """CPU time (ns) of each of the server's event loop threads (named berth-http), by thread id."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            if f.read().strip() != "berth-http":
                continue
        with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
            out[tid] = int(f.read().split()[0])
    return out


def test_every_event_loop_serves_its_share(tmp_path, start_server):
    """--http-threads 2: two event loops, and each new connection goes to the one with fewer, so four
    kept-alive connections keep both busy (none is left idle while the other does all the work)."""
    repo = tmp_path / "repo"
    identity_model(repo, "fast")
    s = start_server(repo, ["--http-threads", "2"])
    before = loop_cpu_ns(s.proc.pid)
    assert len(before) == 2, before
    sessions = [requests.Session() for _ in range(4)]
    for _ in range(250):
        for session in sessions:
            assert session.post(s.url + "/v2/models/fast/infer", json=infer_body([3]), timeout=5).status_code == 200
    after = loop_cpu_ns(s.proc.pid)
    used = {tid: after[tid] - before[tid] for tid in before}
    total = sum(used.values())
    assert all(u > 0.15 * total for u in used.values()), used  # 2:2 gives about half each


def test_client_that_never_reads_its_response(tmp_path, start_server):
    """A big response to a client that does not read: the write times out (--read-timeout-secs), so the
    connection is dropped and a SIGTERM is not held up until the grace period ends."""
    repo = tmp_path / "repo"
    identity_model(repo, "big", dt="UINT8")
    s = start_server(repo, ["--read-timeout-secs", "3", "--idle-timeout-secs", "3", "--shutdown-grace-secs", "15"])
    n = 8 << 20  # more than the loopback socket buffers hold
    header = json.dumps({"inputs": [{"name": "x", "datatype": "UINT8", "shape": [n],
                                     "parameters": {"binary_data_size": n}}],
                         "parameters": {"binary_data_output": True}}).encode()
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    c.settimeout(20)
    c.connect(("127.0.0.1", s.port))
    try:
        c.sendall(b"POST /v2/models/big/infer HTTP/1.1\r\nHost: x\r\nInference-Header-Content-Length: %d\r\n"
                  b"Content-Length: %d\r\n\r\n" % (len(header), len(header) + n) + header + bytes(n))
        # wait until the response has started (peek only: nothing is consumed)
        assert c.recv(16, socket.MSG_PEEK).startswith(b"HTTP/1.1 200")
        assert s.get("/v2/health/live", timeout=5).status_code == 200
        t0 = time.time()
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(timeout=20) == 0
        assert time.time() - t0 < 3 + 3, "shutdown waited for a connection whose client never reads"
        # the connection was dropped before the whole response went out
        got, closed = 0, False
        c.settimeout(3)
        try:
            while True:
                chunk = c.recv(1 << 20)
                if not chunk:
                    closed = True
                    break
                got += len(chunk)
        except ConnectionResetError:
            closed = True
        except socket.timeout:
            pass
        assert closed and got < n, (closed, got)
    finally:
        c.close()
