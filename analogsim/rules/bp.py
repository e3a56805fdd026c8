"""Backpropagation: the reference, and on hardware the hardware-aware baseline.

On an analog network the backward pass runs through the noisy forward pass that was actually
measured, straight-through for the DAC/ADC quantizers (the tile's mean weights carry the
gradient to the inputs).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from analogsim.rules.base import LearningRule, layers_of, per_sample_loss


class BP(LearningRule):
    """ΔW_l = reduce_n[g_{l,n} x*_{l−1,n}ᵀ] with g = ∂L/∂a from autograd."""

    def _fill(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> Tensor:
        layers = layers_of(model)
        for layer in layers:
            layer.record = True
        try:
            with torch.enable_grad():
                out = model(inputs)
                losses = per_sample_loss(out, targets, self.spec.loss)
                self.reduce(losses).backward()
            self.first_pass_inputs = [layer.trace.inputs.detach() for layer in layers]  # type: ignore[union-attr]
        finally:
            for layer in layers:
                layer.record, layer.trace = False, None
        return losses.detach().mean()
