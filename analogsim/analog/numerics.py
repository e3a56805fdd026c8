"""How the crossbar arithmetic is computed: one explicit, recorded setting.

- ``"exact"`` (default): float32 mean product and float32 read-noise variance everywhere. The
  same seed gives the same trajectory on every host up to float32 summation order.
- ``"fast"``: the fast paths that measure faster on this host, chosen once per process by
  racing them against their reference in interleaved rounds (``fast_paths``), never from
  CPU flags alone:
  * int8 mean product: the DAC's integer codes times two int8 digits of the weights,
    w ≈ s·(q₁ + q₂/254) per crossbar column (``int8_digits``), int8 × int8 → int32
    ``torch._int_mm``: exact sums (each converted to float32 once: exact up to 2²⁴, crossbars
    of up to 1040 rows), weights to 1/64 516 of their column's largest;
  * packed int8 digits (``packed_int8``): a read model read a third time packs its digits
    for oneDNN's int8 linear, which writes the float32 mean directly (no int32 sums in
    memory), the same floats as the int8 mean product, so when a read model gets packed
    changes no number;
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
  The choice is part of what a run records (``describe``); a scenario run races once, in
  the process that writes the manifest, and every cell (worker processes, Ray tasks, a
  resumed run) takes the recorded paths (``fixed_paths``), so the records do not depend on
  which worker raced what.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Literal

import torch
from torch import Tensor

Numerics = Literal["exact", "fast"]
NUMERICS: tuple[str, ...] = ("exact", "fast")

#: Base of the second int8 digit of the mean weights (|digit| ≤ 127).
DIGIT = 254

#: The two int8 digits (q₁, q₂) of a read model's mean weights, each (C, ci, out_p) and
#: contiguous, so that each crossbar's digit is one int8 matrix of a product (``int8_digits``).
Digits = tuple[Tensor, Tensor]


#: No fast path (``numerics: "exact"``, or a device without any).
NONE: dict[str, bool] = {"int8_mean": False, "packed_int8": False, "bf16_variance": False,
                         "fused": False, "fused_read": False}


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


@functools.cache
def cpu_packed_int8() -> bool:
    """Whether this torch has oneDNN's packed int8 linear on the CPU and it gives
    ``int8_mean_product``'s floats bit for bit (full-range codes and digits; odd shapes, and a
    crossbar's batch-1000 shape, for which oneDNN may take another kernel)."""
    if not cpu_int_mm():
        return False
    try:
        g = torch.Generator().manual_seed(0)
        for c_n, n, ci, out in ((2, 9, 70, 37), (1, 1000, 512, 128)):
            w = torch.randn(c_n, ci, out, generator=g)
            u = torch.randint(-127, 128, (c_n, n, ci), generator=g).float()
            q, s = int8_digits(w)
            got = packed_mean_product(u, pack_int8_digits(q), s, None)
            if not torch.equal(got, int8_mean_product(u, q, s, None)):
                return False
        return True
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


#: Paths fixed by ``fixed_paths`` per device type, in place of this process's own races.
_FIXED: dict[str, dict[str, bool]] = {}


def fast_paths(device_type: str) -> dict[str, bool]:
    """The fast paths this process takes on ``device_type``: those fixed by ``fixed_paths``
    (a run's recorded choice), else those that measured faster here (``raced_paths``)."""
    fixed = _FIXED.get(device_type)
    return dict(fixed) if fixed is not None else raced_paths(device_type)


@contextlib.contextmanager
def fixed_paths(device_type: str, paths: Mapping[str, bool] | None) -> Iterator[None]:
    """Within the block, ``fast_paths(device_type)`` is ``paths`` (a run's recorded choice,
    so that every cell takes the same paths whichever process runs it), less any this host
    cannot take (no int8 product, no compiler); None changes nothing. ValueError for a
    mapping whose keys are not the paths' names."""
    if paths is None:
        yield
        return
    if set(paths) != set(NONE):
        raise ValueError(f"fast paths must name exactly {', '.join(NONE)}, got "
                         f"{', '.join(map(str, paths))}")
    can = _possible(device_type)
    before = _FIXED.get(device_type)
    _FIXED[device_type] = {k: bool(paths[k]) and can[k] for k in NONE}
    try:
        yield
    finally:
        if before is None:
            _FIXED.pop(device_type, None)
        else:
            _FIXED[device_type] = before


