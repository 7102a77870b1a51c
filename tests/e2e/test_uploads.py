"""Raw bodies and multipart uploads (src/protocol/http/raw_upload.cc): a model or pipeline with exactly one
BYTES input takes the value itself as the body (text/*, image/*, application/octet-stream) or one element
per multipart/form-data part, and answers the same v2 JSON as the equivalent binary-tensor request. The
multipart bodies come from `requests` (urllib3's encoder) and from curl, not from our code."""
import json
import subprocess

import numpy as np
import pytest
import requests

from conftest import EXAMPLES, Server, error_of, identity_config, write_model
from test_image_step import CASES, MODELS, oracle, send
from test_pipeline import pipeline_yaml

pytestmark = pytest.mark.image_backend

TEXTS = ["Grüße, 東京 🚀\tand a tab", "", "x" * 100_000]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    repo = tmp_path_factory.mktemp("uploads") / "models"
    write_model(repo, "stretch", MODELS["stretch"][0])
    write_model(repo, "text", identity_config([("text", "BYTES", [1])], mbs=8))
    write_model(repo, "text_unbatched", identity_config([("text", "BYTES", [-1])]))
    write_model(repo, "numbers", identity_config([("x", "FP32", [4])], mbs=8))
    write_model(repo, "two_bytes", identity_config([("a", "BYTES", [1]), ("b", "BYTES", [1])], mbs=8))
    write_model(repo, "wide", identity_config([("text", "BYTES", [3])], mbs=8))
    write_model(repo, "vision", pipeline_yaml(
        [{"name": "decode", "model": "stretch", "inputs": {"image": "$in.image"}}],
        [{"name": "pixels", "from": "decode.pixels"}], inputs=(("image", "BYTES", [1]),)))
    s = Server(repo)
    yield s
    s.stop()


def json_outputs(r):
    assert r.status_code == 200, r.text[:500]
    assert r.headers["Content-Type"] == "application/json"
    return {o["name"]: o for o in r.json()["outputs"]}


@pytest.mark.parametrize("case", ["png_rgb_37x53", "jpeg_rgb_61x45", "webp_lossy_50x50"])
@pytest.mark.parametrize("model", ["stretch", "vision"])
def test_a_raw_image_body_equals_the_binary_request(server, case, model):
    data = CASES[case]()
    r = server.post(f"/v2/models/{model}/infer", data=data, headers={"Content-Type": "image/" + case.split("_")[0]})
    out = json_outputs(r)["pixels"]
    assert out["shape"] == [1, 3, 24, 32]
    got = np.asarray(out["data"], dtype=np.float32).reshape(out["shape"])[0]
    np.testing.assert_allclose(got, oracle(data, **MODELS["stretch"][1]), atol=1e-4, rtol=0)
    if model == "stretch":  # the same numbers as the v2 binary-tensor request
        header, raw = __import__("test_protocol").parse_infer_response(send(server, "stretch", [data]))
        np.testing.assert_array_equal(got, np.frombuffer(raw["pixels"], dtype="<f4").reshape(3, 24, 32))


def test_a_multipart_upload_is_a_batch_in_part_order(server):
    names = ["png_rgb_37x53", "jpeg_gray_20x70", "webp_lossless_rgba_13x27"]
    files = [("image", (f"{n}.bin", CASES[n](), "application/octet-stream")) for n in names]
    r = server.post("/v2/models/stretch/infer", files=files)
    out = json_outputs(r)["pixels"]
    assert out["shape"] == [3, 3, 24, 32]
    got = np.asarray(out["data"], dtype=np.float32).reshape(out["shape"])
    for i, n in enumerate(names):
        np.testing.assert_allclose(got[i], oracle(CASES[n](), **MODELS["stretch"][1]), atol=1e-4, rtol=0)


def test_curl_uploads_as_the_readme_shows(server, tmp_path):
    png = tmp_path / "shirt.png"
    png.write_bytes(CASES["png_rgb_37x53"]())
    raw = subprocess.run(["curl", "-sS", "--data-binary", f"@{png}", "-H", "Content-Type: image/png",
                          f"{server.url}/v2/models/stretch/infer"], capture_output=True, check=True, timeout=30)
    form = subprocess.run(["curl", "-sS", "-F", f"image=@{png}", "-F", f"image=@{png}",
                           f"{server.url}/v2/models/stretch/infer"], capture_output=True, check=True, timeout=30)
    one, two = json.loads(raw.stdout)["outputs"][0], json.loads(form.stdout)["outputs"][0]
    assert one["shape"] == [1, 3, 24, 32] and two["shape"] == [2, 3, 24, 32]
    assert two["data"] == one["data"] * 2


