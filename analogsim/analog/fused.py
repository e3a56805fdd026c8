"""The element-wise device math of a tile as single passes: the read model at a device time
and the re-programming of a write.

Each function here is plain torch on whole device arrays and means exactly what the
step-by-step code in ``state`` and ``tile`` means (the float32 reference path, used by
``numerics: "exact"``). Under ``numerics: "fast"`` the tile calls them through
``torch.compile`` (``kernel``), which turns each into one loop over the devices instead of a
chain of ~20 passes that each read and write every device array. Profile constants travel as
one float64 tensor (``consts``) so that one compiled kernel serves every tile and profile of a
structure; only the structure (which effects are on) picks the kernel.

Shapes: device arrays (D, C, ci, out_p), D = 2 for a differential pair, else 1; per-weight
outputs (C, ci, out_p).
"""

from __future__ import annotations

import functools
import math
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from analogsim.analog import normals, physics
from analogsim.analog.numerics import DIGIT
from analogsim.config.profile import DeviceProfile


@dataclass(frozen=True)
class Structure:
    """Which effects a profile has on (what the compiled kernels specialise on)."""

    differential: bool
    drift: bool
    rel_noise: bool  # 1/f-type read noise relative to G (Q_s)
    one_over_f: bool
    abs_noise: bool
    prog: bool  # programming noise on noisy writes
    faults: bool
    nu_mean_log: bool  # μ_ν depends on ln G (else a constant)
    nu_std_log: bool
    poly_degree: int  # of σ_prog(G)
    levels: bool  # targets snapped to conductance levels
    q_pow: bool = True  # Q_s depends on G (q_exp ≠ 0; else the constant q_coeff)
    # t_read/t0 < 2⁻²⁴: the 1/f term ln((dt + t0 + t_read)/(2 t_read)) is the drift's
    # ln((dt + t0)/t0) plus a constant to within t_read/t0 (< a float32 ulp of a term ≥ 15.9)
    short_read: bool = False

    @classmethod
    def of(cls, p: DeviceProfile, faults: bool) -> Structure:
        rn = p.read_noise
        return cls(p.mapping.differential, p.drift.enabled, rn.q_coeff > 0 and rn.q_max > 0,
                   rn.one_over_f, rn.absolute_uS > 0,
                   any(c != 0 for c in p.programming.sigma_poly_uS), faults,
                   p.drift.nu_mean.ln_slope != 0, p.drift.nu_std.ln_slope != 0,
                   len(p.programming.sigma_poly_uS) - 1, p.mapping.levels is not None,
                   rn.q_exp != 0, rn.t_read_s / p.drift.t0_s < 2.0**-24)


#: Order of the profile constants in ``consts`` (one float64 tensor).
CONST_NAMES = ("t0", "unit", "t0_plus_t_read", "two_t_read", "abs_var", "var_scale",
               "q_coeff", "q_exp", "q_max", "g_floor", "mu_slope", "mu_icpt", "mu_min",
               "mu_max", "sd_slope", "sd_icpt", "sd_min", "sd_max", "level_step", "ln_read",
               "ln_t0")
_I = {n: i for i, n in enumerate(CONST_NAMES)}


def consts(p: DeviceProfile, unit: float, device: torch.device) -> tuple[Tensor, Tensor]:
    """(constants, σ_prog polynomial coefficients) of profile ``p`` as float64 tensors.

    ``unit``: converter units per normalized weight (a/b). The polynomial is in G/g_max with
    the g_max/g_max_ref scaling folded in (as ``physics.programming_sigma_uS`` with g_max = 1).
    """
    rn, dr, m = p.read_noise, p.drift, p.mapping
    pair = 1.0 if m.differential else 4.0  # w_n = 2g − 1 for one device
    n_dev = 2 if m.differential else 1
    k = 1.0 / p.programming.g_max_ref_uS  # (g_max = 1 in relative units)
    vals = {
        "t0": dr.t0_s, "unit": unit, "t0_plus_t_read": dr.t0_s + rn.t_read_s,
        "two_t_read": 2 * rn.t_read_s,
        "abs_var": n_dev * (rn.absolute_uS / m.g_max_uS) ** 2, "var_scale": pair * unit**2,
        "q_coeff": rn.q_coeff, "q_exp": rn.q_exp, "q_max": rn.q_max, "g_floor": rn.g_rel_floor,
        "mu_slope": dr.nu_mean.ln_slope, "mu_icpt": dr.nu_mean.intercept,
        "mu_min": dr.nu_mean.min, "mu_max": dr.nu_mean.max,
        "sd_slope": dr.nu_std.ln_slope, "sd_icpt": dr.nu_std.intercept,
        "sd_min": dr.nu_std.min, "sd_max": dr.nu_std.max,
        "level_step": 1.0 / (m.levels - 1) if m.levels is not None else 1.0,
        "ln_read": math.log((dr.t0_s + rn.t_read_s) / (2 * rn.t_read_s)),
        "ln_t0": math.log(dr.t0_s),
    }
    c = torch.tensor([vals[n] for n in CONST_NAMES], dtype=torch.float64, device=device)
    poly = torch.tensor(p.programming.sigma_poly_uS, dtype=torch.float64, device=device) * k
    return c, poly


