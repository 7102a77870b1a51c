"""TLS on every listener (HTTP, gRPC, metrics), with certificates made here
by `openssl req`, checked with clients from outside berth: curl, Python
requests and ssl, grpcio, and `openssl s_client`."""
import http.client
import shutil
import signal
import socket
import ssl
import subprocess
import time

import grpc
import pytest
import requests

import grpc_client
from conftest import BERTH_BIN, identity_config, write_model

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=d)
    return d / f"{name}.pem"


def make_cert(d, name, ca, server=True):
    """A certificate for `name` signed by the CA `ca` (its .pem and .key beside it)."""
    ext = d / f"{name}.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n" if server else "extendedKeyUsage=clientAuth\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", cwd=d)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", ca.name, "-CAkey", ca.with_suffix(".key").name,
            "-CAcreateserial", "-days", "2", "-extfile", ext.name, "-out", f"{name}.pem", cwd=d)
    return d / f"{name}.pem", d / f"{name}.key"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = make_ca(d, "ca")
    other_ca = make_ca(d, "otherca")
    return {
        "dir": d, "ca": ca, "other_ca": other_ca,
        "server": make_cert(d, "server", ca),
        "server2": make_cert(d, "server2", other_ca),  # a renewed certificate from another CA, for the reload
        "client": make_cert(d, "client", ca, server=False),
        "rogue": make_cert(d, "rogue", other_ca, server=False),
    }


def repo_with_model(tmp_path):
    repo = tmp_path / "repo"
    write_model(repo, "echo", identity_config([("x", "FP32", [-1])]))
    return repo


def tls_args(cert, key, client_ca=None):
    args = ["--tls-cert-file", str(cert), "--tls-key-file", str(key)]
    return args + (["--tls-client-ca-file", str(client_ca)] if client_ca else [])


@pytest.fixture
def tls_server(tmp_path, pki, start_server):
    d = tmp_path / "certs"
    d.mkdir()
    cert, key = d / "server.pem", d / "server.key"
    shutil.copy(pki["server"][0], cert)
    shutil.copy(pki["server"][1], key)
    return start_server(repo_with_model(tmp_path), tls_args(cert, key), tls_ca=pki["ca"])


INFER = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [2], "data": [1.5, 2.5]}]}


def test_https_infer_with_the_ca_and_refused_without(tls_server, pki):
    r = tls_server.post("/v2/models/echo/infer", json=INFER)
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [1.5, 2.5]
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(tls_server.url + "/v2/health/ready", timeout=10)  # the system's CAs do not know ours
    assert tls_server.get("/v2/health/ready").status_code == 200


def test_curl_with_cacert_and_without(tls_server, pki):
    ok = subprocess.run(["curl", "-sS", "--cacert", str(pki["ca"]), tls_server.url + "/v2/health/ready",
                         "-o", "/dev/null", "-w", "%{http_code} %{ssl_verify_result}"],
                        capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0 and ok.stdout == "200 0", ok.stderr
    bad = subprocess.run(["curl", "-sS", tls_server.url + "/v2/health/ready"], capture_output=True, text=True,
                         timeout=30)
    assert bad.returncode == 60, (bad.returncode, bad.stderr)  # peer certificate cannot be authenticated


def test_metrics_port_speaks_tls(tls_server, pki):
    r = requests.get(tls_server.metrics_url, verify=str(pki["ca"]), timeout=10)
    assert r.status_code == 200 and "berth_" in r.text
    plain = tls_server.metrics_url.replace("https://", "http://")
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(plain, timeout=5)


def test_only_tls_1_2_and_up(tls_server, pki):
    host, port = "127.0.0.1", tls_server.port
    for version, accepted in [(ssl.TLSVersion.TLSv1_2, True), (ssl.TLSVersion.TLSv1_3, True)]:
        ctx = ssl.create_default_context(cafile=str(pki["ca"]))
        ctx.minimum_version = ctx.maximum_version = version
        with socket.create_connection((host, port), timeout=10) as raw, \
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            assert s.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
            assert s.compression() is None
    # TLS 1.1 and 1.0: s_client offers them at security level 0; the server refuses.
    for flag in ("-tls1_1", "-tls1"):
        r = subprocess.run(["openssl", "s_client", "-connect", f"{host}:{port}", flag, "-cipher", "DEFAULT@SECLEVEL=0"],
                           input="", capture_output=True, text=True, timeout=30)
        assert r.returncode != 0, r.stdout
        assert "Cipher is (NONE)" in r.stdout, r.stdout  # no session was established
    assert tls_server.get("/v2/health/live").status_code == 200


def test_plain_http_to_the_tls_port_gets_no_http_answer_and_is_logged(tls_server):
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=10) as s:
        s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(10)
        got = b""
        try:
            while chunk := s.recv(4096):
                got += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    assert not got.startswith(b"HTTP/"), got[:100]
    assert tls_server.get("/v2/health/live").status_code == 200  # still serving the others
    deadline = time.time() + 10
    while "plain HTTP to the TLS port" not in tls_server.logs() and time.time() < deadline:
        time.sleep(0.1)
    assert "TLS handshake with 127.0.0.1 failed" in tls_server.logs()


