#!/usr/bin/python3
"""Writes examples/models/mlp_onnx/: the example MLP (examples/models/mlp)
exported to ONNX for the onnx backend, with the very same weights.

Run with Debian's Python (torch 1.13):  /usr/bin/python3 examples/make_onnx_model.py
Run examples/make_models.py first: the weights come from mlp/1/model.pt.
"""
import pathlib

import torch

HERE = pathlib.Path(__file__).resolve().parent
MODELS = HERE / "models"
OPSET = 11  # OpenCV DNN 4.6 (Debian 12) imports opsets 11 to 13 of these operators

MLP_ONNX_YAML = """\
backend: onnx
max_batch_size: 64
inputs:
  - {name: x, datatype: FP32, shape: [16]}
outputs:
  - {name: probs, datatype: FP32, shape: [4]}
instances: 1
threads: 1
"""


class MLP(torch.nn.Module):
    """The forward of make_models.MLP, over weights taken from a state dict."""

    def __init__(self, state):
        super().__init__()
        for name in ("w1", "b1", "w2", "b2"):
            setattr(self, name, torch.nn.Parameter(state[name].detach().clone()))

    def forward(self, x):
        h = torch.relu(torch.nn.functional.linear(x, self.w1, self.b1))
        return torch.softmax(torch.nn.functional.linear(h, self.w2, self.b2), dim=-1)


def main():
    scripted = torch.jit.load(str(MODELS / "mlp" / "1" / "model.pt"))
    model = MLP(scripted.state_dict()).eval()
    d = MODELS / "mlp_onnx"
    (d / "1").mkdir(parents=True, exist_ok=True)
    (d / "model.yaml").write_text(MLP_ONNX_YAML)
    torch.onnx.export(model, (torch.zeros(1, 16),), str(d / "1" / "model.onnx"),
                      input_names=["x"], output_names=["probs"],
                      dynamic_axes={"x": {0: "batch"}, "probs": {0: "batch"}},
                      opset_version=OPSET)
    # The export must compute what the TorchScript model computes.
    x = torch.randn(5, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model(x), scripted(x), rtol=0, atol=0)
    print("wrote", d.relative_to(HERE.parent))


if __name__ == "__main__":
    main()