@dataclass(frozen=True)
class Fusion:
    """What a tile passes to the kernels: its profile's structure and constants."""

    structure: Structure
    c: Tensor  # ``consts``
    poly: Tensor

    @classmethod
    def of(cls, p: DeviceProfile, unit: float, faults: bool, device: torch.device) -> Fusion:
        c, poly = consts(p, unit, device)
        return cls(Structure.of(p, faults), c, poly)


# ------------------------------------------------------------------------------ read model
def split_times(t_prog: Tensor) -> tuple[Tensor, Tensor]:
    """Programming times (float64, s) as two float32 words (t_hi, t_lo): t_hi the nearest
    float32, t_lo the rest rounded to float32 (t_hi + t_lo = t_prog to ~2⁻⁴⁸ relative)."""
    hi = t_prog.to(torch.float32)
    return hi, (t_prog - hi.to(t_prog.dtype)).to(torch.float32)


def ages(t_hi: Tensor, t_lo: Tensor, now: Tensor) -> Tensor:
    """dt = max(0, now − t_prog) in float32 seconds from the programming times split into two
    float32 words, t_prog = t_hi + t_lo (``split_times``), and ``now`` (0-d float64 tensor, s)
    split alike: (now_hi − t_hi) is exact when the two are within a factor
    2 of each other (Sterbenz) and rounded once otherwise, so dt is within about an ulp of
    float32(now − t_prog) with no float64 per device (float64 operands there cost as much as
    the rest of the read model, compiled on an Intel Xeon)."""
    n_hi, n_lo = split_times(now)
    return ((n_hi - t_hi) + (n_lo - t_lo)).clamp_min(0)


def _ln_age(dt: Tensor, c: Tensor) -> Tensor:
    """ln((dt + t0)/t0) as ln(dt + t0) − ln t0: within an ulp of ln(dt + t0), ≤ 2e-6
    absolute up to a year (so G(t) within ν·2e-6 relative); a log is cheaper than log1p."""
    f32 = torch.float32
    return torch.log(dt + c[_I["t0"]].to(f32)) - c[_I["ln_t0"]].to(f32)


def drifted(g_prog: Tensor, nu: Tensor, dt: Tensor, c: Tensor, s: Structure
            ) -> tuple[Tensor, Tensor | None]:
    """(G(t)/g_max, ln((dt + t0)/t0) or None) per device dt float32 seconds after its
    programming: g_prog·((dt + t0)/t0)^(−ν); the log (``_ln_age``) when drift is on (the 1/f
    term reuses it)."""
    if not s.drift:
        return g_prog, None
    lg = _ln_age(dt, c)
    return g_prog * torch.exp(-nu * lg), lg


def read_fields(g_prog: Tensor, nu: Tensor, q2: Tensor, t_hi: Tensor, t_lo: Tensor, now: Tensor,
                c: Tensor, s: Structure, want_var: bool,
                var_dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor | None]:
    """Mean weights w (C, ci, out_p) in converter units and read variances var (C, ci, out_p)
    in converter units² (rounded to ``var_dtype`` in the pass) at device time ``now`` (0-d
    float64 tensor, s); programming times as (t_hi, t_lo) (``ages``).

    G(t)/g_max = g_prog·((dt + t0)/t0)^(−ν), dt = max(0, now − t_prog); var = (a/b)²·pair·
    (Σ_devices G(t)²·Q_s²·ln((dt + t0 + t_read)/(2 t_read)) + D·σ_abs²).
    """
    f32 = torch.float32
    unit = c[_I["unit"]].to(f32)
    gs, devs = [], []
    for d in range(2 if s.differential else 1):  # per device array: all one pointwise loop
        dt = ages(t_hi[d], t_lo[d], now)
        g, lg = drifted(g_prog[d], nu[d], dt, c, s)
        gs.append(g)
        if not (want_var and s.rel_noise):
            continue
        dev = g * g * q2[d]
        if s.one_over_f and s.short_read:  # ln((dt + t0)/t0) + ln((t0 + t_read)/(2 t_read))
            if lg is None:
                lg = _ln_age(dt, c)
            dev = dev * (lg + c[_I["ln_read"]].to(f32))
        elif s.one_over_f:
            dev = dev * torch.log((dt + c[_I["t0_plus_t_read"]].to(f32))
                                  / c[_I["two_t_read"]].to(f32))
        devs.append(dev)
    w = (gs[0] - gs[1]) * unit if s.differential else (gs[0] * 2 - 1) * unit
    if not want_var:
        return w, None
    if s.rel_noise:
        v = devs[0] + devs[1] if s.differential else devs[0]
    else:
        v = torch.zeros_like(w)
    if s.abs_noise:
        v = v + c[_I["abs_var"]].to(f32)
    return w, (v * c[_I["var_scale"]].to(f32)).to(var_dtype)


