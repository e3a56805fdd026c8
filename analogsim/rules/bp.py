"""Backpropagation: the reference, and on hardware the hardware-aware baseline.

On an analog network the backward pass runs through the noisy forward pass that was actually
measured, straight through the DAC/ADC quantizers; how it reaches each layer's inputs is the
rule's ``backward`` choice (recorded with the rule).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from analogsim.analog.probe import probe
from analogsim.rules.base import LearningRule, per_sample_loss


class BP(LearningRule):
    """ΔW_l = reduce_n[g_{l,n} x*_{l−1,n}ᵀ] with g = ∂L/∂a from autograd.

    On a chip the backward reaches each layer's inputs as ``spec.backward`` says: a transposed
    noisy read of the same devices (``"noisy_read"``, the default: what a chip can do), the
    optimizer's digital weights (``"shadow"``) or the devices' mean weights (``"mean"``: an
    oracle, optimistic).
    """

    def _fill(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> Tensor:
        with probe(model, backward=self.spec.backward or "noisy_read") as pr, \
                torch.enable_grad():
            out = model(inputs)
            losses = per_sample_loss(out, targets, self.spec.loss)
            self.reduce(losses).backward()
        self.first_pass_inputs = [t.inputs.detach() for t in pr.traces]
        return losses.detach().mean()
