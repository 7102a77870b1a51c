#!/usr/bin/python3
"""Trains the `fashion` example: a small CNN on Fashion-MNIST's train split
(Debian's dataset-fashion-mnist, read offline from /usr/share/datasets), and
writes it as TorchScript and as ONNX into examples/vision/models, beside the
pipeline that takes image files:

  fashion_cnn/  TorchScript, x FP32 [1, 28, 28] (pixels / 255) -> probs FP32 [10]
  fashion_onnx/ the same weights as ONNX (OpenCV DNN)
  decode28/     the image backend: any PNG/JPEG/WebP -> gray [1, 28, 28] / 255
  fashion/      pipeline: image (BYTES) -> decode28 -> fashion_cnn -> probs, with labels

Run with Debian's Python (torch 1.13):  /usr/bin/python3 examples/vision/make_fashion_model.py
It prints the accuracy on the t10k split (10,000 images) in-process.
"""
import gzip
import pathlib
import shutil

import numpy as np
import torch

HERE = pathlib.Path(__file__).resolve().parent
MODELS = HERE / "models"
DATA = pathlib.Path("/usr/share/datasets/fashion-mnist")
LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
SEED, EPOCHS, BATCH = 0, 2, 128


def read_idx(name):
    with gzip.open(DATA / name) as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(split):
    return read_idx(f"{split}-images-idx3-ubyte.gz"), read_idx(f"{split}-labels-idx1-ubyte.gz")


class Cnn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 16, 3, padding=1)
        self.c2 = torch.nn.Conv2d(16, 32, 3, padding=1)
        self.f1 = torch.nn.Linear(32 * 7 * 7, 64)
        self.f2 = torch.nn.Linear(64, 10)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.c1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.c2(x)), 2)
        x = torch.relu(self.f1(torch.flatten(x, 1)))
        return torch.softmax(self.f2(x), dim=1)


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def main():
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    images, labels = load("train")
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    model = Cnn()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(SEED)
    for epoch in range(EPOCHS):
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), BATCH):
            idx = order[i:i + BATCH]
            opt.zero_grad()
            loss = torch.nn.functional.nll_loss(torch.log(model(x[idx]) + 1e-9), y[idx])
            loss.backward()
            opt.step()
        print(f"epoch {epoch + 1}: last batch loss {loss.item():.4f}")
    model.eval()
    test_images, test_labels = load("t10k")
    with torch.no_grad():
        pred = model(torch.from_numpy(test_images.astype(np.float32) / 255.0).unsqueeze(1)).argmax(1).numpy()
    print(f"t10k accuracy (in-process): {(pred == test_labels).mean():.4f}")

    example = torch.zeros(1, 1, 28, 28)
    labels_txt = "\n".join(LABELS) + "\n"
    cnn = MODELS / "fashion_cnn"
    (cnn / "1").mkdir(parents=True, exist_ok=True)
    torch.jit.trace(model, example).save(str(cnn / "1" / "model.pt"))
    io = ("max_batch_size: 64\ninputs:\n  - {name: x, datatype: FP32, shape: [1, 28, 28]}\n"
          "outputs:\n  - {name: probs, datatype: FP32, shape: [10], labels: labels.txt}\n")
    write(cnn / "model.yaml", "backend: torchscript\n" + io)
    write(cnn / "labels.txt", labels_txt)
    onnx = MODELS / "fashion_onnx"
    (onnx / "1").mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, example, str(onnx / "1" / "model.onnx"), input_names=["x"], output_names=["probs"],
                      dynamic_axes={"x": {0: "n"}, "probs": {0: "n"}}, opset_version=11)
    write(onnx / "model.yaml", "backend: onnx\n" + io)
    shutil.copy(cnn / "labels.txt", onnx / "labels.txt")
    write(MODELS / "decode28" / "model.yaml",
          "# Any PNG/JPEG/WebP -> what fashion_cnn takes: gray, 28 x 28, pixels / 255.\n"
          "backend: image\nmax_batch_size: 64\ninputs:\n  - {name: image, datatype: BYTES, shape: [1]}\n"
          "outputs:\n  - {name: pixels, datatype: FP32, shape: [1, 28, 28]}\n")
    (MODELS / "decode28" / "1").mkdir(exist_ok=True)
    (MODELS / "decode28" / "1" / ".gitkeep").touch()
    label = MODELS / "fashion_label"
    write(label / "model.yaml",
          "# Class probabilities -> the most likely class's name and its probability.\n"
          "backend: label\nmax_batch_size: 64\ninputs:\n  - {name: probs, datatype: FP32, shape: [10]}\n"
          "outputs:\n  - {name: label, datatype: BYTES, shape: [1]}\n  - {name: score, datatype: FP32, shape: [1]}\n")
    shutil.copy(cnn / "labels.txt", label / "labels.txt")
    (label / "1").mkdir(exist_ok=True)
    (label / "1" / ".gitkeep").touch()
    write(MODELS / "fashion" / "model.yaml",
          "# An image file in; the Fashion-MNIST class name, its probability, and all ten probabilities\n"
          "# out. Ask for the top k with outputs: [{name: probs, parameters: {classification: k}}]\n"
          "# -> \"score:index:label\".\n"
          "kind: pipeline\nmax_batch_size: 64\ninputs:\n  - {name: image, datatype: BYTES, shape: [1]}\n"
          "outputs:\n  - {name: label, from: label.label}\n  - {name: score, from: label.score}\n"
          "  - {name: probs, from: cnn.probs, labels: labels.txt}\nsteps:\n"
          "  - {name: decode, model: decode28, inputs: {image: $in.image}}\n"
          "  - {name: cnn, model: fashion_cnn, inputs: {x: decode.pixels}}\n"
          "  - {name: label, model: fashion_label, inputs: {probs: cnn.probs}}\n")
    (MODELS / "fashion" / "1").mkdir(exist_ok=True)
    (MODELS / "fashion" / "1" / ".gitkeep").touch()
    shutil.copy(cnn / "labels.txt", MODELS / "fashion" / "labels.txt")


if __name__ == "__main__":
    main()
