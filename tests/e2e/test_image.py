"""`berth build` and `berth dockerfile` with the real tools: the archives are
byte-for-byte reproducible, skopeo and umoci read the OCI archive, podman loads
the docker-archive and runs it read-only as uid 65532 and stops it cleanly, a
push to docker-registry on loopback gives the same digest that skopeo sees and
podman pulls, a new model version changes only the last layer, and
`berth dockerfile` + `podman build` gives a working image. Bad input fails
clearly and leaves no output file.
"""
import json
import os
import pathlib
import shutil
import subprocess
import time

import pytest
import requests

from conftest import BERTH_BIN, EXAMPLES, free_port
from podman_env import Podman, Registry, make_tls_certificate, tools_missing

pytestmark = [
    pytest.mark.container,
    pytest.mark.skipif(bool(tools_missing()), reason=f"missing: {' '.join(tools_missing())}"),
]

IDENTITY_REQUEST = {"inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [2, 3], "data": [1, 2, 3, 4, 5, 6]}]}
CHURN_ROWS = [[12, 70.5, 3, 1], [48, 20.0, 0, 24]]


def build(*args, env=None, check=True):
    """Runs berth build/dockerfile; returns the CompletedProcess."""
    run_env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
    run_env.update(env or {})
    p = subprocess.run([str(BERTH_BIN), *args], capture_output=True, text=True, env=run_env, timeout=600)
    if check and p.returncode != 0:
        raise AssertionError(f"berth {' '.join(args)} failed ({p.returncode}):\n{p.stderr}")
    return p


def make_repo(path, *models):
    path.mkdir(parents=True, exist_ok=True)
    for m in models:
        shutil.copytree(EXAMPLES / m, path / m)
    return path


def infer(port, model, body):
    r = requests.post(f"http://127.0.0.1:{port}/v2/models/{model}/infer", json=body, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["outputs"]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("image")


@pytest.fixture(scope="module")
def podman(work):
    p = Podman(work / "podman")
    yield p
    p.close()


@pytest.fixture(scope="module")
def identity_oci(work):
    repo = make_repo(work / "identity-repo", "identity")
    out = work / "identity.tar"
    p = build("build", "--model-repository", str(repo), "-t", "berth-test/identity:1", "-o", str(out),
              "--revision", "abc123")
    return repo, out, p.stdout.strip()


def test_build_twice_gives_identical_bytes(identity_oci, work):
    repo, first, digest = identity_oci
    second = work / "identity-again.tar"
    p = build("build", "--model-repository", str(repo), "-t", "berth-test/identity:1", "-o", str(second),
              "--revision", "abc123")
    assert p.stdout.strip() == digest and digest.startswith("sha256:")
    assert first.read_bytes() == second.read_bytes()
    assert (work / "identity.tar.spdx.json").read_bytes() == (work / "identity-again.tar.spdx.json").read_bytes()
    # No temporary files or work directories are left beside the output.
    assert not [p.name for p in work.iterdir() if p.name.startswith(".")]


def test_skopeo_and_umoci_read_the_oci_archive(identity_oci, podman, work):
    _, archive, digest = identity_oci
    info = json.loads(podman.tool("skopeo", "inspect", f"oci-archive:{archive}").stdout)
    assert info["Digest"] == digest
    assert info["Created"] == "2023-11-14T22:13:20Z"  # SOURCE_DATE_EPOCH
    assert info["Labels"]["org.opencontainers.image.revision"] == "abc123"
    assert info["Labels"]["org.opencontainers.image.title"] == "identity"
    assert len(info["Layers"]) == 3  # system libraries, berth + plugin, models: no ML libraries needed
    config = json.loads(podman.tool("skopeo", "inspect", "--config", f"oci-archive:{archive}").stdout)["config"]
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == ["/usr/bin/berth", "serve", "--model-repository", "/models"]
    assert set(config["ExposedPorts"]) == {"8000/tcp", "8001/tcp", "8002/tcp"}
    assert config["StopSignal"] == "SIGTERM"

    layout = work / "layout"
    layout.mkdir()
    subprocess.run(["tar", "-xf", str(archive), "-C", str(layout)], check=True)
    bundle = work / "bundle"
    podman.tool("umoci", "unpack", "--image", f"{layout}:berth-test/identity:1", str(bundle))
    rootfs = bundle / "rootfs"
    assert (rootfs / "usr/bin/berth").stat().st_mode & 0o111
    assert (rootfs / "usr/lib/berth/backends/libberth_backend_identity.so").is_file()
    assert not (rootfs / "usr/lib/berth/backends/libberth_backend_torchscript.so").exists()
    assert (rootfs / "lib64/ld-linux-x86-64.so.2").is_file()
    assert (rootfs / "usr/lib/x86_64-linux-gnu/libc.so.6").is_file()
    assert (rootfs / "models/identity/model.yaml").read_text() == (EXAMPLES / "identity/model.yaml").read_text()
    assert (rootfs / "tmp").stat().st_mode & 0o7777 == 0o1777
    assert "nonroot:x:65532:65532" in (rootfs / "etc/passwd").read_text()
    assert not (rootfs / "bin/sh").exists()  # nothing but what berth needs


def test_sbom_lists_every_file_with_its_debian_package(identity_oci, work):
    sbom = json.loads((work / "identity.tar.spdx.json").read_text())
    assert sbom["spdxVersion"] == "SPDX-2.3"
    names = {f["fileName"] for f in sbom["files"]}
    assert {"./usr/bin/berth", "./usr/lib/x86_64-linux-gnu/libc.so.6", "./models/identity/model.yaml",
            "./etc/passwd"} <= names
    packages = {p["name"]: p for p in sbom["packages"]}
    libc6 = packages["libc6"]
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libc6"], capture_output=True,
                             text=True).stdout
    assert libc6["versionInfo"] == version
    libc_file = next(f for f in sbom["files"] if f["fileName"] == "./usr/lib/x86_64-linux-gnu/libc.so.6")
    assert {"spdxElementId": "SPDXRef-Package-deb-libc6", "relationshipType": "CONTAINS",
            "relatedSpdxElement": libc_file["SPDXID"]} in sbom["relationships"]
    assert {c["algorithm"] for c in libc_file["checksums"]} == {"SHA1", "SHA256"}


def test_podman_loads_the_docker_archive_and_runs_it_read_only(podman, work):
    pytest.importorskip("xgboost")  # the oracle below is the host's berth; the churn model needs the plugin
    repo = make_repo(work / "churn-repo", "churn")
    archive = work / "churn-docker.tar"
    build("build", "--model-repository", str(repo), "-t", "berth-test/churn:1", "-o", str(archive),
          "--format", "docker")
    out = podman.run("load", "-i", str(archive))
    assert "berth-test/churn:1" in out.stdout + out.stderr
    grpc_port = free_port()
    cid, port = podman.start("localhost/berth-test/churn:1", grpc_port=grpc_port)
    podman.wait_ready(cid, port)
    outputs = infer(port, "churn", {"inputs": [{"name": "features", "datatype": "FP32", "shape": [2, 4],
                                                "data": CHURN_ROWS}]})
    expected = json.loads(subprocess.run(
        [str(BERTH_BIN), "predict", str(EXAMPLES / "churn"), "--input", f"features={json.dumps(CHURN_ROWS)}"],
        capture_output=True, text=True, check=True).stdout)["outputs"]
    assert outputs == expected
    # gRPC from outside the container too: the image carries grpc++ and its dependencies.
    from grpc_client import Client, output_array
    import numpy as np
    c = Client(f"127.0.0.1:{grpc_port}")
    assert c.serving_name(c.health("ready")) == "SERVING"
    r = c.infer("churn", [("features", "FP32", np.array(CHURN_ROWS, np.float32).reshape(2, 4))])
    assert output_array(r, 0).ravel().tolist() == pytest.approx(
        [v for o in expected if o["name"] == r.outputs[0].name for v in o["data"]])
    c.close()
    top = podman.run("top", cid, "huser", "user").stdout.split()
    assert "65532" in top, top
    # No shell or writable root in the image: the server runs as PID 1 and writes nothing.
    start = time.monotonic()
    podman.run("stop", "-t", "10", cid)
    assert time.monotonic() - start < 8, "berth did not stop on SIGTERM within the grace period"
    assert podman.run("inspect", "--format", "{{.State.ExitCode}}", cid).stdout.strip() == "0"
    logs = podman.run("logs", cid).stdout + podman.run("logs", cid).stderr
    assert "received SIGTERM" in logs
    podman.remove(cid)


def test_a_new_model_version_changes_only_the_last_layer(work):
    repo = make_repo(work / "versions-repo", "identity")
    (repo / ".git").mkdir()  # not a model: left out of the image
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    a, b = work / "v1.tar", work / "v2.tar"
    build("build", "--model-repository", str(repo), "-t", "v:1", "-o", str(a))
    (repo / "identity" / "2").mkdir()
    (repo / "identity" / "2" / "notes.txt").write_text("version 2\n")
    build("build", "--model-repository", str(repo), "-t", "v:1", "-o", str(b))

    def layers(archive):
        out = subprocess.run(["skopeo", "inspect", f"oci-archive:{archive}"], capture_output=True, text=True,
                             check=True)
        return json.loads(out.stdout)["Layers"]

    la, lb = layers(a), layers(b)
    layout = work / "versions-layout"
    layout.mkdir()
    subprocess.run(["tar", "-xf", str(b), "-C", str(layout)], check=True)
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs/sha256" / index["manifests"][0]["digest"][7:]).read_text())
    models_layer = layout / "blobs/sha256" / manifest["layers"][-1]["digest"][7:]
    names = subprocess.run(["tar", "-tzf", str(models_layer)], capture_output=True, text=True,
                           check=True).stdout.split()
    assert "models/identity/2/notes.txt" in names
    assert not [n for n in names if n.startswith("models/.git")], names
    assert la[:-1] == lb[:-1]
    assert la[-1] != lb[-1]


def test_push_to_a_registry_then_pull_and_run(podman, work, identity_oci):
    repo, _, _ = identity_oci
    registry = Registry(work / "registry")
    try:
        ref = f"{registry.address}/berth-test/identity:1"
        p = build("build", "--model-repository", str(repo), "-t", ref, "--push", "--insecure-registry")
        digest = p.stdout.strip()
        assert "4 blobs uploaded" in p.stderr, p.stderr  # three layers and the config
        info = json.loads(podman.tool("skopeo", "inspect", "--tls-verify=false", f"docker://{ref}").stdout)
        assert info["Digest"] == digest
        # Pushing again uploads nothing; a new model version uploads its layer and the config only.
        again = build("build", "--model-repository", str(repo), "-t", ref, "--push", "--insecure-registry")
        assert again.stdout.strip() == digest
        assert "0 blobs uploaded" in again.stderr, again.stderr
        (repo / "identity" / "extra.txt").write_text("changed\n")
        try:
            changed = build("build", "--model-repository", str(repo), "-t", ref, "--push", "--insecure-registry")
        finally:
            (repo / "identity" / "extra.txt").unlink()
        assert "2 blobs uploaded" in changed.stderr, changed.stderr
        podman.run("pull", "--tls-verify=false", ref)
        cid, port = podman.start(ref)
        podman.wait_ready(cid, port)
        assert infer(port, "identity", IDENTITY_REQUEST)[0]["data"] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        podman.remove(cid)
    finally:
        registry.stop()


def test_registry_errors_are_shown_with_status_and_message(work, identity_oci):
    repo, _, _ = identity_oci
    registry = Registry(work / "readonly-registry", read_only=True)
    try:
        p = build("build", "--model-repository", str(repo), "-t", f"{registry.address}/x/identity:1", "--push",
                  "--insecure-registry", check=False)
    finally:
        registry.stop()
    assert p.returncode == 1
    assert "starting the upload of layer system libraries: HTTP 405 Method Not Allowed: Method not allowed" \
        in p.stderr, p.stderr
    # Without --insecure-registry, TLS is required and a plain-HTTP registry is refused.
    registry = Registry(work / "plain-registry")
    try:
        p = build("build", "--model-repository", str(repo), "-t", f"{registry.address}/x/identity:1", "--push",
                  check=False)
    finally:
        registry.stop()
    assert p.returncode == 1 and "TLS handshake failed" in p.stderr, p.stderr


def test_push_over_tls_is_verified(work, identity_oci):
    repo, _, _ = identity_oci
    ca, cert, key = make_tls_certificate(work / "tls")
    registry = Registry(work / "tls-registry", tls=(cert, key), htpasswd=("user", "pass"))
    try:
        ref = f"{registry.address}/berth-test/identity:1"
        # The registry's CA is not trusted: refused, with the way out named.
        p = build("build", "--model-repository", str(repo), "-t", ref, "--push", check=False)
        assert p.returncode == 1 and "TLS handshake failed" in p.stderr and "--insecure-registry" in p.stderr, \
            p.stderr
        # Trusting the CA (OpenSSL's SSL_CERT_FILE) verifies it; without credentials the registry says so.
        p = build("build", "--model-repository", str(repo), "-t", ref, "--push", check=False,
                  env={"SSL_CERT_FILE": str(ca), "REGISTRY_AUTH_FILE": str(work / "none.json")})
        assert p.returncode == 1 and "asks for credentials" in p.stderr, p.stderr
        auth = work / "auth.json"
        auth.write_text(json.dumps({"auths": {registry.address: {"auth": "dXNlcjp3cm9uZw=="}}}))  # user:wrong
        p = build("build", "--model-repository", str(repo), "-t", ref, "--push", check=False,
                  env={"SSL_CERT_FILE": str(ca), "REGISTRY_AUTH_FILE": str(auth)})
        assert p.returncode == 1 and "HTTP 401" in p.stderr, p.stderr
        auth.write_text(json.dumps({"auths": {registry.address: {"auth": "dXNlcjpwYXNz"}}}))  # user:pass
        p = build("build", "--model-repository", str(repo), "-t", ref, "--push",
                  env={"SSL_CERT_FILE": str(ca), "REGISTRY_AUTH_FILE": str(auth)})
        digest = p.stdout.strip()
        info = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--creds", "user:pass", f"docker://{ref}"],
                              capture_output=True, text=True, check=True)
        assert json.loads(info.stdout)["Digest"] == digest
        # --insecure-registry: TLS without verification.
        p = build("build", "--model-repository", str(repo), "-t", ref, "--push", "--insecure-registry",
                  env={"REGISTRY_AUTH_FILE": str(auth)})
        assert p.stdout.strip() == digest and "0 blobs uploaded" in p.stderr
    finally:
        registry.stop()


