"""Relative output error of one 3072→1024 PCM layer from 1 s to 1 year: the tile against a
direct implementation of the published PCM model.

Device effects only (programming noise, per-device drift, 1/f read noise; no DAC, ADC or
output noise), with and without global drift compensation. Error = ‖y − W x‖/‖W x‖ over a
batch of inputs, mean ± s.d. over ``--chips`` independently programmed chips.

The reference implements Nandakumar et al. (ICECS 2019) / Joshi et al. (Nat. Commun. 2020)
as aihwkit's ``PCMLikeNoiseModel`` does, in float64, independently of the tile: per device
G_prog = max(0, G_T + σ_prog(G_T)·ξ), ν = |μ_ν(G_T) + σ_ν(G_T)·ξ'|, G(t) = G_prog·((t +
t0)/t0)^(−ν), one 1/f realisation G(t) + |G(t)|·Q_s(G_prog)·sqrt(ln((t + t0 + t_r)/(2 t_r)))·ξ''
at each time; compensation scales the output by the mean |output| of an all-ones read at
programming over the same read now. (The tile draws the 1/f term afresh on every read; the
expected squared error of each output is the same.)

    python benchmarks/pcm_error.py [--chips 3] [--batch 256]
"""

from __future__ import annotations

import argparse
import math
import statistics

import torch

import analogsim
from analogsim.clock import DAY_S, HOUR_S, MINUTE_S, MONTH_S, YEAR_S

TIMES = {"1 s": 1.0, "1 min": MINUTE_S, "1 h": HOUR_S, "1 d": DAY_S, "1 month": MONTH_S,
         "1 y": YEAR_S}


def device_only(compensation: bool) -> analogsim.DeviceProfile:
    """pcm without its periphery: device effects only."""
    p = analogsim.load_profile("pcm")
    for field, value in (("dac.bits", None), ("adc.bits", None), ("adc.output_bound", None),
                         ("adc.noise_std", 0.0), ("drift.compensation", compensation),
                         ("mapping.tile_cols", 4096), ("mapping.tile_rows", 4096)):
        p = p.with_field(field, value)
    return p


def reference(w: torch.Tensor, x: torch.Tensor, times: list[float], compensation: bool,
              gen: torch.Generator) -> list[float]:
    """The published model on one (out, in) matrix, one chip: relative error at each time."""
    w = w.double()
    scale = w.abs().max()
    gt = torch.stack(((w / scale).clamp_min(0), (-w / scale).clamp_min(0)))  # G/g_max
    g25 = gt * 25.0
    sig = (0.26348 + 1.9650 * gt - 1.1731 * gt**2).clamp_min(0)  # µS at g_max 25
    gp = (g25 + sig * torch.randn(gt.shape, generator=gen, dtype=torch.float64)).clamp_min(0)
    g_rel = gt.clamp_min(1e-7)
    mu = (-0.0155 * torch.log(g_rel) + 0.0244).clamp(0.049, 0.1)
    sd = (-0.0125 * torch.log(g_rel) - 0.0059).clamp(0.008, 0.045)
    nu = (mu + sd * torch.randn(gt.shape, generator=gen, dtype=torch.float64)).abs()
    qs = (0.0088 / (gp / 25.0).pow(0.65).clamp_min(1e-3)).clamp_max(0.2)
    ones = torch.ones(w.shape[1], dtype=torch.float64)

    def weights(g: torch.Tensor) -> torch.Tensor:
        return (g[0] - g[1]) / 25.0 * scale

    ref_read = (weights(gp) @ ones).abs().mean()
    y_ideal = x.double() @ w.t()
    out = []
    for t in times:
        g = gp * ((t + 20.0) / 20.0) ** (-nu)
        f = math.sqrt(math.log((t + 20.0 + 2.5e-7) / 5e-7))
        g = (g + g.abs() * qs * f * torch.randn(g.shape, generator=gen,
                                                 dtype=torch.float64)).clamp_min(0)
        y = x.double() @ weights(g).t()
        if compensation:
            y = y * (ref_read / (weights(g) @ ones).abs().mean())
        out.append(float((y - y_ideal).norm() / y_ideal.norm()))
    return out


def tile_errors(w: torch.Tensor, x: torch.Tensor, times: list[float], compensation: bool,
                seed: int) -> list[float]:
    clock = analogsim.SimClock()
    layer = analogsim.AnalogLinear(w, None, device_only(compensation), clock, seed=seed)
    y_ideal = x.double() @ w.double().t()
    out = []
    for t in times:
        clock.advance_to(t)
        with torch.no_grad():
            y = layer(x).double()
        out.append(float((y - y_ideal).norm() / y_ideal.norm()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chips", type=int, default=3)
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(1024, 3072, generator=gen) / math.sqrt(3072)
    x = torch.rand(args.batch, 3072, generator=gen)
    times = list(TIMES.values())
    rows: dict[tuple[str, bool], list[list[float]]] = {}
    for comp in (False, True):
        for chip in range(args.chips):
            rows.setdefault(("tile", comp), []).append(tile_errors(w, x, times, comp, chip))
            rows.setdefault(("model", comp), []).append(
                reference(w, x, times, comp, torch.Generator().manual_seed(1000 + chip)))
    print(f"3072->1024 layer, W ~ N(0, 1/3072), x ~ U(0, 1), batch {args.batch}; relative "
          f"output error, %, mean ± s.d. over {args.chips} chips; device effects only")
    print("| time | tile, no comp. | published model, no comp. | tile, comp. | "
          "published model, comp. |")
    print("|---|---|---|---|---|")
    for i, name in enumerate(TIMES):
        cells = []
        for comp in (False, True):
            for src in ("tile", "model"):
                v = [r[i] * 100 for r in rows[(src, comp)]]
                sd = statistics.stdev(v) if len(v) > 1 else 0.0
                cells.append(f"{statistics.mean(v):.1f} ± {sd:.1f}")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
