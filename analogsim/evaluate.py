"""``evaluate``: a model's accuracy on a chip over device time, averaged over repeated reads.

Every forward of an analog layer is a fresh noisy read, and drift moves the conductances as
device time passes; one number per time point hides both. ``evaluate`` reads the whole data set
``n_reps`` times at each time point and keeps every read, so the spread over reads is reported
beside the mean.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from analogsim.analog.convert import analogize
from analogsim.analog.layers import analog_layers
from analogsim.config.profile import DeviceProfile
from analogsim.data.dataset import Dataset
from analogsim.errors import HardwareError
from analogsim.rules.base import per_sample_loss


@dataclass(frozen=True)
class Evaluation:
    """Metrics of every read at every time point.

    times_s: (T,) device seconds after the evaluation began (after programming, for a net
        fresh from ``analogize`` or from a training step).
    accuracy: (T, n_reps) fraction correct of each read; ``None`` for regression targets.
    loss: (T, n_reps) mean per-sample loss of each read (``loss_kind``).
    """

    times_s: tuple[float, ...]
    accuracy: Tensor | None
    loss: Tensor
    loss_kind: str
    profile: str

    @property
    def n_reps(self) -> int:
        return int(self.loss.shape[1])

    def mean(self, metric: str = "accuracy") -> list[float]:
        """Mean over reads at each time point."""
        return self._values(metric).mean(1).tolist()

    def sem(self, metric: str = "accuracy") -> list[float]:
        """Standard error of the mean over reads at each time point (0 for one read)."""
        v = self._values(metric)
        if v.shape[1] < 2:
            return [0.0] * v.shape[0]
        return (v.std(1, unbiased=True) / math.sqrt(v.shape[1])).tolist()

    def _values(self, metric: str) -> Tensor:
        if metric == "accuracy":
            if self.accuracy is None:
                raise ValueError("regression targets have no accuracy; use metric='loss'")
            return self.accuracy
        if metric == "loss":
            return self.loss
        raise ValueError(f"metric must be 'accuracy' or 'loss', got {metric!r}")

    def table(self) -> str:
        """A Markdown table: time, mean ± s.e.m. over the reads."""
        metric = "accuracy" if self.accuracy is not None else "loss"
        head = (f"| after | {metric} (mean ± s.e.m. over {self.n_reps} reads, "
                f"profile {self.profile}) |\n|---|---|\n")
        rows = [f"| {_duration(t)} | {m:.4f} ± {s:.4f} |"
                for t, m, s in zip(self.times_s, self.mean(metric), self.sem(metric))]
        return head + "\n".join(rows) + "\n"


def _duration(s: float) -> str:
    for unit, size in (("y", 365 * 86400.0), ("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if s >= size:
            return f"{s / size:g} {unit}"
    return f"{s:g} s"


def _split(data: Dataset | tuple[Tensor, Tensor]
           ) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """(inputs, class labels or None, targets for the loss or None: one-hot labels)."""
    if isinstance(data, Dataset):
        return data.x, data.labels, data.y
    try:
        x, y = data
    except (TypeError, ValueError):
        raise TypeError("data must be an analogsim Dataset or an (inputs, targets) pair") from None
    if len(x) != len(y):
        raise ValueError(f"inputs and targets differ in length: {len(x)} ≠ {len(y)}")
    if y.dtype == torch.int64 and y.dim() == 1:
        return x, y, None
    return x, None, y


def evaluate(net: nn.Module, data: Dataset | tuple[Tensor, Tensor], *,
             profile: DeviceProfile | str | Path | None = None,
             times: Sequence[float] = (1.0,), n_reps: int = 10, batch_size: int = 1000,
             seed: int = 0, loss: str = "sse") -> Evaluation:
    """Accuracy of ``net`` on a chip at each device time in ``times``, ``n_reps`` reads each.

    Args:
        net: an analogized model, or a digital one together with ``profile``. It is copied;
            the caller's model and its clock are left as they are.
        data: a ``Dataset`` (``analogsim.data.load(...)``), or a pair ``(x, labels)`` with
            int64 labels ``(N,)`` or ``(x, targets)`` with float targets ``(N, K)``
            (regression: loss only).
        profile: device profile to put a digital ``net`` on (``analogize`` with ``seed``).
        times: device seconds after programming (ascending; the clock only moves forward),
            e.g. ``(1, 3600, 86400, 31536000)`` for 1 s, 1 h, 1 d and 1 y.
        n_reps: reads of the whole data set at each time point (fresh read noise each).
        batch_size: samples per forward.
        seed: seeds the device's randomness when ``profile`` is given.
        loss: per-sample loss, "sse" Σ_k (t − y)² or "mse".

    Returns an ``Evaluation`` holding every read; ``.mean()``, ``.sem()`` and ``.table()``
    summarise it. The model runs in ``eval()`` mode.
    """
    if n_reps < 1 or batch_size < 1:
        raise ValueError("n_reps and batch_size must be ≥ 1")
    times = tuple(float(t) for t in times)
    if not times or any(t < 0 for t in times) or list(times) != sorted(times):
        raise ValueError(f"times must be non-empty, ≥ 0 and ascending, got {times}")
    if profile is not None:
        if analog_layers(net):
            raise HardwareError("evaluate: net is already on a device; leave profile out")
        dev = next((p.device for p in net.parameters()), torch.device("cpu"))
        chip = analogize(net, profile, generator=torch.Generator(dev).manual_seed(seed))
    else:
        chip = copy.deepcopy(net)
    layers = analog_layers(chip)
    if not layers:
        raise HardwareError("evaluate: net has no analog layers; pass profile= or analogize it")
    clock = layers[0].clock
    x, labels, targets = _split(data)
    dev = layers[0].weight.device
    x = x.to(dev)
    labels = labels.to(dev) if labels is not None else None
    targets = targets.to(dev) if targets is not None else None
    start = clock.now
    acc = torch.zeros(len(times), n_reps, dtype=torch.float64, device=dev)
    mean_loss = torch.zeros(len(times), n_reps, dtype=torch.float64, device=dev)
    chip.eval()
    with torch.no_grad():
        for i, t in enumerate(times):
            clock.advance_to(start + t)
            for r in range(n_reps):
                for j in range(0, len(x), batch_size):
                    out = chip(x[j:j + batch_size])  # (b, K)
                    want = (targets[j:j + batch_size] if targets is not None else
                            F.one_hot(labels[j:j + batch_size], out.shape[1]).to(out.dtype))
                    mean_loss[i, r] += per_sample_loss(out, want, loss).double().sum()
                    if labels is not None:
                        acc[i, r] += (out.argmax(1) == labels[j:j + batch_size]).sum()
    n = len(x)
    return Evaluation(times, (acc / n).cpu() if labels is not None else None,
                      (mean_loss / n).cpu(), loss, layers[0].profile.name)
