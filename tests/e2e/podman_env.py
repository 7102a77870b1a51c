"""Podman, skopeo and docker-registry for the image tests, isolated from the host.

Podman reads tests/e2e/containers.conf (CONTAINERS_CONF: runtime runc, low
ulimits) and a storage.conf written per test session (CONTAINERS_STORAGE_CONF:
graphroot and runroot in a temporary directory), so the tests neither see nor
change the host's images. Containers are removed by the ids the tests started;
registries are stopped by their PIDs.
"""
import os
import pathlib
import shutil
import subprocess
import time
import warnings

import requests
from procs import free_port, stop_process  # noqa: F401 (free_port is re-exported)

HERE = pathlib.Path(__file__).resolve().parent
CONTAINERS_CONF = HERE / "containers.conf"


def tools_missing():
    return [t for t in ("podman", "skopeo", "umoci", "docker-registry", "runc") if shutil.which(t) is None]


class Podman:
    def __init__(self, root):
        self.root = pathlib.Path(root)
        (self.root / "graph").mkdir(parents=True, exist_ok=True)
        (self.root / "run").mkdir(parents=True, exist_ok=True)
        storage = self.root / "storage.conf"
        storage.write_text(f'[storage]\ndriver = "overlay"\ngraphroot = "{self.root / "graph"}"\n'
                           f'runroot = "{self.root / "run"}"\n')
        self.env = dict(os.environ, CONTAINERS_CONF=str(CONTAINERS_CONF), CONTAINERS_STORAGE_CONF=str(storage))
        self.containers = []

    def run(self, *args, check=True, timeout=300, **kw):
        return subprocess.run(["podman", *args], env=self.env, capture_output=True, text=True,
                              check=check, timeout=timeout, **kw)

    def tool(self, *args, check=True, timeout=300):
        return subprocess.run(list(args), env=self.env, capture_output=True, text=True, check=check,
                              timeout=timeout)

    def start(self, image, *args, port=None, read_only=True, grpc_port=None):
        """podman run -d IMAGE; returns (container id, host port of 8000). grpc_port: publish 8001 there."""
        port = port or free_port()
        flags = ["--read-only"] if read_only else []
        if grpc_port:
            flags += ["-p", f"127.0.0.1:{grpc_port}:8001"]
        out = self.run("run", "-d", *flags, "-p", f"127.0.0.1:{port}:8000", image, *args)
        cid = out.stdout.strip().splitlines()[-1]
        self.containers.append(cid)
        return cid, port

    def wait_ready(self, cid, port, timeout=60):
        deadline = time.time() + timeout
        url = f"http://127.0.0.1:{port}/v2/health/ready"
        while time.time() < deadline:
            try:
                if requests.get(url, timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            state = self.run("inspect", "--format", "{{.State.Status}}", cid, check=False).stdout.strip()
            if state in ("exited", "stopped"):
                break
            time.sleep(0.05)
        logs = self.run("logs", cid, check=False)
        raise RuntimeError(f"container {cid[:12]} did not become ready:\n{logs.stdout}{logs.stderr}")

    def remove(self, cid):
        self.run("rm", "-f", "-t", "0", cid, check=False, timeout=60)
        if cid in self.containers:
            self.containers.remove(cid)

    def close(self):
        for cid in list(self.containers):
            self.remove(cid)
        # Images only live in this session's storage: unmount and remove them, then the directory.
        self.run("rmi", "--all", "--force", check=False, timeout=120)
        shutil.rmtree(self.root, ignore_errors=True)


def make_tls_certificate(directory):
    """A CA and a server certificate for 127.0.0.1 signed by it (openssl CLI); returns (ca, cert, key)."""
    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)

    def ssl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=berth test CA")
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")
    (d / "ext.cnf").write_text("subjectAltName = IP:127.0.0.1\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    return d / "ca.pem", d / "server.pem", d / "server.key"


class Registry:
    """docker-registry on 127.0.0.1, filesystem storage; stopped by PID."""

    def __init__(self, root, read_only=False, tls=None, htpasswd=None):
        self.port = free_port()
        self.root = pathlib.Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        maintenance = "  maintenance:\n    readonly:\n      enabled: true\n" if read_only else ""
        config = self.root / "config.yml"
        tls_config = f"  tls:\n    certificate: {tls[0]}\n    key: {tls[1]}\n" if tls else ""
        if htpasswd:  # (user, password): Basic auth, which the registry only offers over TLS
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                import crypt  # bcrypt through libxcrypt; deprecated in Python, present in Debian 12's 3.11
            (self.root / "htpasswd").write_text(
                f"{htpasswd[0]}:{crypt.crypt(htpasswd[1], crypt.mksalt(crypt.METHOD_BLOWFISH))}\n")
            maintenance += f"auth:\n  htpasswd:\n    realm: berth-test\n    path: {self.root / 'htpasswd'}\n"
        config.write_text("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
                          f"    rootdirectory: {self.root / 'data'}\n{maintenance}"
                          f"http:\n  addr: 127.0.0.1:{self.port}\n{tls_config}")
        self.log = open(self.root / "registry.log", "w")
        self.proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.address = f"127.0.0.1:{self.port}"
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("docker-registry exited:\n" + (self.root / "registry.log").read_text())
            try:
                scheme = "https" if tls else "http"
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # verify=False: only asking whether it is up
                    answer = requests.get(f"{scheme}://{self.address}/v2/", timeout=1, verify=False)
                if answer.status_code in (200, 401):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("docker-registry did not start")

    def stop(self):
        stop_process(self.proc)
        self.log.close()