def test_grpc_over_tls(tls_server, pki):
    pb = grpc_client.triton()[0]
    creds = grpc.ssl_channel_credentials(root_certificates=pki["ca"].read_bytes())
    client = grpc_client.Client(tls_server.grpc_target, credentials=creds)
    try:
        assert client.call("ServerLive", pb.ServerLiveRequest()).live
        req = pb.ModelInferRequest(model_name="echo")
        t = req.inputs.add(name="x", datatype="FP32", shape=[2])
        t.contents.fp32_contents.extend([3.0, 4.0])
        assert list(client.call("ModelInfer", req).outputs[0].contents.fp32_contents) == [3.0, 4.0]
        assert client.serving_name(client.health("ready")) == "SERVING"
    finally:
        client.close()
    untrusted = grpc_client.Client(tls_server.grpc_target, credentials=grpc.ssl_channel_credentials(
        root_certificates=pki["other_ca"].read_bytes()))
    try:
        with pytest.raises(grpc.RpcError) as e:
            untrusted.call("ServerLive", pb.ServerLiveRequest(), timeout=5)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        untrusted.close()
    plain = grpc_client.Client(tls_server.grpc_target)
    try:
        with pytest.raises(grpc.RpcError):
            plain.call("ServerLive", pb.ServerLiveRequest(), timeout=5)
    finally:
        plain.close()


def test_mtls_requires_a_client_certificate_of_the_ca(tmp_path, pki, start_server):
    cert, key = pki["server"]
    server = start_server(repo_with_model(tmp_path), tls_args(cert, key, client_ca=pki["ca"]), tls_ca=pki["ca"],
                          client_cert=pki["client"])
    assert server.post("/v2/models/echo/infer", json=INFER).status_code == 200
    for client_cert in (None, pki["rogue"]):
        kw = {"cert": tuple(map(str, client_cert))} if client_cert else {}
        with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
            requests.get(server.url + "/v2/health/live", verify=str(pki["ca"]), timeout=10, **kw)
    assert server.get("/v2/health/live").status_code == 200
    # gRPC: the same rule.
    pb = grpc_client.triton()[0]
    root = pki["ca"].read_bytes()
    good = grpc_client.Client(server.grpc_target, credentials=grpc.ssl_channel_credentials(
        root_certificates=root, private_key=pki["client"][1].read_bytes(),
        certificate_chain=pki["client"][0].read_bytes()))
    anonymous = grpc_client.Client(server.grpc_target, credentials=grpc.ssl_channel_credentials(root_certificates=root))
    try:
        assert good.call("ServerReady", pb.ServerReadyRequest()).ready
        with pytest.raises(grpc.RpcError) as e:
            anonymous.call("ServerLive", pb.ServerLiveRequest(), timeout=5)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        good.close()
        anonymous.close()


def peer_issuer(port, cafile):
    ctx = ssl.create_default_context(cafile=str(cafile))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
        return dict(x[0] for x in s.getpeercert()["issuer"])["commonName"]


