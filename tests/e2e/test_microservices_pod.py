"""examples/microservices in containers, as the README runs it: three images
made by `berth build` (the MLP service, the churn service, the gateway), run
with real podman in one pod that publishes only the gateway's port on
loopback, so the gateway's model.yaml URLs (http://127.0.0.1:8100 and :8200)
hold unchanged inside the pod's shared network namespace. The gateway's
answers equal a host `berth serve` on examples/models (the oracle, outside
the containers); `podman stop` of the MLP container gives 503s naming its
step and takes the gateway's readiness down once the circuit breaker trips;
`podman start` brings the same answers back.

The same three images then run as `berth deploy compose` writes them, with
real podman-compose: one network, the gateway reaching the services by their
service names (MLP_URL, CHURN_URL set by the generator), only the gateway
published; the gateway started before its services loads once they answer;
each service's healthcheck command (`berth probe`, exec form) passes inside it.

The images are FROM scratch (no shell): the services are waited for through
their own log lines (`podman logs`), the gateway through its published port.
Containers, the pod and the compose project are removed by the ids and names
this module created, whatever happens.
"""
import json
import shutil
import subprocess
import time

import pytest
import requests

from conftest import BERTH_BIN, EXAMPLES, ROOT, Server
from podman_env import Podman, free_port, tools_missing
from test_microservices import BODY

GATEWAY = ROOT / "examples" / "microservices" / "gateway"


def _missing():
    # A pod's infra (pause) container is built locally from catatonit: no image can be pulled here.
    return tools_missing() + ([] if shutil.which("catatonit") else ["catatonit"])


pytestmark = [
    pytest.mark.container,
    pytest.mark.torch,
    pytest.mark.xgboost,
    pytest.mark.skipif(bool(_missing()), reason=f"missing: {' '.join(_missing())} "
                                                 "(scripts/install-deps.sh installs them)"),
]

# service: (the one model in its repository, arguments after the image: its ports inside the pod)
SERVICES = {
    "mlp": ("mlp", ["--http-port", "8100", "--grpc-port", "0", "--metrics-port", "0"]),
    "churn": ("churn", ["--http-port", "8200", "--grpc-port", "0", "--metrics-port", "0"]),
}


def image(name):
    return f"localhost/berth-pod/{name}:1"


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("microservices-pod")


@pytest.fixture(scope="module")
def podman(work):
    p = Podman(work / "podman")
    yield p
    p.close()


@pytest.fixture(scope="module")
def images(work, podman):
    """The three images, built once (concurrently) and loaded into this module's podman storage."""
    repos = {}
    for name, (model, _) in SERVICES.items():
        repos[name] = work / f"{name}-repo"
        repos[name].mkdir()
        # A copy, not a symlink: berth build refuses symlinks that leave the repository.
        shutil.copytree(EXAMPLES / model, repos[name] / model)
    repos["gateway"] = GATEWAY
    (work / "repos.json").write_text(json.dumps({k: str(v) for k, v in repos.items()}))
    builds = {}
    for name in ("mlp", "churn", "gateway"):  # the MLP (LibTorch, ~530 MB) first: it takes longest
        log = open(work / f"build-{name}.log", "w")
        # --gzip-level 1: the same image, gzipped faster (the LibTorch layer dominates the build).
        proc = subprocess.Popen([str(BERTH_BIN), "build", "--model-repository", str(repos[name]), "-t",
                                 f"berth-pod/{name}:1", "-o", str(work / f"{name}.tar"), "--format", "docker",
                                 "--gzip-level", "1"], stdout=log, stderr=subprocess.STDOUT)
        builds[name] = (proc, log)
    try:
        for name in ("churn", "gateway", "mlp"):  # load the quick ones while the MLP still builds
            proc, log = builds[name]
            rc = proc.wait(timeout=300)
            log.close()
            assert rc == 0, f"berth build of {name} failed ({rc}):\n{(work / f'build-{name}.log').read_text()}"
            out = podman.run("load", "-i", str(work / f"{name}.tar"))
            assert image(name) in out.stdout + out.stderr, out.stdout + out.stderr
            (work / f"{name}.tar").unlink()
    finally:
        for proc, log in builds.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
    return {name: image(name) for name in builds}


@pytest.fixture(scope="module")
def oracle():
    """A host `berth serve` on examples/models with the two models: what the services must answer."""
    s = Server(EXAMPLES, ["--model-control-mode", "explicit", "--load-model", "mlp", "--load-model", "churn",
                          "--grpc-port", "0"])
    yield s
    s.stop()


def logs(podman, cid):
    out = podman.run("logs", cid, check=False, timeout=30)
    return out.stdout + out.stderr


