"""Building a cell's pieces: its seeds, its digital network, its device copy of it."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from analogsim import models
from analogsim.analog import analogize
from analogsim.clock import SimClock
from analogsim.config.profile import DeviceProfile
from analogsim.config.scenario import ModelSpec

#: Independent random streams of one cell, all derived from the cell's seed.
STREAMS = {"model": 0, "device": 1, "shuffle": 2, "rule": 3, "alignment": 4}


def derive_seed(seed: int, stream: str, *extra: int) -> int:
    """A 31-bit seed for ``stream`` of a cell seeded ``seed`` (independent across streams)."""
    state = np.random.SeedSequence([seed, STREAMS[stream], *extra]).generate_state(1)
    return int(state[0] >> 1)


def digital_network(spec: ModelSpec, input_shape: tuple[int, ...], n_outputs: int,
                    seed: int) -> nn.Module:
    """The scenario's torch network for data of ``input_shape`` → ``n_outputs`` (CPU).

    MLP: input_shape (D,); convnet: input_shape (C, H, W). Raises ValueError if they do not
    fit.
    """
    if spec.kind == "mlp":
        if len(input_shape) != 1:
            raise ValueError(f"an MLP needs flat inputs, got shape {input_shape}")
        return models.mlp([input_shape[0], *spec.hidden, n_outputs], spec.slope, seed,
                          spec.init, spec.bias)
    if len(input_shape) != 3:
        raise ValueError(f"the convnet needs image data (C, H, W), got shape {input_shape}")
    c, h, w = input_shape
    return models.convnet((c, h, w), n_outputs, spec.slope, seed, spec.init, spec.bias)


def device_network(spec: ModelSpec, input_shape: tuple[int, ...], n_outputs: int,
                   profile: DeviceProfile, clock: SimClock, device: torch.device,
                   model_seed: int, device_seed: int, numerics: str = "exact") -> nn.Module:
    """The network programmed onto ``profile`` at ``clock.now``, on torch ``device``.

    ``model_seed`` draws its initial weights; ``device_seed`` seeds the chips: each layer's own
    generator of device random numbers (programming noise, drift exponents, faults, reads) is
    spawned from it. ``numerics``: the crossbar arithmetic (``analogsim.analog.numerics``).
    """
    net = digital_network(spec, input_shape, n_outputs, model_seed).to(device)
    return analogize(net, profile, clock, seed=device_seed, numerics=numerics)
