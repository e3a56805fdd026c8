"""``AnalogLinear`` and ``AnalogConv2d``: torch modules whose matmuls run on ``AnalogTile``s.

Each layer keeps a host copy of the weights (``weight``: what the optimizer updates, the
*requested* weights) and, on a non-ideal profile, an ``AnalogTile`` holding the *realised*
conductances: every forward reads the tile (noisy, drifted, through DAC/ADC). ``program()``
writes the host weights to the tile through the profile's update model. On the ``ideal``
profile there is no tile and the layer is exactly its digital counterpart.

What a chip exposes is recorded for learning rules inside ``analogsim.analog.probe.probe``:
the inputs fed to the crossbar (after decorrelation) and the measured pre-activations (after
ADC, plus bias); a rule may also inject its own perturbation into the pre-activations.

Every layer is its own chip: its tile draws from its own generator (``chip_seed``), so two
layers' programming errors, faults and drift exponents are independent.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from analogsim.analog.probe import LayerProbe, Trace
from analogsim.analog.tile import AnalogTile, fresh_seed
from analogsim.clock import SimClock
from analogsim.config.profile import DeviceProfile, load_profile


class Decorrelator(nn.Module):
    """x* = R x on the layer's crossbar inputs; R (K, K) starts at the identity (digital)."""

    def __init__(self, k: int, device: torch.device | str | None = None) -> None:
        super().__init__()
        self.register_buffer("R", torch.eye(k, device=device))

    def forward(self, x: Tensor) -> Tensor:  # (N, K) → (N, K)
        return x @ self.R.t()


class _AnalogMVM(torch.autograd.Function):
    """Analog forward (+ digital bias); backward to the input by the probe's ``backward``
    choice (a transposed noisy read by default), straight through the DAC/ADC quantizers."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None,  # type: ignore[override]
                tile: AnalogTile, backward: str) -> Tensor:
        ctx.tile, ctx.backward = tile, backward
        ctx.save_for_backward(x, weight)
        return tile.mvm(x, bias)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        x, weight = ctx.saved_tensors
        gx = None
        if ctx.needs_input_grad[0]:
            with torch.no_grad():
                if ctx.backward == "noisy_read":
                    gx = ctx.tile.mvm_transposed(grad)
                elif ctx.backward == "shadow":
                    gx = grad @ weight
                else:
                    gx = grad @ ctx.tile.mean_weight()
        gw = grad.t() @ x if ctx.needs_input_grad[1] else None
        gb = grad.sum(0) if ctx.needs_input_grad[2] else None
        return gx, gw, gb, None, None


class AnalogLayer(nn.Module):
    """Shared machinery of analog layers: host weights, tile, programming, probe."""

    weight: nn.Parameter
    bias: nn.Parameter | None
    _tile: AnalogTile | None

    def _setup(self, weight: Tensor, bias: Tensor | None, profile: DeviceProfile | str,
               clock: SimClock | None, generator: torch.Generator | None,
               seed: int | None = None, numerics: str = "exact") -> None:
        """``generator`` (on the weights' device) draws every device random number of this
        layer; without it one is seeded with ``seed``, or with a fresh seed from the operating
        system. ``chip_seed`` records the seed (None when a generator was given)."""
        self.profile = load_profile(profile)
        self.clock = clock if clock is not None else SimClock()
        self.weight = nn.Parameter(weight.detach().clone().float())
        self.bias = nn.Parameter(bias.detach().clone().float()) if bias is not None else None
        self.decorrelator: Decorrelator | None = None
        self._probe: LayerProbe | None = None
        dev = self.weight.device
        self.chip_seed: int | None = None
        if generator is None:
            self.chip_seed = seed if seed is not None else fresh_seed()
            generator = torch.Generator(dev).manual_seed(self.chip_seed)
        tile = None
        if not self.profile.is_ideal:
            tile = AnalogTile(self.weight.shape[0], self._matrix().shape[1], self.profile,
                              self.clock, generator, dev, numerics)
            tile.program(self._matrix(), noisy=True)
        self.add_module("_tile", tile)
        self.register_buffer("_programmed", self._matrix().detach().clone())

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        """A checkpoint with decorrelation matrices gives a fresh layer its ``Decorrelator``."""
        key = prefix + "decorrelator.R"
        if self.decorrelator is None and key in state_dict:
            k = state_dict[key].shape[0]
            self.decorrelator = Decorrelator(k, device=self.weight.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _matrix(self) -> Tensor:
        """Host weights as the crossbar's (out, K) matrix."""
        return self.weight.reshape(self.weight.shape[0], -1)

    @property
    def hardware(self) -> bool:
        """True when the layer runs on a noisy device (no clean pass exists)."""
        return self._tile is not None

    def program(self) -> None:
        """Write the host weights to the device through the profile's update model.

        ideal: exact write; noisy_write: re-program, with programming noise, the devices whose
        target changed; pulsed: apply the requested increment since the last write as pulses.
        Devices not written keep drifting. The realised weights are what the next forward
        reads.
        """
        target = self._matrix().detach()
        if self._tile is not None:
            kind = self.profile.update.kind
            if kind == "pulsed":
                self._tile.apply_increment(target - self._programmed)
            else:
                self._tile.program(target, noisy=(kind == "noisy_write"))
        self._programmed.copy_(target)

    def refresh(self) -> None:
        """Re-program every device to the host weights, with programming noise: what a chip's
        periodic refresh does (drift restarts; a fresh programming error is paid)."""
        target = self._matrix().detach()
        if self._tile is not None:
            self._tile.program(target, noisy=True, all_devices=True)
        self._programmed.copy_(target)

    def _mvm(self, x: Tensor, repeats: int, backward: str) -> Tensor:
        """(N, K) → (repeats·N, O) through the crossbar plus the digital bias (or all
        digitally on the ideal profile); each repeat is its own noisy read."""
        w, b = self._matrix(), self.bias
        if self._tile is None:
            a = F.linear(x, w, b)
            return a.repeat(repeats, 1) if repeats > 1 else a
        if torch.is_grad_enabled() and (x.requires_grad or w.requires_grad
                                        or (b is not None and b.requires_grad)):
            if repeats > 1:
                raise ValueError("shared passes (passes > 1) run without autograd")
            return _AnalogMVM.apply(x, w, b, self._tile, backward)
        return self._tile.mvm(x, b, repeats)

    def _expose(self, x: Tensor, b: int) -> Tensor:
        """Run the crossbar (bias included) on (B·L, K) inputs; inside a probe add its
        injection and record the trace.

        With the probe's ``passes`` > 1 the input holds that many copies of its first
        B·L/passes rows: they are decorrelated, converted and multiplied once and read once
        per pass. It applies to the layer's next call only.
        """
        pr = self._probe
        reps = 1
        if pr is not None and pr.passes > 1:
            reps, pr.passes = pr.passes, 1
            x = x[: x.shape[0] // reps]
        if self.decorrelator is not None:
            x = self.decorrelator(x)
        a = self._mvm(x, reps, pr.backward if pr is not None else "noisy_read")
        if pr is None:
            return a
        if reps > 1 and pr.record:
            x = x.repeat(reps, 1)
        if pr.inject is not None:
            a = a + pr.inject.reshape(a.shape)
        if pr.record:
            pr.trace = Trace(x.reshape(b, -1, x.shape[-1]), a.reshape(b, -1, a.shape[-1]))
        return a


class AnalogLinear(AnalogLayer):
    """y = W x + b on a crossbar. Input (B, in) → (B, out)."""

    def __init__(self, weight: Tensor, bias: Tensor | None, profile: DeviceProfile | str,
                 clock: SimClock | None = None, generator: torch.Generator | None = None,
                 seed: int | None = None, numerics: str = "exact") -> None:
        super().__init__()
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]
        self._setup(weight, bias, profile, clock, generator, seed, numerics)

    @classmethod
    def from_digital(cls, module: nn.Linear, profile: DeviceProfile | str,
                     clock: SimClock | None = None, generator: torch.Generator | None = None,
                     seed: int | None = None, numerics: str = "exact") -> AnalogLinear:
        """Program a digital ``nn.Linear``'s weights onto the device."""
        return cls(module.weight, module.bias, profile, clock, generator, seed, numerics)

    def to_digital(self) -> nn.Linear:
        """A digital ``nn.Linear`` with the host weights (the requested, not realised ones)."""
        lin = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None)
        with torch.no_grad():
            lin.weight.copy_(self.weight)
            if self.bias is not None:
                lin.bias.copy_(self.bias)
        return lin.to(self.weight.device)

    def forward(self, x: Tensor) -> Tensor:
        return self._expose(x, x.shape[0])

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, profile={self.profile.name}"


