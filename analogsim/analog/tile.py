"""``AnalogTile``: the crossbar conductances of one weight matrix, program/read/MVM.

A matrix (out, in) is split into a grid of C×R crossbars of at most ``tile_cols`` inputs ×
``tile_rows`` outputs each (balanced chunks, minimal zero padding). The grid is stored batched
as (C, ci, R·ro): input chunk c, its ci inputs, all padded outputs — so one ``bmm`` runs every
crossbar, and every crossbar has its own DAC scaling and its own ADC. Weights map to
conductances per tile (or per column): the largest |w| of the tile becomes ``g_max``.

Nothing here returns the read noise: ``mvm`` draws it, adds it and quantizes; there is no
noise-free read. Per-sample read noise is exact without B×out×in draws: a read of device (i, j)
adds an independent N(0, v_ij) to w_ij, so output j of sample b gets N(0, Σ_i x_bi² v_ij),
i.e. one extra matmul (x²) @ v and one normal per output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from analogsim.analog import physics
from analogsim.clock import SimClock
from analogsim.config.profile import DeviceProfile, PulsedUpdate


@dataclass(frozen=True)
class TileGrid:
    """Shape bookkeeping of a tiled (out, in) matrix."""

    out_features: int
    in_features: int
    n_col: int  # C: input chunks
    n_row: int  # R: output chunks
    ci: int  # inputs per crossbar (padded)
    ro: int  # outputs per crossbar (padded)

    @classmethod
    def for_matrix(cls, out_f: int, in_f: int, tile_rows: int, tile_cols: int) -> TileGrid:
        n_col, n_row = math.ceil(in_f / tile_cols), math.ceil(out_f / tile_rows)
        return cls(out_f, in_f, n_col, n_row, math.ceil(in_f / n_col), math.ceil(out_f / n_row))

    @property
    def in_padded(self) -> int:
        return self.n_col * self.ci

    @property
    def out_padded(self) -> int:
        return self.n_row * self.ro

    def to_grid(self, w: Tensor) -> Tensor:
        """(out, in) → (C, ci, out_p), zero padded."""
        wp = torch.nn.functional.pad(w, (0, self.in_padded - self.in_features,
                                          0, self.out_padded - self.out_features))
        return wp.t().reshape(self.n_col, self.ci, self.out_padded)

    def from_grid(self, g: Tensor) -> Tensor:
        """(C, ci, out_p) → (out, in)."""
        return g.reshape(self.in_padded, self.out_padded).t()[: self.out_features,
                                                              : self.in_features]

    def tile_max(self, a: Tensor) -> Tensor:
        """Max over each crossbar of a (C, ci, out_p) tensor, broadcast to (C, 1, out_p)."""
        m = a.reshape(self.n_col, self.ci, self.n_row, self.ro).amax(dim=(1, 3))  # (C, R)
        return m.repeat_interleave(self.ro, dim=1).unsqueeze(1)

    def tile_sum(self, a: Tensor) -> Tensor:
        """Sum over each crossbar, broadcast to (C, 1, out_p)."""
        s = a.reshape(self.n_col, self.ci, self.n_row, self.ro).sum(dim=(1, 3))
        return s.repeat_interleave(self.ro, dim=1).unsqueeze(1)


def _fast_bf16(device: torch.device) -> bool:
    """Whether a bf16 matmul is faster than float32 here (CUDA, or a CPU with AVX-512 bf16)."""
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class AnalogTile:
    """The conductances of one (out, in) weight matrix on a grid of crossbars.

    Args:
        out_features, in_features: matrix shape.
        profile: the device.
        clock: device time source; programming stamps ``clock.now``.
        generator: draws every device random number (faults, programming, drift, reads).
        device: torch device of the state; float32.
    """

    def __init__(self, out_features: int, in_features: int, profile: DeviceProfile,
                 clock: SimClock, generator: torch.Generator,
                 device: torch.device | str = "cpu") -> None:
        self.profile = profile
        self.clock = clock
        self.generator = generator
        self.device = torch.device(device)
        m = profile.mapping
        self.grid = TileGrid.for_matrix(out_features, in_features, m.tile_rows, m.tile_cols)
        shape = torch.Size((self.grid.n_col, self.grid.ci, self.grid.out_padded))
        self._shape = shape
        # Faults are a property of the devices: drawn once, for both devices of each pair.
        n_dev = 2 if m.differential else 1
        masks = [physics.fault_masks(shape, profile.faults, generator, self.device)
                 for _ in range(n_dev)]
        self._stuck = masks
        self._has_faults = (profile.faults.stuck_at_min_fraction > 0
                            or profile.faults.stuck_at_max_fraction > 0)
        self._pulsed_dev = (physics.sample_pulsed_devices(shape, profile.update, generator,
                                                          self.device)
                            if isinstance(profile.update, PulsedUpdate) else None)
        self._state_n: Tensor | None = None  # pulsed device state, normalized units
        self._g: list[Tensor] = []  # programmed conductances, µS, one per device of the pair
        self._nu: list[Tensor] = []
        self._scale = torch.ones(self.grid.n_col, 1, self.grid.out_padded, device=self.device)
        self._t_prog = clock.now
        self._version = 0
        self._cache_key: tuple[float, int] | None = None
        self._cache: tuple[Tensor, Tensor | None] | None = None
        self.noise_bf16 = _fast_bf16(self.device)

    # ----------------------------------------------------------------------------- programming
    def program(self, weight: Tensor, noisy: bool = True) -> None:
        """Write target weights (out, in) as conductances; stamps the clock.

        ``noisy``: apply the profile's programming noise (initial programming and
        ``noisy_write`` updates); the ideal update model writes exactly. Faults always apply.
        """
        w = self.grid.to_grid(weight.detach().to(self.device, torch.float32))
        first = self._version == 0
        if self.profile.mapping.scale == "tile":
            scale = self.grid.tile_max(w.abs()).clamp_min(1e-12)
        else:
            scale = w.abs().amax(dim=1, keepdim=True).clamp_min(1e-12)
        if self._pulsed_dev is not None:
            if first:
                self._scale = scale / self.profile.update.init_fill  # type: ignore[union-attr]
            dev = self._pulsed_dev
            self._state_n = torch.minimum(torch.maximum(w / self._scale, dev["w_min"]),
                                          dev["w_max"])
            self._write(self._state_n * self._scale, self._scale, noisy)
            return
        self._write(w, scale, noisy)

    def apply_increment(self, delta: Tensor) -> None:
        """Pulsed devices: apply a requested weight increment (out, in) as pulses."""
        assert self._pulsed_dev is not None and self._state_n is not None
        d = self.grid.to_grid(delta.detach().to(self.device, torch.float32)) / self._scale
        self._state_n = physics.pulsed_update(self._state_n, d, self._pulsed_dev,
                                              self.profile.update,  # type: ignore[arg-type]
                                              self.generator)
        self._write(self._state_n * self._scale, self._scale, noisy=False)

    def _write(self, w: Tensor, scale: Tensor, noisy: bool) -> None:
        p, g_max = self.profile, self.profile.mapping.g_max_uS
        w_n = w / scale
        if p.mapping.differential:
            targets = [w_n.clamp_min(0) * g_max, (-w_n).clamp_min(0) * g_max]
        else:
            targets = [(w_n.clamp(-1, 1) + 1) / 2 * g_max]
        g_list, nu_list = [], []
        for g, (low, high) in zip(targets, self._stuck, strict=True):
            if p.mapping.levels is not None:
                g = physics.quantize_levels(g, g_max, p.mapping.levels)
            if noisy and any(c != 0 for c in p.programming.sigma_poly_uS):
                g = physics.program(g, g_max, p.programming, self.generator)
            if self._has_faults:
                g = physics.apply_faults(g, low, high, g_max)
            g_list.append(g)
            if p.drift.enabled:
                nu_list.append(physics.sample_drift_nu(g, g_max, p.drift.nu_mean,
                                                       p.drift.nu_std, self.generator))
        self._g, self._nu, self._scale = g_list, nu_list, scale
        self._t_prog = self.clock.now
        self._version += 1
        self._cache_key = None

    # ----------------------------------------------------------------------------- reading
    def _drifted(self, dt_s: float) -> list[Tensor]:
        if not self.profile.drift.enabled:
            return self._g
        t0 = self.profile.drift.t0_s
        return [g * physics.drift_factor(nu, dt_s, t0) for g, nu in zip(self._g, self._nu)]

    def _weight_n(self, g: list[Tensor]) -> Tensor:
        """Normalized weight of conductances ``g`` (one tensor per device of the pair)."""
        g_max = self.profile.mapping.g_max_uS
        if self.profile.mapping.differential:
            return (g[0] - g[1]) / g_max
        return 2 * g[0] / g_max - 1

    def _read_model(self) -> tuple[Tensor, Tensor | None]:
        """Normalized mean weights and per-device read variance at ``clock.now`` (cached)."""
        key = (self.clock.now, self._version)
        if self._cache_key == key and self._cache is not None:
            return self._cache
        p, g_max = self.profile, self.profile.mapping.g_max_uS
        dt = max(self.clock.now - self._t_prog, 0.0)
        g_t = self._drifted(dt)
        w_n = self._weight_n(g_t)
        gain: Tensor | float = 1.0
        if p.drift.enabled and p.drift.compensation:
            # Global drift compensation, one scalar per tile: a reference read of Σ|w| just
            # after programming against one now (averaged reads: the read noise cancels).
            ref = self.grid.tile_sum(self._weight_n(self._g).abs())
            gain = ref / self.grid.tile_sum(w_n.abs()).clamp_min(1e-12)
            w_n = w_n * gain
        var = None
        rn = p.read_noise
        if rn.q_coeff > 0 or rn.absolute_uS > 0:
            v = sum(physics.read_variance_uS2(g, g_max, rn, dt, p.drift.t0_s) for g in g_t)
            pair = 1.0 if p.mapping.differential else 4.0  # w_n = 2G/g_max − 1
            var = v * (pair / g_max**2) * gain**2
            if self.noise_bf16:
                var = var.to(torch.bfloat16)
        self._cache_key, self._cache = key, (w_n, var)
        return w_n, var

    def _effective_weight(self) -> Tensor:
        """Mean (noise-free expectation) weights the chip computes with now, (out, in).

        Used by the straight-through backward of hardware-aware BP; not a pass: no input and
        no periphery involved.
        """
        w_n, _ = self._read_model()
        return self.grid.from_grid(w_n * self._scale)

    def mvm(self, x: Tensor) -> Tensor:
        """One analog matrix-vector product per row of ``x`` (N, in) → (N, out).

        DAC (per-sample, per-tile absmax scaling, bits, clipping) → crossbar read with fresh
        per-sample read noise → additive output noise → ADC (bits, saturation) per tile →
        digital rescale and sum over input tiles. Quantizer steps are folded into the integer
        codes so every element-wise stage is one or two in-place ops.
        """
        p, gr = self.profile, self.grid
        n = x.shape[0]
        xp = torch.nn.functional.pad(x, (0, gr.in_padded - gr.in_features))
        xc = xp.reshape(n, gr.n_col, gr.ci).transpose(0, 1)  # (C, N, ci)
        # DAC: x = s·u with u in DAC units (integer codes when quantized).
        # x_n (normalized, within ±input_bound) = u·unit; u are integer codes when quantized.
        unit = 1.0
        if p.dac.bits is not None:
            unit = p.dac.input_bound / 2 ** (p.dac.bits - 1)
        if p.dac.scaling == "absmax":  # x_n = x·bound/max|x|, so x = u·s
            s = xc.abs().amax(dim=2, keepdim=True).clamp_min_(1e-30) * (unit / p.dac.input_bound)
            u = xc / s
        else:
            s = None
            u = xc / unit
        if p.dac.bits is not None:
            half = 2 ** (p.dac.bits - 1)
            u = u.round_().clamp_(-half, half - 1)
        elif p.dac.scaling == "none":
            u = u.clamp(-p.dac.input_bound, p.dac.input_bound)
        w_n, var = self._read_model()
        y = torch.bmm(u, w_n)  # (C, N, out_p), in units of `unit`
        out_var = (p.adc.noise_std / unit) ** 2
        if var is not None:
            sig = torch.bmm((u * u).to(var.dtype), var).to(y.dtype)
            if out_var > 0:
                sig.add_(out_var)
            sig.sqrt_()
            y.addcmul_(torch.randn(y.shape, generator=self.generator, device=y.device,
                                   dtype=y.dtype), sig)
        elif out_var > 0:
            y.add_(torch.randn(y.shape, generator=self.generator, device=y.device,
                               dtype=y.dtype), alpha=out_var**0.5)
        out_unit = unit
        if p.adc.bits is not None:
            half = 2 ** (p.adc.bits - 1)
            out_unit = p.adc.output_bound / half  # type: ignore[operator]
            y.mul_(unit / out_unit).round_().clamp_(-half, half - 1)
        elif p.adc.output_bound is not None:
            y.clamp_(-p.adc.output_bound / unit, p.adc.output_bound / unit)

        y.mul_(self._scale * out_unit)  # y_n·scale: weight units (for x_n inputs)
        if s is not None:
            y.mul_(s / unit)  # back from x_n to x
        return y.sum(dim=0)[:, : gr.out_features]

    @property
    def programmed_at(self) -> float:
        """Device time (s) of the last write."""
        return self._t_prog

    def conductance_stats(self) -> dict[str, float]:
        """Summary of the programmed state (mean/max µS, stuck fraction) for reports."""
        g = torch.stack(self._g)
        return {"g_mean_uS": float(g.mean()), "g_max_uS": float(g.max())}
