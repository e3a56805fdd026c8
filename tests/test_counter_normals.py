"""The counter-based normals of the fused write (``normals.counter_normals``): a pure function
of (key, index), standard normal in distribution, independent across kinds, neighbouring
indices and keys.

Tolerances: for n independent N(0, 1) samples the sample mean has standard error 1/√n, the
variance √(2/n), the skewness √(6/n), the excess kurtosis √(24/n), a correlation coefficient
(of two independent variables, or of their squares) 1/√n. Each check allows 5 standard errors
(a two-sided 6e-7 chance of failing for a correct generator). The Kolmogorov–Smirnov distance
of n samples exceeds 1.95/√n with probability 0.001. Uniforms have 24 bits, so |z| ≤ 5.9 and
the variance lost to the cut tails is ~1.4e-7, far below 5·√(2/n) ≈ 7e-3.
"""

from __future__ import annotations

import math

import pytest
import torch
from one_thread import run_on_one_thread

from analogsim.analog import fused, normals

N = 1 << 20
SE = 1 / math.sqrt(N)


def _draw(key: tuple[int, int], kinds: int = 2, shape: tuple[int, ...] = (N,)
          ) -> tuple[torch.Tensor, ...]:
    return tuple(z.double() for z in
                 normals.counter_normals(torch.tensor(key, dtype=torch.int64), shape, kinds))


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).mean() / (a.std() * b.std()))


@pytest.mark.parametrize("kind", [0, 1])
def test_counter_normals_have_the_moments_and_the_law_of_a_standard_normal(kind: int) -> None:
    z = _draw((0x9E3779B9, 12345))[kind]
    m = float(z.mean())
    c = z - m
    var = float((c * c).mean())
    assert abs(m) < 5 * SE
    assert abs(var - 1) < 5 * math.sqrt(2) * SE
    assert abs(float((c**3).mean()) / var**1.5) < 5 * math.sqrt(6) * SE
    assert abs(float((c**4).mean()) / var**2 - 3) < 5 * math.sqrt(24) * SE
    zs = z.sort().values
    ecdf = torch.arange(1, N + 1, dtype=torch.float64) / N
    phi = 0.5 * (1 + torch.erf(zs / math.sqrt(2)))
    ks = float(torch.maximum((ecdf - phi).abs(), (ecdf - 1 / N - phi).abs()).max())
    assert ks < 1.95 * SE
    assert float(z.abs().max()) <= math.sqrt(2 * math.log(2**25)) + 1e-5


def test_counter_normals_are_independent_across_kinds_indices_and_keys() -> None:
    """No linear or magnitude dependence between the two normals of an element, between
    neighbouring elements, or between the draws of two keys: two keys from ``write_key``, and
    keys one bit apart — in word 1, or in the top bit of word 0 (a low bit of word 0 only
    relabels the elements, ``counter_normals``)."""
    z0, z1 = _draw((1, 2))
    y0, y1 = _draw((1 ^ 1 << 31, 2))
    x0, _ = _draw((1, 2 ^ 1))
    gen = torch.Generator().manual_seed(5)
    k, k2 = normals.write_key(gen), normals.write_key(gen)
    w0 = normals.counter_normals(k, (N,), 1)[0].double()
    v0 = normals.counter_normals(k2, (N,), 1)[0].double()
    pairs = {"kinds": (z0, z1), "neighbours": (z0[:-1], z0[1:]),
             "neighbours, kind 1": (z1[:-1], z1[1:]), "key word 0": (z0, y0),
             "key word 0, kind 1": (z1, y1), "key word 1": (z0, x0),
             "kinds of neighbours": (z0[1:], z1[:-1]), "two write keys": (w0, v0)}
    for name, (a, b) in pairs.items():
        assert abs(_corr(a, b)) < 5 * SE, name
        assert abs(_corr(a * a, b * b)) < 5 * SE, name  # dependence through the magnitude


def test_counter_normals_are_a_function_of_key_and_index_only() -> None:
    """The same key gives the same numbers whatever the shape; one kind is the first of two;
    another key gives other numbers."""
    key = normals.write_key(torch.Generator().manual_seed(3))
    assert key.dtype == torch.int64 and key.shape == (2,)
    assert 0 <= int(key.min()) and int(key.max()) < 2**32
    a0, a1 = normals.counter_normals(key, (6, 35), 2)
    (b0,) = normals.counter_normals(key, (210,), 1)
    assert torch.equal(a0.reshape(-1), b0)
    assert not torch.equal(a0, a1)
    c0, _ = normals.counter_normals(key + 1, (6, 35), 2)
    assert not torch.equal(a0, c0)
    assert a0.dtype == torch.float32 and a0.shape == (6, 35)


