"""``analogize``: put every Linear/Conv2d of a torch model onto a device profile."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from analogsim.analog.layers import AnalogConv2d, AnalogLayer, AnalogLinear, analog_layers
from analogsim.analog.tile import fresh_seed
from analogsim.clock import SimClock
from analogsim.config.profile import DeviceProfile, load_profile


def analogize(model: nn.Module, profile: DeviceProfile | str | Path,
              clock: SimClock | None = None, generator: torch.Generator | None = None,
              seed: int | None = None, numerics: str = "exact") -> nn.Module:
    """A copy of ``model`` with every ``nn.Linear``/``nn.Conv2d`` programmed onto ``profile``.

    Every layer is its own chip: each draws its device randomness (programming errors, faults,
    drift exponents, reads) from its own generator, seeded in turn from ``generator`` or, when
    none is given, from ``seed`` (a fresh seed from the operating system if that is None too).
    Each layer's seed is its ``chip_seed``; the whole network is reproduced by the same
    ``seed`` (recorded as the copy's ``chip_seed``) or a generator in the same state. All
    layers share ``clock`` (device time). ``numerics``: ``"exact"`` or ``"fast"``
    (``analogsim.analog.numerics``). The original model is left untouched.
    """
    prof = load_profile(profile)
    clock = clock if clock is not None else SimClock()
    out = copy.deepcopy(model)
    net_seed = None
    if generator is None:
        net_seed = seed if seed is not None else fresh_seed()
        generator = torch.Generator().manual_seed(net_seed)

    def layer_seed() -> int:
        return int(torch.randint(0, 2**62, (1,), generator=generator,
                                 device=generator.device))

    def one(module: nn.Module) -> nn.Module | None:
        if isinstance(module, nn.Linear):
            return AnalogLinear.from_digital(module, prof, clock, seed=layer_seed(),
                                             numerics=numerics)
        if isinstance(module, nn.Conv2d):
            return AnalogConv2d.from_digital(module, prof, clock, seed=layer_seed(),
                                             numerics=numerics)
        return None

    def convert(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            if isinstance(child, AnalogLayer):
                continue
            new = one(child)
            if new is not None:
                setattr(parent, name, new)
            else:
                convert(child)

    top = one(out)
    result = top if top is not None else out
    if top is None:
        convert(out)
    result.chip_seed = net_seed  # type: ignore[assignment]
    return result


def program(model: nn.Module) -> None:
    """Write every analog layer's host weights to its device (after ``optimizer.step()``)."""
    with torch.no_grad():
        for layer in analog_layers(model):
            layer.program()


def refresh(model: nn.Module) -> None:
    """Re-program every device of every analog layer to its host weights (a chip refresh:
    drift restarts, a fresh programming error is paid)."""
    with torch.no_grad():
        for layer in analog_layers(model):
            layer.refresh()


def on_device(optimizer: torch.optim.Optimizer, model: nn.Module) -> torch.optim.Optimizer:
    """Make ``optimizer.step()`` also write the new weights to ``model``'s devices.

    Registers a step post-hook on the optimizer and returns the same optimizer, so schedulers,
    ``zero_grad``, ``state_dict`` and gradient clipping work as usual::

        opt = analogsim.on_device(torch.optim.SGD(net.parameters(), lr=0.01), net)
        rule.fill_grads(net, x, t); opt.step(); opt.zero_grad()
    """
    def write(_opt: torch.optim.Optimizer, _args: object, _kwargs: object) -> None:
        program(model)

    optimizer.register_step_post_hook(write)
    return optimizer
