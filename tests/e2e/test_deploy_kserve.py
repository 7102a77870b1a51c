"""`berth deploy kserve` and `berth deploy compose`.

KServe: the ServingRuntime and InferenceService validate against KServe's CRD
schemas (tests/k8s/kserve, with python3-jsonschema), name no field those
schemas do not (they allow unknown fields in places, so that is checked
here), are byte-identical run to run and equal their golden file; and the
runtime's container command, run as KServe runs it (its /mnt/models holding
what the storage initializer put there, {{.Name}} replaced), serves v2 over
HTTP on the runtime's HTTP port and gRPC health on its h2c port.

Compose: the microservices example as three services wired by name, with
the same hardening as the pod, valid by docker-compose's own schema check;
refusals name what is wrong. (podman-compose runs it in
test_microservices_pod.py.)"""
import gzip
import json
import os
import shutil
import subprocess

import jsonschema
import pytest
import requests
import yaml

from conftest import BERTH_BIN, EXAMPLES, ROOT, free_port
from grpc_client import Client
from procs import stop_process, wait_http_ok
from test_deploy import GOLDEN, deploy, docs

SCHEMAS = ROOT / "tests" / "k8s" / "kserve"
IMAGE = "registry.example/team/churn-scorer:1.2"
GATEWAY = ROOT / "examples" / "microservices" / "gateway"


def schema(kind):
    name = {"ServingRuntime": "ServingRuntime.serving.kserve.io.v1alpha1",
            "InferenceService": "InferenceService.serving.kserve.io.v1beta1"}[kind]
    with gzip.open(SCHEMAS / f"{name}.json.gz") as f:
        return json.load(f)


def unknown_fields(obj, s, path="$"):
    """Paths of keys in `obj` that schema `s` does not name (where it lists properties)."""
    found = []
    if isinstance(obj, dict) and "properties" in s:
        for k, v in obj.items():
            if k in s["properties"]:
                found += unknown_fields(v, s["properties"][k], f"{path}.{k}")
            elif not s.get("additionalProperties") and not s.get("x-kubernetes-preserve-unknown-fields"):
                found.append(f"{path}.{k}")
    elif isinstance(obj, list) and "items" in s:
        for i, v in enumerate(obj):
            found += unknown_fields(v, s["items"], f"{path}[{i}]")
    return found


KSERVE_CASES = {
    "image": ["kserve", "--image", IMAGE, "--model-repository", EXAMPLES],
    "storage": ["kserve", "--image", IMAGE, "--model-repository", EXAMPLES, "--storage-uri",
                "s3://models/churn", "--namespace", "ml", "--name", "churn", "--min-replicas", "1",
                "--max-replicas", "4", "--cpu", "2", "--memory", "1Gi"],
    "gateway": ["kserve", "--image", "gw:latest", "--model-repository", GATEWAY],
}


@pytest.mark.parametrize("case", sorted(KSERVE_CASES))
def test_kserve_validates_against_the_crds_and_is_deterministic(case):
    args = KSERVE_CASES[case]
    text = deploy(*args).stdout
    assert deploy(*args).stdout == text
    d = docs(text)
    assert sorted(d) == ["InferenceService", "ServingRuntime"]
    for kind, obj in d.items():
        jsonschema.validate(obj, schema(kind))
        assert unknown_fields(obj, schema(kind)) == [], kind


