"""`berth deploy k8s|job`: the manifests validate against the Kubernetes
schemas (npm kubernetes-models, tests/k8s/validate.mjs) for several
repositories and flag sets, are byte-identical run to run and equal their
golden files, size the pod from the repository, and the Deployment runs in
real podman (`podman kube play`): ready, answering, as uid 65532 on a
read-only root, with threads from the CPU limit, and `podman kube down`
drains it with no request failing mid-exchange."""
import os
import pathlib
import shutil
import subprocess
import threading
import time

import pytest
import requests
import yaml

from conftest import BERTH_BIN, EXAMPLES, ROOT, write_model
from podman_env import Podman, free_port, tools_missing

K8S = ROOT / "tests" / "k8s"
GOLDEN = pathlib.Path(__file__).resolve().parent / "golden"
IMAGE = "registry.example/team/churn-scorer:1.2"


def deploy(*args, check=True):
    p = subprocess.run([str(BERTH_BIN), "deploy", *map(str, args)], capture_output=True, text=True, timeout=60)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def validate(text):
    """Each document through kubernetes-models: [(kind, ok, error)]."""
    if not (K8S / "node_modules" / "kubernetes-models").is_dir():
        pytest.fail("tests/k8s/node_modules is missing: run scripts/install-deps.sh (npm ci --prefix tests/k8s)")
    p = subprocess.run(["node", str(K8S / "validate.mjs")], input=text, capture_output=True, text=True, timeout=60)
    import json
    return [json.loads(line) for line in p.stdout.splitlines()], p.returncode


def docs(text):
    return {d["kind"]: d for d in yaml.safe_load_all(text) if d}


JOB_ARGS = ["job", "--image", IMAGE, "--model-repository", EXAMPLES, "--model", "churn", "--in", "customers.csv",
            "--out", "scores.csv", "--shards", "4"]
