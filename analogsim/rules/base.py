"""The one interface of every learning rule, the loss, passes and the divergence guard."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor, nn

from analogsim.analog import normals
from analogsim.analog.layers import AnalogLayer, analog_layers
from analogsim.analog.probe import Trace, probe
from analogsim.config.rulespec import RuleSpec
from analogsim.errors import DivergenceError, HardwareError


def per_sample_loss(y: Tensor, t: Tensor, kind: str = "sse") -> Tensor:
    """(B, K) outputs and targets → (B,) loss: Σ_k (t − y)² ("sse") or its mean ("mse")."""
    d = (t - y).reshape(y.shape[0], -1)
    return (d * d).sum(1) if kind == "sse" else (d * d).mean(1)


def layers_of(model: nn.Module) -> list[AnalogLayer]:
    """The model's analog layers; a clear error when it has none."""
    layers = analog_layers(model)
    if not layers:
        raise HardwareError("the model has no analog layers: convert it with "
                            "analogsim.analogize(model, 'ideal') (digital) or a device profile")
    return layers


def is_hardware(model: nn.Module) -> bool:
    """True when any layer runs on a noisy device (then no clean pass exists)."""
    return any(layer.hardware for layer in layers_of(model))


def has_noisy_reads(model: nn.Module) -> bool:
    """True when two reads of the same input may differ (read or output noise somewhere)."""
    return any(layer._tile is not None and layer._tile.noisy_reads for layer in layers_of(model))


def run_passes(model: nn.Module, x: Tensor, passes: int,
               inject: list[Tensor | None] | None = None) -> tuple[Tensor, list[Trace]]:
    """Run ``passes`` forward passes of ``x`` (B, …) as one batch of passes·B samples.

    ``inject[l]``: (passes·B, L_l, O_l) added to layer l's pre-activations (or None).
    Returns outputs (passes·B, K) and each layer's trace. Device noise is drawn per sample, so
    the passes are independent, exactly as if run one after another. The network's input
    layer computes its share once and reads it once per pass; call this without autograd
    (rules do, under ``torch.no_grad``).
    """
    layers_of(model)
    xb = x.repeat(passes, *([1] * (x.dim() - 1))) if passes > 1 else x
    with probe(model, inject=inject, passes=passes) as pr:
        out = model(xb)
    return out, pr.traces


class DivergenceGuard:
    """Device-side divergence flags; one host sync every ``check_every`` steps.

    Watches the loss, the weights (non-finite or |w| > ``max_abs``) and decorrelation matrices.
    """

    def __init__(self, check_every: int = 50, max_abs: float = 1e4) -> None:
        self.check_every = check_every
        self.max_abs = max_abs
        self.step = 0
        self._first_bad: Tensor | None = None  # step index, −1 while fine
        self._what: Tensor | None = None

    def observe(self, loss: Tensor, model: nn.Module) -> None:
        """Record this step's state (no host sync, except every ``check_every`` steps)."""
        layers = analog_layers(model)
        bad_loss = ~torch.isfinite(loss).all()
        ws = [p.detach().abs().amax() for layer in layers for p in (layer.weight, layer.bias)
              if p is not None]
        w_max = torch.stack(ws).amax()
        bad_w = ~(w_max <= self.max_abs)  # NaN compares False
        rs = [layer.decorrelator.R.abs().amax() for layer in layers
              if layer.decorrelator is not None]
        bad_r = ~(torch.stack(rs).amax() <= self.max_abs) if rs else torch.zeros_like(bad_loss)
        what = torch.where(bad_loss, 1, torch.where(bad_w, 2, torch.where(bad_r, 3, 0)))
        if self._first_bad is None:
            self._first_bad = torch.full((), -1, device=loss.device)
            self._what = torch.zeros((), dtype=torch.long, device=loss.device)
        fresh = (what > 0) & (self._first_bad < 0)
        self._first_bad = torch.where(fresh, self.step, self._first_bad)
        self._what = torch.where(fresh, what, self._what)  # type: ignore[arg-type]
        self.step += 1
        if self.step % self.check_every == 0:
            self.check()

    def check(self) -> None:
        """Sync once; raise ``DivergenceError`` if any observed step diverged."""
        if self._first_bad is None:
            return
        first = int(self._first_bad)
        if first >= 0:
            names = {1: "loss", 2: "weights", 3: "decorrelation matrices"}
            raise DivergenceError(first, names[int(self._what)])  # type: ignore[arg-type]


