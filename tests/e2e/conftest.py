"""Fixtures that start the real berth binary on a free loopback port.

BERTH_BIN points at the binary (default: build/bin/berth). Tests that need
the TorchScript backend carry the `torch` marker; the sanitizer build runs
`pytest -m "not torch"`.
"""
import json
import os
import pathlib
import signal
import subprocess
import tempfile
import time

import pytest
import requests
from procs import free_port  # noqa: F401 (tests import it from here)

ROOT = pathlib.Path(__file__).resolve().parents[2]
BERTH_BIN = pathlib.Path(os.environ.get("BERTH_BIN", ROOT / "build" / "bin" / "berth"))
EXAMPLES = ROOT / "examples" / "models"


def pytest_configure(config):
    config.addinivalue_line("markers", "torch: needs the TorchScript backend and Python torch")
    config.addinivalue_line("markers", "onnx: needs the ONNX backend (OpenCV DNN)")
    config.addinivalue_line("markers", "sentencepiece: needs the sentencepiece backend (not in sanitizer builds)")
    config.addinivalue_line("markers", "image_backend: needs the image backend (OpenCV imgcodecs) and Python PIL")
    config.addinivalue_line("markers", "rss: asserts the server's memory stays flat (meaningless under ASan, whose "
                                       "quarantine keeps freed memory)")


class Server:
    """A running `berth serve`; stopped by its PID."""

    def __init__(self, repo, extra_args=(), wait_ready=True, tls_ca=None, client_cert=None, port=None, env=None):
        """tls_ca: the CA file that verifies the server's certificate (the server runs with TLS);
        client_cert: (cert, key) files presented to it (mTLS); env: variables added to berth's environment."""
        self.tls_ca = tls_ca
        self.client_cert = client_cert
        scheme = "https" if tls_ca else "http"
        self.port = port or free_port()
        self.metrics_port = free_port()
        self.grpc_port = free_port()
        self.grpc_target = f"127.0.0.1:{self.grpc_port}"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.metrics_url = f"{scheme}://127.0.0.1:{self.metrics_port}/metrics"
        log_dir = pathlib.Path(repo).parent
        if ROOT in log_dir.resolve().parents or log_dir.resolve() == ROOT:  # a repository of the source tree
            log_dir = pathlib.Path(tempfile.gettempdir())
        self.log_path = log_dir / f"berth-{self.port}.log"
        self.log = open(self.log_path, "w")
        args = [str(BERTH_BIN), "serve", "--model-repository", str(repo),
                "--host", "127.0.0.1", "--http-port", str(self.port),
                "--metrics-port", str(self.metrics_port),
                *([] if "--grpc-port" in extra_args else ["--grpc-port", str(self.grpc_port)]),
                "--log-level", "debug", *extra_args]
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, **env) if env else None)
        self._wait(wait_ready)

    def _wait(self, ready):
        path = "/v2/health/ready" if ready else "/v2/health/live"
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"berth exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                if requests.get(self.url + path, timeout=1, **self._verify()).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"berth did not become ready:\n{self.logs()}")

    def _verify(self):
        kw = {"verify": str(self.tls_ca)} if self.tls_ca else {}
        if self.client_cert:
            kw["cert"] = tuple(str(p) for p in self.client_cert)
        return kw

    def logs(self):
        self.log.flush()
        return self.log_path.read_text()

    def alive(self):
        return self.proc.poll() is None and \
            requests.get(self.url + "/v2/health/live", timeout=5, **self._verify()).status_code == 200

    def get(self, path, **kw):
        kw.setdefault("timeout", 30)
        for k, v in self._verify().items():
            kw.setdefault(k, v)
        return requests.get(self.url + path, **kw)

    def post(self, path, **kw):
        kw.setdefault("timeout", 30)
        for k, v in self._verify().items():
            kw.setdefault(k, v)
        return requests.post(self.url + path, **kw)

    def infer(self, model, inputs, version=None, **extra):
        path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"
        return self.post(path, json={"inputs": inputs, **extra})

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def write_model(repo, name, config_yaml, versions=(1,), files=None):
    """Creates repo/name/model.yaml and empty version directories.

    files: {relative path: bytes} written under repo/name.
    """
    d = pathlib.Path(repo) / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "model.yaml").write_text(config_yaml)
    for v in versions:
        (d / str(v)).mkdir(exist_ok=True)
    for rel, data in (files or {}).items():
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return d


@pytest.fixture
def start_server(tmp_path):
    """Factory: start_server(repo, extra_args=(), wait_ready=True) -> Server; all stopped at teardown."""
    servers = []

    def start(repo, extra_args=(), wait_ready=True, **kw):
        s = Server(repo, extra_args, wait_ready, **kw)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


@pytest.fixture(scope="module")
def examples_server(tmp_path_factory):
    """One server on examples/models for a whole test module."""
    log_dir = tmp_path_factory.mktemp("examples")
    link = log_dir / "models"
    link.symlink_to(EXAMPLES)
    s = Server(link)
    yield s
    s.stop()


def error_of(resp):
    body = resp.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"], str) and body["error"], body
    return body["error"]


# The xgboost marker (tests/e2e/test_xgboost.py), registered beside the
# markers above without changing them.
_pytest_configure_before_xgboost = pytest_configure


def pytest_configure(config):  # noqa: F811
    _pytest_configure_before_xgboost(config)
    config.addinivalue_line("markers", "xgboost: needs the XGBoost backend and Python xgboost")


# The container marker (tests/e2e/test_image*.py: podman, skopeo, umoci,
# docker-registry), registered beside the markers above without changing them.
_pytest_configure_before_container = pytest_configure


def pytest_configure(config):  # noqa: F811
    _pytest_configure_before_container(config)
    config.addinivalue_line("markers", "container: builds images and runs them with podman, skopeo, umoci, "
                                       "docker-registry")


def identity_config(inputs, mbs=0, instances=1, extra="", **params):
    """model.yaml text for the identity backend (output i is input i).

    inputs: [(name, datatype, shape)]; output i is named "out_" + name.
    params: identity backend parameters (delay_ms, fail), as strings.
    """
    def fmt(items):
        return "\n".join(f"  - {{name: {n}, datatype: {d}, shape: {list(s)}}}" for n, d, s in items)
    outputs = [("out_" + n, d, s) for n, d, s in inputs]
    params_yaml = "{" + ", ".join(f'{k}: "{v}"' for k, v in params.items()) + "}"
    return (f"backend: identity\nmax_batch_size: {mbs}\ninputs:\n{fmt(inputs)}\noutputs:\n{fmt(outputs)}\n"
            f"instances: {instances}\nparameters: {params_yaml}\n{extra}")
