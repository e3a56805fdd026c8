"""How the crossbar arithmetic is computed: one explicit, recorded setting.

- ``"exact"`` (default): float32 mean product and float32 read-noise variance everywhere. The
  same seed gives the same trajectory on every host up to float32 summation order.
- ``"fast"``: the fast paths that measure faster on this host, chosen once per process by
  racing them against their reference in interleaved rounds (``fast_paths``), never from
  CPU flags alone:
  * int8 mean product: the DAC's integer codes times two int8 digits of the weights,
    w ≈ s·(q₁ + q₂/254) per crossbar column (``int8_digits``), int8 × int8 → int32
    ``torch._int_mm``: exact sums, weights to 1/64 516 of their column's largest;
  * bfloat16 read-noise variance matmul (x²) @ v with float32 accumulation: x², v rounded to
    8 significant bits, σ of an output off by well under 1 %;
  * compiled device math (``fused``): the read model (which the drift compensation's
    reference reads use too), the write and the pulsed update as single compiled passes;
    the write's normals come from a counter-based hash inside the pass
    (``normals.counter_normals``), other draws of the same law than the exact write's;
  * compiled read (``fused_read``): a forward read's DAC before its two matmuls and its
    noise, ADC, rescale and sum over input tiles after them as two compiled passes
    (``fused.dac_codes``, ``fused.read_out``), the noise from a per-read key
    (``normals.split_normals``).
  The choice is part of what a run records (``describe``), so it can be replayed.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

Numerics = Literal["exact", "fast"]
NUMERICS: tuple[str, ...] = ("exact", "fast")

#: Base of the second int8 digit of the mean weights (|digit| ≤ 127).
DIGIT = 254


#: No fast path (``numerics: "exact"``, or a device without any).
NONE: dict[str, bool] = {"int8_mean": False, "bf16_variance": False, "fused": False,
                         "fused_read": False}


def check(numerics: str) -> Numerics:
    """``numerics`` if it names a setting; ValueError naming the allowed ones otherwise."""
    if numerics not in NUMERICS:
        raise ValueError(f"numerics must be one of {', '.join(NUMERICS)}, got {numerics!r}")
    return numerics  # type: ignore[return-value]


@functools.cache
def cpu_int_mm() -> bool:
    """Whether this torch has a CPU ``torch._int_mm`` that gives exact int32 sums."""
    try:
        a = torch.tensor([[127, -127], [3, 5]], dtype=torch.int8)
        return bool(torch.equal(torch._int_mm(a, a), (a.int() @ a.int())))
    except (AttributeError, RuntimeError, NotImplementedError):
        return False


def race(fns: dict[str, Callable[[], object]], rounds: int = 7) -> dict[str, float]:
    """The best time (ms) of each of ``fns`` over ``rounds`` interleaved rounds, after one
    warm-up call each: a change in the host's load during the race hits every candidate alike
    (timing each candidate in its own block let a busy moment decide the choice)."""
    for fn in fns.values():
        fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    return {k: v * 1e3 for k, v in best.items()}


@functools.cache
def fast_paths(device_type: str) -> dict[str, bool]:
    """Which fast paths pay on this host's ``device_type``, measured once per process in
    interleaved races (``race``): ``int8_mean`` and ``bf16_variance`` against the float32
    product of a batch-1000 read of a 512 × 512 crossbar, each taken at ≤ 0.9 of its time;
    ``fused`` (compiled device math, ``fused.pays``) and ``fused_read`` (the compiled rest of
    a read, ``fused.read_pays``) against their step-by-step passes, taken at ≤ 0.8."""
    from analogsim.analog import fused

    if device_type == "cuda":
        ok = fused.compiled_ok("cuda")
        return {"int8_mean": False, "bf16_variance": True, "fused": ok, "fused_read": ok}
    if device_type != "cpu":
        return dict(NONE)
    g = torch.Generator().manual_seed(0)
    u = torch.randint(-127, 128, (1000, 512), generator=g).float()
    w = torch.randn(512, 512, generator=g)
    cands: dict[str, Callable[[], object]] = {
        "f32": lambda: u @ w, "bf16": lambda: u.bfloat16() @ w.bfloat16()}
    if cpu_int_mm():
        u8 = u.to(torch.int8)
        # the int8 product computes both digits: twice the columns of the float32 one
        w8 = torch.randint(-127, 128, (512, 1024), generator=g, dtype=torch.int8)
        cands["int8"] = lambda: torch._int_mm(u8, w8)
    t = race(cands)
    return {"int8_mean": "int8" in t and t["int8"] < 0.9 * t["f32"],
            "bf16_variance": t["bf16"] < 0.9 * t["f32"],
            "fused": fused.pays(), "fused_read": fused.read_pays()}


def describe(numerics: Numerics, device: torch.device | str = "cpu") -> dict[str, object]:
    """What a run records: the setting and, for ``"fast"``, the paths taken on ``device``."""
    dev = torch.device(device)
    paths = fast_paths(dev.type) if numerics == "fast" else NONE
    return {"numerics": numerics, **paths}


def int8_digits(w: Tensor) -> tuple[Tensor, Tensor]:
    """Two signed int8 digits of (C, ci, out_p) weights, per crossbar column.

    w ≈ s·(q₁ + q₂/254), s = max_i |w[c, i, j]|/127 per column (C, 1, out_p); the error is
    ≤ s/508 = max|w|/64 516 per weight. Returns the digits side by side, (C, ci, 2·out_p) int8,
    and s. With integer DAC codes u (|u| ≤ 127), u @ digits is exact in int32.
    """
    s = w.abs().amax(dim=1, keepdim=True).clamp_min_(1e-30).div_(127)
    out_p = w.shape[2]
    q = torch.empty(*w.shape[:2], 2 * out_p, dtype=torch.int8, device=w.device)
    t = w / s
    q1 = torch.round(t)
    q[..., :out_p] = q1
    q[..., out_p:] = t.sub_(q1).mul_(DIGIT).round_()
    return q, s


def int32_combines(ci: int) -> bool:
    """Whether ``int8_digits`` sums over ``ci`` rows combine exactly in int32 (q₁·254 + q₂
    with integer codes |u| ≤ 127: ci·127·(127·254 + 127) < 2³¹); else they need int64."""
    return ci * 127 * (127 * DIGIT + 127) < 2**31


def int8_mean_product(u: Tensor, wq: Tensor, ws: Tensor, add: Tensor | None) -> Tensor:
    """``add`` + u @ w per crossbar from ``int8_digits`` (wq, ws): (C, N, ci) integer codes →
    (C, N, out_p) float32.

    Both digits in one int8 × int8 → int32 matmul per crossbar column block and block of rows;
    the digits combine in int32 (q₁·254 + q₂, exact while ci·127·(127·254 + 127) < 2³¹) and are
    scaled once.
    """
    c_n, n, ci = u.shape
    out_p = ws.shape[2]
    u8 = u.to(torch.int8)  # exact: integer codes in [−127, 127]
    y = add if add is not None else torch.zeros(c_n, n, out_p, device=u.device)
    int_combine = int32_combines(ci)
    rows = max(1, (1 << 21) // (2 * out_p))  # keep each int32 block in cache
    for c in range(c_n):
        unit = ws[c] / DIGIT  # (1, out_p): one unit of the second digit
        for r in range(0, n, rows):
            acc = torch._int_mm(u8[c, r:r + rows], wq[c])  # (rows, 2·out_p) int32
            hi, lo = acc[:, :out_p], acc[:, out_p:]
            yc = y[c, r:r + rows]
            if int_combine:
                yc.addcmul_(lo.add_(hi, alpha=DIGIT), unit)
            else:
                yc.addcmul_(hi, ws[c]).addcmul_(lo, unit)
    return y
