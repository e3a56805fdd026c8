"""``AnalogTile``: the crossbar conductances of one weight matrix, program/read/MVM.

A matrix (out, in) is split into a grid of C×R crossbars of at most ``tile_cols`` inputs ×
``tile_rows`` outputs each (balanced chunks, minimal zero padding). The grid is stored batched
as (C, ci, R·ro): input chunk c, its ci inputs, all padded outputs — so one ``bmm`` runs every
crossbar, and every crossbar has its own DAC scaling and its own ADC. Weights map to
conductances per tile (or per column): the largest |w| of the tile becomes ``g_max``.

Nothing here returns the read noise: ``mvm`` draws it, adds it and quantizes; there is no
noise-free read. Per-sample read noise is exact without B×out×in draws: a read of device (i, j)
adds an independent N(0, v_ij) to w_ij, so output j of sample b gets N(0, Σ_i x_bi² v_ij),
i.e. one extra matmul (x²) @ v and one normal per output (and per input tile: each tile's
partial sum gets its own noise before its own ADC).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from analogsim.analog import normals, physics
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

    def tile_abs_sum(self, a: Tensor) -> Tensor:
        """Σ|a| over each crossbar of a (C, ci, out_p) tensor, broadcast to (C, 1, out_p)."""
        s = a.abs().reshape(self.n_col, self.ci, self.n_row, self.ro).sum(dim=(1, 3))
        return s.repeat_interleave(self.ro, dim=1).unsqueeze(1)


@functools.cache
def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return f.read()
    except OSError:
        return ""


def _fast_bf16(device: torch.device) -> bool:
    """Whether a bf16 matmul is faster than float32 here (CUDA, or a CPU with AVX-512 bf16)."""
    if device.type == "cuda":
        return True
    flags = _cpu_flags() if device.type == "cpu" else ""
    return "avx512_bf16" in flags or "amx_bf16" in flags


@functools.cache
def _cpu_int_mm() -> bool:
    """Whether this torch has a CPU ``torch._int_mm`` (torch ≥ 2.3) that gives exact sums."""
    try:
        a = torch.tensor([[127, -128], [3, 5]], dtype=torch.int8)
        return bool(torch.equal(torch._int_mm(a, a), (a.int() @ a.int())))
    except (AttributeError, RuntimeError, NotImplementedError):
        return False


def _fast_int8(device: torch.device) -> bool:
    """Whether an int8 matmul (``torch._int_mm``) is much faster than float32 here: a CPU with
    VNNI or AMX int8 instructions (4× on this project's AVX-512 VNNI machine)."""
    if device.type != "cpu" or not _cpu_int_mm():
        return False
    flags = _cpu_flags()
    return any(f in flags for f in ("avx512_vnni", "avx_vnni", "amx_int8"))


#: Base of the second int8 digit of the mean weights (|digit| ≤ 127).
_DIGIT = 254


def int8_digits(w: Tensor) -> tuple[Tensor, Tensor]:
    """Two signed int8 digits of (C, ci, out_p) weights, per crossbar column.

    w ≈ s·(q₁ + q₂/254), s = max_i |w[c, i, j]|/127 per column (C, 1, out_p); the error is
    ≤ s/508 = max|w|/64 516 per weight. Returns the digits side by side, (C, ci, 2·out_p) int8,
    and s. With integer DAC codes u (|u| ≤ 128), u @ digits is exact in int32.
    """
    s = w.abs().amax(dim=1, keepdim=True).clamp_min_(1e-30).div_(127)
    out_p = w.shape[2]
    q = torch.empty(*w.shape[:2], 2 * out_p, dtype=torch.int8, device=w.device)
    t = w / s
    q1 = torch.round(t)
    q[..., :out_p] = q1
    q[..., out_p:] = t.sub_(q1).mul_(_DIGIT).round_()
    return q, s


@dataclass
class _ReadModel:
    """What ``mvm`` reads at one device time, in ADC units (one output LSB = ``AnalogTile._b``
    normalized units) per DAC unit (one input LSB = ``AnalogTile._a``).

    w:   (C, ci, out_p) float32, mean weights w_n·gain·a/b (drifted, drift-compensated).
    wq, ws: ``int8_digits(w)`` when the mean product runs in int8; else None.
    var: (C, ci, out_p) read variance of each weight, var_n·(gain·a/b)²; bfloat16 when
         ``noise_bf16``; None without read noise.
    out_var: (1, 1, 1) output-noise variance (noise_std/b)², var's dtype; None if no noise.
    """

    w: Tensor
    var: Tensor | None
    out_var: Tensor | None
    wq: Tensor | None = None
    ws: Tensor | None = None
    w_eff: Tensor | None = None  # (out, in) mean weights in weight units, for the backward


class AnalogTile:
    """The conductances of one (out, in) weight matrix on a grid of crossbars.

    Conductances are stored relative to g_max (g = G/g_max ≥ 0), both devices of a
    differential pair stacked: (D, C, ci, out_p), D = 2 (G+, G−) or 1.

    Args:
        out_features, in_features: matrix shape.
        profile: the device.
        clock: device time source; programming stamps ``clock.now``.
        generator: draws every device random number (faults, programming, drift, reads).
        device: torch device of the state; float32.

    ``noise_bf16`` (default: where a bf16 matmul is faster, see ``_fast_bf16``): run the
    read-noise variance matmul (x²) @ v in bfloat16 (float32 accumulation). x², v and the
    output variance are rounded to 8 significant bits (relative error ≤ 2⁻⁸ each, unbiased
    round-to-nearest), so σ of an output is off by well under 1 % (the variance checks allow
    0.5 %). Set it False for a float32 variance matmul.

    ``int8_mean`` (default: a DAC of ≤ 8 bits, whose codes are int8, on a CPU with fast int8
    matmuls, see ``_fast_int8``): run the mean product u @ w as int8 × int8 → int32 matmuls on
    two int8 digits of the weights (``int8_digits``): exact sums, weights to 1/64 516 of their
    column's largest (float32: 2⁻²⁴), at about 0.6× a float32 matmul's time. Set it False for
    a float32 mean product.
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
        n_dev = 2 if m.differential else 1
        # Faults are a property of the devices: drawn once, for both devices of each pair
        # (always, so that the generator's stream does not depend on the fault fractions).
        f = profile.faults
        masks = [physics.fault_masks(shape, f, generator, self.device) for _ in range(n_dev)]
        self._stuck = ((torch.stack([lo for lo, _ in masks]), torch.stack([hi for _, hi in masks]))
                       if f.stuck_at_min_fraction > 0 or f.stuck_at_max_fraction > 0 else None)
        self._pulsed_dev = (physics.sample_pulsed_devices(shape, profile.update, generator,
                                                          self.device)
                            if isinstance(profile.update, PulsedUpdate) else None)
        self._state_n: Tensor | None = None  # pulsed device state, normalized units
        # Converter units (normalized units of the tile): a = one DAC step, b = one ADC step;
        # without DAC bits a = 1, without ADC bits b = a (outputs stay in DAC units).
        dac, adc = profile.dac, profile.adc
        self._a = dac.input_bound / 2 ** (dac.bits - 1) if dac.bits is not None else 1.0
        self._b = (adc.output_bound / 2 ** (adc.bits - 1)  # type: ignore[operator]
                   if adc.bits is not None else self._a)
        rn = profile.read_noise
        self._rel_noise = rn.q_coeff > 0 and rn.q_max > 0
        self._rel_noise_ln = self._rel_noise and rn.q_exp != 0  # σ_rel depends on ln g
        self._g = torch.zeros(n_dev, *shape, device=self.device)  # G/g_max
        self._ln_g: Tensor | None = None  # ln g, floored (see _write), when σ_rel depends on g
        self._nu: Tensor | None = None  # drift exponents, (D, C, ci, out_p)
        self._ref: Tensor | None = None  # Σ|w_n| per tile at programming, (C, 1, out_p)
        self._scale = torch.ones(self.grid.n_col, 1, self.grid.out_padded, device=self.device)
        self._t_prog = clock.now
        self._version = 0
        self._cache_key: tuple[int, float | None, bool, bool] | None = None
        self._cache: _ReadModel | None = None
        self._noise_bf16 = _fast_bf16(self.device)
        self._gen2: torch.Generator | None = None  # second-half normals (``normals.randn``)
        # int8 mean product: DAC codes fit int8, and the CPU kernel of torch._int_mm
        self._int8_ok = (dac.bits is not None and dac.bits <= 8 and self.device.type == "cpu"
                         and _cpu_int_mm())
        self._int8_mean = self._int8_ok and _fast_int8(self.device)

    @property
    def int8_mean(self) -> bool:
        """Mean product on int8 weight digits (see the class docstring)."""
        return self._int8_mean

    @int8_mean.setter
    def int8_mean(self, value: bool) -> None:
        if value and not self._int8_ok:
            raise ValueError("int8_mean needs a DAC of at most 8 bits (integer codes) on a CPU "
                             "(torch ≥ 2.3)")
        self._int8_mean = bool(value)
        self._cache_key = None

    @property
    def noise_bf16(self) -> bool:
        """Read-noise variance matmul in bfloat16 (see the class docstring)."""
        return self._noise_bf16

    @noise_bf16.setter
    def noise_bf16(self, value: bool) -> None:
        self._noise_bf16 = bool(value)
        self._cache_key = None

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
        """Program (C, ci, out_p) weights ``w`` with per-tile/column ``scale`` (C, 1, out_p).

        Works in g = G/g_max: the physics functions are unit-consistent with g_max = 1.
        """
        p = self.profile
        w_n = w / scale
        if p.mapping.differential:  # G+ carries w_n > 0, G− carries w_n < 0
            g = torch.stack((w_n, -w_n)).clamp_min_(0)
        else:  # one device read against g_max/2: w_n = 2g − 1
            g = w_n.clamp_(-1, 1).add_(1).mul_(0.5).unsqueeze(0)
        if p.mapping.levels is not None:
            g = physics.quantize_levels(g, 1.0, p.mapping.levels)
        # One draw of every normal the write needs: (kinds, D, C, ci, out_p), programming
        # noise first, then drift exponents (``normals.randn``: two halves on two threads).
        prog = noisy and any(c != 0 for c in p.programming.sigma_poly_uS)
        kinds = int(prog) + int(p.drift.enabled)
        xi = self._normals((kinds, *g.shape)) if kinds else None
        xi_prog = xi[0] if prog and xi is not None else None
        xi_nu = xi[kinds - 1] if p.drift.enabled and xi is not None else None
        if prog:
            g = physics.program(g, 1.0, p.programming, self.generator, xi_prog)
        if self._stuck is not None:
            g = physics.apply_faults(g, *self._stuck, 1.0)
        nu_ln = p.drift.enabled and (p.drift.nu_mean.ln_slope != 0
                                     or p.drift.nu_std.ln_slope != 0)
        # ln g, floored below every clamp its users apply (log(0) is torch's slow path)
        ln_g = (g.clamp_min(min(p.read_noise.g_rel_floor, 1e-12)).log_()
                if self._rel_noise_ln or nu_ln else None)
        self._ln_g = ln_g if self._rel_noise_ln else None
        self._nu = (physics.sample_drift_nu(g, 1.0, p.drift.nu_mean, p.drift.nu_std,
                                            self.generator, ln_g, xi_nu)
                    if p.drift.enabled else None)
        # Global drift compensation references Σ|w_n| per tile just after programming.
        self._ref = (self.grid.tile_abs_sum(self._weight_n(g))
                     if p.drift.enabled and p.drift.compensation else None)
        self._g, self._scale = g, scale
        self._t_prog = self.clock.now
        self._version += 1
        self._cache_key = None

    # ----------------------------------------------------------------------------- reading
    def _weight_n(self, g: Tensor) -> Tensor:
        """Normalized weights (C, ci, out_p) of stacked relative conductances g (D, …)."""
        if self.profile.mapping.differential:
            return g[0] - g[1]
        return g[0] * 2 - 1

    def _read_model(self) -> _ReadModel:
        """Mean weights and read variances at ``clock.now``, in converter units (cached).

        Drift: g(t) = g·exp(−ν·L), L = ln((dt + t0)/t0), both devices in one op; the read-noise
        model gets ln g(t) = ln g − ν·L from the cached ln g (no log, no pow).
        """
        p = self.profile
        dt = max(self.clock.now - self._t_prog, 0.0)
        drift, rn = p.drift.enabled, p.read_noise
        key = (self._version, dt if drift or rn.one_over_f else None, self._noise_bf16,
               self._int8_mean)
        if self._cache_key == key and self._cache is not None:
            return self._cache
        g, ln_g = self._g, self._ln_g  # (D, C, ci, out_p) at dt
        if drift and dt > 0:
            assert self._nu is not None
            ell = physics.drift_log_factor(dt, p.drift.t0_s)
            g = torch.exp(self._nu * -ell).mul_(self._g)
            ln_g = torch.add(self._ln_g, self._nu, alpha=-ell) if self._ln_g is not None else None
        w = self._weight_n(g)
        gain: Tensor | float = 1.0
        if self._ref is not None:
            # Global drift compensation, one scalar per tile: a reference read of Σ|w| just
            # after programming against one now (averaged reads: the read noise cancels).
            gain = self._ref / self.grid.tile_abs_sum(w).clamp_min(1e-12)
            w.mul_(gain * (self._a / self._b))
        elif self._a != self._b:
            w.mul_(self._a / self._b)
        var = None
        if self._rel_noise or rn.absolute_uS > 0:
            pair = 1.0 if p.mapping.differential else 4.0  # w_n = 2g − 1
            unit = pair * (self._a / self._b) ** 2  # var(w_n) → (ADC units / DAC unit)²
            if self._rel_noise:
                v = physics.read_variance_rel(g, ln_g, rn, dt, p.drift.t0_s, unit).sum(0)
            else:
                v = torch.zeros(self._shape, device=self.device)
            if rn.absolute_uS > 0:
                v.add_(self._g.shape[0] * unit * (rn.absolute_uS / p.mapping.g_max_uS) ** 2)
            if isinstance(gain, Tensor):
                v.mul_(gain.square())
            var = v.to(torch.bfloat16) if self._noise_bf16 else v
        out_var = None
        if p.adc.noise_std > 0:
            out_var = torch.full((1, 1, 1), (p.adc.noise_std / self._b) ** 2, device=self.device,
                                 dtype=var.dtype if var is not None else torch.float32)
        wq, ws = int8_digits(w) if self._int8_mean else (None, None)
        self._cache_key, self._cache = key, _ReadModel(w, var, out_var, wq, ws)
        return self._cache

    def _effective_weight(self) -> Tensor:
        """Mean (noise-free expectation) weights the chip computes with now, (out, in).

        Used by the straight-through backward of hardware-aware BP; not a pass: no input and
        no periphery involved.
        """
        m = self._read_model()
        if m.w_eff is None:
            m.w_eff = self.grid.from_grid(m.w * (self._scale * (self._b / self._a)))
        return m.w_eff

    def mvm(self, x: Tensor, bias: Tensor | None = None, repeats: int = 1) -> Tensor:
        """One analog matrix-vector product per row of ``x`` (N, in) → (repeats·N, out), plus
        the digital ``bias`` (out,) if given.

        DAC (per-sample, per-tile absmax scaling, bits, clipping) → crossbar read with fresh
        per-sample read noise → additive output noise → ADC (bits, saturation) per tile →
        digital rescale and sum over input tiles. The crossbar sees DAC codes u (x = s·u,
        integers when quantized) and reads in ADC units, so the ADC is round + clamp, and the
        digital side folds the per-sample DAC scale s and the per-tile weight scale into one
        weighted sum over tiles. Random draws: (C, repeats·N, out_p) normals per call
        (``normals.randn``: two halves, two generators).

        ``repeats`` > 1 reads ``x`` that many times, each read with its own noise — what
        ``repeats`` passes of the same input do — computing the DAC codes, the mean product
        and the read variances once.
        """
        p, gr = self.profile, self.grid
        n, c_n = x.shape[0], gr.n_col
        m = self._read_model()
        xp = x if gr.in_padded == gr.in_features else torch.nn.functional.pad(
            x, (0, gr.in_padded - gr.in_features))
        xv = xp.reshape(n, c_n, gr.ci).transpose(0, 1)  # (C, N, ci) view
        u = torch.empty(c_n, n, gr.ci, device=x.device, dtype=torch.float32)
        # DAC: x = s·u, u in DAC steps (integer codes when quantized), |u·a| ≤ input_bound.
        dac, a, b = p.dac, self._a, self._b
        if dac.scaling == "absmax":
            s = xv.abs().amax(dim=2, keepdim=True)  # (C, N, 1)
            s = s.clamp_min_(1e-30).mul_(a / dac.input_bound)
            torch.div(xv, s, out=u)
            k: Tensor | float = s.mul_(b / a)  # (C, N, 1): ADC units → x units
        else:
            torch.div(xv, a, out=u)
            k = b  # x = u·a is already normalized
        if dac.bits is not None:
            half = 2 ** (dac.bits - 1)
            u.round_().clamp_(-half, half - 1)
        elif dac.scaling == "none":
            u.clamp_(-dac.input_bound, dac.input_bound)
        # Crossbar read: mean product plus read and output noise, in ADC units.
        noise = self._read_noise(u, m, repeats)  # (C, repeats·N, out_p) or None
        if repeats == 1:
            y = self._mean_product(u, m, noise)  # (C, N, out_p)
        else:
            mean = self._mean_product(u, m, None).unsqueeze(1)  # (C, 1, N, out_p)
            y = (noise.view(c_n, repeats, n, -1).add_(mean) if noise is not None
                 else mean.expand(-1, repeats, -1, -1)).reshape(c_n, repeats * n, -1)
            if isinstance(k, Tensor):
                k = k.repeat(1, repeats, 1)
        if p.adc.bits is not None:
            half = 2 ** (p.adc.bits - 1)
            y.round_().clamp_(-half, half - 1)
        elif p.adc.output_bound is not None:
            y.clamp_(-p.adc.output_bound / b, p.adc.output_bound / b)
        return self._digital_sum(y, k, bias)[:, : gr.out_features]

    def _digital_sum(self, y: Tensor, k: Tensor | float, bias: Tensor | None) -> Tensor:
        """out[n, j] = bias[j] + Σ_c k[c, n]·scale[c, j]·y[c, n, j], (N, out_p), weight·x units.

        y: (C, N, out_p) ADC codes; k: (C, N, 1) per-sample DAC scales (or a number).
        With a weight scale per crossbar it is folded into k, one output tile at a time.
        """
        gr = self.grid
        if bias is not None and gr.out_padded != gr.out_features:
            bias = torch.nn.functional.pad(bias, (0, gr.out_padded - gr.out_features))
        if self.profile.mapping.scale == "tile":
            f = self._scale[:, :, :: gr.ro] * k  # (C, N or 1, R)
            out = torch.empty(y.shape[1], gr.out_padded, device=y.device)
            for r in range(gr.n_row):
                blk = slice(r * gr.ro, (r + 1) * gr.ro)
                self._weighted_sum(y[:, :, blk], f[:, :, r:r + 1],
                                   bias[blk] if bias is not None else None, out[:, blk])
            return out
        y.mul_(self._scale)
        kk = k if isinstance(k, Tensor) else torch.full((gr.n_col, 1, 1), k, device=y.device)
        return self._weighted_sum(y, kk, bias, torch.empty(y.shape[1:], device=y.device))

    @staticmethod
    def _weighted_sum(y: Tensor, f: Tensor, bias: Tensor | None, out: Tensor) -> Tensor:
        """out = bias + Σ_c f[c]·y[c]; y (C, N, J), f (C, N or 1, 1), out (N, J)."""
        if bias is None:
            torch.mul(y[0], f[0], out=out)
        else:
            torch.addcmul(bias, y[0], f[0], out=out)
        for c in range(1, y.shape[0]):
            out.addcmul_(y[c], f[c])
        return out

    def _normals(self, shape: tuple[int, ...]) -> Tensor:
        """float32 N(0, 1) of ``shape`` from the tile's generators (``normals.randn``). The
        second generator is seeded from ``self.generator`` at the first CPU draw; re-seeding
        ``self.generator`` later does not re-seed it (set ``_gen2 = None`` to replay a stream).
        """
        if self._gen2 is None and self.device.type == "cpu":
            self._gen2 = normals.second_generator(self.generator)
        return normals.randn(shape, self.generator, self._gen2)

    def _read_noise(self, u: Tensor, m: _ReadModel, repeats: int = 1) -> Tensor | None:
        """σ·z for (C, N, ci) DAC codes read ``repeats`` times: one normal per tile, read,
        sample and output, (C, repeats·N, out_p) float32, σ² = u² @ var + σ_out²; None without
        read or output noise."""
        if m.var is None and m.out_var is None:
            return None
        c_n, n = u.shape[0], u.shape[1]
        z = self._normals((c_n, repeats * n, self.grid.out_padded))
        if m.var is None:
            return z.mul_(m.out_var.float().sqrt())  # type: ignore[union-attr]
        u2 = torch.mul(u, u, out=torch.empty_like(u, dtype=m.var.dtype))
        var = (torch.bmm(u2, m.var) if m.out_var is None
               else torch.baddbmm(m.out_var, u2, m.var))
        sig = torch.sqrt(var, out=torch.empty(var.shape, device=var.device))  # float32
        z.view(c_n, repeats, n, -1).mul_(sig.unsqueeze(1))
        return z

    @staticmethod
    def _mean_product(u: Tensor, m: _ReadModel, add: Tensor | None) -> Tensor:
        """``add`` + u @ w per crossbar: (C, N, ci) DAC codes → (C, N, out_p) float32.

        ``add`` (C, N, out_p), the read noise, is accumulated into in place (or None).
        int8 path: both digits in one int8 × int8 → int32 matmul per tile and block of rows
        (an output over ~8 MB would come from fresh pages every call); the digits are combined
        in int32 (q₁·254 + q₂, exact while ci·128·(127·254 + 127) < 2³¹) and scaled once.
        """
        if m.wq is None:
            return torch.bmm(u, m.w) if add is None else torch.baddbmm(add, u, m.w)
        assert m.ws is not None
        c_n, n, ci = u.shape
        out_p = m.ws.shape[2]
        u8 = u.to(torch.int8)  # exact: integer codes in [−128, 127]
        y = add if add is not None else torch.zeros(c_n, n, out_p, device=u.device)
        int_combine = ci * 128 * (127 * _DIGIT + 127) < 2**31
        rows = max(1, (1 << 21) // (2 * out_p))
        for c in range(c_n):
            unit = m.ws[c] / _DIGIT  # (1, out_p): one unit of the second digit
            for r in range(0, n, rows):
                acc = torch._int_mm(u8[c, r:r + rows], m.wq[c])  # (rows, 2·out_p) int32
                hi, lo = acc[:, :out_p], acc[:, out_p:]
                yc = y[c, r:r + rows]
                if int_combine:  # hi·254 + lo, exact in int32, then one scaled add
                    yc.addcmul_(lo.add_(hi, alpha=_DIGIT), unit)
                else:
                    yc.addcmul_(hi, m.ws[c]).addcmul_(lo, unit)
        return y

    @property
    def programmed_at(self) -> float:
        """Device time (s) of the last write."""
        return self._t_prog

    def conductance_stats(self) -> dict[str, float]:
        """Summary of the programmed state (mean/max µS) for reports."""
        g_max = self.profile.mapping.g_max_uS
        return {"g_mean_uS": float(self._g.mean()) * g_max,
                "g_max_uS": float(self._g.max()) * g_max}
