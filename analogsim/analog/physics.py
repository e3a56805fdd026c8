"""Device physics as pure functions on tensors (no state, explicit generators).

Conductances are in µS, times in seconds; ``g_rel`` is G/g_max. Every function works on any
device and dtype of its inputs. Every random number comes from the caller's generator.

Normals are ``torch.randn`` (Box–Muller on 24-bit uniforms). On the CPU that costs ~3.5 ns per
number on one thread, nearly all of it drawing the uniforms, so a hand-made Box–Muller from
``torch.rand`` is no cheaper; the tile's large draws go through ``normals.randn`` instead, two
halves from two generators on two threads.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from analogsim.config.profile import ClippedLog, Faults, ProgrammingNoise, PulsedUpdate, ReadNoise


# ------------------------------------------------------------------------------ programming
def poly(coeffs: list[float], x: Tensor) -> Tensor:
    """c0 + c1·x + c2·x² + … (Horner)."""
    if len(coeffs) == 1:
        return torch.full_like(x, coeffs[0])
    out = x * coeffs[-1] + coeffs[-2]
    for c in reversed(coeffs[:-2]):
        out = out.mul_(x).add_(c)
    return out


def programming_sigma_uS(g_uS: Tensor, g_max_uS: float, cfg: ProgrammingNoise) -> Tensor:
    """σ_prog(G), µS: the polynomial in G/g_max, scaled by g_max/g_max_ref; ≥ 0."""
    # Both scalings folded into the coefficients: σ = Σ c_k·(g_max/ref)/g_max^k · G^k.
    k = g_max_uS / cfg.g_max_ref_uS
    coeffs = [c * k / g_max_uS**i for i, c in enumerate(cfg.sigma_poly_uS)]
    return poly(coeffs, g_uS).clamp_min_(0)


def program(g_target_uS: Tensor, g_max_uS: float, cfg: ProgrammingNoise,
            generator: torch.Generator, xi: Tensor | None = None) -> Tensor:
    """Programmed conductance: max(0, G + σ_prog(G)·ξ), ξ ~ N(0, 1) (``xi`` if pre-drawn)."""
    if xi is None:
        xi = torch.randn(g_target_uS.shape, generator=generator, device=g_target_uS.device,
                         dtype=g_target_uS.dtype)
    sigma = programming_sigma_uS(g_target_uS, g_max_uS, cfg)
    return torch.addcmul(g_target_uS, sigma, xi).clamp_min_(0)


# ------------------------------------------------------------------------------ drift
def clipped_log(cfg: ClippedLog, g_rel: Tensor) -> Tensor:
    """clip(slope·ln(g_rel) + intercept, min, max); ln of g_rel floored at 1e-12."""
    out = _clipped_ln(cfg, torch.log(g_rel.clamp_min(1e-12)))
    return out if isinstance(out, Tensor) else torch.full_like(g_rel, out)


def _clipped_ln(cfg: ClippedLog, ln_g_rel: Tensor | None) -> Tensor | float:
    """``clipped_log`` from ln(g_rel) (may be −inf); a float when the slope is 0."""
    if cfg.ln_slope == 0 or ln_g_rel is None:
        return min(max(cfg.intercept, cfg.min), cfg.max)
    return ln_g_rel.clamp_min(math.log(1e-12)).mul_(cfg.ln_slope).add_(cfg.intercept).clamp_(
        cfg.min, cfg.max)


def sample_drift_nu(g_uS: Tensor, g_max_uS: float, nu_mean: ClippedLog, nu_std: ClippedLog,
                    generator: torch.Generator, ln_g_rel: Tensor | None = None,
                    xi: Tensor | None = None) -> Tensor:
    """Per-device drift exponent ν = |μ_ν(G) + σ_ν(G)·ξ|, drawn once at programming.

    ``ln_g_rel``: ln(G/g_max) if the caller has it (saves a log; unused for zero slopes).
    ``xi``: pre-drawn ξ (consumed in place).
    """
    if xi is None:
        xi = torch.randn(g_uS.shape, generator=generator, device=g_uS.device, dtype=g_uS.dtype)
    if ln_g_rel is None and (nu_mean.ln_slope != 0 or nu_std.ln_slope != 0):
        ln_g_rel = torch.log((g_uS / g_max_uS).clamp_min_(1e-12))  # as clipped_log floors it
    mu, sd = _clipped_ln(nu_mean, ln_g_rel), _clipped_ln(nu_std, ln_g_rel)
    if isinstance(mu, Tensor):
        nu = mu.addcmul_(xi, sd) if isinstance(sd, Tensor) else mu.add_(xi, alpha=sd)
    else:
        nu = xi.mul_(sd).add_(mu)
    return nu.abs_()


def drift_log_factor(dt_s: float, t0_s: float) -> float:
    """L = ln((dt + t0)/t0): G(dt) = G(0)·exp(−ν·L)."""
    return math.log((dt_s + t0_s) / t0_s)


def drift_factor(nu: Tensor, dt_s: float | Tensor, t0_s: float) -> Tensor:
    """((dt + t0)/t0)^(−ν) for dt seconds since programming (a number, or one per device)."""
    if isinstance(dt_s, Tensor):
        return torch.exp(torch.log1p(dt_s / t0_s).mul_(nu).neg_())
    return torch.exp(nu * -drift_log_factor(dt_s, t0_s))


# ------------------------------------------------------------------------------ read noise
def one_over_f_sq(cfg: ReadNoise, dt_s: Tensor, t0_s: float) -> Tensor:
    """ln((dt + t0 + t_read)/(2·t_read)) for per-device times since programming ``dt_s`` (any
    shape): the square of the 1/f factor that multiplies σ_rel (with ``one_over_f``)."""
    return dt_s.add(t0_s + cfg.t_read_s).div_(2 * cfg.t_read_s).log_()


def q_s(g_prog: Tensor, cfg: ReadNoise) -> Tensor:
    """Q_s = min(q_max, q_coeff/max(g_floor, g_prog)^q_exp) of the *programmed* conductance
    g_prog = G_prog/g_max (Nandakumar et al. 2019's 1/f coefficient)."""
    return (cfg.q_coeff / g_prog.clamp_min(cfg.g_rel_floor) ** cfg.q_exp).clamp_max(cfg.q_max)


# ------------------------------------------------------------------------------ periphery
def quantize(x: Tensor, bits: int, bound: float) -> Tensor:
    """Symmetric signed quantizer: 2**bits − 1 levels k·step, |k| ≤ 2^(b−1) − 1,
    step = bound/(2^(b−1) − 1), so ±bound are levels; values beyond saturate."""
    top = 2 ** (bits - 1) - 1
    step = bound / top
    return torch.clamp(torch.round(x / step), -top, top) * step


def quantize_levels(g_uS: Tensor, g_max_uS: float, levels: int) -> Tensor:
    """Snap conductances to ``levels`` equally spaced values in [0, g_max]."""
    step = g_max_uS / (levels - 1)
    return torch.round(g_uS.clamp(0, g_max_uS) / step) * step


# ------------------------------------------------------------------------------ faults
def fault_masks(shape: torch.Size, cfg: Faults, generator: torch.Generator,
                device: torch.device) -> tuple[Tensor, Tensor]:
    """Boolean masks (stuck at 0, stuck at g_max), disjoint, each device independently."""
    u = torch.rand(shape, generator=generator, device=device)
    low = u < cfg.stuck_at_min_fraction
    high = (u >= cfg.stuck_at_min_fraction) & (
        u < cfg.stuck_at_min_fraction + cfg.stuck_at_max_fraction)
    return low, high


def apply_faults(g_uS: Tensor, stuck_low: Tensor, stuck_high: Tensor, g_max_uS: float) -> Tensor:
    """Force stuck devices to 0 or g_max."""
    return g_uS.masked_fill(stuck_low, 0.0).masked_fill_(stuck_high, g_max_uS)


# ------------------------------------------------------------------------------ pulsed update
def sample_pulsed_devices(shape: torch.Size, cfg: PulsedUpdate, generator: torch.Generator,
                          device: torch.device) -> dict[str, Tensor]:
    """Per-device parameters of a pulsed device, drawn once: step up/down and bounds."""
    def spread(rel: float) -> Tensor:
        return 1 + rel * torch.randn(shape, generator=generator, device=device)

    dw = (cfg.dw_min * spread(cfg.dw_min_dtod)).abs()
    asym = cfg.up_down_dtod * torch.randn(shape, generator=generator, device=device)
    return {
        "dw_up": dw * (1 + asym), "dw_down": dw * (1 - asym),
        "w_max": (cfg.w_max * spread(cfg.bounds_dtod)).clamp_min(cfg.dw_min),
        "w_min": (cfg.w_min * spread(cfg.bounds_dtod)).clamp_max(-cfg.dw_min),
    }


def pulsed_update(w: Tensor, delta: Tensor, dev: dict[str, Tensor], cfg: PulsedUpdate,
                  generator: torch.Generator) -> Tensor:
    """Apply a requested increment ``delta`` (weight units) as pulses; return the new state
    (``pulse_step`` with one cycle-to-cycle normal per device from ``generator``)."""
    xi = torch.randn(w.shape, generator=generator, device=w.device, dtype=w.dtype)
    return pulse_step(w, delta, dev, xi, cfg.max_pulses, cfg.dw_min_ctoc, cfg.soft_bounds)


def pulse_step(w: Tensor, delta: Tensor, dev: dict[str, Tensor], xi: Tensor,
               max_pulses: float, ctoc: float, soft_bounds: bool) -> Tensor:
    """The pulsed update of ``pulsed_update`` with its normals ``xi`` (like ``w``) given.

    n = min(round(|Δ|/dw), max_pulses) pulses per device; each pulse moves dw·(1 + c2c·ξ),
    scaled by the soft-bound factor (1 − w/w_max up, 1 − w/w_min down); the n pulses are
    summed in closed form (mean n·dw, std √n·dw·c2c), then clipped to the device's bounds.
    """
    up = delta > 0
    dw = torch.where(up, dev["dw_up"], dev["dw_down"])
    n = torch.clamp(torch.round(delta.abs() / dw), max=max_pulses)
    step = dw * (n + ctoc * n.sqrt() * xi)
    if soft_bounds:
        factor = torch.where(up, 1 - w / dev["w_max"], 1 - w / dev["w_min"]).clamp_min(0)
        step = step * factor
    new = w + torch.where(up, step, -step)
    return torch.minimum(torch.maximum(new, dev["w_min"]), dev["w_max"])
