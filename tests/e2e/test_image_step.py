"""The image backend (backends/image): encoded PNG, JPEG and WebP files in, FP32 tensors out, against an
oracle outside berth: PIL decodes (ImageOps.exif_transpose for the EXIF policy), torch resizes
(torch.nn.functional.interpolate, bilinear, align_corners=False, antialias=False), numpy normalises.
Hostile files get 400 naming the input and element, and the server keeps serving."""
import io
import json
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from conftest import error_of, identity_config, write_model
from test_model_control import wait_for
from test_pipeline import pipeline_yaml
from test_protocol import binary_body, bytes_to_wire, parse_infer_response

pytestmark = pytest.mark.image_backend

# Values are pixel * scale in 0..1 before mean/std: float32 rounding of resize and normalisation differs
# between OpenCV and torch by ~1e-6; 1e-4 leaves room for std < 1.
TOL = 1e-4


def image_config(shape, mbs=8, **params):
    p = "".join(f"\n  {k}: {json.dumps(v)}" for k, v in params.items())
    return (f"backend: image\nmax_batch_size: {mbs}\n"
            "inputs:\n  - {name: image, datatype: BYTES, shape: [1]}\n"
            f"outputs:\n  - {{name: pixels, datatype: FP32, shape: {shape}}}\n"
            + (f"parameters:{p}\n" if p else ""))


