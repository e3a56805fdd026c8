"""Update alignment: the angle between each rule's batch update and the BP gradient.

As in the paper's Fig. 1: per layer, arccos of the cosine between the flattened batch-mean
weight updates, on one batch, over repeats with fresh perturbations (mean ± s.e.m.).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from analogsim.analog.layers import analog_layers
from analogsim.config.rulespec import RuleSpec
from analogsim.rules.factory import make


def angle_deg(a: Tensor, b: Tensor) -> float:
    """Angle between two tensors seen as flat vectors, degrees."""
    cos = torch.nn.functional.cosine_similarity(a.flatten().double(), b.flatten().double(),
                                                dim=0)
    return math.degrees(math.acos(float(cos.clamp(-1, 1))))


@dataclass(frozen=True)
class Alignment:
    """Angles (degrees) of one rule's update to BP's, per layer, over repeats."""

    rule: str
    angles: list[list[float]]  # [repeat][layer]

    @property
    def n_layers(self) -> int:
        return len(self.angles[0])

    def mean(self) -> list[float]:
        return [sum(r[i] for r in self.angles) / len(self.angles) for i in range(self.n_layers)]

    def sem(self) -> list[float]:
        n = len(self.angles)
        if n < 2:
            return [0.0] * self.n_layers
        m = self.mean()
        return [math.sqrt(sum((r[i] - m[i]) ** 2 for r in self.angles) / (n - 1) / n)
                for i in range(self.n_layers)]


@contextlib.contextmanager
def _decorrelators_kept(model: nn.Module) -> Iterator[None]:
    """Restores every analog layer's decorrelator (none, or its R) as it was before the
    block."""
    layers = analog_layers(model)
    before = [None if layer.decorrelator is None else layer.decorrelator.R.detach().clone()
              for layer in layers]
    try:
        yield
    finally:
        for layer, r in zip(layers, before, strict=True):
            if r is None:
                layer.decorrelator = None
            else:
                layer.decorrelator.R.copy_(r)


def _weight_grads(model: nn.Module) -> list[Tensor]:
    return [layer.weight.grad.detach().clone() for layer in analog_layers(model)]  # type: ignore[union-attr]


def alignment(model_factory: Callable[[int], nn.Module], inputs: Tensor, targets: Tensor,
              rules: Sequence[str | RuleSpec] = ("np", "anp", "inp"), repeats: int = 10,
              new_network_each_repeat: bool = True, **options) -> dict[str, Alignment]:
    """Angles to BP for each rule, per layer, over ``repeats``.

    ``model_factory(repeat)`` builds the (analogized) network; with
    ``new_network_each_repeat`` each repeat uses a fresh random network (the paper's random
    repeats), else repeat 0's network with fresh perturbations only. BP is computed on the
    same network and batch; on a chip its backward runs through the devices' mean weights
    (``backward: mean``), but its forward is a noisy read like every rule's, so on a noisy
    device the reference is one noisy gradient, not that of the chip's expected response.
    Every rule sees the network as BP did: a decorrelated rule's R (attached and updated by
    its step) is undone after it. Options (sigma, baseline, …) go to every perturbation rule.
    """
    angles: dict[str, list[list[float]]] = {}
    model = model_factory(0)
    for rep in range(repeats):
        if new_network_each_repeat and rep > 0:
            model = model_factory(rep)
        make("bp", backward="mean").fill_grads(model, inputs, targets)
        ref = _weight_grads(model)
        for r in rules:
            spec = r if isinstance(r, RuleSpec) else RuleSpec(name=r, **options)  # type: ignore[arg-type]
            spec = spec.model_copy(update={"seed": spec.seed + 1000 * rep})
            with _decorrelators_kept(model):
                make(spec).fill_grads(model, inputs, targets)
            got = _weight_grads(model)
            angles.setdefault(spec.name, []).append(
                [angle_deg(g, b) for g, b in zip(got, ref, strict=True)])
    return {k: Alignment(k, v) for k, v in angles.items()}
