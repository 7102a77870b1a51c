"""ONNX backend (OpenCV DNN) end to end: models exported from Python torch
with torch.onnx.export, served by berth and compared with torch running the
same module; models that must fail to load (an operator OpenCV DNN 4.6
lacks, random bytes, names that do not match model.yaml) while the others
keep serving; and the example examples/models/mlp_onnx.
"""
import concurrent.futures
import io
import pathlib
import time

import numpy as np
import pytest

from conftest import BERTH_BIN, EXAMPLES, error_of, write_model

pytestmark = [pytest.mark.onnx, pytest.mark.torch]
torch = pytest.importorskip("torch")

BACKEND_DIR = BERTH_BIN.resolve().parent.parent / "lib" / "berth" / "backends"


# ---------------------------------------------------------------- models

class MLP(torch.nn.Module):
    """16 -> 32 (ReLU) -> 4, softmax."""

    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(16, 32)
        self.fc2 = torch.nn.Linear(32, 4)

    def forward(self, x):
        return torch.softmax(self.fc2(torch.relu(self.fc1(x))), dim=-1)


class ConvNet(torch.nn.Module):
    """[1, 8, 8] images -> conv 3x3 (4 channels), ReLU, 2x2 max pool -> 3 logits."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        h = torch.nn.functional.max_pool2d(torch.relu(self.conv(x)), 2)
        return self.fc(torch.flatten(h, 1))


class TwoInputs(torch.nn.Module):
    def forward(self, a, b):
        return a * b + a, a - b


class Determinant(torch.nn.Module):
    """Det has no OpenCV DNN 4.6 layer."""

    def forward(self, x):
        return torch.linalg.det(x.reshape(-1, 4, 4)).reshape(-1, 1)


class ViewFlatten(ConvNet):
    """Flattens with x.view(x.size(0), -1): OpenCV 4.6 folds that Reshape to the
    exported batch size, even when the batch dimension is exported as dynamic."""

    def forward(self, x):
        h = torch.nn.functional.max_pool2d(torch.relu(self.conv(x)), 2)
        return self.fc(h.view(x.size(0), -1))


def seeded(cls):
    torch.manual_seed(0)
    return cls().eval()


def export(module, example_args, inputs, outputs, opset=11, dynamic_batch=True):
    buf = io.BytesIO()
    axes = {n: {0: "batch"} for n in inputs + outputs} if dynamic_batch else None
    torch.onnx.export(module, example_args, buf, input_names=inputs, output_names=outputs,
                      dynamic_axes=axes, opset_version=opset)
    return buf.getvalue()


def reference(module, *arrays):
    with torch.no_grad():
        out = module(*[torch.from_numpy(a) for a in arrays])
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


MLP_YAML = """\
backend: onnx
max_batch_size: 16
inputs:
  - {name: x, datatype: FP32, shape: [16]}
outputs:
  - {name: probs, datatype: FP32, shape: [4]}
"""

CONV_YAML = """\
backend: onnx
max_batch_size: 8
inputs:
  - {name: image, datatype: FP32, shape: [1, 8, 8]}
outputs:
  - {name: logits, datatype: FP32, shape: [3]}
"""

# Declared in the opposite order to the graph's: inputs go in by name.
TWO_YAML = """\
backend: onnx
max_batch_size: 8
inputs:
  - {name: b, datatype: FP32, shape: [5]}
  - {name: a, datatype: FP32, shape: [5]}
outputs:
  - {name: diff, datatype: FP32, shape: [5]}
  - {name: sum, datatype: FP32, shape: [5]}
