"""Decorrelation as a wrapper: DBP = Decorrelated(BP), DNP = Decorrelated(NP), …

One R per weight layer, the input layer's included, applied to the layer's crossbar inputs
(x* = R x; for convolutions, to each unfolded patch). R = I at start and, after the wrapped
rule has computed ΔW from the first pass,

    R ← R − α·C·R,   C = mean_n(x*_n x*_nᵀ) with its diagonal zeroed   (first pass's x*).

R is digital state of the rule's making, updated here with its own rate α (not by the
optimizer, whose η belongs to the weights).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from analogsim.analog.layers import Decorrelator
from analogsim.rules.base import LearningRule, layers_of


def offdiag_second_moment(x: Tensor) -> Tensor:
    """C = mean over samples (and positions) of x xᵀ with a zero diagonal. (…, K) → (K, K)."""
    flat = x.reshape(-1, x.shape[-1])
    c = flat.t() @ flat / flat.shape[0]
    return c - torch.diag_embed(torch.diagonal(c))


def decorrelation_step(r: Tensor, x_star: Tensor, alpha: float) -> Tensor:
    """One update R − α·offdiag(mean x* x*ᵀ)·R, x* (…, K) of N samples (and positions).

    C first costs N·K² + K³ multiply-adds; with N ≤ K/2 the product is taken as
    (x*ᵀ(x* R))/N − diag(mean x*²)·R instead, 2·N·K²: the same update up to float rounding
    (a wide layer with a small batch: K = 4096, N = 100 is 40× cheaper).
    """
    flat = x_star.reshape(-1, x_star.shape[-1])
    n, k = flat.shape
    if 2 * n > k:
        return r - alpha * offdiag_second_moment(x_star) @ r
    cr = flat.t() @ (flat @ r) / n - (flat * flat).mean(0).unsqueeze(1) * r
    return r - alpha * cr


def attach_decorrelators(model: nn.Module) -> None:
    """Give every analog layer an R = I on its crossbar inputs (if it has none)."""
    for layer in layers_of(model):
        if layer.decorrelator is None:
            k = layer.weight[0].numel()
            layer.decorrelator = Decorrelator(k, device=layer.weight.device).to(layer.weight.dtype)


class Decorrelated(LearningRule):
    """Wrap ``inner`` with input decorrelation at every layer (rate ``spec.alpha``)."""

    def __init__(self, inner: LearningRule) -> None:
        super().__init__(inner.spec)
        self.inner = inner
        self.guard = inner.guard

    def state_dict(self) -> dict[str, object]:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict[str, object]) -> None:
        self.inner.load_state_dict(state)

    def fill_grads(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> Tensor:
        attach_decorrelators(model)
        loss = self.inner.fill_grads(model, inputs, targets)
        self.first_pass_inputs = self.inner.first_pass_inputs
        with torch.no_grad():
            for layer, xs in zip(layers_of(model), self.first_pass_inputs, strict=True):
                dec = layer.decorrelator
                assert dec is not None
                dec.R.copy_(decorrelation_step(dec.R, xs, self.spec.alpha))
        return loss

    def _fill(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> Tensor:
        raise AssertionError("Decorrelated delegates fill_grads to its inner rule")
