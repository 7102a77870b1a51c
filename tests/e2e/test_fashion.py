"""The vision use case, examples/vision/models/fashion: Fashion-MNIST t10k images sent as PNG files (made
here with PIL from Debian's dataset-fashion-mnist) to the pipeline, answered equal to PIL + torch on the same
weights (TorchScript and ONNX); the class name and its probability (the label step) and the top k through the
classification extension."""
import gzip
import io
import pathlib

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import EXAMPLES
from test_image_step import binary_body, bytes_to_wire

pytestmark = [pytest.mark.image_backend, pytest.mark.torch, pytest.mark.onnx]

VISION = EXAMPLES.parent / "vision" / "models"
DATA = pathlib.Path("/usr/share/datasets/fashion-mnist")
LABELS = (VISION / "fashion" / "labels.txt").read_text().splitlines()
N = 600  # of the 10,000 t10k images: enough to check values and accuracy in seconds


def t10k(n):
    with gzip.open(DATA / "t10k-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:n]
    with gzip.open(DATA / "t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)[:n]
    return images, labels


def output(answer, name):
    out = next(o for o in answer["outputs"] if o["name"] == name)
    return np.asarray(out["data"], object if out["datatype"] == "BYTES" else np.float32).reshape(out["shape"])


def png(image):
    b = io.BytesIO()
    Image.fromarray(image, "L").save(b, "PNG")
    return b.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from conftest import Server
    link = tmp_path_factory.mktemp("fashion") / "models"
    link.symlink_to(VISION)
    s = Server(link)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def data():
    if not DATA.exists():
        pytest.fail("dataset-fashion-mnist is not installed (scripts/install-deps.sh installs it)")
    images, labels = t10k(N)
    return images, labels, [png(i) for i in images]


def oracle_probs(images):
    """PIL decode of the PNG (= the uint8 pixels), / 255, through the TorchScript file in Python."""
    model = torch.jit.load(str(VISION / "fashion_cnn" / "1" / "model.pt"))
    with torch.no_grad():
        return model(torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)).numpy()


def test_pngs_through_the_pipeline_equal_pil_and_torch(server, data):
    images, labels, files = data
    want = oracle_probs(images)
    got, names, scores = [], [], []
    for i in range(0, N, 50):  # multipart batches of 50 files
        r = server.post("/v2/models/fashion/infer",
                        files=[("image", (f"{j}.png", files[j], "image/png")) for j in range(i, min(i + 50, N))])
        assert r.status_code == 200, r.text[:300]
        assert [o["name"] for o in r.json()["outputs"]] == ["label", "score", "probs"]
        got.append(output(r.json(), "probs"))
        names += output(r.json(), "label").ravel().tolist()
        scores.append(output(r.json(), "score").ravel())
    got = np.concatenate(got)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    # label and score: the oracle's most likely class (the first on a tie) and its probability.
    assert names == [LABELS[c] for c in want.argmax(1)]
    np.testing.assert_allclose(np.concatenate(scores), want.max(1), atol=1e-5, rtol=0)
    accuracy = float((got.argmax(1) == labels).mean())
    print(f"\n[fashion] t10k[:{N}] as PNG over HTTP: accuracy {accuracy:.4f}")
    assert accuracy > 0.8


@pytest.mark.parametrize("model", ["fashion_cnn", "fashion_onnx"])
def test_both_model_formats_give_the_same_probabilities(server, data, model):
    images, _, _ = data
    x = (images[:16].astype(np.float32) / 255.0)[:, None]
    r = server.infer(model, [{"name": "x", "datatype": "FP32", "shape": list(x.shape), "data": x.ravel().tolist()}])
    assert r.status_code == 200, r.text[:300]
    out = r.json()["outputs"][0]
    np.testing.assert_allclose(np.asarray(out["data"], np.float32).reshape(out["shape"]), oracle_probs(images[:16]),
                               atol=1e-5, rtol=0)


def test_one_upload_gives_the_top_classes_with_labels(server, data):
    images, labels, files = data
    want = oracle_probs(images[:1])[0]
    order = sorted(range(10), key=lambda c: (-want[c], c))[:3]
    r = server.post("/v2/models/fashion/infer", data=files[0], headers={"Content-Type": "image/png"})
    assert r.status_code == 200, r.text
    assert output(r.json(), "probs").shape == (1, 10)
    assert output(r.json(), "label").tolist() == [[LABELS[int(want.argmax())]]]
    # The top 3 with their labels: the same file as binary tensor data, the output asked for by classification.
    header = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1, 1],
                          "parameters": {"binary_data_size": len(bytes_to_wire([files[0]]))}}],
              "outputs": [{"name": "probs", "parameters": {"classification": 3}}]}
    body, headers = binary_body(header, [bytes_to_wire([files[0]])])
    r = server.post("/v2/models/fashion/infer", data=body, headers=headers)
    assert r.status_code == 200, r.text
    top = r.json()["outputs"][0]["data"]
    assert [t.split(":", 2)[1:] for t in top] == [[str(c), LABELS[c]] for c in order]
    assert [float(t.split(":")[0]) for t in top] == pytest.approx([float(want[c]) for c in order], abs=1e-5)
    assert int(top[0].split(":")[1]) == int(want.argmax())
