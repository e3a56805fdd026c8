"""Standard normals for the crossbar: drawn on two CPU threads where that pays (``randn``), or
computed from a counter and a key inside a fused device pass (``counter_normals``).

torch's CPU ``randn`` is single-threaded: a Mersenne-Twister uniform per number (~3 ns) then a
vectorized Box–Muller. A large draw is therefore split into two halves with their own
generators — the tile's own and a second one seeded from it once — which is the same stream
whether or not the halves run at once. They run at once (the second half on a helper thread)
only when OpenMP's idle threads sleep (``OMP_WAIT_POLICY=PASSIVE``; ``analogsim`` sets it with
a short spin, ``GOMP_SPINCOUNT=10000`` ≈ 0.1 ms, when it is imported before torch): a spinning
OpenMP worker (libgomp's default spins ~3 ms after each parallel op) takes the helper's core.

``counter_normals`` needs no generator state and no memory: normal k of element i is a pure
function of (key, i), so a compiled pass computes it where it uses it. Each of two 32-bit words
per element is two rounds of the PCG-RXS-M-XS hash (Jarzynski & Olano, "Hash functions for GPU
rendering", JCGT 9(3), 2020) of the counter, keyed before each round; the words' top 24 bits
are uniforms, and Box–Muller turns the pair into two independent normals (cos and sin). The
words are int32 bit patterns with wrapping products (16 lanes per AVX-512 register, against 8
for int64-held words: 20 % off a compiled draw on an Intel Xeon): eager torch, the compiled
CPU code and Triton compute the same integers (tested), with nothing that depends on the device
or the thread count.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import Tensor

#: Low 32 bits.
_M32 = 0xFFFFFFFF

#: ``counter_normals`` draws fewer elements than this (its counters 2i + 1 are 32-bit words).
COUNTER_LIMIT = 2**31

#: Draws of at least this many numbers are split into two halves (CPU only).
SPLIT_MIN = 1 << 16

_pool: ThreadPoolExecutor | None = None


def _reset_pool_in_child() -> None:
    """A forked child inherits the pool object but not its thread: start a new one there."""
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_pool_in_child)


def _draw_into(out: Tensor, generator: torch.Generator, inference: bool) -> None:
    """``randn`` into ``out`` on the helper thread, in the caller's inference mode (an
    inference tensor may only be written in inference mode; thread-local in torch)."""
    with torch.inference_mode(inference):
        torch.randn(out.shape, generator=generator, out=out)


def helper_thread_enabled() -> bool:
    """Whether split halves run at once: torch may use more than one thread, and OpenMP's idle
    threads sleep (``OMP_WAIT_POLICY=PASSIVE`` set before torch was imported)."""
    return (os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE"
            and torch.get_num_threads() > 1)


def second_generator(generator: torch.Generator) -> torch.Generator:
    """A generator for the second halves, seeded from ``generator`` (one draw). It keeps its
    own state: re-seeding ``generator`` later does not re-seed it."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    return torch.Generator(generator.device).manual_seed(seed)


def randn(shape: tuple[int, ...], generator: torch.Generator,
          second: torch.Generator | None) -> Tensor:
    """float32 N(0, 1) of ``shape`` on the generator's device.

    On the CPU, a draw of ≥ ``SPLIT_MIN`` numbers takes its first half from ``generator`` and
    its second from ``second`` (required then), concurrently where the helper thread pays.
    """
    device = generator.device
    n = 1
    for d in shape:
        n *= d
    if device.type != "cpu" or n < SPLIT_MIN:
        return torch.randn(shape, generator=generator, device=device)
    assert second is not None
    z = torch.empty(shape, device=device)
    flat, h = z.view(-1), n // 2
    if helper_thread_enabled():
        global _pool
        if _pool is None:
            _pool = ThreadPoolExecutor(1, thread_name_prefix="analogsim-randn")
        fut = _pool.submit(_draw_into, flat[h:], second, torch.is_inference_mode_enabled())
        torch.randn((h,), generator=generator, out=flat[:h])
        fut.result()
    else:
        torch.randn((h,), generator=generator, out=flat[:h])
        torch.randn((n - h,), generator=second, out=flat[h:])
    return z