def int8_digits(w: Tensor) -> tuple[tuple[Tensor, Tensor], Tensor]:
    """``numerics.int8_digits`` of (C, ci, out_p) weights written for the compiler: the same
    arithmetic (column scale s = max|w|/127, q₁ = round(w/s), q₂ = round((w/s − q₁)·254)),
    the digits (q₁, q₂) each (C, ci, out_p) int8, and the units (C, 2, out_p): s, s/254. Two
    forms because each is the fast one where it runs: compiled, the eager form's in-place
    ops took ten times as long; eager, this one twice as long (``read_digits`` compiles
    it). Tested to give the same digits bit for bit."""
    sc = w.abs().amax(dim=1, keepdim=True).clamp_min(1e-30) / 127
    t = w / sc
    q1 = torch.round(t)
    return ((q1.to(torch.int8), torch.round((t - q1) * DIGIT).to(torch.int8)),
            torch.cat((sc, sc / DIGIT), 1))


def read_digits(g_prog: Tensor, nu: Tensor, q2: Tensor, t_hi: Tensor, t_lo: Tensor,
                now: Tensor, c: Tensor, s: Structure, want_var: bool,
                var_dtype: torch.dtype = torch.float32
                ) -> tuple[Tensor, Tensor | None, tuple[Tensor, Tensor], Tensor]:
    """``read_fields`` and the ``int8_digits`` of its weights in one kernel: (w, var, (q₁,
    q₂), units). Compiled, the digits come from the weights the pass just computed (2.1
    against 2.25 ms for ``read_fields`` and ``int8_digits`` compiled apart, 2 × 512 × 1024 pcm
    weights, two threads of an Intel Xeon); the two digits are separate outputs because
    stacked or concatenated they cost the pass another ~0.3 ms."""
    w, var = read_fields(g_prog, nu, q2, t_hi, t_lo, now, c, s, want_var, var_dtype)
    wq, ws = int8_digits(w)
    return w, var, wq, ws


# ------------------------------------------------------------------------------ programming
def _clipped(ln_g: Tensor, c: Tensor, prefix: str, log_dep: bool) -> Tensor:
    slope, icpt = c[_I[f"{prefix}_slope"]].float(), c[_I[f"{prefix}_icpt"]].float()
    lo, hi = c[_I[f"{prefix}_min"]].float(), c[_I[f"{prefix}_max"]].float()
    if not log_dep:
        return torch.minimum(torch.maximum(icpt, lo), hi)
    return torch.minimum(torch.maximum(ln_g * slope + icpt, lo), hi)


def program_devices(target: Tensor, xi: Tensor | tuple[Tensor, ...] | None,
                    stuck_low: Tensor, stuck_high: Tensor, c: Tensor, poly: Tensor,
                    s: Structure, noisy: bool) -> dict[str, Tensor]:
    """What programming every device towards ``target`` realises (``state.program``'s
    physics, one pass): ``g_prog`` = max(0, G + σ_prog(G)·ξ) with faults, ν = |μ_ν + σ_ν·ξ'|
    from the fault-applied target, ``q2`` = Q_s(g_prog)². ``xi``: kinds normals like
    ``target`` (stacked or a tuple), kinds = [programming noise] + [drift] in that order."""
    prog = noisy and s.prog
    tgt = target
    if s.faults:
        tgt = target.masked_fill(stuck_low, 0.0).masked_fill(stuck_high, 1.0)
    if prog:
        assert xi is not None
        sigma = torch.zeros_like(target) + poly[s.poly_degree].float()
        for i in range(s.poly_degree - 1, -1, -1):
            sigma = sigma * target + poly[i].float()
        g = torch.addcmul(target, sigma.clamp_min(0), xi[0]).clamp_min(0)
        if s.faults:
            g = g.masked_fill(stuck_low, 0.0).masked_fill(stuck_high, 1.0)
    else:
        g = tgt
    out = {"g_target": target, "g_prog": g}
    if s.drift:
        assert xi is not None
        ln_g = torch.log(tgt.clamp_min(1e-12)) if (s.nu_mean_log or s.nu_std_log) else tgt
        mu = _clipped(ln_g, c, "mu", s.nu_mean_log)
        sd = _clipped(ln_g, c, "sd", s.nu_std_log)
        out["nu"] = (mu + sd * xi[int(prog)]).abs()
    if s.rel_noise:
        if s.q_pow:  # q_coeff/g^q_exp as exp(−q_exp·ln g): half the time of pow compiled
            q = c[_I["q_coeff"]].float() * torch.exp(
                torch.log(g.clamp_min(c[_I["g_floor"]].float())) * -c[_I["q_exp"]].float())
        else:  # x⁰ = 1 exactly: the same value without a pow per device
            q = torch.zeros_like(g) + c[_I["q_coeff"]].float()
        q = torch.minimum(q, c[_I["q_max"]].float())
        out["q2"] = q * q
    return out


