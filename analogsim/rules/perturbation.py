"""The node-perturbation family: NP, INP and ANP (Dalm, van Gerven & Ahmad).

Notation (design.md §6): pass 1 is the baseline (clean, or noisy on hardware), pass 2 the
perturbed one; δL_n = L_n⁽²⁾ − L_n⁽¹⁾ per sample; every ΔW uses pass 1's crossbar inputs x*.

- NP:  g_{l,n} = (δL_n/σ²)·ε_{l,n}, ε the rule's own pass-2 perturbation (the pass-1
  perturbation of a noisy baseline, independent of it, adds variance, not bias: the paper's
  point).
- INP: one extra pass per layer with ε in that layer only;
  g_{l,n} = N_l·δL_{l,n}·v_{l,n}/‖v_{l,n}‖². L + 1 passes.
- ANP: g_{l,n} = N·δL_n·δa_{l,n}/‖δa_n‖², δa = ã⁽²⁾ − ã⁽¹⁾ the measured pre-activation
  difference over all layers; never reads ε (σ may be 0 on a noisy device).

The passes run as one batched forward (independent noise per sample and pass).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from analogsim.analog.layers import Trace
from analogsim.errors import HardwareError
from analogsim.rules.base import (
    LearningRule,
    has_noisy_reads,
    layers_of,
    per_sample_loss,
    run_passes,
    write_grads,
)


def _unit_shapes(model: nn.Module, x: Tensor) -> list[tuple[int, int]]:
    """(L, O) of each layer's pre-activations for input ``x`` (one probe sample). The probe
    leaves the devices' random streams where they were, so a run resumed from a checkpoint
    (which probes again) stays identical to one that was never interrupted."""
    tiles = [layer._tile for layer in layers_of(model) if layer._tile is not None]
    states = [t.rng_state() for t in tiles]
    _, traces = run_passes(model, x[:1], 1)
    for t, st in zip(tiles, states, strict=True):
        t.set_rng_state(st)
    return [(t.pre.shape[1], t.pre.shape[2]) for t in traces]


class _Perturbation(LearningRule):
    """Shared machinery: shapes of the units, perturbation draws, loss differences."""

    _shapes: dict[tuple[int, ...], list[tuple[int, int]]]

    def shapes(self, model: nn.Module, x: Tensor) -> list[tuple[int, int]]:
        key = (id(model), *x.shape[1:])
        cache = self.__dict__.setdefault("_shapes", {})
        if key not in cache:
            with torch.no_grad():
                cache[key] = _unit_shapes(model, x)
        return cache[key]

    def draw(self, b: int, shape: tuple[int, int], like: Tensor) -> Tensor:
        """σ·ξ of shape (b, L, O) from the rule's generator."""
        return self.randn((b, *shape), like).mul_(self.spec.sigma)

    def pass_pair(self, b: int, shapes: list[tuple[int, int]], clean: bool,
                  like: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """Per layer: the (2B, L, O) injection of a baseline + perturbed run, and pass 2's ε.

        Pass 1 gets zeros (clean baseline) or its own draw (noisy baseline), drawn first.
        """
        inject, eps2 = [], []
        for s in shapes:
            e1 = (torch.zeros((b, *s), device=like.device, dtype=like.dtype) if clean
                  else self.draw(b, s, like))
            e2 = self.draw(b, s, like)
            inject.append(torch.cat([e1, e2]))
            eps2.append(e2)
        return inject, eps2

    def finish(self, model: nn.Module, traces: list[Trace], b: int, signals: list[Tensor],
               loss: Tensor) -> Tensor:
        """Write ``.grad`` from per-layer signals and pass 1's inputs; return pass 1's loss."""
        x1 = [t.inputs[:b] for t in traces]
        write_grads(layers_of(model), signals, x1, self.spec.reduction)
        self.first_pass_inputs = x1
        return loss[0].mean()

    def losses(self, out: Tensor, targets: Tensor, passes: int) -> Tensor:
        """(passes, B) per-sample losses of a batched run."""
        b = targets.shape[0]
        return per_sample_loss(out, targets.repeat(passes, 1), self.spec.loss).reshape(passes, b)


class NP(_Perturbation):
    """Node perturbation: ΔW_l = reduce_n[(δL_n/σ²)·ε_{l,n} x*ᵀ]."""

    def _fill(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> Tensor:
        with torch.no_grad():
            clean = self.clean_baseline(model)
            b = inputs.shape[0]
            inject, eps2 = self.pass_pair(b, self.shapes(model, inputs), clean, inputs)
            out, traces = run_passes(model, inputs, 2, inject)
            loss = self.losses(out, targets, 2)
            dl = (loss[1] - loss[0]) / self.spec.sigma**2  # (B,)
            return self.finish(model, traces, b, [dl[:, None, None] * e for e in eps2], loss)


class ANP(_Perturbation):
    """Activity-based NP: ΔW_l = reduce_n[N·δL_n·δa_{l,n}/‖δa_n‖² x*ᵀ]."""

    def _fill(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> Tensor:
        with torch.no_grad():
            clean = self.clean_baseline(model)
            b = inputs.shape[0]
            shapes = self.shapes(model, inputs)
            if self.spec.sigma == 0 and not has_noisy_reads(model):
                raise HardwareError(
                    f"rule {self.spec.name}: sigma 0 learns from the device's own read noise, "
                    "but this network's reads are noise-free; give sigma > 0")
            inject = self.pass_pair(b, shapes, clean, inputs)[0] if self.spec.sigma > 0 else None
            out, traces = run_passes(model, inputs, 2, inject)
            del inject  # ANP never reads ε: only the measured activities below
            loss = self.losses(out, targets, 2)
            da = [t.pre[b:] - t.pre[:b] for t in traces]  # (B, L, O) each
            norm2 = sum((d * d).sum(dim=(1, 2)) for d in da)  # (B,)
            n_units = sum(l_ * o for l_, o in shapes)
            if self.spec.n_units == "all":
                n_units += inputs[0].numel()
            coef = n_units * (loss[1] - loss[0]) / norm2.clamp_min(1e-30)  # (B,)
            return self.finish(model, traces, b, [coef[:, None, None] * d for d in da], loss)


class INP(_Perturbation):
    """Iterative NP: pass 0 baseline, pass l perturbs layer l only;
    ΔW_l = reduce_n[N_l·δL_{l,n}·v_{l,n}/‖v_{l,n}‖² x*ᵀ]."""

    def _fill(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> Tensor:
        with torch.no_grad():
            clean = self.clean_baseline(model)
            b = inputs.shape[0]
            shapes = self.shapes(model, inputs)
            n_layers = len(shapes)
            passes = n_layers + 1
            inject, v = [], []
            for i, s in enumerate(shapes):
                e = torch.zeros((passes * b, *s), device=inputs.device, dtype=inputs.dtype)
                if not clean:
                    e[:b] = self.draw(b, s, inputs)
                vi = self.draw(b, s, inputs)
                e[(i + 1) * b:(i + 2) * b] = vi
                inject.append(e)
                v.append(vi)
            out, traces = run_passes(model, inputs, passes, inject)
            loss = self.losses(out, targets, passes)
            signals = []
            for i, (vi, (l_, o)) in enumerate(zip(v, shapes)):
                dl = loss[i + 1] - loss[0]
                coef = l_ * o * dl / (vi * vi).sum(dim=(1, 2)).clamp_min(1e-30)
                signals.append(coef[:, None, None] * vi)
            return self.finish(model, traces, b, signals, loss)