@functools.cache
def _possible(device_type: str) -> dict[str, bool]:
    """Which fast paths this host can take on ``device_type`` at all, whatever they cost."""
    from analogsim.analog import fused

    if device_type not in ("cpu", "cuda"):
        return dict(NONE)
    compiled = fused.compiled_ok(device_type)
    cpu = device_type == "cpu"
    return {"int8_mean": cpu and cpu_int_mm(), "packed_int8": cpu and cpu_packed_int8(),
            "bf16_variance": True, "fused": compiled, "fused_read": compiled}


@functools.cache
def raced_paths(device_type: str) -> dict[str, bool]:
    """Which fast paths pay on this host's ``device_type``, measured once per process in
    interleaved races (``race``): ``int8_mean`` and ``bf16_variance`` against the float32
    product of a batch-1000 read of a 512 × 512 crossbar, each taken at ≤ 0.9 of its time;
    ``packed_int8`` (``packed_mean_product``, digits combined) against the int8 product's
    int32 sums there, at ≤ 0.9 (packing itself is paid once per read model, not raced);
    ``fused`` (compiled device math, ``fused.pays``) and ``fused_read`` (the compiled rest of
    a read, ``fused.read_pays``) against their step-by-step passes, taken at ≤ 0.8. On CUDA
    nothing is raced: bf16 variances, and compiled device math and reads where Triton
    compiles."""
    from analogsim.analog import fused

    if device_type == "cuda":
        ok = fused.compiled_ok("cuda")
        return {"int8_mean": False, "packed_int8": False, "bf16_variance": True, "fused": ok,
                "fused_read": ok}
    if device_type != "cpu":
        return dict(NONE)
    g = torch.Generator().manual_seed(0)
    u = torch.randint(-127, 128, (1000, 512), generator=g).float()
    w = torch.randn(512, 512, generator=g)
    cands: dict[str, Callable[[], object]] = {
        "f32": lambda: u @ w, "bf16": lambda: u.bfloat16() @ w.bfloat16()}
    if cpu_int_mm():
        u8 = u.to(torch.int8)
        # the int8 product computes both digits: two products of the float32 one's shape
        w8 = torch.randint(-127, 128, (2, 512, 512), generator=g, dtype=torch.int8)
        cands["int8"] = lambda: (torch._int_mm(u8, w8[0]), torch._int_mm(u8, w8[1]))
        if cpu_packed_int8():  # the float32 mean, against the int32 sums the read pass combines
            wq, ws = int8_digits(w[None])
            packs = pack_int8_digits(wq)
            cands["packed"] = lambda: packed_mean_product(u8[None], packs, ws, None)
    t = race(cands)
    int8 = "int8" in t and t["int8"] < 0.9 * t["f32"]
    return {"int8_mean": int8, "packed_int8": int8 and "packed" in t
            and t["packed"] < 0.9 * t["int8"], "bf16_variance": t["bf16"] < 0.9 * t["f32"],
            "fused": fused.pays(), "fused_read": fused.read_pays()}


def describe(numerics: Numerics, device: torch.device | str = "cpu") -> dict[str, object]:
    """What a run records: the setting and, for ``"fast"``, the paths taken on ``device``."""
    dev = torch.device(device)
    paths = fast_paths(dev.type) if numerics == "fast" else NONE
    return {"numerics": numerics, **paths}


def int8_digits(w: Tensor) -> tuple[Digits, Tensor]:
    """Two signed int8 digits of (C, ci, out_p) weights, per crossbar column.

    w ≈ s·q₁ + s₂·q₂, s = max_i |w[c, i, j]|/127 per column and s₂ = s/254 (float32); the
    error is ≤ s/508 = max|w|/64 516 per weight. Returns the digits (q₁, q₂), each (C, ci,
    out_p) int8, and their units (C, 2, out_p): row 0 s, row 1 s₂. With integer DAC codes u
    (|u| ≤ 127), u @ q is exact in int32.
    """
    s = w.abs().amax(dim=1, keepdim=True).clamp_min_(1e-30).div_(127)
    t = w / s
    q1 = torch.round(t)
    q2 = t.sub_(q1).mul_(DIGIT).round_()
    return (q1.to(torch.int8), q2.to(torch.int8)), torch.cat((s, s / DIGIT), 1)