def _snapped(g: Tensor, c: Tensor, s: Structure) -> Tensor:
    """Targets ``g`` snapped to the conductance levels (if the profile has them)."""
    if not s.levels:
        return g
    step = c[_I["level_step"]].float()
    return torch.round(g.clamp(0, 1) / step) * step


def pair_targets(w_n: Tensor, c: Tensor, s: Structure) -> tuple[Tensor, Tensor]:
    """The targets (G+, G−) of a differential pair for normalized weights ``w_n`` (any
    shape): G+ carries w > 0 and G− carries w < 0."""
    return _snapped(w_n.clamp_min(0), c, s), _snapped((-w_n).clamp_min(0), c, s)


def targets(w_n: Tensor, c: Tensor, s: Structure) -> Tensor:
    """Relative conductance targets (D, C, ci, out_p) of normalized weights (C, ci, out_p),
    as ``state.targets``: a differential pair (``pair_targets``), or one device read against
    g_max/2 (w = 2g − 1); snapped to the conductance levels."""
    if s.differential:
        return torch.stack(pair_targets(w_n, c, s))
    return _snapped(((w_n.clamp(-1, 1) + 1) * 0.5).unsqueeze(0), c, s)


def kinds_of(s: Structure, noisy: bool) -> int:
    """How many normals per device a write draws: [programming noise] + [drift exponent]."""
    return int(noisy and s.prog) + int(s.drift)


def write_normals(key: Tensor | None, target: Tensor, s: Structure, noisy: bool,
                  index: Tensor | None = None) -> tuple[Tensor, ...] | None:
    """The ``kinds_of`` normals of a write of ``target`` (D, C, ci, out_p) from its key
    (``normals.counter_normals``; None when it needs none); with ``index`` (int32, like
    ``target``), those of the devices at these flat indices of the write's device array."""
    kinds = kinds_of(s, noisy)
    return normals.counter_normals(key, target.shape, kinds, index) \
        if kinds and key is not None else None


def _stamp(t32: tuple[Tensor, Tensor], now: Tensor, changed: Tensor | None) -> None:
    """Programming time ``now`` (0-d float64) into the programming times' two float32 words
    ``t32`` (``split_times``) for every device, or where ``changed``."""
    for t, v in zip(t32, split_times(now)):
        t.copy_(v.expand_as(t) if changed is None else torch.where(changed, v, t))


def program_into(bufs: dict[str, Tensor], t32: tuple[Tensor, Tensor], w: Tensor,
                 scale: Tensor, key: Tensor | None, stuck_low: Tensor, stuck_high: Tensor,
                 now: Tensor, c: Tensor, poly: Tensor, s: Structure, noisy: bool,
                 partial: bool) -> None:
    """Program the devices towards the targets of the weights ``w`` (C, ci, out_p) in units
    of ``scale`` (C, 1, out_p), in place in the state buffers ``bufs`` (by name) and the
    programming times' two words ``t32``: every device, or with ``partial`` those whose target
    changed. ``key``: the write's ``normals.write_key`` (None when it draws no normals,
    ``kinds_of`` = 0); device d's normals are ``normals.counter_normals(key, (D, C, ci,
    out_p), kinds)`` at d, computed in the pass (no normals array is drawn or stored)."""
    target = targets(w / scale, c, s)
    new = program_devices(target, write_normals(key, target, s, noisy), stuck_low, stuck_high,
                          c, poly, s, noisy)
    changed = target != bufs["g_target"] if partial else None
    for name, t in new.items():
        buf = bufs[name]
        buf.copy_(t if changed is None else torch.where(changed, t, buf))
    _stamp(t32, now, changed)


