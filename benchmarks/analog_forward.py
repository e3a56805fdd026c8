"""Time of an analog forward (pcm profile, every effect on) over the digital forward.

784-1024-1024-1024-10 MLP, batch 1000, float32, measured side by side in one run:
interleaved repeats, median of each. Both numerics settings are timed side by side: ``exact``
(float32) and ``fast`` (the int8 / bf16 paths that measured faster on this host; the paths
taken are printed). Each repeat moves the device clock and reads four times: the first read
recomputes the read model ("after the clock moved"), the second reads it cached, the third
packs its int8 digits where ``packed_int8`` is on (``tile.PACK_AT_READ``), the fourth is a
cached read as every later one, as an evaluation over many batches at one device time
("cached"). Last line: ``analog/digital forward: …x``, cached, for ``--numerics`` (default
fast). ``--threads`` sets torch's CPU threads. OpenMP's idle threads sleep after a short
spin, as ``import analogsim`` before torch sets them (benchmarks/omp_env.py), unless set
already.

    python benchmarks/analog_forward.py [--device cpu|cuda] [--repeats 31] [--quick]
        [--threads N] [--numerics exact|fast]
"""

from __future__ import annotations

import argparse
import itertools
import statistics

import omp_env  # noqa: F401  (before torch: OpenMP idle threads as analogsim sets them)
import torch
from timing import timed
from torch import nn

import analogsim
from analogsim.analog import normals, numerics
from analogsim.clock import HOUR_S


def mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        lin = nn.Linear(a, b)
        nn.init.kaiming_normal_(lin.weight, a=0.01)
        nn.init.zeros_(lin.bias)
        layers.append(lin)
        if i < len(sizes) - 2:
            layers.append(nn.LeakyReLU(0.01))
    return nn.Sequential(*layers)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=31)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--quick", action="store_true", help="3 repeats (smoke run)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--numerics", choices=("exact", "fast"), default="fast",
                    help="the setting whose ratio is the last line")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    reps = 3 if args.quick else args.repeats
    device = torch.device(args.device)
    torch.manual_seed(0)
    digital = mlp([784, 1024, 1024, 1024, 10]).to(device)
    clock = analogsim.SimClock()
    nets = {s: analogsim.analogize(digital, "pcm", clock=clock, seed=0, numerics=s)
            for s in ("exact", "fast")}
    clock.advance(HOUR_S)  # read one hour after programming: drift and 1/f noise active
    x = torch.rand(args.batch, 784, device=device)
    reads = ("moved", "second", "third", "cached")
    times: dict[str, list[float]] = {"digital": []}
    with torch.no_grad():
        for _ in range(len(reads)):  # warm-up: every read of one device time (packing too)
            digital(x), nets["exact"](x), nets["fast"](x)
        for _ in range(reps):
            times["digital"].append(timed(lambda: digital(x), device))
            clock.advance(1.0)  # device time moves: drifted state and read noise recomputed
            for read in reads:  # then the same device time: the read model is cached
                for s, net in nets.items():
                    times.setdefault(f"{s} {read}", []).append(timed(lambda n=net: n(x), device))
    med = {k: statistics.median(v) for k, v in times.items()}
    d = med["digital"]
    print(f"device {device}, batch {args.batch}, repeats {reps}, torch threads "
          f"{torch.get_num_threads()}, normals on "
          f"{2 if normals.helper_thread_enabled() else 1} thread(s); fast paths here: "
          f"{numerics.describe('fast', device)}")
    print(f"digital forward: {d * 1e3:8.2f} ms")
    for s in ("exact", "fast"):
        print(f"analog  forward, {s:5}: " + "; ".join(
            f"{read} {med[f'{s} {read}'] * 1e3:6.2f} ms ({med[f'{s} {read}'] / d:.2f}x)"
            for read in reads))
    print("(reads of one device time: moved = the first, recomputing the read model; second; "
          "third = packing its digits where packed_int8; cached = the fourth and every later)")
    print("(pcm: programming noise, per-device drift + compensation, 1/f read noise, 7-bit DAC, "
          "9-bit ADC, output noise, 512x512 tiles)")
    print(f"analog/digital forward: {med[args.numerics + ' cached'] / d:.2f}x")


if __name__ == "__main__":
    main()