def int8_mean_product(u: Tensor, wq: Digits, ws: Tensor, add: Tensor | None) -> Tensor:
    """``add`` + u @ w per crossbar from ``int8_digits`` (wq, ws): (C, N, ci) integer codes →
    (C, N, out_p) float32.

    One int8 × int8 → int32 matmul per digit, crossbar and block of rows (kept in cache); the
    mean is μ = fl(fl(Σq₁·s) + fl(Σq₂·s₂)) (each sum converted to float32 once), the
    arithmetic of oneDNN's int8 linear with a sum post-op, so that ``packed_mean_product``
    gives the same floats; then ``add`` + μ.
    """
    c_n, n, _ = u.shape
    out_p = ws.shape[2]
    u8 = u.to(torch.int8)  # exact: integer codes in [−127, 127]
    y = add if add is not None else torch.zeros(c_n, n, out_p, device=u.device)
    rows = max(1, (1 << 20) // out_p)  # keep each int32 block in cache
    for c in range(c_n):
        for r in range(0, n, rows):
            blk = u8[c, r:r + rows]
            mu = torch.mul(torch._int_mm(blk, wq[0][c]), ws[c, :1])
            y[c, r:r + rows].add_(mu.add_(torch.mul(torch._int_mm(blk, wq[1][c]), ws[c, 1:])))
    return y


def pack_int8_digits(wq: Digits) -> list[tuple[Tensor, Tensor, Tensor]]:
    """``int8_digits``' digits in oneDNN's packed layout for its int8 linear
    (``torch.ops.onednn.qlinear_prepack``), per crossbar: (q₁ packed, q₂ packed, zero points
    (out_p,) int64). About 0.9 ms per 512 × 1024 digit on two cores of an Intel Xeon: worth it
    for a read model read several times (``packed_mean_product``)."""
    c_n, _, out_p = wq[0].shape
    pack = torch.ops.onednn.qlinear_prepack
    zp = torch.zeros(out_p, dtype=torch.int64, device=wq[0].device)
    return [(pack(_transposed(wq[0][c]), None), pack(_transposed(wq[1][c]), None), zp)
            for c in range(c_n)]


def _transposed(q: Tensor, block: int = 64) -> Tensor:
    """A contiguous copy of the transpose of the (ci, out_p) matrix ``q``, copied in
    ``block`` × ``block`` tiles where both sides divide: a plain transposed copy of a
    contiguous 512 × 1024 int8 digit took 0.31 against 0.22 ms (rows a power of two apart,
    Intel Xeon)."""
    ci, o = q.shape
    if ci % block or o % block:
        return q.t().contiguous()
    return q.view(ci // block, block, o // block, block).permute(2, 3, 0, 1).contiguous().view(
        o, ci)


def packed_mean_product(u: Tensor, packs: list[tuple[Tensor, Tensor, Tensor]], ws: Tensor,
                        add: Tensor | None) -> Tensor:
    """``int8_mean_product`` from packed digits (``pack_int8_digits``): the same floats, as
    two oneDNN int8 linears per crossbar (q₁ at scale s, then q₂ at s₂ with a sum post-op),
    each writing float32 (N, out_p) in place: no int32 sums in memory."""
    c_n, n, _ = u.shape
    out_p = ws.shape[2]
    u8 = u if u.dtype == torch.int8 else u.to(torch.int8)
    mu = torch.zeros(c_n, n, out_p, device=u.device)
    linear = torch.ops.onednn.qlinear_pointwise.binary
    for c, (q1, q2, zp) in enumerate(packs):
        for q, scale in ((q1, ws[c, 0]), (q2, ws[c, 1])):
            linear(u8[c], 1.0, 0, q, scale, zp, mu[c], None, 1.0, 0, torch.float32, 1.0, 0,
                   "sum", 1.0, "none", [], "")
    return mu if add is None else add.add_(mu)