def program_pairs_into(halves: tuple[dict[str, Tensor], dict[str, Tensor]], w: Tensor,
                       scale: Tensor, key: Tensor | None, now: Tensor, c: Tensor,
                       poly: Tensor, s: Structure, noisy: bool) -> Tensor:
    """``program_into`` with ``partial`` for differential pairs, one device per pair: a
    partial write changes one device of most pairs (G+ of a weight that stays positive, G− of
    one that stays negative), so each pair computes the programming of its first changed
    device only — with that device's own normals (``normals.counter_normals`` at its index
    in (2, C, ci, out_p)), so it realises what ``program_into`` realises there (to each
    compiled kernel's own roundings). ``halves``: the buffers of each device of the pairs by
    name (``bufs`` names, ``t_prog_hi``, ``t_prog_lo``; ``stuck_low``, ``stuck_high`` read
    only), each (C, ci, out_p), views of the state's (2, C, ci, out_p) buffers. Returns the
    pairs whose G− changed too (a weight that changed sign; int32 (C, ci, out_p), 1 for such
    a pair): those G− are not written here (``program_second``). int32 because, compiled
    for the CPU, the pass with a bool output took 8.4 against 4.1 ms for a million pairs
    (Intel Xeon)."""
    h0, h1 = halves
    # the targets as ``program_into`` makes them: stacked, the pass stores them first, so
    # weights strided as ``TileGrid.to_grid``'s view are read in a loop of their own (6.5
    # against 22 ms per million pairs when the main loop read them)
    t0, t1 = targets(w / scale, c, s).unbind(0)
    ch0, ch1 = t0 != h0["g_target"], t1 != h1["g_target"]
    only1 = ch1 & ~ch0  # G− is the pair's one changed device
    target = torch.where(only1, t1, t0)
    index = None  # the devices' flat indices in (2, C, ci, out_p), for their normals
    if kinds_of(s, noisy) and key is not None:
        n = target.numel()
        torch._check(2 * n < normals.COUNTER_LIMIT, lambda: "program_pairs_into: counters")
        index = (torch.arange(n, dtype=torch.int32, device=w.device).view(target.shape)
                 + only1.to(torch.int32) * n)
    new = program_devices(target, write_normals(key, target, s, noisy, index),
                          torch.where(only1, h1["stuck_low"], h0["stuck_low"]),
                          torch.where(only1, h1["stuck_high"], h0["stuck_high"]), c, poly, s,
                          noisy)
    hi, lo = split_times(now)
    new["t_prog_hi"], new["t_prog_lo"] = hi.expand_as(target), lo.expand_as(target)
    for name, v in new.items():
        a, b = torch.where(ch0, v, h0[name]), torch.where(only1, v, h1[name])
        h0[name].copy_(a)
        h1[name].copy_(b)
    return (ch0 & ch1).to(torch.int32)


def second_devices(pairs: Tensor, w: Tensor, scale: Tensor, key: Tensor | None,
                   stuck_low: Tensor, stuck_high: Tensor, c: Tensor, poly: Tensor,
                   s: Structure, noisy: bool) -> dict[str, Tensor]:
    """What programming G− of the ``pairs`` (flat int64 indices into (C, ci, out_p))
    realises, as ``program_into`` computes it: (K,) values by name (``program_devices``).
    ``stuck_low``, ``stuck_high``: G−'s fault masks, flat."""
    _, ci, o = w.shape
    col, row, out = pairs // (ci * o), pairs // o % ci, pairs % o
    _, t1 = pair_targets(w[col, row, out] / scale[col, 0, out], c, s)
    xi = write_normals(key, t1, s, noisy, (pairs + w.numel()).to(torch.int32))
    return program_devices(t1, xi, stuck_low[pairs], stuck_high[pairs], c, poly, s, noisy)


def program_second(half: dict[str, Tensor], pairs: Tensor, w: Tensor, scale: Tensor,
                   key: Tensor | None, now: Tensor, c: Tensor, poly: Tensor, s: Structure,
                   noisy: bool) -> None:
    """Program G− of the ``pairs`` (flat int64 indices into (C, ci, out_p)) that
    ``program_pairs_into`` left to it, as ``program_into`` programs them: ``half`` the
    buffers of G− by name, as there. The few devices' values are computed by the compiled
    ``second_devices`` (0.65–0.9 ms per layer's ~250 devices as plain torch) and put back
    by plain torch (compiled, the put-back copied whole buffers)."""
    flat = {name: t.view(-1) for name, t in half.items()}
    new = kernel("second_devices", s)(pairs, w, scale, key, flat["stuck_low"],
                                      flat["stuck_high"], c, poly, s, noisy)
    hi, lo = split_times(now)
    new["t_prog_hi"], new["t_prog_lo"] = hi, lo
    for name, v in new.items():
        flat[name][pairs] = v