def picture(w, h, mode="RGB", seed=0):
    """A smooth gradient with noise on it (something resizing can get wrong), in `mode`."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / max(w - 1, 1), y * 255 / max(h - 1, 1), (x + y) * 127 / max(w + h - 2, 1)], -1)
    rgb = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
    im = Image.fromarray(rgb, "RGB")
    if mode == "RGBA":
        im = im.convert("RGBA")
        im.putalpha(Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8), "L"))
    elif mode != "RGB":
        im = im.convert(mode)
    return im


def encode(im, fmt, **kw):
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()


def oracle(data, h, w, channels=3, layout="NCHW", resize_shorter=0, scale=1 / 255, mean=0.0, std=1.0, exif=True):
    im = Image.open(io.BytesIO(data))
    if exif:
        im = ImageOps.exif_transpose(im)
    a = torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32).copy()).permute(2, 0, 1)[None]
    if channels == 1:
        a = 0.299 * a[:, 0:1] + 0.587 * a[:, 1:2] + 0.114 * a[:, 2:3]
    size, top, left = (h, w), 0, 0
    if resize_shorter:
        ih, iw = a.shape[2:]
        size = (int(resize_shorter * ih / iw), resize_shorter) if iw <= ih else (resize_shorter,
                                                                                   int(resize_shorter * iw / ih))
        top, left = int(round((size[0] - h) / 2.0)), int(round((size[1] - w) / 2.0))
    r = torch.nn.functional.interpolate(a, size=size, mode="bilinear", align_corners=False, antialias=False)
    r = r[:, :, top:top + h, left:left + w][0].numpy()
    m = np.asarray(mean, dtype=np.float32).reshape(-1, 1, 1)
    s = np.asarray(std, dtype=np.float32).reshape(-1, 1, 1)
    r = (r * scale - m) / s
    return r.transpose(1, 2, 0) if layout == "NHWC" else r


def send(server, model, files):
    header = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [len(files), 1],
                          "parameters": {"binary_data_size": len(bytes_to_wire(files))}}],
              "outputs": [{"name": "pixels", "parameters": {"binary_data": True}}]}
    body, headers = binary_body(header, [bytes_to_wire(files)])
    return server.post(f"/v2/models/{model}/infer", data=body, headers=headers)


def pixels(resp):
    header, raw = parse_infer_response(resp)
    out = header["outputs"][0]
    return np.frombuffer(raw["pixels"], dtype="<f4").reshape(out["shape"])


MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
MODELS = {
    "stretch": (image_config("[3, 24, 32]", mean=MEAN, std=STD), dict(h=24, w=32, mean=MEAN, std=STD)),
    "crop_nhwc": (image_config("[20, 16, 3]", layout="NHWC", resize_shorter=22),
                  dict(h=20, w=16, layout="NHWC", resize_shorter=22)),
    "gray": (image_config("[1, 28, 28]", scale=1.0, mean=127.5, std=127.5),
             dict(h=28, w=28, channels=1, scale=1.0, mean=127.5, std=127.5)),
    "no_exif": (image_config("[3, 9, 7]", exif="ignore"), dict(h=9, w=7, exif=False)),
    "exif": (image_config("[3, 9, 7]"), dict(h=9, w=7)),
    "small_limit": (image_config("[3, 8, 8]", max_pixels=1000), dict(h=8, w=8)),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from conftest import Server
    repo = tmp_path_factory.mktemp("image") / "models"
    for name, (cfg, _) in MODELS.items():
        write_model(repo, name, cfg)
    # A pipeline: the image step feeds a model (the identity backend stands in for a CNN).
    write_model(repo, "cnn", identity_config([("x", "FP32", [3, 24, 32])], mbs=8))
    write_model(repo, "vision", pipeline_yaml(
        [{"name": "decode", "model": "stretch", "inputs": {"image": "$in.image"}},
         {"name": "cnn", "model": "cnn", "inputs": {"x": "decode.pixels"}}],
        [{"name": "y", "from": "cnn.out_x"}], inputs=(("image", "BYTES", [1]),)))
    s = Server(repo)
    yield s
    s.stop()


CASES = {
    "png_rgb_37x53": lambda: encode(picture(37, 53), "PNG"),
    "png_rgba_40x30": lambda: encode(picture(40, 30, "RGBA", 1), "PNG"),
    "png_gray_31x17": lambda: encode(picture(31, 17, "L", 2), "PNG"),
    "png_palette_33x33": lambda: encode(picture(33, 33, "P", 3), "PNG"),
    "jpeg_rgb_61x45": lambda: encode(picture(61, 45, seed=4), "JPEG", quality=90),
    "jpeg_gray_20x70": lambda: encode(picture(20, 70, "L", 5), "JPEG", quality=75),
    "webp_lossy_50x50": lambda: encode(picture(50, 50, seed=6), "WEBP", quality=80),
    "webp_lossless_rgba_13x27": lambda: encode(picture(13, 27, "RGBA", 7), "WEBP", lossless=True),
    "png_1x1": lambda: encode(picture(1, 1, seed=8), "PNG"),
    "png_upscale_5x3": lambda: encode(picture(5, 3, seed=9), "PNG"),
}


@pytest.mark.parametrize("model", ["stretch", "crop_nhwc", "gray"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_decoded_tensors_equal_pil_and_torch(server, model, case):
    if model == "crop_nhwc" and case in ("png_1x1", "png_upscale_5x3"):
        pass  # upscaled by resize_shorter, then cropped: still defined
    data = CASES[case]()
    r = send(server, model, [data])
    got = pixels(r)
    want = oracle(data, **MODELS[model][1])
    assert got.shape == (1, *want.shape)
    np.testing.assert_allclose(got[0], want, atol=TOL, rtol=0)


def test_a_batch_keeps_its_images_apart_and_in_order(server):
    files = [CASES[c]() for c in sorted(CASES)][:8]
    got = pixels(send(server, "stretch", files))
    assert got.shape == (len(files), 3, 24, 32)
    for i, data in enumerate(files):
        np.testing.assert_allclose(got[i], oracle(data, **MODELS["stretch"][1]), atol=TOL, rtol=0)


def exif_jpeg(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(picture(7, 9, seed=10).transpose(Image.Transpose.ROTATE_90), "JPEG", quality=95, exif=exif)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_applied_unless_ignored(server, orientation):
    data = exif_jpeg(orientation)  # stored 9 wide, 7 high
    upright = oracle(data, h=9, w=7)
    assert Image.open(io.BytesIO(data)).size == (9, 7)
    np.testing.assert_allclose(pixels(send(server, "exif", [data]))[0], upright, atol=TOL, rtol=0)
    stored = oracle(data, h=9, w=7, exif=False)
    np.testing.assert_allclose(pixels(send(server, "no_exif", [data]))[0], stored, atol=TOL, rtol=0)
    assert not np.allclose(upright, stored, atol=0.05)


def png_header_only(w, h):
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
            + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)))


def hostile():
    png = encode(picture(64, 64, seed=11), "PNG")
    jpeg = encode(picture(64, 64, seed=12), "JPEG", quality=90)
    webp = encode(picture(64, 64, seed=13), "WEBP", quality=80)
    bmp = encode(picture(8, 8), "BMP")
    return {
        "empty": (b"", "empty (0 bytes), not an image"),
        "text": (b"<html><body>/etc/shadow</body></html>", "not a PNG, JPEG or WebP image"),
        "bmp": (bmp, "not a PNG, JPEG or WebP image"),
        "png_truncated": (png[:len(png) // 2], "a PNG image that cannot be decoded (corrupt or truncated)"),
        "png_header_only": (png_header_only(8, 8), "a PNG image that cannot be decoded (corrupt or truncated)"),
        "png_30000x30000": (png_header_only(30000, 30000),
                            "a PNG image of 30000x30000 pixels, more than parameters.max_pixels (16777216)"),
        "png_zero_width": (png_header_only(0, 5), "a PNG image of 0x5 pixels"),
        "png_side_2_32": (png_header_only(2**32 - 1, 2**32 - 1), "a PNG image of 4294967295x4294967295 pixels"),
        "jpeg_truncated": (jpeg[:len(jpeg) * 2 // 3], "a JPEG image cut short (no end-of-image marker)"),
        "jpeg_bad_magic": (b"\xff\xd8\xfe" + jpeg[3:], "not a PNG, JPEG or WebP image"),
        "webp_truncated": (webp[:len(webp) - 10], "a WebP image cut short (shorter than its RIFF size)"),
        "webp_unknown_chunk": (webp[:12] + b"ABCD" + webp[16:], "a WebP image with an unknown first chunk"),
        "webp_bad_vp8": (webp[:23] + b"\0\0\0" + webp[26:], "a WebP image with a malformed VP8 header"),
    }


@pytest.mark.parametrize("case", sorted(hostile()))
def test_hostile_files_get_400_naming_the_input_and_element(server, case):
    data, why = hostile()[case]
    good = CASES["png_rgb_37x53"]()
    r = send(server, "stretch", [good, data])
    assert r.status_code == 400, r.text
    assert error_of(r) == f"model 'stretch' version 1: input 'image' element 1: {why}"
    r = send(server, "stretch", [good])
    assert r.status_code == 200 and server.alive()


def test_max_pixels_is_a_parameter(server):
    r = send(server, "small_limit", [encode(picture(40, 30), "PNG")])
    assert r.status_code == 400
    assert error_of(r) == ("model 'small_limit' version 1: input 'image' element 0: a PNG image of 40x30 pixels, more than "
                           "parameters.max_pixels (1000)")
    assert send(server, "small_limit", [encode(picture(40, 25), "PNG")]).status_code == 200


def test_a_thin_image_cannot_blow_up_when_resized(server):
    # 60,000 source pixels, but 22 x 1,320,000 once the shorter side is resized to 22: refused, not allocated.
    thin = encode(Image.new("L", (1, 60000), 128), "PNG")
    r = send(server, "crop_nhwc", [thin])
    assert r.status_code == 400, r.text
    assert error_of(r) == ("model 'crop_nhwc' version 1: input 'image' element 0: a PNG image of 1x60000 pixels: "
                           "resized to a shorter side of 22 it would be 22x1320000, more than parameters.max_pixels "
                           "(16777216)")
    assert server.alive()


def test_a_pipeline_decodes_then_runs_the_model(server):
    files = [CASES["jpeg_rgb_61x45"](), CASES["webp_lossy_50x50"]()]
    header = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [2, 1],
                          "parameters": {"binary_data_size": len(bytes_to_wire(files))}}],
              "outputs": [{"name": "y", "parameters": {"binary_data": True}}]}
    body, headers = binary_body(header, [bytes_to_wire(files)])
    r = server.post("/v2/models/vision/infer", data=body, headers=headers)
    h, raw = parse_infer_response(r)
    got = np.frombuffer(raw["y"], dtype="<f4").reshape(h["outputs"][0]["shape"])
    for i, data in enumerate(files):
        np.testing.assert_allclose(got[i], oracle(data, **MODELS["stretch"][1]), atol=TOL, rtol=0)
    # The hostile-file error keeps its class through the pipeline and names the step.
    header["inputs"][0]["parameters"]["binary_data_size"] = len(bytes_to_wire([b"junk"]))
    header["inputs"][0]["shape"] = [1, 1]
    body, headers = binary_body(header, [bytes_to_wire([b"junk"])])
    r = server.post("/v2/models/vision/infer", data=body, headers=headers)
    assert r.status_code == 400, r.text
    assert "step 'decode'" in error_of(r) and "input 'image' element 0: not a PNG, JPEG or WebP image" in error_of(r)


@pytest.mark.parametrize("shape,params,why", [
    ("[3, 8, 8]", {"layout": "CHW"}, "parameters.layout: expected NCHW or NHWC"),
    ("[2, 8, 8]", {}, "output 'pixels': the first dimension (layout NCHW) is the channels: 1 or 3, not 2"),
    ("[8, 8, 4]", {"layout": "NHWC"}, "output 'pixels': the last dimension (layout NHWC) is the channels: 1 or 3, not 4"),
    ("[3, 8, 8]", {"mean": [0.5, 0.5]}, "parameters.mean: expected 1 or 3 values (one per channel), got 2"),
    ("[3, 8, 8]", {"std": 0}, "parameters.std: must not be 0"),
    ("[3, 8, 8]", {"scale": "x"}, "parameters.scale: expected a number"),
    ("[3, 8, 16]", {"resize_shorter": 10}, "parameters.resize_shorter: must be at least the output's height and "
                                           "width (16) to crop from"),
    ("[3, 8, 8]", {"exif": "yes"}, "parameters.exif: expected apply or ignore"),
    ("[3, 8, 8]", {"colour": "on"}, "parameters.colour: unknown parameter for the image backend"),
    ("[3, -1, 8]", {}, "height and width must be 1..65536"),
])
def test_bad_configurations_fail_the_load_with_a_reason(tmp_path, start_server, shape, params, why):
    repo = tmp_path / "models"
    write_model(repo, "bad", image_config(shape, **params))
    write_model(repo, "ok", image_config("[3, 8, 8]"))
    s = start_server(repo, wait_ready=False)
    index = wait_for(lambda: settled(s, "bad", "ok"), timeout=20, what="both models loaded or failed")
    assert index["bad"]["state"] == "UNAVAILABLE", index
    assert why in index["bad"]["reason"], index["bad"]["reason"]


def settled(server, bad, ok):
    """The repository index by name once `bad` has failed and `ok` is ready, else None."""
    index = {m["name"]: m for m in server.post("/v2/repository/index").json()}
    done = index.get(bad, {}).get("state") == "UNAVAILABLE" and index.get(ok, {}).get("state") == "READY"
    return index if done else None