def test_the_kserve_checks_catch_mistakes():
    d = docs(deploy(*KSERVE_CASES["image"]).stdout)
    runtime = d["ServingRuntime"]
    runtime["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(runtime, schema("ServingRuntime"))
    isvc = d["InferenceService"]
    isvc["spec"]["predictor"]["model"]["storageURI"] = "s3://x"  # misspelt: the schema alone lets it pass
    assert unknown_fields(isvc, schema("InferenceService")) == ["$.spec.predictor.model.storageURI"]


def test_kserve_golden_file():
    text = deploy(*KSERVE_CASES["image"]).stdout.replace(str(EXAMPLES), "examples/models")
    path = GOLDEN / "deploy-kserve.yaml"
    if os.environ.get("BERTH_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"differs from {path} (BERTH_UPDATE_GOLDEN=1 rewrites it)"


def test_kserve_runtime_as_kserve_expects_it():
    d = docs(deploy(*KSERVE_CASES["image"]).stdout)
    spec = d["ServingRuntime"]["spec"]
    c = spec["containers"][0]
    assert c["name"] == "kserve-container"
    assert spec["protocolVersions"] == ["v2", "grpc-v2"]
    formats = {f["name"]: f for f in spec["supportedModelFormats"]}
    assert formats["berth"]["autoSelect"] is False  # the InferenceService names its runtime
    assert {"pytorch", "xgboost", "onnx"} <= set(formats)  # examples/models' backends
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"http1": 8080, "h2c": 8081}
    assert c["args"][:3] == ["serve", "--model-repository", "/models"]  # no storageUri: the image's models
    assert c["resources"]["requests"] == c["resources"]["limits"]
    assert c["startupProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8080}
    isvc = d["InferenceService"]
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"
    model = isvc["spec"]["predictor"]["model"]
    assert model == {"modelFormat": {"name": "berth"}, "protocolVersion": "v2",
                     "runtime": d["ServingRuntime"]["metadata"]["name"]}
    assert isvc["spec"]["predictor"]["securityContext"]["runAsUser"] == 65532


@pytest.mark.xgboost  # the churn model: deselected where only the identity backend is built (sanitizer stage)
@pytest.mark.parametrize("layout", ["one-model", "repository"])
def test_the_runtime_command_serves_what_the_storage_initializer_leaves(tmp_path, layout):
    """The container's command and args, run here as the kubelet would, /mnt/models being a local copy."""
    d = docs(deploy(*KSERVE_CASES["storage"]).stdout)
    c = d["ServingRuntime"]["spec"]["containers"][0]
    mnt = tmp_path / "mnt" / "models"
    if layout == "one-model":
        shutil.copytree(EXAMPLES / "churn", mnt)  # storageUri pointing at one model's directory
    else:
        shutil.copytree(EXAMPLES / "churn", mnt / "churn")  # ... or at a repository
    http, grpc_port, metrics = free_port(), free_port(), free_port()
    ports = {"8080": str(http), "8081": str(grpc_port), "8002": str(metrics)}
    args = [str(BERTH_BIN) if a == c["command"][0] else a for a in c["command"]]
    for a in c["args"]:
        a = a.replace("/mnt/models", str(mnt)).replace("{{.Name}}", d["InferenceService"]["metadata"]["name"])
        args.append(ports.get(a, a))
    assert "--model-name" in args
    log = open(tmp_path / "berth.log", "w")
    proc = subprocess.Popen([*args, "--host", "127.0.0.1"], stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{http}"
        wait_http_ok(url + "/v2/health/ready", proc, tmp_path / "berth.log")
        name = "churn"  # the InferenceService's name (--name churn), or the repository's model
        r = requests.post(f"{url}/v2/models/{name}/infer", json={"inputs": [
            {"name": "features", "datatype": "FP32", "shape": [1, 4], "data": [12, 70.5, 1, 12]}]}, timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["model_name"] == "churn"
        client = Client(f"127.0.0.1:{grpc_port}")
        try:
            assert client.serving_name(client.health("ready")) == "SERVING"
        finally:
            client.close()
        assert requests.get(f"http://127.0.0.1:{metrics}/metrics", timeout=5).status_code == 200
        log_text = (tmp_path / "berth.log").read_text()
        if layout == "one-model":
            assert "serving it as the one model 'churn'" in log_text
        else:
            assert "--model-name churn: ignored" in log_text
    finally:
        stop_process(proc)
        log.close()


def compose_args(tmp_path):
    repos = {}
    for name in ("mlp", "churn"):
        repos[name] = tmp_path / f"{name}-repo"
        shutil.copytree(EXAMPLES / name, repos[name] / name)
    return ["compose", "--image", "localhost/berth-demo/mlp:1", "--model-repository", repos["mlp"],
            "--image", "localhost/berth-demo/churn:1", "--model-repository", repos["churn"],
            "--image", "localhost/berth-demo/gateway:1", "--model-repository", GATEWAY]


def test_compose_wires_the_gateway_to_the_services(tmp_path):
    args = compose_args(tmp_path)
    text = deploy(*args).stdout
    assert deploy(*args).stdout == text
    services = yaml.safe_load(text)["services"]
    assert list(services) == ["mlp", "churn", "gateway"]
    gw = services["gateway"]
    assert gw["environment"] == {"MLP_URL": "http://mlp:8000", "CHURN_URL": "http://churn:8000"}
    assert gw["depends_on"] == {"churn": {"condition": "service_healthy"}, "mlp": {"condition": "service_healthy"}}
    assert gw["ports"] == ["127.0.0.1:8000:8000"]  # only the service nobody calls is published
    for name, s in services.items():
        assert ("ports" in s) == (name == "gateway")
        assert s["read_only"] is True and s["cap_drop"] == ["ALL"]
        assert s["security_opt"] == ["no-new-privileges:true"]
        assert s["healthcheck"]["test"] == ["CMD", "/usr/bin/berth", "probe", "http://127.0.0.1:8000/v2/health/ready"]
        assert s["deploy"]["resources"]["limits"]["cpus"] == "1"
    path = GOLDEN / "deploy-compose.yaml"
    golden = text.replace(str(tmp_path), "/tmp/demo")
    if os.environ.get("BERTH_UPDATE_GOLDEN"):
        path.write_text(golden)
    assert golden == path.read_text(), f"differs from {path} (BERTH_UPDATE_GOLDEN=1 rewrites it)"
    out = tmp_path / "out"
    out.mkdir()
    deploy(*args, "--publish", "gateway=0.0.0.0:9000", "-o", out)
    assert yaml.safe_load((out / "compose.yaml").read_text())["services"]["gateway"]["ports"] == ["0.0.0.0:9000:8000"]


def compose_config_errors(text, tmp_path):
    """docker-compose 1.29's own check of a compose file against the compose schema (it needs no daemon):
    unknown keys and wrong types are errors."""
    path = tmp_path / "check.yaml"
    path.write_text(text)
    p = subprocess.run(["docker-compose", "-f", str(path), "config", "-q"], capture_output=True, text=True,
                       timeout=60)
    return p.returncode, p.stderr


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose missing (install-deps.sh)")
def test_compose_files_validate(tmp_path):
    args = compose_args(tmp_path)
    for extra in ([], ["--publish", "gateway=0.0.0.0:9000", "--publish", "mlp=8100", "--cpu", "1500m",
                       "--memory", "2Gi", "--shutdown-grace-secs", "30"]):
        rc, err = compose_config_errors(deploy(*args, *extra).stdout, tmp_path)
        assert rc == 0, err
    single = deploy("compose", "--image", "x/identity:1", "--model-repository", EXAMPLES).stdout
    assert compose_config_errors(single, tmp_path)[0] == 0
    # The check can fail: a misspelt key and a wrong type.
    text = deploy(*args).stdout
    rc, err = compose_config_errors(text.replace("read_only:", "read_onlyy:", 1), tmp_path)
    assert rc != 0 and "read_onlyy" in err
    rc, err = compose_config_errors(text.replace("retries: 3", "retries: three", 1), tmp_path)
    assert rc != 0


def test_compose_refusals(tmp_path):
    args = compose_args(tmp_path)
    literal = tmp_path / "literal"
    shutil.copytree(GATEWAY, literal)
    y = literal / "gateway" / "model.yaml"
    y.write_text(y.read_text().replace("${MLP_URL:-http://127.0.0.1:8100}", "http://127.0.0.1:8100"))
    for bad, message in [
        ([*args[:-1], literal], "service 'gateway', model 'gateway', step 'mlp': its remote.url is a literal"),
        (args[:-2], "expected one --model-repository per --image"),
        ([*args, "--publish", "nobody=8000"], "--publish: expected SERVICE=[ADDRESS:]PORT"),
        ([*args[:5], "--image", "other/mlp:2", "--model-repository", args[4]], "two images named 'mlp'"),
    ]:
        p = deploy(*bad, check=False)
        assert p.returncode != 0 and message in p.stderr, (bad, p.stderr)


def test_berth_probe(start_server):
    s = start_server(EXAMPLES, ["--model-control-mode", "explicit", "--load-model", "identity", "--grpc-port", "0"])
    probe = [str(BERTH_BIN), "probe"]
    assert subprocess.run([*probe, s.url + "/v2/health/ready"], timeout=30).returncode == 0
    p = subprocess.run([*probe, s.url + "/v2/models/nope/ready"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "HTTP 404" in p.stderr
    p = subprocess.run([*probe, f"http://127.0.0.1:{free_port()}/", "--timeout-ms", "500"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 1 and "connect failed" in p.stderr, p.stderr
    p = subprocess.run([*probe, "not a url"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2


def test_the_web_ui_is_off_in_deployed_containers_unless_asked():
    def serve_args(text):
        out = []
        for d in yaml.safe_load_all(text):
            if not d:
                continue
            if "services" in d:  # compose
                out += [s["command"] for s in d["services"].values()]
            for c in d.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []) + \
                    d.get("spec", {}).get("containers", []):
                out.append(c.get("args", []))
        return out

    for base in (["k8s", "--image", IMAGE, "--model-repository", EXAMPLES], KSERVE_CASES["image"],
                 ["compose", "--image", "x/identity:1", "--model-repository", EXAMPLES]):
        off = serve_args(deploy(*base).stdout)
        assert off and all(a[a.index("--ui") + 1] == "off" for a in off), (base[0], off)
        on = serve_args(deploy(*base, "--ui", "on").stdout)
        assert on and all("--ui" not in a for a in on), (base[0], on)
    assert deploy("k8s", "--image", IMAGE, "--model-repository", EXAMPLES, "--ui", "maybe", check=False).returncode != 0