def pulse_into(bufs: dict[str, Tensor], t32: tuple[Tensor, Tensor], delta: Tensor,
               xi_pulse: Tensor, dev: dict[str, Tensor], max_pulses: float, ctoc: float,
               soft_bounds: bool, key: Tensor | None, stuck_low: Tensor, stuck_high: Tensor,
               now: Tensor, c: Tensor, poly: Tensor, s: Structure) -> None:
    """A pulsed update in place (``AnalogTile.apply_increment``'s step-by-step physics, one
    pass): the drifted conductances at ``now`` give the weights w (C, ci, out_p, normalized);
    the requested increment ``delta`` (normalized) becomes n = min(round(|Δ|/dw), max_pulses)
    pulses summed in closed form, dw·(n + c2c·√n·ξ) (``xi_pulse``, (C, ci, out_p)), times the
    soft-bound factor, clipped to the device's bounds (``physics.pulsed_update``); the devices
    whose weight and conductance change are re-programmed without programming noise
    (``program_devices``; the drift normals computed in the pass from ``key`` as in
    ``program_into``) and restart their drift clock (the time's two words ``t32``)."""
    g_now, _ = drifted(bufs["g_prog"], bufs["nu"], ages(*t32, now), c, s)
    w = g_now[0] - g_now[1] if s.differential else g_now[0] * 2 - 1
    w_new = physics.pulse_step(w, delta, dev, xi_pulse, max_pulses, ctoc, soft_bounds)
    target = targets(w_new, c, s)
    changed = (w_new != w).unsqueeze(0) & (target != g_now)
    new = program_devices(target, write_normals(key, target, s, False), stuck_low, stuck_high,
                          c, poly, s, False)
    for name, t in new.items():
        buf = bufs[name]
        buf.copy_(torch.where(changed, t, buf))
    _stamp(t32, now, changed)


# ------------------------------------------------------------------------------ reading
@dataclass(frozen=True)
class ReadStructure:
    """What the fused read (``read_out``) specialises on."""

    digits: bool  # the mean arrives as int8-digit sums (``numerics.int8_digits``), else float32
    dev_noise: bool  # a device read variance per output (u² @ var)
    out_noise: bool  # additive output noise before the ADC
    adc: str  # "codes": round and saturate; "clip": saturate only; "none"
    bias: bool
    absmax: bool = True  # the DAC scales each input vector by its max |x|
    dac: bool = True  # the DAC has bits (integer codes)
    packed: bool = False  # the mean from packed digits and bf16 variances (a kernel of its own)


def dac_codes(x: Tensor, c_n: int, c: Tensor, s: ReadStructure, int8: bool,
              sq_dtype: torch.dtype | None) -> tuple[Tensor, Tensor | None, Tensor]:
    """``periphery.encode`` of inputs x (N, C·ci) cut into ``c_n`` crossbar row blocks, one
    pass: codes u (C, N, ci) — int8 if ``int8`` (exact for codes of ≤ 8 bits), else float32 —,
    u² in ``sq_dtype`` (None: not wanted) and the factor k (C, N, 1). c: ``read_consts``
    (float32: output-noise variance, ADC top, a/input_bound, b/a, DAC top, input clip). Of
    ``s`` only ``absmax`` and ``dac`` matter."""
    n = x.shape[0]
    xv = x.reshape(n, c_n, -1).transpose(0, 1)
    if s.absmax:
        sc = xv.abs().amax(2, keepdim=True).clamp_min(1e-30) * c[2]
        u = xv / sc
        k = sc * c[3]
    else:
        u = xv / c[2]  # c[2] = a without absmax scaling
        k = torch.zeros((1, 1, 1), dtype=x.dtype, device=x.device) + c[3]
    if s.dac:
        u = torch.clamp(torch.round(u), -c[4], c[4])
    elif not s.absmax:
        u = torch.clamp(u, -c[5], c[5])
    # contiguous per crossbar (the inputs' layout would give rows C·ci apart): the products
    # would copy each crossbar's block first
    sq = (u * u).to(sq_dtype).contiguous() if sq_dtype is not None else None
    return (u.to(torch.int8) if int8 else u).contiguous(), sq, k