@pytest.mark.parametrize("text", TEXTS, ids=["unicode", "empty", "100k"])
def test_text_bodies_arrive_byte_for_byte(server, text):
    body = text.encode()
    r = server.post("/v2/models/text/infer", data=body, headers={"Content-Type": "text/plain; charset=utf-8"})
    out = json_outputs(r)["out_text"]
    assert out["shape"] == [1, 1] and out["data"] == [text]
    r = server.post("/v2/models/text_unbatched/infer", files=[("t", (None, t.encode())) for t in TEXTS])
    out = json_outputs(r)["out_text"]
    assert out["shape"] == [3] and out["data"] == TEXTS


@pytest.mark.parametrize("model,why", [
    ("numbers", "a text/plain body for model 'numbers': a raw or multipart body is the value of a model's one "
                "BYTES input, and this model has none; send v2 JSON"),
    ("two_bytes", "a text/plain body for model 'two_bytes': a raw or multipart body is the value of a model's "
                  "one BYTES input, and this model has 2; send v2 JSON"),
    ("wide", "a text/plain body for model 'wide': input 'text' takes 3 elements per row; a raw or multipart "
             "body gives one per row"),
])
def test_models_that_cannot_take_a_raw_body_refuse_it_clearly(server, model, why):
    r = server.post(f"/v2/models/{model}/infer", data=b"hello", headers={"Content-Type": "text/plain"})
    assert r.status_code == 400 and error_of(r) == why
    r = server.post("/v2/models/nope/infer", data=b"hello", headers={"Content-Type": "text/plain"})
    assert r.status_code == 404, r.text


@pytest.mark.parametrize("ctype,body,why", [
    ("multipart/form-data", b"--x\r\n\r\nv\r\n--x--", "the Content-Type has no valid boundary parameter"),
    ("multipart/form-data; boundary=abc", b"/etc/passwd contents", "no boundary found (is the boundary parameter "
                                                                    "right?)"),
    ("multipart/form-data; boundary=abc", b"--abc\r\nContent-Type: text/plain\r\n\r\ncut here",
     "part 0 has no closing boundary (cut short?)"),
    ("multipart/form-data; boundary=abc", b"--abc--", "no parts"),
])
def test_malformed_multipart_bodies_get_400(server, ctype, body, why):
    r = server.post("/v2/models/text/infer", data=body, headers={"Content-Type": ctype})
    assert r.status_code == 400, r.text
    assert error_of(r) == "multipart/form-data body: " + why
    assert server.alive()


def test_json_and_binary_requests_are_unchanged(server):
    r = server.infer("text", [{"name": "text", "datatype": "BYTES", "shape": [1, 1], "data": ["hi"]}])
    assert json_outputs(r)["out_text"]["data"] == ["hi"]
    # JSON sent as curl -d sends it (application/x-www-form-urlencoded) is still JSON.
    body = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]})
    r = requests.post(f"{server.url}/v2/models/numbers/infer", data=body,
                      headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=10)
    assert json_outputs(r)["out_x"]["data"] == [1, 2, 3, 4]
    # ... and as a browser's fetch() sends a string (text/plain), to a model without a BYTES input.
    r = requests.post(f"{server.url}/v2/models/numbers/infer", data=body,
                      headers={"Content-Type": "text/plain;charset=UTF-8"}, timeout=10)
    assert json_outputs(r)["out_x"]["data"] == [1, 2, 3, 4]


def test_a_raw_body_counts_against_the_body_limit(tmp_path, start_server):
    repo = tmp_path / "models"
    write_model(repo, "text", identity_config([("text", "BYTES", [1])], mbs=8))
    s = start_server(repo, ["--max-request-bytes", "1000"])
    r = s.post("/v2/models/text/infer", data=b"x" * 2000, headers={"Content-Type": "text/plain"})
    assert r.status_code == 413, r.text
    assert s.post("/v2/models/text/infer", data=b"x" * 900, headers={"Content-Type": "text/plain"}).status_code == 200


def test_the_vision_example_decodes_uploads_like_torchvision(tmp_path, start_server):
    """examples/vision/models/decode, as the README's Uploads commands call it."""
    vision = EXAMPLES.parent / "vision"
    link = tmp_path / "models"
    link.symlink_to(vision / "models")
    s = start_server(link)
    png, jpg = (vision / "shirt.png").read_bytes(), (vision / "shirt.jpg").read_bytes()
    r = subprocess.run(["curl", "-sS", "-F", f"image=@{vision / 'shirt.png'}", "-F", f"image=@{vision / 'shirt.jpg'}",
                        f"{s.url}/v2/models/decode/infer"], capture_output=True, check=True, timeout=30)
    out = json.loads(r.stdout)["outputs"][0]
    assert out["shape"] == [2, 3, 224, 224]
    got = np.asarray(out["data"], dtype=np.float32).reshape(out["shape"])
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    for i, data in enumerate([png, jpg]):
        want = oracle(data, h=224, w=224, resize_shorter=256, mean=mean, std=std)
        np.testing.assert_allclose(got[i], want, atol=1e-4, rtol=0)