CASES = {
    "examples": ["k8s", "--image", IMAGE, "--model-repository", EXAMPLES],
    "tokens-namespace": ["k8s", "--image", IMAGE, "--model-repository", EXAMPLES, "--token-secret", "berth-tokens",
                         "--namespace", "ml", "--name", "scorer", "--replicas", "3", "--min-replicas", "2",
                         "--max-replicas", "20", "--cpu", "1500m", "--memory", "2Gi"],
    "vision": ["k8s", "--image", "localhost/fashion", "--model-repository", ROOT / "examples" / "vision" / "models"],
    "gateway": ["k8s", "--image", "gw:latest", "--model-repository", ROOT / "examples" / "microservices" / "gateway",
                "--env", "MLP_URL=http://mlp:8000", "--env", "CHURN_URL=http://churn.ml.svc:8000"],
    "queue": ["k8s", "--image", IMAGE, "--model-repository", EXAMPLES, "--target-queue-depth", "4"],
    "job-claim": [*JOB_ARGS, "--data-claim", "batch-data"],
    "job-hostpath": [*JOB_ARGS, "--data-host-path", "/srv/batch", "--parallelism", "2"],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_manifest_validates_and_is_deterministic(case):
    text = deploy(*CASES[case]).stdout
    assert deploy(*CASES[case]).stdout == text
    results, rc = validate(text)
    assert rc == 0 and all(r["ok"] for r in results), results
    kinds = [r["kind"] for r in results]
    if case.startswith("job"):
        assert kinds == ["batch/v1/Job"]
    else:
        assert kinds == ["apps/v1/Deployment", "v1/Service", "autoscaling/v2/HorizontalPodAutoscaler",
                         "policy/v1/PodDisruptionBudget"] + (["v1/ConfigMap"] if case == "queue" else [])


def test_queue_depth_autoscaling_and_its_adapter_rule(start_server):
    d = docs(deploy(*CASES["queue"]).stdout)
    metrics = d["HorizontalPodAutoscaler"]["spec"]["metrics"]
    assert metrics[1] == {"type": "Pods", "pods": {"metric": {"name": "berth_queue_depth"},
                                                   "target": {"type": "AverageValue", "averageValue": "4"}}}
    rule = yaml.safe_load(d["ConfigMap"]["data"]["config.yaml"])["rules"][0]
    assert rule["seriesQuery"] == 'berth_queue_depth{namespace!="",pod!=""}'
    assert rule["name"]["as"] == "berth_queue_depth"
    assert rule["resources"]["overrides"] == {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
    assert "<<.LabelMatchers>>" in rule["metricsQuery"]
    assert "ConfigMap" not in docs(deploy(*CASES["examples"]).stdout)
    # The series the rule selects is one berth exports (a gauge per model).
    s = start_server(EXAMPLES, ["--model-control-mode", "explicit", "--load-model", "identity", "--grpc-port", "0"])
    exported = requests.get(s.metrics_url, timeout=10).text
    assert "# TYPE berth_queue_depth gauge" in exported
    assert 'berth_queue_depth{model="identity"' in exported


def test_the_validator_catches_mistakes():
    d = docs(deploy(*CASES["examples"]).stdout)["Deployment"]
    d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
    del d["spec"]["selector"]
    results, rc = validate(yaml.safe_dump(d))
    assert rc == 1 and not results[0]["ok"], results


@pytest.mark.parametrize("case,golden", [("tokens-namespace", "deploy-k8s.yaml"), ("job-claim", "deploy-job.yaml")])
def test_golden_files(case, golden):
    text = deploy(*CASES[case]).stdout.replace(str(EXAMPLES), "examples/models")
    path = GOLDEN / golden
    if os.environ.get("BERTH_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"differs from {path} (BERTH_UPDATE_GOLDEN=1 rewrites it)"


def test_restricted_pod_and_probes(tmp_path):
    d = docs(deploy(*CASES["tokens-namespace"]).stdout)
    pod = d["Deployment"]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                                      "fsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"}}
    assert c["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}
    assert c["resources"]["requests"] == c["resources"]["limits"] == {"cpu": "1500m", "memory": "2Gi"}
    assert c["startupProbe"]["httpGet"]["path"] == c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert c["livenessProbe"]["grpc"] == {"port": 8001, "service": "live"}  # the gRPC port's health
    assert c["lifecycle"]["preStop"] == {"sleep": {"seconds": 5}}  # no shell in the image
    assert pod["terminationGracePeriodSeconds"] > 5 + 10  # preStop + berth's drain fit inside it
    env = {e["name"]: e for e in c["env"]}
    assert env["BERTH_CPU_LIMIT_MILLICORES"]["valueFrom"]["resourceFieldRef"] == {"resource": "limits.cpu",
                                                                                   "divisor": "1m"}
    assert "--auth-token-file" in c["args"] and not any("token" in e["name"].lower() for e in c["env"])
    assert pod["volumes"][0]["secret"]["secretName"] == "berth-tokens"
    assert d["HorizontalPodAutoscaler"]["spec"]["minReplicas"] == 2
    assert d["Deployment"]["metadata"]["namespace"] == "ml"
    ports = {p["name"]: p for p in d["Service"]["spec"]["ports"]}
    assert ports["grpc"]["appProtocol"] == "kubernetes.io/h2c"
    annotations = d["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "8002"  # a string, as annotations must be


def test_sizes_come_from_the_repository(tmp_path):
    repo = tmp_path / "models"
    write_model(repo, "big", "backend: identity\ninstances: 2\nthreads: 2\n"
                "inputs: [{name: x, datatype: FP32, shape: [1]}]\noutputs: [{name: x, datatype: FP32, shape: [1]}]\n",
                files={"1/weights.bin": b"\0" * (30 << 20)})
    write_model(repo, "small", "backend: identity\n"
                "inputs: [{name: x, datatype: FP32, shape: [1]}]\noutputs: [{name: x, datatype: FP32, shape: [1]}]\n")
    write_model(repo, "prep", "kind: transform\ninputs: [{name: a, datatype: BYTES, shape: [1]}]\n"
                "outputs: [{name: f, datatype: FP32, shape: [1], columns: [a]}]\n")
    c = docs(deploy("k8s", "--image", "x/y:1", "--model-repository", repo).stdout)["Deployment"]
    c = c["spec"]["template"]["spec"]["containers"][0]
    assert c["resources"]["limits"]["cpu"] == "5"  # 2 x 2 + 1 x 1; the transform runs on no CPUs of its own
    assert c["resources"]["limits"]["memory"] == "384Mi"  # 256Mi + 2 x 2 x 30 MiB = 376, in 64Mi steps
    assert c["startupProbe"]["failureThreshold"] * c["startupProbe"]["periodSeconds"] >= 30 + 60 // 20


def test_clear_errors(tmp_path):
    for args, message in [
        (["k8s", "--model-repository", EXAMPLES], "--image is required"),
        (["k8s", "--image", IMAGE, "--model-repository", tmp_path / "none"], "not a directory"),
        (["k8s", "--image", IMAGE, "--model-repository", EXAMPLES, "--name", "Bad_Name"], "expected a DNS label"),
        (["k8s", "--image", IMAGE, "--model-repository", EXAMPLES, "--replicas", "50"], "min <= replicas <= max"),
        ([*JOB_ARGS], "--data-claim or --data-host-path: exactly one"),
        (["k8s", "--image", IMAGE, "--model-repository", EXAMPLES, "--env", "1X=y"], "--env: expected NAME=VALUE"),
        (["kserve", "--image", IMAGE, "--model-repository", EXAMPLES, "--env", "NOVALUE"], "--env: expected NAME="),
        ([*JOB_ARGS[:6], "nope", *JOB_ARGS[7:], "--data-claim", "c"], "--model nope: not a model"),
    ]:
        p = deploy(*args, check=False)
        assert p.returncode != 0 and message in p.stderr, (args, p.stderr)
    # A Service's name must start with a letter; 0 s of preStop sleep is refused before Kubernetes 1.32.
    d = docs(deploy("k8s", "--image", "reg/3d-detector:1", "--model-repository", EXAMPLES, "--prestop-secs", "0").stdout)
    assert d["Service"]["metadata"]["name"] == "berth-3d-detector"
    assert "lifecycle" not in d["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    gateway = docs(deploy(*CASES["gateway"]).stdout)["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert gateway["env"][1:] == [{"name": "MLP_URL", "value": "http://mlp:8000"},
                                  {"name": "CHURN_URL", "value": "http://churn.ml.svc:8000"}]
    job = docs(deploy(*JOB_ARGS, "--data-claim", "c", "--max-rejects", "25").stdout)["Job"]
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--max-rejects") + 1] == "25"
    out = tmp_path / "manifests"
    out.mkdir()
    p = deploy(*CASES["examples"], "-o", out)
    assert (out / "churn-scorer.yaml").read_text() == deploy(*CASES["examples"]).stdout


@pytest.mark.container
@pytest.mark.skipif(bool(tools_missing()) or not shutil.which("catatonit"), reason="podman tools missing")
def test_podman_kube_play_runs_the_deployment(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES / "identity", repo / "identity")
    archive = tmp_path / "identity.tar"
    subprocess.run([str(BERTH_BIN), "build", "--model-repository", str(repo), "-t", "berth-deploy/identity:1",
                    "-o", str(archive), "--format", "docker", "--gzip-level", "1"],
                   check=True, capture_output=True, timeout=300)
    podman = Podman(tmp_path / "podman")
    try:
        podman.run("load", "-i", str(archive))
        text = deploy("k8s", "--image", "localhost/berth-deploy/identity:1", "--model-repository", repo,
                      "--cpu", "1", "--memory", "256Mi", "--replicas", "1", "--min-replicas", "1").stdout
        d = docs(text)["Deployment"]
        # podman has no Service: publish the HTTP port on loopback for the test (the only change).
        port = free_port()
        d["spec"]["template"]["spec"]["containers"][0]["ports"][0].update(hostPort=port, hostIP="127.0.0.1")
        kube = tmp_path / "deployment.yaml"
        kube.write_text(yaml.safe_dump(d, sort_keys=False))
        podman.run("kube", "play", str(kube), timeout=120)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.time() + 60
            while time.time() < deadline:
                try:
                    if requests.get(url + "/v2/health/ready", timeout=1).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                time.sleep(0.1)
            body = {"inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [2, 3], "data": [1, 2, 3, 4, 5, 6]}]}
            r = requests.post(url + "/v2/models/identity/infer", json=body, timeout=10)
            assert r.status_code == 200, r.text
            assert r.json()["outputs"][0]["data"] == [1, 2, 3, 4, 5, 6]
            ids = podman.run("ps", "-q", "--no-trunc", "--filter", "label=app.kubernetes.io/name=identity").stdout
            cids = [c for c in ids.split() if c]
            assert len(cids) == 1, ids
            cid = cids[0]
            assert "65532" in podman.run("top", cid, "huser").stdout.split()
            assert podman.run("inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", cid).stdout.strip() == "true"
            env = podman.run("inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", cid).stdout
            assert "BERTH_CPU_LIMIT_MILLICORES=1000" in env.split(), env  # the downward API, as podman gives it
            logs = podman.run("logs", cid)
            logs = logs.stdout + logs.stderr
            assert "CPU budget: 1 CPUs from" in logs and "HTTP I/O threads: 1" in logs, logs

            # Under load, kube down: answers until berth drains, then refusals; never a failure mid-exchange.
            outcomes, stop = [], threading.Event()

            def load():
                s = requests.Session()
                while not stop.is_set() and len(outcomes) < 100000:
                    try:
                        outcomes.append(s.post(url + "/v2/models/identity/infer", json=body, timeout=10).status_code)
                    except requests.ConnectionError:
                        outcomes.append("refused")
                        time.sleep(0.01)

            t = threading.Thread(target=load)
            t.start()
            time.sleep(0.5)
            start = time.monotonic()
            podman.run("kube", "down", str(kube), timeout=120)
            took = time.monotonic() - start
            time.sleep(0.3)
            stop.set()
            t.join(30)
        finally:
            podman.run("kube", "down", str(kube), check=False, timeout=120)
        assert took < d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"], took
        assert outcomes.count(200) > 10 and outcomes[-1] == "refused", outcomes[-5:]
        first_refusal = outcomes.index("refused")
        assert set(outcomes[:first_refusal]) <= {200, 503}, set(outcomes[:first_refusal])
        assert set(outcomes[first_refusal:]) == {"refused"}, outcomes[first_refusal:first_refusal + 5]
    finally:
        podman.close()


@pytest.mark.container
@pytest.mark.xgboost
@pytest.mark.skipif(bool(tools_missing()) or not shutil.which("catatonit"), reason="podman tools missing")
def test_the_indexed_job_as_pods_merges_to_the_single_run(tmp_path):
    """podman runs no Job: the Job controller's part is played by the test, which makes one Pod per index
    from the generated pod template with JOB_COMPLETION_INDEX set, as the controller does; and the
    kubelet's: it expands $(VAR) references in args from the container's env, which podman 4.3 does not,
    so the test expands $(JOB_COMPLETION_INDEX) the same way. Everything else is the generated manifest."""
    from test_batch import churn_rows
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES / "churn", repo / "churn")
    archive = tmp_path / "churn.tar"
    subprocess.run([str(BERTH_BIN), "build", "--model-repository", str(repo), "-t", "berth-deploy/churn:1",
                    "-o", str(archive), "--format", "docker", "--gzip-level", "1"],
                   check=True, capture_output=True, timeout=300)
    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, 0o777)  # the pods run as uid 65532
    df = churn_rows(3000, seed=11)
    df.to_csv(data / "customers.csv", index=False)
    single = tmp_path / "single.csv"
    subprocess.run([str(BERTH_BIN), "batch", str(repo / "churn"), "--in", str(data / "customers.csv"),
                    "--out", str(single), "--keep", "customer"], check=True, capture_output=True, timeout=120)
    n = 3
    job = docs(deploy("job", "--image", "localhost/berth-deploy/churn:1", "--model-repository", repo,
                      "--model", "churn", "--in", "customers.csv", "--out", "scores.csv", "--shards", n,
                      "--data-host-path", data).stdout)["Job"]
    template = job["spec"]["template"]
    template["spec"]["containers"][0]["args"] += ["--keep", "customer"]
    podman = Podman(tmp_path / "podman")
    try:
        podman.run("load", "-i", str(archive))
        files = []
        for i in range(n):
            pod = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": f"churn-batch-{i}", "labels": template["metadata"]["labels"]},
                   "spec": {**template["spec"]}}
            c = {**template["spec"]["containers"][0]}
            c["env"] = [*c["env"], {"name": "JOB_COMPLETION_INDEX", "value": str(i)}]
            c["args"] = [a.replace("$(JOB_COMPLETION_INDEX)", str(i)) for a in c["args"]]
            pod["spec"]["containers"] = [c]
            f = tmp_path / f"pod-{i}.yaml"
            f.write_text(yaml.safe_dump(pod, sort_keys=False))
            files.append(f)
            podman.run("kube", "play", str(f), timeout=120)
        deadline = time.time() + 60
        while time.time() < deadline and not all((data / f"scores.csv.part-{i}").exists() for i in range(n)):
            time.sleep(0.2)
        ids = podman.run("ps", "-a", "-q", "--filter", "label=app.kubernetes.io/component=batch").stdout.split()
        logs = "".join(podman.run("logs", c, check=False).stderr for c in ids)
        for f in files:
            podman.run("kube", "down", str(f), check=False, timeout=120)
        assert all((data / f"scores.csv.part-{i}").exists() for i in range(n)), (sorted(os.listdir(data)), logs)
        p = subprocess.run([str(BERTH_BIN), "batch", "merge", "--out", str(data / "scores.csv"), "--shards", str(n)],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert (data / "scores.csv").read_bytes() == single.read_bytes()
    finally:
        podman.close()