def read_out(key: Tensor | None, mean: Tensor, ws: Tensor | None, var: Tensor | None,
             k: Tensor, sg: Tensor, bias: Tensor | None, c: Tensor, repeats: int,
             s: ReadStructure) -> Tensor:
    """The rest of a crossbar read after its two products, one pass: noise, ADC, digital
    rescale and the sum over input tiles, (repeats·N, out_p).

    out[m, j] = bias[j] + Σ_c k[c, m]·sg[c, j]·ADC(μ[c, m, j] + σ[c, m, j]·z[c, m, j]), with
    μ the mean product (float32 (C, N, out_p); or with ``s.digits`` the int32 digit sums
    (2, C, N, out_p), Σq₁ then Σq₂, μ = fl(Σq₁·s) + fl(Σq₂·s₂) as
    ``numerics.int8_mean_product`` computes it; ``ws`` (C, 2, out_p) the digits' units s, s₂),
    σ² = ``var`` (C, N, out_p), any float dtype: u² @ var + σ_out², computed as the
    step-by-step read's ``baddbmm`` computes it; or c[0] = σ_out² without device noise,
    z = ``normals.split_normals(key, (C, repeats·N, out_p))``; the ADC rounds and saturates
    at ±c[1] codes (``"codes"``) or saturates at ±c[1] (``"clip"``). Read r of sample n is
    row r·N + n; μ, σ² and k (C, N or 1, 1) repeat over reads. ``sg`` (C, 1, out_p): weight
    scale times drift-compensation gain. Periphery arithmetic as ``periphery.read_noise``,
    ``quantize_output`` and ``AnalogTile._digital_sum``, summed in another order.
    """
    f32 = torch.float32
    if s.digits:
        mu = (mean[0].to(f32) * ws[:, :1]  # type: ignore[index]
              + mean[1].to(f32) * ws[:, 1:])  # type: ignore[index]
    else:
        mu = mean
    f = k * sg
    var2 = var.to(f32) if s.dev_noise else None  # type: ignore[union-attr]
    if repeats > 1:
        mu = mu.repeat(1, repeats, 1)
        var2 = var2.repeat(1, repeats, 1) if var2 is not None else None
        f = f.repeat(1, repeats, 1) if f.shape[1] > 1 else f
    n_c, m, o = mu.shape
    noisy = s.dev_noise or s.out_noise
    if noisy:  # two halves of h rows (one padding row when m is odd): one pass, one hash
        h = (m + 1) // 2
        zc, zs = normals.counter_normals(key, (n_c, h, o), 2)  # type: ignore[arg-type]
        if m % 2:  # a guard: even m (the usual batch) compiles without the padding's masks
            pad = (0, 0, 0, 1)
            mu = torch.nn.functional.pad(mu, pad)
            var2 = torch.nn.functional.pad(var2, pad) if var2 is not None else None
            f = torch.nn.functional.pad(f, pad) if f.shape[1] > 1 else f
        halves = ((slice(0, h), zc), (slice(h, 2 * h), zs))
    else:
        halves = ((slice(0, m), None),)
    outs = []
    for rows, z in halves:
        y = mu[:, rows]
        if z is not None:
            sd = var2[:, rows].sqrt() if var2 is not None else c[0].sqrt()
            y = y + sd * z
        if s.adc == "codes":
            y = torch.clamp(torch.round(y), -c[1], c[1])
        elif s.adc == "clip":
            y = torch.clamp(y, -c[1], c[1])
        fr = f[:, rows] if f.shape[1] > 1 else f
        outs.append((y * fr).sum(0))
    out = torch.cat(outs, 0)[:m] if len(outs) > 1 else outs[0]
    return out + bias if s.bias else out


# ------------------------------------------------------------------------------ compiling
#: The plain functions that ``kernel`` compiles, by name.
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "read_fields": read_fields, "program_into": program_into,
    "program_pairs_into": program_pairs_into, "second_devices": second_devices,
    "pulse_into": pulse_into, "dac_codes": dac_codes,
    "read_out": read_out, "read_digits": read_digits, "int8_digits": int8_digits}


def kernel(name: str, structure: Structure | ReadStructure) -> Callable[..., Any]:
    """``name``'s function compiled for tiles of ``structure`` at torch's current thread
    count (``_kernel``)."""
    return _kernel(name, structure, torch.get_num_threads())


@functools.cache
def _kernel(name: str, structure: Structure | ReadStructure, threads: int) -> Callable[..., Any]:
    """``name``'s function compiled by ``torch.compile`` (dynamic shapes) for tiles of
    ``structure`` (used only where ``compiled_ok`` for the tile's device).

    Each structure gets its own copy of the function's code, so that torch's limit on
    recompilations per code object (a handful) counts per structure, not per process. The
    CPU code torch generates depends on the thread count it is compiled at, so a kernel is
    compiled per thread count (a process that changes ``torch.set_num_threads`` gets a new
    one); tests check the kernels at two threads and, in a fresh process, at one. The C++
    code is compiled without contracting a·b + c into fused multiply-adds (inductor's default,
    pinned here): ``read_out``'s digit mean must round as oneDNN's packed product rounds.
    """
    fn = FUNCTIONS[name]
    copy = types.FunctionType(fn.__code__.replace(), fn.__globals__, fn.__name__,
                              fn.__defaults__, fn.__closure__)
    return torch.compile(copy, dynamic=True,
                         options={"cpp.enable_floating_point_contract_flag": "off"})


