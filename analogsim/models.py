"""The paper's networks: leaky-ReLU MLPs and the small convnet.

Initialisations (``init``), every draw from the given generator:
- ``he``: W ~ N(0, 2 / ((1 + slope²) · fan_in)), bias 0 (He et al. for leaky ReLU);
- ``normal_fan_in``: W ~ N(0, 1 / fan_in), bias 0;
- ``torch_default``: W and bias ~ U(−1/√fan_in, 1/√fan_in) (what ``nn.Linear`` and
  ``nn.Conv2d`` draw by default).
``bias=False`` builds the layers without a bias.
"""

from __future__ import annotations

import itertools
import math
from typing import Literal

import torch
from torch import nn

Init = Literal["he", "normal_fan_in", "torch_default"]
INITS: tuple[str, ...] = ("he", "normal_fan_in", "torch_default")


def _init(module: nn.Linear | nn.Conv2d, slope: float, generator: torch.Generator,
          init: str = "he") -> None:
    fan_in = module.weight[0].numel()
    shape = module.weight.shape
    with torch.no_grad():
        if init == "torch_default":
            bound = 1.0 / math.sqrt(fan_in)
            module.weight.copy_((torch.rand(shape, generator=generator) * 2 - 1) * bound)
            if module.bias is not None:
                module.bias.copy_((torch.rand(module.bias.shape, generator=generator) * 2 - 1)
                                  * bound)
            return
        if init == "he":
            std = math.sqrt(2.0 / ((1 + slope**2) * fan_in))
        elif init == "normal_fan_in":
            std = math.sqrt(1.0 / fan_in)
        else:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
        module.weight.copy_(torch.randn(shape, generator=generator) * std)
        if module.bias is not None:
            module.bias.zero_()


def mlp(sizes: list[int], slope: float = 0.01, seed: int = 0, init: Init = "he",
        bias: bool = True) -> nn.Sequential:
    """Fully connected net: sizes = [in, hidden…, out]; leaky ReLU on all but the output."""
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise ValueError("an MLP needs at least [in, out] sizes, all ≥ 1")
    g = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        lin = nn.Linear(a, b, bias=bias)
        _init(lin, slope, g, init)
        layers.append(lin)
        if i < len(sizes) - 2:
            layers.append(nn.LeakyReLU(slope))
    return nn.Sequential(*layers)


def convnet(in_shape: tuple[int, int, int], n_out: int, slope: float = 0.01,
            seed: int = 0, init: Init = "he", bias: bool = True) -> nn.Sequential:
    """The paper's convnet (its Table 1): conv 3×3×16 stride 2, conv 3×3×32 stride 2,
    conv 3×3×64 stride 1, FC 1024, FC n_out; leaky ReLU after all but the output."""
    c, h, w = in_shape
    g = torch.Generator().manual_seed(seed)
    convs = [nn.Conv2d(c, 16, 3, 2, bias=bias), nn.Conv2d(16, 32, 3, 2, bias=bias),
             nn.Conv2d(32, 64, 3, 1, bias=bias)]
    for _ in range(2):
        h, w = (h - 3) // 2 + 1, (w - 3) // 2 + 1
    h, w = h - 2, w - 2
    if h < 1 or w < 1:
        raise ValueError(f"input {in_shape} is too small for the convnet")
    fc = [nn.Linear(64 * h * w, 1024, bias=bias), nn.Linear(1024, n_out, bias=bias)]
    layers: list[nn.Module] = []
    for conv in convs:
        _init(conv, slope, g, init)
        layers += [conv, nn.LeakyReLU(slope)]
    _init(fc[0], slope, g, init)
    _init(fc[1], slope, g, init)
    layers += [nn.Flatten(), fc[0], nn.LeakyReLU(slope), fc[1]]
    return nn.Sequential(*layers)