def test_dockerfile_context_builds_with_podman(podman, work):
    repo = make_repo(work / "dockerfile-repo", "identity")
    context = work / "context"
    build("dockerfile", "--model-repository", str(repo), "-o", str(context), "-t", "berth-test/df:1")
    dockerfile = (context / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM scratch" in dockerfile
    assert "USER 65532:65532" in dockerfile
    assert sorted(p.name for p in context.iterdir()) == ["Dockerfile", "layer-1.tar.gz", "layer-2.tar.gz",
                                                          "layer-3.tar.gz", "sbom.spdx.json"]
    podman.run("build", "-t", "localhost/berth-test/df:1", str(context), timeout=600)
    cid, port = podman.start("localhost/berth-test/df:1")
    podman.wait_ready(cid, port)
    assert infer(port, "identity", IDENTITY_REQUEST)[0]["data"] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert "65532" in podman.run("top", cid, "huser").stdout
    podman.remove(cid)
    # The context is refused a second time: it exists and is not empty.
    p = build("dockerfile", "--model-repository", str(repo), "-o", str(context), check=False)
    assert p.returncode == 1 and "not an empty directory" in p.stderr


def test_bad_input_is_a_clear_error_and_leaves_no_output(work, tmp_path):
    repo = make_repo(tmp_path / "repo", "identity")
    out = tmp_path / "out.tar"
    empty_backends = tmp_path / "no-backends"
    empty_backends.mkdir()
    p = build("build", "--model-repository", str(repo), "-t", "x:1", "-o", str(out), "--backend-dir",
              str(empty_backends), check=False)
    assert p.returncode == 1
    assert "model 'identity'" in p.stderr and "libberth_backend_identity.so" in p.stderr, p.stderr
    assert sorted(x.name for x in tmp_path.iterdir()) == ["no-backends", "repo"]

    p = build("build", "--model-repository", str(repo), "-t", "x:1", "-o", str(tmp_path / "missing" / "o.tar"),
              check=False)
    assert p.returncode == 1 and "cannot be written" in p.stderr, p.stderr

    p = build("build", "--model-repository", str(tmp_path / "nope"), "-t", "x:1", "-o", str(out), check=False)
    assert p.returncode == 1 and "not a readable directory" in p.stderr, p.stderr

    p = build("build", "--model-repository", str(repo), "-t", "Bad Name", "-o", str(out), check=False)
    assert p.returncode == 1 and "repository name" in p.stderr, p.stderr

    p = build("build", "--model-repository", str(repo), "-t", "x:1", check=False)
    assert p.returncode == 1 and "give -o FILE, --push, or both" in p.stderr

    p = build("build", "--model-repository", str(repo), "-t", "x:1", "-o", str(out),
              env={"SOURCE_DATE_EPOCH": "yesterday"}, check=False)
    assert p.returncode == 1 and "SOURCE_DATE_EPOCH" in p.stderr
    assert not out.exists()
    assert not [x.name for x in tmp_path.iterdir() if x.name.startswith(".")]


def test_a_symlink_loop_in_the_repository_is_refused(tmp_path):
    repo = make_repo(tmp_path / "repo", "identity")
    (repo / "identity" / "self").symlink_to("..")
    p = build("build", "--model-repository", str(repo), "-t", "x:1", "-o", str(tmp_path / "o.tar"), check=False)
    assert p.returncode == 1 and "a symlink to a directory already in the repository" in p.stderr, p.stderr
    assert not (tmp_path / "o.tar").exists()


def test_untagged_name_loads_as_latest_and_umask_does_not_matter(podman, tmp_path):
    repo = make_repo(tmp_path / "repo", "identity")
    out = tmp_path / "a.tar"
    env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
    # A strict umask on the build host must not leave berth unexecutable in the image.
    p = subprocess.run(["sh", "-c", 'umask 077 && exec "$@"', "sh", str(BERTH_BIN.resolve()), "build",
                        "--model-repository", str(repo), "-t", "berth-test/untagged", "-o", str(out),
                        "--format", "docker"], capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stderr
    manifest = json.loads(subprocess.run(["tar", "-xOf", str(out), "manifest.json"], capture_output=True,
                                         check=True).stdout)
    assert manifest[0]["RepoTags"] == ["berth-test/untagged:latest"]
    podman.run("load", "-i", str(out))
    cid, port = podman.start("berth-test/untagged:latest")
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        time.sleep(0.2)
    assert infer(port, "identity", IDENTITY_REQUEST)[0]["data"] == [1, 2, 3, 4, 5, 6]


def test_dockerfile_context_dir_may_end_in_a_slash(tmp_path):
    repo = make_repo(tmp_path / "repo", "identity")
    build("dockerfile", "--model-repository", str(repo), "-t", "x:1", "-o", str(tmp_path / "ctx") + "/")
    assert (tmp_path / "ctx" / "Dockerfile").exists()


@pytest.mark.torch
def test_torchscript_image_serves_the_mlp_with_openblas(podman, work):
    repo = make_repo(work / "mlp-repo", "mlp")
    archive = work / "mlp.tar"
    p = build("build", "--model-repository", str(repo), "-t", "berth-test/mlp:1", "-o", str(archive))
    info = json.loads(podman.tool("skopeo", "inspect", f"oci-archive:{archive}").stdout)
    assert len(info["Layers"]) == 4, p.stderr
    podman.run("load", "-i", str(archive))
    cid, port = podman.start("localhost/berth-test/mlp:1")
    podman.wait_ready(cid, port)
    x = list(range(16))
    outputs = infer(port, "mlp", {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 16], "data": x}]})
    expected = json.loads(subprocess.run(
        [str(BERTH_BIN), "predict", str(EXAMPLES / "mlp"), "--input", f"x={json.dumps(x)}"],
        capture_output=True, text=True, check=True).stdout)["outputs"]
    assert outputs[0]["data"] == pytest.approx(expected[0]["data"], rel=1e-5)
    logs = podman.run("logs", cid)
    assert "openblas" in (logs.stdout + logs.stderr).lower()  # the alternative, not the reference BLAS
    podman.remove(cid)