@functools.cache
def compiled_ok(device_type: str = "cpu") -> bool:
    """Whether ``torch.compile`` works for ``device_type`` here (a C++ compiler for the CPU,
    Triton for CUDA): compiles and runs a tiny function on that device once per process."""
    try:
        with warnings.catch_warnings():  # torch's own deprecations, met while it compiles
            warnings.simplefilter("ignore", DeprecationWarning)
            f = torch.compile(lambda a: (a * 2).exp(), dynamic=True)
            one = torch.ones(3, device=device_type)
            return bool(torch.allclose(f(one).cpu(), torch.full((3,), math.exp(2.0))))
    except Exception:  # noqa: BLE001 (any backend failure means: run the plain functions)
        return False


@functools.cache
def pays() -> bool:
    """Whether compiled device math is faster than the step-by-step passes on this CPU: a
    noisy write of a 1024-output × 512-input pcm crossbar pair (a million devices) and the
    read model after it, raced side by side (``numerics.race``); taken at ≤ 0.8 of the time.
    The write dominates: timing the read model alone put the two within 20 % on some CPUs
    and flipped the choice between runs."""
    if not compiled_ok():
        return False
    from analogsim.analog import state as st
    from analogsim.analog.grid import TileGrid
    from analogsim.analog.numerics import race
    from analogsim.config.profile import load_profile

    p = load_profile("pcm")
    cpu = torch.device("cpu")
    gen = torch.Generator().manual_seed(0)
    grid = TileGrid.for_matrix(1024, 512, 512, 512)
    dev = {k: st.DeviceState(grid, p, gen, cpu) for k in ("fused", "steps")}
    gen2 = normals.second_generator(gen)  # the tile's two-halves draw (``normals.randn``)
    w = torch.rand(grid.shape, generator=gen).mul_(2).sub_(1)
    ones = torch.ones(grid.n_col, 1, grid.out_padded)
    now = torch.tensor(100.0, dtype=torch.float64)
    fz = Fusion.of(p, 1.0, False, cpu)
    k = kernel("read_fields", fz.structure)

    def compiled() -> None:
        s = dev["fused"]
        st.program_fused(s, w, ones, now, gen, True, False, fz)
        k(s.g_prog, s.nu, s.q2, *s.prog_times(), now + 1.0, fz.c, fz.structure, True)

    def steps() -> None:  # the tile's unfused write and read model
        s = dev["steps"]
        st.program(s, st.targets(w, p), 100.0, p,
                   lambda shape: normals.randn(shape, gen, gen2), True, None)
        g, dt = st.conductances(s, 101.0, p)
        w_n = s.weight_n(g, True).mul_(3.0)
        v = g.square().mul_(s.q2).mul_(
            physics.one_over_f_sq(p.read_noise, dt, p.drift.t0_s)).sum(0).mul_(9.0)
        del w_n, v

    t = race({"compiled": compiled, "steps": steps})
    return t["compiled"] <= 0.8 * t["steps"]


@functools.cache
def read_pays() -> bool:
    """Whether the compiled rest of a read (``read_out``) is faster than its step-by-step
    periphery on this CPU: noise, ADC and digital sum of a batch-1000 read of two 512 × 1024
    crossbars, raced side by side; taken at ≤ 0.8 of the time."""
    if not compiled_ok():
        return False
    from analogsim.analog import periphery
    from analogsim.analog.numerics import race

    gen = torch.Generator().manual_seed(0)
    c_n, n, o = 2, 1000, 1024
    mean = torch.randn(c_n, n, o, generator=gen).mul_(50)
    var = torch.rand(c_n, n, o, generator=gen)
    k = torch.rand(c_n, n, 1, generator=gen)
    sg = torch.rand(c_n, 1, o, generator=gen)
    bias = torch.zeros(o)
    c = torch.tensor([0.04, 255.0])
    rs = ReadStructure(False, True, True, "codes", True)
    kern = kernel("read_out", rs)

    def compiled() -> None:
        kern(normals.write_key(gen), mean, None, var, k, sg, bias, c, 1, rs)

    gen2 = normals.second_generator(gen)

    def steps() -> None:  # read_noise's normals and σ, the ADC, the weighted sum
        z = normals.randn((c_n, n, o), gen, gen2)  # the tile's two-halves draw
        y = z.mul_(var.add(0.04).sqrt_()).add_(mean).round_().clamp_(-255, 255).mul_(sg)
        periphery.weighted_sum(y, k, bias, torch.empty(n, o))

    t = race({"compiled": compiled, "steps": steps})
    return t["compiled"] <= 0.8 * t["steps"]