class AnalogConv2d(AnalogLayer):
    """2-D convolution as crossbar MVMs on unfolded patches. (B, C, H, W) → (B, O, H', W')."""

    def __init__(self, weight: Tensor, bias: Tensor | None, profile: DeviceProfile | str,
                 clock: SimClock | None = None, generator: torch.Generator | None = None,
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 dilation: int | tuple[int, int] = 1, seed: int | None = None,
                 numerics: str = "exact") -> None:
        super().__init__()
        self.out_channels, self.in_channels = weight.shape[0], weight.shape[1]
        self.kernel_size = tuple(weight.shape[2:])
        self.stride = nn.modules.utils._pair(stride)
        self.padding = nn.modules.utils._pair(padding)
        self.dilation = nn.modules.utils._pair(dilation)
        self._setup(weight, bias, profile, clock, generator, seed, numerics)

    @classmethod
    def from_digital(cls, module: nn.Conv2d, profile: DeviceProfile | str,
                     clock: SimClock | None = None, generator: torch.Generator | None = None,
                     seed: int | None = None, numerics: str = "exact") -> AnalogConv2d:
        """Program a digital ``nn.Conv2d`` (groups=1, zero padding) onto the device."""
        if module.groups != 1 or module.padding_mode != "zeros" or isinstance(module.padding, str):
            raise ValueError("AnalogConv2d supports groups=1, numeric zero padding only")
        return cls(module.weight, module.bias, profile, clock, generator,  # type: ignore[arg-type]
                   module.stride, module.padding, module.dilation, seed, numerics)

    def to_digital(self) -> nn.Conv2d:
        """A digital ``nn.Conv2d`` with the host weights."""
        conv = nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size,  # type: ignore[arg-type]
                         self.stride, self.padding, self.dilation, bias=self.bias is not None)
        with torch.no_grad():
            conv.weight.copy_(self.weight)
            if self.bias is not None:
                conv.bias.copy_(self.bias)
        return conv.to(self.weight.device)

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        k, s, p, d = self.kernel_size, self.stride, self.padding, self.dilation
        ho = (h + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
        wo = (w + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
        patches = F.unfold(x, k, dilation=d, padding=p, stride=s)  # (B, K, L)
        a = self._expose(patches.transpose(1, 2).reshape(b * ho * wo, -1), b)  # (B·L, O)
        return a.reshape(b, ho * wo, -1).transpose(1, 2).reshape(b, -1, ho, wo)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, profile={self.profile.name}")


def analog_layers(model: nn.Module) -> list[AnalogLayer]:
    """The analog layers of ``model`` in registration (= forward, for sequential nets) order."""
    return [m for m in model.modules() if isinstance(m, AnalogLayer)]
