"""Small networks for tests (the paper's leaky-ReLU MLPs)."""

from __future__ import annotations

import itertools

import torch
from torch import nn


def make_mlp(sizes: list[int], seed: int = 0, slope: float = 0.01) -> nn.Sequential:
    """He-normal leaky-ReLU MLP with zero biases (the paper's networks)."""
    g = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        lin = nn.Linear(a, b)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(b, a, generator=g) * (2 / ((1 + slope**2) * a)) ** 0.5)
            lin.bias.zero_()
        layers.append(lin)
        if i < len(sizes) - 2:
            layers.append(nn.LeakyReLU(slope))
    return nn.Sequential(*layers)
