"""Device physics as pure functions on tensors (no state, explicit generators).

Conductances are in µS, times in seconds; ``g_rel`` is G/g_max. Every function works on any
device and dtype of its inputs.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from analogsim.config.profile import ClippedLog, Faults, ProgrammingNoise, PulsedUpdate, ReadNoise


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
    g_rel = g_uS / g_max_uS
    return poly(cfg.sigma_poly_uS, g_rel).clamp_min(0) * (g_max_uS / cfg.g_max_ref_uS)


def program(g_target_uS: Tensor, g_max_uS: float, cfg: ProgrammingNoise,
            generator: torch.Generator) -> Tensor:
    """Programmed conductance: max(0, G + σ_prog(G)·ξ), ξ ~ N(0, 1)."""
    xi = torch.randn(g_target_uS.shape, generator=generator, device=g_target_uS.device,
                     dtype=g_target_uS.dtype)
    return (g_target_uS + programming_sigma_uS(g_target_uS, g_max_uS, cfg) * xi).clamp_min(0)


def clipped_log(cfg: ClippedLog, g_rel: Tensor) -> Tensor:
    """clip(slope·ln(g_rel) + intercept, min, max); ln of g_rel floored at 1e-12."""
    return (cfg.ln_slope * torch.log(g_rel.clamp_min(1e-12)) + cfg.intercept).clamp(
        cfg.min, cfg.max)


def sample_drift_nu(g_uS: Tensor, g_max_uS: float, nu_mean: ClippedLog, nu_std: ClippedLog,
                    generator: torch.Generator) -> Tensor:
    """Per-device drift exponent ν = |μ_ν(G) + σ_ν(G)·ξ|, drawn once at programming."""
    g_rel = g_uS / g_max_uS
    xi = torch.randn(g_uS.shape, generator=generator, device=g_uS.device, dtype=g_uS.dtype)
    return (clipped_log(nu_mean, g_rel) + clipped_log(nu_std, g_rel) * xi).abs()


def drift_factor(nu: Tensor, dt_s: float, t0_s: float) -> Tensor:
    """((dt + t0)/t0)^(−ν) for dt seconds since programming."""
    return torch.exp(-nu * math.log((dt_s + t0_s) / t0_s))


def read_sigma_rel(g_uS: Tensor, g_max_uS: float, cfg: ReadNoise, dt_s: float,
                   t0_s: float) -> Tensor:
    """Relative read-noise σ (multiplies |G|) at dt seconds since programming."""
    q = (cfg.q_coeff / (g_uS / g_max_uS).clamp_min(cfg.g_rel_floor) ** cfg.q_exp).clamp_max(
        cfg.q_max)
    if cfg.one_over_f:
        q = q * math.sqrt(math.log((dt_s + t0_s + cfg.t_read_s) / (2 * cfg.t_read_s)))
    return q


def read_variance_uS2(g_uS: Tensor, g_max_uS: float, cfg: ReadNoise, dt_s: float,
                      t0_s: float) -> Tensor:
    """Variance (µS²) of one read of each device: (|G|·σ_rel)² + σ_abs²."""
    rel = read_sigma_rel(g_uS, g_max_uS, cfg, dt_s, t0_s)
    return (g_uS.abs() * rel) ** 2 + cfg.absolute_uS**2


def quantize(x: Tensor, bits: int, bound: float) -> Tensor:
    """Uniform signed quantizer with exactly 2**bits levels k·step, k ∈ [−2^(b−1), 2^(b−1)−1],
    step = bound/2^(b−1); values beyond the range saturate at the end levels."""
    half = 2 ** (bits - 1)
    step = bound / half
    return torch.clamp(torch.round(x / step), -half, half - 1) * step


def quantize_levels(g_uS: Tensor, g_max_uS: float, levels: int) -> Tensor:
    """Snap conductances to ``levels`` equally spaced values in [0, g_max]."""
    step = g_max_uS / (levels - 1)
    return torch.round(g_uS.clamp(0, g_max_uS) / step) * step


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
    return torch.where(stuck_high, torch.full_like(g_uS, g_max_uS),
                       torch.where(stuck_low, torch.zeros_like(g_uS), g_uS))


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
    """Apply a requested increment ``delta`` (weight units) as pulses; return the new state.

    n = min(round(|Δ|/dw), max_pulses) pulses per device; each pulse moves dw·(1 + c2c·ξ),
    scaled by the soft-bound factor (1 − w/w_max up, 1 − w/w_min down); the n pulses are
    summed in closed form (mean n·dw, std √n·dw·c2c), then clipped to the device's bounds.
    """
    up = delta > 0
    dw = torch.where(up, dev["dw_up"], dev["dw_down"])
    n = torch.clamp(torch.round(delta.abs() / dw), max=cfg.max_pulses)
    xi = torch.randn(w.shape, generator=generator, device=w.device, dtype=w.dtype)
    step = dw * (n + cfg.dw_min_ctoc * n.sqrt() * xi)
    if cfg.soft_bounds:
        factor = torch.where(up, 1 - w / dev["w_max"], 1 - w / dev["w_min"]).clamp_min(0)
        step = step * factor
    new = w + torch.where(up, step, -step)
    return torch.minimum(torch.maximum(new, dev["w_min"]), dev["w_max"])
