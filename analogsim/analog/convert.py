"""``analogize``: put every Linear/Conv2d of a torch model onto a device profile."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from analogsim.analog.layers import AnalogConv2d, AnalogLayer, AnalogLinear, analog_layers
from analogsim.clock import SimClock
from analogsim.config.profile import DeviceProfile, load_profile
from analogsim.errors import HardwareError

#: Modules whose matrix-shaped weights scale elementwise (no matrix product): they stay
#: digital without a refusal.
_ELEMENTWISE = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.PReLU)


def analogize(model: nn.Module, profile: DeviceProfile | str | Path,
              clock: SimClock | None = None,
              generator: torch.Generator | None = None,
              allow_digital: bool = False) -> nn.Module:
    """A copy of ``model`` with every ``nn.Linear``/``nn.Conv2d`` programmed onto ``profile``.

    All layers share ``clock`` (device time) and ``generator`` (device randomness, on the
    model's device). The original model is left untouched.

    Any other module holding a weight matrix or kernel (``nn.Conv1d``, ``nn.LSTM``, ``nn.GRU``,
    ``nn.Embedding``, …) has no analog counterpart here: ``analogize`` raises
    ``HardwareError`` naming them all, unless ``allow_digital=True`` keeps them digital
    (normalization layers and other elementwise weights always stay digital).
    """
    prof = load_profile(profile)
    clock = clock if clock is not None else SimClock()
    out = copy.deepcopy(model)
    if generator is None:
        dev = next((p.device for p in out.parameters()), torch.device("cpu"))
        generator = torch.Generator(dev).manual_seed(0)

    def one(module: nn.Module) -> nn.Module | None:
        if isinstance(module, nn.Linear):
            return AnalogLinear.from_digital(module, prof, clock, generator)
        if isinstance(module, nn.Conv2d):
            return AnalogConv2d.from_digital(module, prof, clock, generator)
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
    if top is not None:
        return top
    convert(out)
    left = digital_matrices(out)
    if left and not allow_digital:
        raise HardwareError(
            f"analogize: no analog form for {', '.join(left)}; they would stay digital — "
            "replace them by Linear/Conv2d, or pass allow_digital=True to keep them digital")
    return out


def digital_matrices(model: nn.Module) -> list[str]:
    """``"name (Type)"`` of every module outside the analog layers that holds a parameter of
    two or more dimensions (a matrix product's weight), normalization layers excepted."""
    found = []
    for name, module in model.named_modules():
        if isinstance(module, (AnalogLayer, *_ELEMENTWISE)):
            continue
        if any(p.dim() >= 2 for p in module.parameters(recurse=False)):
            found.append(f"{name or '<model>'} ({type(module).__name__})")
    return found


def program(model: nn.Module) -> None:
    """Write every analog layer's host weights to its device (after ``optimizer.step()``)."""
    with torch.no_grad():
        for layer in analog_layers(model):
            layer.program()


class OnDevice:
    """Wrap an optimizer so ``step()`` also writes the new weights to the device.

    The training loop stays a normal torch loop::

        opt = analogsim.on_device(torch.optim.SGD(net.parameters(), lr=0.01), net)
        rule.fill_grads(net, x, t); opt.step(); opt.zero_grad()
    """

    def __init__(self, optimizer: torch.optim.Optimizer, model: nn.Module) -> None:
        self.optimizer = optimizer
        self.model = model

    def step(self) -> None:
        self.optimizer.step()
        program(self.model)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    @property
    def param_groups(self) -> list[dict]:
        return self.optimizer.param_groups


def on_device(optimizer: torch.optim.Optimizer, model: nn.Module) -> OnDevice:
    """See ``OnDevice``."""
    return OnDevice(optimizer, model)