class LearningRule(ABC):
    """Computes an update from what the hardware exposes and writes it to ``.grad``.

    A rule never applies its update: any ``torch.optim`` optimizer steps it (wrap it with
    ``analogsim.on_device`` so the new weights are written to the device).
    """

    def __init__(self, spec: RuleSpec) -> None:
        self.spec = spec
        self.guard = DivergenceGuard(spec.check_every, spec.max_abs_weight)
        self._generators: dict[torch.device, torch.Generator] = {}
        self._second: dict[torch.device, torch.Generator] = {}  # second halves (``randn``)
        #: Crossbar inputs x* (B, L, K) of each layer from the last call's first pass.
        self.first_pass_inputs: list[Tensor] = []

    @property
    def name(self) -> str:
        return self.spec.name

    def generator(self, device: torch.device) -> torch.Generator:
        """The rule's own generator on ``device`` (seeded by ``spec.seed``)."""
        if device not in self._generators:
            self._generators[device] = torch.Generator(device).manual_seed(self.spec.seed)
        return self._generators[device]

    def randn(self, shape: tuple[int, ...], like: Tensor) -> Tensor:
        """N(0, 1) of ``shape`` on ``like``'s device and dtype from the rule's generators
        (float32 CPU draws in two halves on two threads: ``analogsim.analog.normals``)."""
        gen = self.generator(like.device)
        if like.dtype != torch.float32:
            return torch.randn(shape, generator=gen, device=like.device, dtype=like.dtype)
        if like.device.type == "cpu" and like.device not in self._second:
            self._second[like.device] = normals.second_generator(gen)
        return normals.randn(shape, gen, self._second.get(like.device))

    def state_dict(self) -> dict[str, object]:
        """The rule's own random streams (its perturbations still to come) for checkpoints;
        decorrelation matrices live on the layers (``model.state_dict()``)."""
        return {"generators": {str(d): g.get_state() for d, g in self._generators.items()},
                "second": {str(d): g.get_state() for d, g in self._second.items()},
                "guard_step": self.guard.step}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore ``state_dict()``: continuing gives the same numbers as never stopping."""
        for key, table in (("generators", self._generators), ("second", self._second)):
            for dev, st in state[key].items():  # type: ignore[attr-defined]
                device = torch.device(dev)
                table.setdefault(device, torch.Generator(device)).set_state(st)
        self.guard.step = int(state["guard_step"])  # type: ignore[arg-type]

    def clean_baseline(self, model: nn.Module) -> bool:
        """Whether the first pass is clean; raises if a clean pass is asked of hardware."""
        hw = is_hardware(model)
        if self.spec.baseline == "clean" and hw:
            names = sorted({layer.profile.name for layer in layers_of(model) if layer.hardware})
            raise HardwareError(
                f"rule {self.spec.name}: baseline 'clean' needs a noise-free pass, but profile "
                f"{', '.join(names)} has none; use baseline 'noisy' (or 'auto')")
        return self.spec.baseline == "clean" or (self.spec.baseline == "auto" and not hw)

    def reduce(self, per_sample: Tensor) -> Tensor:
        """Combine (B, …) per-sample quantities over the batch (mean or sum)."""
        return per_sample.mean(0) if self.spec.reduction == "mean" else per_sample.sum(0)

    def fill_grads(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> Tensor:
        """Run the passes the rule needs, fill ``.grad`` of every weight and bias.

        Returns the measured batch loss (mean per-sample loss of the first pass) as a 0-dim
        tensor on the model's device (no host sync).
        """
        with torch.no_grad():
            for layer in layers_of(model):
                layer.weight.grad = None
                if layer.bias is not None:
                    layer.bias.grad = None
        loss = self._fill(model, inputs, targets)
        self.guard.observe(loss, model)
        return loss

    @abstractmethod
    def _fill(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> Tensor:
        """Rule-specific passes and ``.grad``; sets ``first_pass_inputs``; returns the loss."""


def write_grads(layers: list[AnalogLayer], signals: list[Tensor], inputs: list[Tensor],
                reduce: str) -> None:
    """``.grad`` = batch-reduced Σ_positions signal ⊗ input, per layer.

    signals[l]: (B, L, O) per-sample learning signal at the pre-activations; inputs[l]:
    (B, L, K) the crossbar inputs x*. Weight grad (O, K) reshaped to the weight's shape.
    """
    for layer, g, x in zip(layers, signals, inputs, strict=True):
        b = g.shape[0]
        gw = torch.einsum("blo,blk->ok", g, x)
        gb = g.sum(dim=(0, 1))
        if reduce == "mean":
            gw, gb = gw / b, gb / b
        layer.weight.grad = gw.reshape(layer.weight.shape)
        if layer.bias is not None:
            layer.bias.grad = gb
