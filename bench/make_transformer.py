#!/usr/bin/python3
"""Writes the benchmark model repository bench/models/ for
bench/serve_transformer.sh: a TorchScript 2-layer transformer encoder.

    encoder/          model.yaml (no batching) + 1/model.pt
    encoder_batched/  model.yaml (dynamic_batching) + 1/model.pt (a byte-identical copy)

The model: nn.TransformerEncoder, 2 layers, d_model 128, 4 heads,
dim_feedforward 256, batch_first=True, eval mode, over a sequence of 32
tokens; mean over the sequence, then a Linear to 2 logits.
Input `x` FP32 [batch, 32, 128] -> output `logits` FP32 [batch, 2].

Run with Debian's Python (torch 1.13):  /usr/bin/python3 bench/make_transformer.py
Deterministic: torch.manual_seed(0) before any weights are made, and the
script re-runs itself with PYTHONHASHSEED=0 (the scripted code of nn.Linear /
nn.MultiheadAttention lists its constants in set order, which would otherwise
make the saved file differ from run to run). The file's debug info records
this script's source lines, so editing the script changes the bytes. `--check` rebuilds into a temp
dir and exits 1 if the result differs from what is in bench/models/.
"""
import filecmp
import os
import pathlib
import shutil
import sys
import tempfile

if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

import warnings  # noqa: E402

import torch  # noqa: E402  (after the re-exec above)

# torch 1.13's own nn.MultiheadAttention lists batch_first in __constants__
# and triggers this harmless scripting warning; batch_first is honoured.
warnings.filterwarnings("ignore", message="'batch_first' was found in ScriptModule constants")

HERE = pathlib.Path(__file__).resolve().parent
MODELS = HERE / "models"

D_MODEL = 128
HEADS = 4
FF = 256
LAYERS = 2
SEQ = 32
CLASSES = 2
MAX_BATCH = 32


class Encoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        layer = torch.nn.TransformerEncoderLayer(
            d_model=D_MODEL, nhead=HEADS, dim_feedforward=FF, dropout=0.1, batch_first=True)
        self.encoder = torch.nn.TransformerEncoder(layer, num_layers=LAYERS, enable_nested_tensor=False)
        self.head = torch.nn.Linear(D_MODEL, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(x)               # [batch, SEQ, D_MODEL]
        return self.head(h.mean(dim=1))   # [batch, CLASSES]


BASE_YAML = f"""\
backend: torchscript
max_batch_size: {MAX_BATCH}
inputs:
  - {{name: x, datatype: FP32, shape: [{SEQ}, {D_MODEL}]}}
outputs:
  - {{name: logits, datatype: FP32, shape: [{CLASSES}]}}
instances: 1
threads: 1
"""

BATCHED_YAML = BASE_YAML + """\
dynamic_batching:
  max_queue_delay_us: 2000
  preferred_batch_sizes: [8, 16, 32]
"""

# encoder_batched/1/model.pt is a copy of this file, not a symlink: berth refuses
# a model file that resolves outside its own model directory. git stores the
# two identical files as one blob.
SHARED = pathlib.Path("encoder") / "1" / "model.pt"


def write(models):
    torch.manual_seed(0)
    module = Encoder().eval()
    for p in module.parameters():
        p.requires_grad_(False)
    scripted = torch.jit.script(module)
    # Sanity: the scripted module matches eager on a batch.
    x = torch.randn(3, SEQ, D_MODEL)
    with torch.inference_mode():
        diff = (scripted(x) - module(x)).abs().max().item()
    assert diff < 1e-4, f"scripted and eager differ by {diff}"

    for name, yaml_text in (("encoder", BASE_YAML), ("encoder_batched", BATCHED_YAML)):
        d = models / name
        (d / "1").mkdir(parents=True, exist_ok=True)
        (d / "model.yaml").write_text(yaml_text)
    scripted.save(str(models / SHARED))
    copy = models / "encoder_batched" / "1" / "model.pt"
    if copy.is_symlink():
        copy.unlink()
    shutil.copyfile(models / SHARED, copy)
    return models / SHARED


def main():
    if sys.argv[1:] == ["--check"]:
        with tempfile.TemporaryDirectory() as tmp:
            write(pathlib.Path(tmp))
            same = all((MODELS / p).is_file() and
                       filecmp.cmp(pathlib.Path(tmp) / p, MODELS / p, shallow=False)
                       for p in (SHARED, "encoder_batched/1/model.pt",
                                 "encoder/model.yaml", "encoder_batched/model.yaml"))
        print("bench/models is", "reproducible" if same else "DIFFERENT from a fresh build")
        sys.exit(0 if same else 1)
    if sys.argv[1:]:
        sys.exit("usage: make_transformer.py [--check]")
    pt = write(MODELS)
    print(f"wrote {MODELS.relative_to(HERE.parent)}/encoder and encoder_batched "
          f"({pt.stat().st_size} bytes model.pt, torch {torch.__version__})")


if __name__ == "__main__":
    main()
