#!/usr/bin/python3
"""Writes the example model repository examples/models/.

Run with Debian's Python (torch 1.13):  /usr/bin/python3 examples/make_models.py
Deterministic: torch.manual_seed(0) before any weights are made.
"""
import pathlib

import torch

HERE = pathlib.Path(__file__).resolve().parent
MODELS = HERE / "models"


class MLP(torch.nn.Module):
    """16 -> 64 (ReLU) -> 4, softmax over the last dimension.

    Plain parameters rather than nn.Linear submodules: the scripted code of
    nn.Linear lists its constants in hash order, which would make the saved
    file differ from run to run.
    """

    def __init__(self):
        super().__init__()
        fc1 = torch.nn.Linear(16, 64)
        fc2 = torch.nn.Linear(64, 4)
        self.w1 = torch.nn.Parameter(fc1.weight.detach().clone())
        self.b1 = torch.nn.Parameter(fc1.bias.detach().clone())
        self.w2 = torch.nn.Parameter(fc2.weight.detach().clone())
        self.b2 = torch.nn.Parameter(fc2.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(torch.nn.functional.linear(x, self.w1, self.b1))
        return torch.softmax(torch.nn.functional.linear(h, self.w2, self.b2), dim=-1)


class Multiply(torch.nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x * y


class RandomMatrix(torch.nn.Module):
    def forward(self) -> torch.Tensor:
        return torch.randn(10, 10)


MLP_YAML = """\
backend: torchscript
max_batch_size: 64
inputs:
  - {name: x, datatype: FP32, shape: [16]}
outputs:
  - {name: probs, datatype: FP32, shape: [4]}
instances: 1
threads: 1
"""

MULTIPLY_YAML = """\
backend: torchscript
max_batch_size: 0
inputs:
  - {name: x, datatype: FP32, shape: [-1]}
  - {name: y, datatype: FP32, shape: [-1]}
outputs:
  - {name: z, datatype: FP32, shape: [-1]}
"""

RANDOM_MATRIX_YAML = """\
backend: torchscript
max_batch_size: 0
inputs: []
outputs:
  - {name: matrix, datatype: FP32, shape: [10, 10]}
"""

IDENTITY_YAML = """\
backend: identity
max_batch_size: 8
inputs:
  - {name: INPUT0, datatype: FP32, shape: [-1]}
outputs:
  - {name: OUTPUT0, datatype: FP32, shape: [-1]}
"""


def write(name, yaml_text, module=None):
    d = MODELS / name
    (d / "1").mkdir(parents=True, exist_ok=True)
    (d / "model.yaml").write_text(yaml_text)
    if module is None:
        (d / "1" / ".gitkeep").write_text("")
    else:
        torch.jit.script(module.eval()).save(str(d / "1" / "model.pt"))
    print("wrote", d.relative_to(HERE.parent))


def main():
    torch.manual_seed(0)
    write("mlp", MLP_YAML, MLP())
    write("multiply", MULTIPLY_YAML, Multiply())
    write("random_matrix", RANDOM_MATRIX_YAML, RandomMatrix())
    write("identity", IDENTITY_YAML)


if __name__ == "__main__":
    main()
