"""``probe``: what a learning rule may see of a network, as one explicit context.

Inside ``with probe(model, ...) as pr:`` every analog layer records what a chip exposes — the
inputs it fed its crossbars (after decorrelation) and its measured pre-activations (after the
ADC, bias added) — may add the rule's own injected perturbation to those pre-activations,
and reads its input layer's shared passes once; on leaving, every layer is as before. There
is no way to switch a device's noise off, and nothing here returns it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from torch import Tensor, nn

#: How BP's backward pass reaches the inputs of an analog layer.
Backward = Literal["noisy_read", "shadow", "mean"]
BACKWARDS: tuple[str, ...] = ("noisy_read", "shadow", "mean")


@dataclass(frozen=True)
class Trace:
    """What one forward pass through a layer exposed.

    inputs: (B, L, K) crossbar inputs after decorrelation (L = 1 for linear, patches for conv).
    pre:    (B, L, O) measured pre-activations (post-ADC, bias added, injection included).
    """

    inputs: Tensor
    pre: Tensor


@dataclass
class LayerProbe:
    """One layer's part of a probe (set and cleared by ``probe``)."""

    record: bool = True
    inject: Tensor | None = None  # (B, L, O), added to the pre-activations
    passes: int = 1  # > 1: the layer's next input is that many copies of one batch
    backward: Backward = "noisy_read"
    trace: Trace | None = None


class Probe:
    """The traces of a probed forward pass, one per analog layer in order."""

    def __init__(self, parts: Sequence[LayerProbe]) -> None:
        self._parts = parts

    @property
    def traces(self) -> list[Trace]:
        """Each layer's trace of its last call inside the probe."""
        out = []
        for i, part in enumerate(self._parts):
            if part.trace is None:
                raise RuntimeError(f"analog layer {i} was not called inside the probe")
            out.append(part.trace)
        return out


def input_layer(model: nn.Module) -> nn.Module | None:
    """The analog layer that receives the model's input row by row unchanged: the first
    element of (nested) ``nn.Sequential``s, past ``Flatten``/``Identity``; else None."""
    from analogsim.analog.layers import AnalogLayer

    mod: nn.Module = model
    while isinstance(mod, nn.Sequential) and len(mod) > 0:
        i = 0
        while i < len(mod) - 1 and isinstance(mod[i], nn.Flatten | nn.Identity):
            i += 1
        mod = mod[i]
    return mod if isinstance(mod, AnalogLayer) else None


@contextmanager
def probe(model: nn.Module, *, record: bool = True,
          inject: Sequence[Tensor | None] | None = None, passes: int = 1,
          backward: Backward = "noisy_read") -> Iterator[Probe]:
    """Expose ``model``'s analog layers for one or more forward passes.

    record: keep each layer's ``Trace`` (``probe.traces``).
    inject: per layer, (B, L, O) added to its pre-activations (or None).
    passes: the model's input is ``passes`` copies of one batch; its input layer converts and
        multiplies them once and reads them once per pass, each read with its own noise
        (without autograd; applies to that layer's next call only).
    backward: how an autograd backward through the layers reaches their inputs: a transposed
        noisy read of the same devices (``"noisy_read"``, what a chip can do), the digital
        weights the optimizer holds (``"shadow"``), or the devices' mean weights
        (``"mean"``, an oracle no chip exposes: optimistic).
    """
    from analogsim.analog.layers import analog_layers

    if backward not in BACKWARDS:
        raise ValueError(f"backward must be one of {', '.join(BACKWARDS)}, got {backward!r}")
    layers = analog_layers(model)
    if inject is not None and len(inject) != len(layers):
        raise ValueError(f"inject has {len(inject)} entries for {len(layers)} analog layers")
    if any(layer._probe is not None for layer in layers):
        raise RuntimeError("the model is already being probed")
    first = input_layer(model) if passes > 1 else None
    parts = [LayerProbe(record, inject[i] if inject is not None else None,
                        passes if layer is first else 1, backward)
             for i, layer in enumerate(layers)]
    for layer, part in zip(layers, parts, strict=True):
        layer._probe = part
    try:
        yield Probe(parts)
    finally:
        for layer in layers:
            layer._probe = None
