"""Standard normals for the crossbar reads, drawn on two CPU threads where that pays.

torch's CPU ``randn`` is single-threaded: a Mersenne-Twister uniform per number (~3 ns) then a
vectorized Box–Muller. A large draw is therefore split into two halves with their own
generators — the tile's own and a second one seeded from it once — which is the same stream
whether or not the halves run at once. They run at once (the second half on a helper thread)
only when OpenMP's idle threads sleep (``OMP_WAIT_POLICY=PASSIVE``; ``analogsim`` sets it with
a short spin, ``GOMP_SPINCOUNT=10000`` ≈ 0.1 ms, when it is imported before torch): a spinning
OpenMP worker (libgomp's default spins ~3 ms after each parallel op) takes the helper's core.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import Tensor

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