"""


def mlp_onnx(opset=11):
    return export(seeded(MLP), (torch.zeros(1, 16),), ["x"], ["probs"], opset)


def add_mlp(repo, name="mlp", opset=11, yaml=MLP_YAML):
    write_model(repo, name, yaml, files={"1/model.onnx": mlp_onnx(opset)})


# ---------------------------------------------------------------- helpers

def index_of(server):
    r = server.post("/v2/repository/index")
    assert r.status_code == 200, r.text
    return {e["name"]: e for e in r.json()}


def wait_loaded(server, names, timeout=60):
    """Waits until every model in names is listed and none is still loading."""
    deadline = time.time() + timeout
    while True:
        idx = index_of(server)
        if (set(names) <= set(idx) and all(e["state"] in ("READY", "UNAVAILABLE") for e in idx.values())) \
                or time.time() > deadline:
            return idx
        time.sleep(0.1)


def infer(server, model, named_arrays):
    r = server.infer(model, [{"name": n, "datatype": "FP32", "shape": list(a.shape),
                              "data": a.ravel().tolist()} for n, a in named_arrays])
    assert r.status_code == 200, r.text
    return {o["name"]: np.array(o["data"], dtype=np.float32).reshape(o["shape"]) for o in r.json()["outputs"]}


def rand(*shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def assert_unavailable(idx, name, *fragments):
    e = idx[name]
    assert e["state"] == "UNAVAILABLE", e
    for f in fragments:
        assert f in e["reason"], (f, e["reason"])
    return e["reason"]


# ---------------------------------------------------------------- serving

@pytest.mark.parametrize("opset", [11, 12, 13])
@pytest.mark.parametrize("batch", [1, 7])
def test_mlp_matches_torch(tmp_path, start_server, opset, batch):
    repo = tmp_path / "models"
    add_mlp(repo, opset=opset)
    server = start_server(repo)
    x = rand(batch, 16, seed=batch)
    got = infer(server, "mlp", [("x", x)])["probs"]
    want, = reference(seeded(MLP), x)
    assert got.shape == (batch, 4)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    np.testing.assert_allclose(got.sum(axis=1), np.ones(batch), atol=1e-5)


@pytest.mark.parametrize("batch", [1, 7])
def test_conv_net_matches_torch(tmp_path, start_server, batch):
    repo = tmp_path / "models"
    net = seeded(ConvNet)
    write_model(repo, "conv", CONV_YAML,
                files={"1/model.onnx": export(net, (torch.zeros(1, 1, 8, 8),), ["image"], ["logits"])})
    server = start_server(repo)
    images = rand(batch, 1, 8, 8, seed=10 + batch)
    got = infer(server, "conv", [("image", images)])["logits"]
    want, = reference(net, images)
    assert got.shape == (batch, 3)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


@pytest.mark.parametrize("batch", [1, 7])
def test_two_inputs_fed_by_name(tmp_path, start_server, batch):
    repo = tmp_path / "models"
    net = TwoInputs().eval()
    write_model(repo, "two", TWO_YAML, files={"1/model.onnx": export(
        net, (torch.zeros(1, 5), torch.zeros(1, 5)), ["a", "b"], ["sum", "diff"])})
    server = start_server(repo)
    a, b = rand(batch, 5, seed=2), rand(batch, 5, seed=3)
    got = infer(server, "two", [("a", a), ("b", b)])
    want_sum, want_diff = reference(net, a, b)
    assert [o["name"] for o in server.get("/v2/models/two").json()["outputs"]] == ["diff", "sum"]
    np.testing.assert_allclose(got["sum"], want_sum, rtol=0, atol=1e-5)
    np.testing.assert_allclose(got["diff"], want_diff, rtol=0, atol=1e-5)


def test_instances_each_own_a_net(tmp_path, start_server):
    repo = tmp_path / "models"
    add_mlp(repo, yaml=MLP_YAML + "instances: 3\n")
    server = start_server(repo)
    xs = [rand(1 + i % 5, 16, seed=100 + i) for i in range(40)]

    def one(x):
        return infer(server, "mlp", [("x", x)])["probs"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, xs))
    for x, got in zip(xs, results):
        np.testing.assert_allclose(got, reference(seeded(MLP), x)[0], rtol=0, atol=1e-5)


def test_wrong_input_shape_is_400_and_server_lives(tmp_path, start_server):
    repo = tmp_path / "models"
    add_mlp(repo)
    server = start_server(repo)
    r = server.infer("mlp", [{"name": "x", "datatype": "FP32", "shape": [1, 15], "data": [0.0] * 15}])
    assert r.status_code == 400, r.text
    assert "x" in error_of(r)
    assert server.alive()


# ---------------------------------------------------------------- models that fail to load

def test_failed_loads_leave_other_models_serving(tmp_path, start_server):
    repo = tmp_path / "models"
    add_mlp(repo, "good")
    det = export(Determinant().eval(), (torch.zeros(1, 16),), ["x"], ["y"], opset=13)
    write_model(repo, "det", MLP_YAML.replace("probs", "y").replace("[4]", "[1]"), files={"1/model.onnx": det})
    write_model(repo, "garbage", MLP_YAML,
                files={"1/model.onnx": np.random.default_rng(0).bytes(4096)})
    add_mlp(repo, "bad_input", yaml=MLP_YAML.replace("name: x", "name: features"))
    add_mlp(repo, "bad_output", yaml=MLP_YAML.replace("name: probs", "name: scores"))
    add_mlp(repo, "fp64", yaml=MLP_YAML.replace("FP32, shape: [16]", "FP64, shape: [16]"))
    add_mlp(repo, "wrong_shape", yaml=MLP_YAML.replace("[4]", "[5]"))
    two = export(TwoInputs().eval(), (torch.zeros(1, 5), torch.zeros(1, 5)), ["a", "b"], ["sum", "diff"])
    write_model(repo, "undeclared_input", TWO_YAML.replace("  - {name: b, datatype: FP32, shape: [5]}\n", ""),
                files={"1/model.onnx": two})

    write_model(repo, "undeclared_b", TWO_YAML.replace("  - {name: a, datatype: FP32, shape: [5]}\n", ""),
                files={"1/model.onnx": two})
    view = export(seeded(ViewFlatten), (torch.zeros(1, 1, 8, 8),), ["image"], ["logits"])
    write_model(repo, "fixed_batch", CONV_YAML, files={"1/model.onnx": view})
    write_model(repo, "fixed_batch_of_one", CONV_YAML.replace("max_batch_size: 8", "max_batch_size: 1"),
                files={"1/model.onnx": view})

    server = start_server(repo, wait_ready=False)
    names = ["good", "det", "garbage", "bad_input", "bad_output", "fp64", "wrong_shape", "undeclared_input",
             "undeclared_b", "fixed_batch"]
    idx = wait_loaded(server, names + ["fixed_batch_of_one"])

    assert idx["good"]["state"] == "READY", idx["good"]
    assert_unavailable(idx, "det", "model.onnx", "ONNX operator 'Det'", "not supported")
    assert_unavailable(idx, "garbage", "model.onnx", "not a valid ONNX model")
    assert_unavailable(idx, "bad_input", "model.yaml", "'features'", "not an input of the ONNX graph")
    assert_unavailable(idx, "bad_output", "model.yaml", "'scores'", "not an output of the ONNX graph", "'probs'")
    assert_unavailable(idx, "fp64", "model.yaml", "FP64", "onnx backend")
    assert_unavailable(idx, "wrong_shape", "probs", "[2,4]", "[2,5]")
    assert_unavailable(idx, "undeclared_input", "model.yaml", "declare every input of the ONNX graph")
    assert_unavailable(idx, "undeclared_b", "model.yaml", "'b' is its input 2", "declare every input of the ONNX graph")
    assert_unavailable(idx, "fixed_batch", "runs on 1 row but not on 2", "torch.flatten", "max_batch_size: 1")
    assert idx["fixed_batch_of_one"]["state"] == "READY", idx["fixed_batch_of_one"]

    for name in names[1:]:
        assert server.get(f"/v2/models/{name}/ready").status_code == 503
        r = server.infer(name, [{"name": "x", "datatype": "FP32", "shape": [1, 16], "data": [0.0] * 16}])
        assert r.status_code == 503, (name, r.text)
    x = rand(3, 16)
    np.testing.assert_allclose(infer(server, "good", [("x", x)])["probs"],
                               reference(seeded(MLP), x)[0], rtol=0, atol=1e-5)
    assert server.alive()


# ---------------------------------------------------------------- the example

def backend_of(model_dir):
    for line in (model_dir / "model.yaml").read_text().splitlines():
        if line.startswith("backend:"):
            return line.split(":", 1)[1].split("#")[0].strip()
    return None


def test_example_mlp_onnx_matches_torchscript_mlp(examples_server):
    """examples/models/mlp_onnx is examples/models/mlp exported to ONNX."""
    idx = wait_loaded(examples_server, ["mlp_onnx"])
    for d in sorted(p for p in EXAMPLES.iterdir() if (p / "model.yaml").is_file()):
        # Every example whose backend this build has must serve.
        if (BACKEND_DIR / f"libberth_backend_{backend_of(d)}.so").exists():
            assert idx[d.name]["state"] == "READY", idx[d.name]
    scripted = torch.jit.load(str(EXAMPLES / "mlp" / "1" / "model.pt"))
    for batch in (1, 7):
        x = rand(batch, 16, seed=20 + batch)
        got = infer(examples_server, "mlp_onnx", [("x", x)])["probs"]
        np.testing.assert_allclose(got, reference(scripted, x)[0], rtol=0, atol=1e-5)
