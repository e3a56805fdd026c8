"""Where the time of one analog layer goes: its parts side by side with the digital layer.

One 1024×1024 layer on pcm (two 512-input crossbars, 7-bit DAC), batch 1000, one hour after
programming, float32 inputs; interleaved repeats, medians. Parts: the whole analog read
(``tile.mvm``, a cached read model: packed where ``packed_int8``), the mean product in float32,
on int8 weight digits (``torch._int_mm``) and on the packed digits (oneDNN's int8 linear),
the read-noise variance matmul in bfloat16, the (C, N, out) normals drawn in two halves at
once and on one thread.

    python benchmarks/forward_parts.py [--repeats 25]
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable

import omp_env  # noqa: F401  (before torch: OpenMP idle threads as analogsim sets them)
import torch
from timing import timed

import analogsim
from analogsim.analog import normals
from analogsim.analog import numerics as num
from analogsim.clock import HOUR_S


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=25)
    args = ap.parse_args()
    cpu = torch.device("cpu")
    gen = torch.Generator().manual_seed(0)
    lin = torch.nn.Linear(1024, 1024)
    clock = analogsim.SimClock()
    layer = analogsim.AnalogLinear.from_digital(lin, "pcm", clock, seed=0, numerics="fast")
    tile = layer._tile
    assert tile is not None
    clock.advance(HOUR_S)
    x = torch.rand(1000, 1024, generator=gen)
    c_n, ci, out_p = tile.grid.n_col, tile.grid.ci, tile.grid.out_padded
    u = torch.randint(-63, 64, (c_n, 1000, ci), generator=gen).float()
    m = tile.read_model()
    w32 = m.w
    u2 = (u * u).bfloat16()
    var = m.var if m.var is not None and m.var.dtype == torch.bfloat16 else None
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
    shape = (c_n, 1000, out_p)

    def one_thread() -> None:  # the same two halves, one after the other
        n = c_n * 1000 * out_p
        z = torch.empty(n)
        torch.randn(n // 2, generator=g1, out=z[: n // 2])
        torch.randn(n - n // 2, generator=g2, out=z[n // 2:])

    parts: dict[str, Callable[[], object]] = {
        "digital layer (F.linear)": lambda: lin(x),
        "analog layer (tile.mvm + bias)": lambda: layer(x),
        "mean product, float32 bmm": lambda: torch.bmm(u, w32),
        "normals, two halves at once": lambda: normals.randn(shape, g1, g2),
        "normals, one thread": one_thread,
    }
    if m.wq is not None and m.ws is not None:  # the int8 path measured faster here
        wq, ws, u8 = m.wq, m.ws, u.to(torch.int8)
        parts["mean product, int8 digits"] = lambda: num.int8_mean_product(u8, wq, ws, None)
        if tile._paths()["packed_int8"]:
            packs = num.pack_int8_digits(wq)
            parts["mean product, packed digits"] = lambda: num.packed_mean_product(
                u8, packs, ws, None)
    if var is not None:
        parts["read-noise variance, bf16 bmm"] = lambda: torch.bmm(u2, var)
    times: dict[str, list[float]] = {k: [] for k in parts}
    with torch.no_grad():
        for fn in parts.values():
            fn()
        for _ in range(args.repeats):
            for k, fn in parts.items():
                times[k].append(timed(fn, cpu))
    med = {k: statistics.median(v) for k, v in times.items()}
    d = med["digital layer (F.linear)"]
    print(f"1024x1024 pcm layer, batch 1000, torch threads {torch.get_num_threads()}, normals "
          f"helper thread {'on' if normals.helper_thread_enabled() else 'off'}")
    for k, v in med.items():
        print(f"{k:<34} {v * 1e3:7.2f} ms  {v / d:5.2f}x digital")


if __name__ == "__main__":
    main()