def test_counter_normals_at_given_indices_are_those_elements_of_the_whole_draw() -> None:
    """``index`` draws a subset of a larger draw: element k gets the numbers of flat index
    ``index[k]`` (the pair write's devices, ``fused.program_pairs_into``), in any shape."""
    key = normals.write_key(torch.Generator().manual_seed(5))
    whole = normals.counter_normals(key, (4, 300), 2)
    index = torch.randperm(1200, generator=torch.Generator().manual_seed(6))[:210]
    part = normals.counter_normals(key, (7, 30), 2, index.to(torch.int32).view(7, 30))
    for w, z in zip(whole, part):
        assert torch.equal(w.reshape(-1)[index].view(7, 30), z)


def test_the_hash_is_the_32_bit_pcg_hash() -> None:
    """``_pcg`` on int32 bit patterns is the 32-bit PCG-RXS-M-XS hash computed with unsigned
    32-bit arithmetic (Python integers, reduced mod 2³² after each product)."""
    def ref(x: int) -> int:
        s = (x * 747796405 + 2891336453) % 2**32
        w = (((s >> ((s >> 28) + 4)) ^ s) * 277803737) % 2**32
        return (w >> 22) ^ w

    xs = [0, 1, 2, 12345, 2**31 - 1, 2**31, 2**32 - 1, 0xDEADBEEF]
    words = normals._as_int32(torch.tensor(xs, dtype=torch.int64))
    got = (normals._pcg(words).long() & 0xFFFFFFFF).tolist()
    assert got == [ref(x) for x in xs]


def _words_and_normals(key: torch.Tensor, n: int) -> tuple[torch.Tensor, ...]:
    i = torch.arange(n, dtype=torch.int32, device=key.device)
    k0, k1 = normals._as_int32(key[0]), normals._as_int32(key[1])
    return (normals._pcg(normals._pcg(i ^ k0) ^ k1),
            *normals.counter_normals(key, (n,), 2))


def test_compiled_counter_normals_are_the_eager_ones_at_any_size() -> None:
    """Compiled (as inside the fused write), the hash words are the eager ones bit for bit and
    the normals within 4 float32 ulps of |z| + 1 (the compiler's own log, sqrt, sin and cos),
    at sizes whose loops end in a tail that the vectorized body does not cover."""
    if not fused.compiled_ok("cpu"):
        pytest.skip("torch.compile does not work on this host (the plain path is used)")
    f = torch.compile(_words_and_normals, dynamic=True)
    key = torch.tensor([0xFFFFFFFF, 0x12345678], dtype=torch.int64)
    for n in (1, 17, 1001, 65_537, 1_000_003):
        got, want = f(key, n), _words_and_normals(key, n)
        assert torch.equal(got[0], want[0]), n
        for a, b in zip(got[1:], want[1:]):
            assert bool(((a - b).abs() <= 4 * 2.0**-23 * (b.abs() + 1)).all()), n


def test_compiled_counter_normals_hold_on_one_thread() -> None:
    """Runner workers run at one torch thread, where the compiled loops differ: the same check
    in a fresh process set to one thread before anything compiles."""
    if not fused.compiled_ok("cpu"):
        pytest.skip("torch.compile does not work on this host (the plain path is used)")
    out = run_on_one_thread(__file__, "eager_ones_at_any_size")
    assert out.returncode == 0, out.tail
    assert out.counts.get("passed") == 1 and "failed" not in out.counts, out.tail


def test_counter_normals_are_the_same_numbers_on_a_gpu(device: torch.device) -> None:
    """On CUDA, eager and compiled (Triton), the hash words are the CPU's bit for bit and the
    normals within 4 ulps of |z| + 1 (the GPU's own log, sqrt, sin and cos)."""
    if device.type == "cpu":
        pytest.skip("compares a GPU against the CPU")
    key = torch.tensor([0xFFFFFFFF, 0x12345678], dtype=torch.int64)
    n = 1_000_003
    want = _words_and_normals(key, n)
    runs = [_words_and_normals]
    if fused.compiled_ok(device.type):
        runs.append(torch.compile(_words_and_normals, dynamic=True))
    for f in runs:
        got = [t.cpu() for t in f(key.to(device), n)]
        assert torch.equal(got[0], want[0])
        for a, b in zip(got[1:], want[1:]):
            assert bool(((a - b).abs() <= 4 * 2.0**-23 * (b.abs() + 1)).all())
