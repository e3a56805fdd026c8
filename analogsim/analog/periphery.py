"""The periphery of a crossbar: DAC → analog read → ADC → digital rescale and sum.

Units. Inputs enter the crossbar as DAC codes u (integers when the DAC has bits), one code
= ``a`` normalized input units (inputs scaled into ±``input_bound``); outputs leave as ADC
codes, one code = ``b`` normalized output units. Weights are normalized (largest |w| of a tile
or column = 1 = g_max). A crossbar therefore multiplies codes by w·a/b. Both converters are
symmetric: a b-bit converter has codes −(2^(b−1) − 1) … 2^(b−1) − 1, so ±bound are codes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from analogsim.config.profile import DeviceProfile

Normals = Callable[[tuple[int, ...]], Tensor]


@dataclass(frozen=True)
class Converters:
    """Step sizes and code ranges of one tile's DAC and ADC (from its profile)."""

    a: float  # one DAC code, normalized input units
    b: float  # one ADC code, normalized output units
    dac_top: int | None  # largest DAC code (None: no input quantization)
    adc_top: int | None  # largest ADC code (None: no output quantization)
    input_bound: float
    output_bound: float | None  # saturation, normalized units (None: none)
    absmax: bool  # DAC scales each input vector by its max |x|

    @classmethod
    def of(cls, profile: DeviceProfile) -> Converters:
        dac, adc = profile.dac, profile.adc
        dac_top = 2 ** (dac.bits - 1) - 1 if dac.bits is not None else None
        adc_top = 2 ** (adc.bits - 1) - 1 if adc.bits is not None else None
        a = dac.input_bound / dac_top if dac_top else 1.0
        b = adc.output_bound / adc_top if adc_top and adc.output_bound else a
        return cls(a, b, dac_top, adc_top, dac.input_bound, adc.output_bound,
                   dac.scaling == "absmax")


def encode(x: Tensor, cv: Converters) -> tuple[Tensor, Tensor | float]:
    """DAC: inputs (K, N, k) of K crossbar rows' worth → codes u (K, N, k) float32 and the
    factor k (K, N, 1) (or a number) that turns ADC codes back into x units: x·w = k·(u·w·a/b).

    absmax: each input vector's max |x| becomes the largest code (exactly, ±max are codes);
    without: x/a, clipped at ±input_bound.
    """
    u = torch.empty(x.shape, device=x.device, dtype=torch.float32)
    if cv.absmax:
        s = x.abs().amax(dim=2, keepdim=True)  # (K, N, 1)
        s = s.clamp_min_(1e-30).mul_(cv.a / cv.input_bound)
        torch.div(x, s, out=u)
        k: Tensor | float = s.mul_(cv.b / cv.a)
    else:
        torch.div(x, cv.a, out=u)
        k = cv.b
    if cv.dac_top is not None:
        u.round_().clamp_(-cv.dac_top, cv.dac_top)
    elif not cv.absmax:
        u.clamp_(-cv.input_bound / cv.a, cv.input_bound / cv.a)
    return u, k


def read_noise(u: Tensor, var: Tensor | None, out_var: Tensor | None, width: int,
               normals: Normals, repeats: int = 1) -> Tensor | None:
    """σ·z for codes u (K, N, k) read ``repeats`` times: one normal per crossbar block, read,
    sample and output, (K, repeats·N, width) float32, σ² = u² @ var + σ_out² (var (K, k,
    width) in (ADC codes / DAC code)², out_var (1, 1, 1) in ADC codes²). None without noise.

    Exact per-sample weight noise without (N, k, width) draws: a read of device (i, j) adds an
    independent N(0, v_ij) to w_ij, so output j of sample n gets N(0, Σ_i u_ni² v_ij).
    """
    if var is None and out_var is None:
        return None
    k_n, n = u.shape[0], u.shape[1]
    z = normals((k_n, repeats * n, width))
    if var is None:
        return z.mul_(out_var.float().sqrt())  # type: ignore[union-attr]
    u2 = torch.mul(u, u, out=torch.empty_like(u, dtype=var.dtype))
    v = torch.bmm(u2, var) if out_var is None else torch.baddbmm(out_var, u2, var)
    sig = torch.sqrt(v, out=torch.empty(v.shape, device=v.device))  # float32
    z.view(k_n, repeats, n, -1).mul_(sig.unsqueeze(1))
    return z


def quantize_output(y: Tensor, cv: Converters) -> Tensor:
    """ADC in place on codes y: round and saturate at ±adc_top; without bits, saturation at
    ±output_bound only."""
    if cv.adc_top is not None:
        return y.round_().clamp_(-cv.adc_top, cv.adc_top)
    if cv.output_bound is not None:
        return y.clamp_(-cv.output_bound / cv.b, cv.output_bound / cv.b)
    return y


def weighted_sum(y: Tensor, f: Tensor, bias: Tensor | None, out: Tensor) -> Tensor:
    """out = bias + Σ_c f[c]·y[c]; y (C, N, J), f (C, N or 1, 1 or J), out (N, J)."""
    if bias is None:
        torch.mul(y[0], f[0], out=out)
    else:
        torch.addcmul(bias, y[0], f[0], out=out)
    for c in range(1, y.shape[0]):
        out.addcmul_(y[c], f[c])
    return out