def _pcg(x: Tensor) -> Tensor:
    """The PCG-RXS-M-XS 32-bit hash of words ``x`` held as int32 bit patterns, as int32 bit
    patterns: products and sums wrap mod 2³² (two's complement), and the logical right shifts
    of the unsigned hash are arithmetic shifts masked to their low 32 − k bits."""
    s = x * 747796405 + (2891336453 - 2**32)
    rot = ((s >> 28) & 15) + 4
    w = (((s >> rot) & (0x7FFFFFFF >> (rot - 1))) ^ s) * 277803737
    return ((w >> 22) & 0x3FF) ^ w


def _as_int32(word: Tensor) -> Tensor:
    """Words in [0, 2³²) (int64) as int32 bit patterns."""
    return (((word + 2**31) & _M32) - 2**31).to(torch.int32)


def write_key(generator: torch.Generator) -> Tensor:
    """A fresh key for ``counter_normals``: two 32-bit words (int64, (2,)) from ``generator``,
    on its device (no host synchronisation)."""
    return torch.randint(0, 1 << 32, (2,), generator=generator, dtype=torch.int64,
                         device=generator.device)


def counter_normals(key: Tensor, shape: tuple[int, ...] | torch.Size, kinds: int,
                    index: Tensor | None = None) -> tuple[Tensor, ...]:
    """``kinds`` (1 or 2) independent float32 N(0, 1) arrays of ``shape``, a pure function of
    ``key`` (``write_key``) and each element's flat index (< 2³¹ elements: counters 2i and
    2i + 1 stay below 2³²). ``index``: int32 indices of ``shape`` to draw at instead (element
    k takes the normals of flat index ``index[k]``: a subset of a larger draw).

    Uniforms have 24 bits, so |z| ≤ √(2 ln 2²⁵) ≈ 5.9, as ``torch.randn``'s float32 draws. The
    counter is XORed with key word 0 before the first round, so two keys with the same word 1
    whose words 0 differ in low bits give the same numbers to other elements; write keys are
    64 random bits, so two writes share word 1 with probability 2⁻³²."""
    if index is None:
        n = math.prod(shape)
        # a constant message: a closure over ``n`` would break a compiled graph in two
        torch._check(n < COUNTER_LIMIT, lambda: "counter_normals: at most 2**31 - 1 elements")
        index = torch.arange(n, dtype=torch.int32, device=key.device).view(shape)
    i2 = index * 2  # wraps
    k0, k1 = _as_int32(key[0]), _as_int32(key[1])
    a = _pcg(_pcg(i2 ^ k0) ^ k1)
    b = _pcg(_pcg((i2 + 1) ^ k0) ^ k1)
    u1 = (((a >> 8) & 0xFFFFFF).to(torch.float32) + 0.5) * 2.0**-24  # (0, 1): log finite
    theta = ((b >> 8) & 0xFFFFFF).to(torch.float32) * (2.0**-24 * 2 * math.pi)
    r = torch.sqrt(torch.log(u1) * -2.0)
    return (r * torch.cos(theta),) if kinds == 1 else (r * torch.cos(theta), r * torch.sin(theta))


def split_normals(key: Tensor, shape: tuple[int, ...] | torch.Size) -> Tensor:
    """float32 N(0, 1) of ``shape`` (A, M, B) from ``key``, one Box–Muller pair per two
    elements: rows [0, h) of the middle axis take the cosines and rows [h, M) the sines of
    ``counter_normals(key, (A, h, B), 2)``, h = ⌈M/2⌉ (so half the hashes and logs of two
    ``kinds = 1`` draws). The layout of the fused read's noise (``fused.read_out``)."""
    a, m, b = shape
    h = (m + 1) // 2
    zc, zs = counter_normals(key, (a, h, b), 2)
    return torch.cat((zc, zs[:, : m - h]), 1)