def test_sighup_reloads_the_certificate_and_keeps_open_connections(tmp_path, pki, start_server):
    d = tmp_path / "certs"
    d.mkdir()
    cert, key = d / "server.pem", d / "server.key"
    shutil.copy(pki["server"][0], cert)
    shutil.copy(pki["server"][1], key)
    server = start_server(repo_with_model(tmp_path), tls_args(cert, key), tls_ca=pki["ca"])
    old = http.client.HTTPSConnection("127.0.0.1", server.port, timeout=10,
                                      context=ssl.create_default_context(cafile=str(pki["ca"])))
    old.request("GET", "/v2/health/live")
    assert old.getresponse().read() is not None
    assert peer_issuer(server.port, pki["ca"]) == "ca"

    # A broken pair first: the reload fails, the old certificate stays.
    shutil.copy(pki["server2"][0], cert)
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while "TLS files not reloaded" not in server.logs() and time.time() < deadline:
        time.sleep(0.05)
    assert "the key does not match the certificate" in server.logs()
    assert peer_issuer(server.port, pki["ca"]) == "ca"

    shutil.copy(pki["server2"][1], key)
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while "TLS certificate and key re-read" not in server.logs() and time.time() < deadline:
        time.sleep(0.05)
    assert peer_issuer(server.port, pki["other_ca"]) == "otherca"  # new connections: the new certificate
    with pytest.raises(ssl.SSLError):
        peer_issuer(server.port, pki["ca"])
    old.request("GET", "/v2/health/ready")  # the connection opened before the reload still works
    r = old.getresponse()
    assert r.status == 200 and r.read() is not None
    old.close()
    assert server.proc.poll() is None
    # gRPC watches the same files.
    pb = grpc_client.triton()[0]
    deadline = time.time() + 10
    while True:
        client = grpc_client.Client(server.grpc_target, credentials=grpc.ssl_channel_credentials(
            root_certificates=pki["other_ca"].read_bytes()))
        try:
            assert client.call("ServerLive", pb.ServerLiveRequest(), timeout=5).live
            break
        except grpc.RpcError:
            if time.time() > deadline:
                raise
            time.sleep(0.5)
        finally:
            client.close()


def test_startup_errors_name_the_flag(tmp_path, pki):
    repo = repo_with_model(tmp_path)
    cert, key = pki["server"]
    other_key = pki["server2"][1]
    cases = [
        (["--tls-cert-file", str(cert)], "--tls-cert-file and --tls-key-file go together"),
        (tls_args(cert, other_key), "the key does not match the certificate"),
        (tls_args(tmp_path / "missing.pem", key), "--tls-cert-file"),
        (tls_args(key, key), "not a PEM certificate"),
        (["--tls-client-ca-file", str(pki["ca"])], "--tls-client-ca-file needs"),
    ]
    for args, message in cases:
        r = subprocess.run([str(BERTH_BIN), "serve", "--model-repository", str(repo), "--host", "127.0.0.1",
                            "--http-port", "0", "--grpc-port", "0", "--metrics-port", "0", *args],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and message in r.stderr + r.stdout, (args, r.stderr + r.stdout)
        assert "BEGIN" not in r.stderr + r.stdout  # never the files' contents


def test_bench_over_https_with_cacert(tls_server, pki):
    def bench(*extra):
        return subprocess.run([str(BERTH_BIN), "bench", tls_server.url, "-m", "echo", "-d", "0.5", "--warmup", "0",
                               "-f", "json", *extra], capture_output=True, text=True, timeout=60)
    ok = bench("--cacert", str(pki["ca"]))
    assert ok.returncode == 0, ok.stderr
    assert '"throughput_rps"' in ok.stdout
    untrusted = bench()
    assert untrusted.returncode == 2 and "certificate" in untrusted.stderr.lower(), untrusted.stderr
    grpc_ok = subprocess.run([str(BERTH_BIN), "bench", f"https://{tls_server.grpc_target}", "--protocol", "grpc",
                              "-m", "echo", "-d", "0.5", "--warmup", "0", "--cacert", str(pki["ca"])],
                             capture_output=True, text=True, timeout=60)
    assert grpc_ok.returncode == 0, grpc_ok.stderr