def state(podman, cid):
    return podman.run("inspect", "--format", "{{.State.Status}}", cid, check=False, timeout=30).stdout.strip()


def wait_for_log(podman, cid, line, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if line in logs(podman, cid):
            return
        if state(podman, cid) in ("exited", "stopped"):
            break
        time.sleep(0.1)
    raise AssertionError(f"container {cid[:12]} never logged {line!r} (state {state(podman, cid)}):\n"
                         f"{logs(podman, cid)}")


@pytest.fixture(scope="module")
def pod(podman, images):
    """One pod publishing only the gateway's port; the two services, then the gateway, running in it.

    Returns (host port of the gateway, {name: container id})."""
    port = free_port()
    pod_id = podman.run("pod", "create", "-p", f"127.0.0.1:{port}:8000").stdout.strip().splitlines()[-1]
    cids = {}
    try:
        for name, (model, args) in SERVICES.items():
            out = podman.run("run", "-d", "--read-only", "--pod", pod_id, images[name], *args)
            cids[name] = out.stdout.strip().splitlines()[-1]
            podman.containers.append(cids[name])
        # The gateway checks both services' metadata when it loads: they must be up first.
        for name, (model, _) in SERVICES.items():
            wait_for_log(podman, cids[name], f"model '{model}' version 1: READY")
        out = podman.run("run", "-d", "--read-only", "--pod", pod_id, images["gateway"])
        cids["gateway"] = out.stdout.strip().splitlines()[-1]
        podman.containers.append(cids["gateway"])
        deadline = time.time() + 60
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/v2/models/gateway/ready", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.time() > deadline or state(podman, cids["gateway"]) in ("exited", "stopped"):
                raise AssertionError(f"the gateway did not become ready:\n{logs(podman, cids['gateway'])}")
            time.sleep(0.1)
        yield port, cids
    finally:
        for cid in cids.values():
            podman.remove(cid)
        podman.run("pod", "rm", "-f", "-t", "0", pod_id, check=False, timeout=60)


def gateway_infer(port):
    return requests.post(f"http://127.0.0.1:{port}/v2/models/gateway/infer", json=BODY, timeout=30)


def expected(oracle):
    mlp = oracle.post("/v2/models/mlp/infer", json={"inputs": [BODY["inputs"][0]]})
    churn = oracle.post("/v2/models/churn/infer", json={"inputs": [BODY["inputs"][1]]})
    assert mlp.status_code == 200 and churn.status_code == 200, mlp.text + churn.text
    return {"probs": mlp.json()["outputs"][0], "churn_probability": churn.json()["outputs"][0]}


def assert_answers_equal(r, want):
    assert r.status_code == 200, r.text
    got = {o["name"]: o for o in r.json()["outputs"]}
    assert set(got) == set(want), r.text
    for name, o in want.items():
        assert got[name]["datatype"] == o["datatype"] and got[name]["shape"] == o["shape"], (name, got[name], o)
        if o["datatype"].startswith("FP"):
            # Another process in another cgroup: its BLAS may split or vectorise the sums differently (1 ulp
            # apart on an AVX-512 EPYC, equal on the earlier machines), so floats agree to rounding, not bits.
            assert got[name]["data"] == pytest.approx(o["data"], rel=1e-6, abs=1e-7), (name, got[name]["data"],
                                                                                       o["data"])
        else:
            assert got[name]["data"] == o["data"], (name, got[name]["data"], o["data"])


def test_only_the_gateway_port_is_published(podman, pod):
    port, cids = pod
    for cid in cids.values():  # one network namespace: every container shows the pod's one mapping
        assert podman.run("port", cid).stdout.split() == ["8000/tcp", "->", f"127.0.0.1:{port}"]


def test_gateway_in_a_pod_calls_both_services(pod, oracle):
    port, _ = pod
    want = expected(oracle)
    assert want["probs"]["shape"] == [2, 4]
    assert_answers_equal(gateway_infer(port), want)


def test_stopping_and_starting_the_mlp_container(podman, pod, oracle):
    port, cids = pod
    want = expected(oracle)
    assert_answers_equal(gateway_infer(port), want)

    podman.run("stop", "-t", "10", cids["mlp"], timeout=60)
    assert state(podman, cids["mlp"]) in ("exited", "stopped")
    prefix = "step 'mlp' (remote http://127.0.0.1:8100 model mlp): "
    # Five failures in a row mark the service down (for a second): the gateway's readiness says so.
    deadline = time.time() + 5
    while True:
        r = gateway_infer(port)
        assert r.status_code == 503, r.text
        assert r.json()["error"].startswith(prefix), r.text
        ready = requests.get(f"http://127.0.0.1:{port}/v2/models/gateway/ready", timeout=5).status_code
        if ready != 200 or time.time() > deadline:
            break
        time.sleep(0.05)
    assert ready != 200, "the gateway still says ready with its MLP service stopped"
    assert requests.get(f"http://127.0.0.1:{port}/v2/health/live", timeout=5).status_code == 200

    podman.run("start", cids["mlp"], timeout=60)
    deadline = time.time() + 20
    while True:
        r = gateway_infer(port)
        if r.status_code == 200 or time.time() > deadline:
            break
        time.sleep(0.2)
    assert_answers_equal(r, want)
    assert requests.get(f"http://127.0.0.1:{port}/v2/models/gateway/ready", timeout=5).status_code == 200


def _compose_missing():
    return _missing() + ([] if shutil.which("podman-compose") else ["podman-compose"])


@pytest.fixture(scope="module")
def compose(work, podman, images):
    """`berth deploy compose` of the three images, brought up by podman-compose: (gateway port, project, run)."""
    if _compose_missing():
        pytest.skip(f"missing: {' '.join(_compose_missing())}")
    repos = json.loads((work / "repos.json").read_text())
    port = free_port()
    out = work / "compose"
    out.mkdir()
    args = []
    for name in ("mlp", "churn", "gateway"):
        args += ["--image", images[name], "--model-repository", repos[name]]
    subprocess.run([str(BERTH_BIN), "deploy", "compose", *args, "--publish", f"gateway=127.0.0.1:{port}", "-o",
                    str(out)], check=True, capture_output=True, timeout=60)
    project = f"berthtest{port}"

    def run(*a, timeout=180):
        return subprocess.run(["podman-compose", "-p", project, "-f", str(out / "compose.yaml"), *a], env=podman.env,
                              capture_output=True, text=True, timeout=timeout)

    up = run("up", "-d")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield port, project, run
    finally:
        run("down", "-t", "0")
        podman.run("network", "rm", "-f", f"{project}_default", check=False, timeout=60)


def container(project, service):
    return f"{project}_{service}_1"  # podman-compose 1.0.3's names


def wait_answers(port, timeout=60):
    deadline = time.time() + timeout
    while True:
        try:
            r = gateway_infer(port)
            if r.status_code == 200:
                return r
        except requests.RequestException:
            r = None
        assert time.time() < deadline, r.text if r is not None else "no answer"
        time.sleep(0.2)


def test_compose_gateway_calls_the_services_by_name(podman, compose, oracle):
    port, project, _ = compose
    assert_answers_equal(wait_answers(port), expected(oracle))
    env = podman.run("inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}",
                     container(project, "gateway")).stdout.split()
    assert "MLP_URL=http://mlp:8000" in env and "CHURN_URL=http://churn:8000" in env
    for service in ("mlp", "churn", "gateway"):
        cid = container(project, service)
        assert podman.run("inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", cid).stdout.strip() == "true"
        published = podman.run("port", cid, check=False).stdout.split()
        assert published == (["8000/tcp", "->", f"127.0.0.1:{port}"] if service == "gateway" else []), published
        # The healthcheck's command, run in the container (podman-compose 1.0.3 wraps CMD in /bin/sh, which
        # these images do not have, so `podman healthcheck run` cannot be the judge here).
        probe = podman.run("exec", cid, "/usr/bin/berth", "probe", check=False)
        assert probe.returncode == 0, probe.stderr


def test_compose_gateway_started_first_loads_when_the_services_answer(podman, compose, oracle):
    port, project, _ = compose
    want = expected(oracle)
    assert_answers_equal(wait_answers(port), want)
    podman.run("stop", "-t", "10", container(project, "mlp"), timeout=60)
    podman.run("restart", "-t", "10", container(project, "gateway"), timeout=60)
    deadline = time.time() + 30
    while True:  # the gateway loads while its MLP service is down: UNAVAILABLE, naming the step
        try:
            r = requests.post(f"http://127.0.0.1:{port}/v2/repository/index", json={}, timeout=5)
            index = {m["name"]: m for m in r.json()}
            if index.get("gateway", {}).get("state") == "UNAVAILABLE":
                break
        except requests.RequestException:
            pass
        assert time.time() < deadline, "the restarted gateway never reported its MLP step unavailable"
        time.sleep(0.1)
    assert "remote http://mlp:8000 model mlp" in index["gateway"]["reason"], index
    podman.run("start", container(project, "mlp"), timeout=60)
    assert_answers_equal(wait_answers(port, timeout=60), want)
