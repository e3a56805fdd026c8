"""Time of an analog forward (pcm profile, every effect on) over the digital forward.

784-1024-1024-1024-10 MLP, batch 1000, float32, measured side by side in one run:
interleaved repeats, median of each. Last line: ``analog/digital forward: 1.80x`` (the
ratio; 2-core AMD EPYC with AVX-512 bf16 and VNNI, 2 threads, shared machine).
``--noise-fp32`` runs the read-noise variance matmul in float32 instead of bfloat16 (where the
tiles chose bf16: CUDA, or a CPU with AVX-512 bf16); ``--mean-fp32`` runs the mean product in
float32 instead of on int8 weight digits (where the tiles chose int8: a CPU with VNNI);
``--threads`` sets torch's CPU threads. OpenMP's idle threads sleep after a short spin, as
``import analogsim`` before torch sets them (benchmarks/omp_env.py), unless set already.

    python benchmarks/analog_forward.py [--device cpu|cuda] [--repeats 31] [--quick]
        [--threads N] [--noise-fp32] [--mean-fp32]
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
from analogsim.analog import analog_layers, normals
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
    ap.add_argument("--noise-fp32", action="store_true",
                    help="float32 read-noise variance matmul (tile.noise_bf16 = False)")
    ap.add_argument("--mean-fp32", action="store_true",
                    help="float32 mean product (tile.int8_mean = False)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    reps = 3 if args.quick else args.repeats
    device = torch.device(args.device)
    torch.manual_seed(0)
    digital = mlp([784, 1024, 1024, 1024, 10]).to(device)
    clock = analogsim.SimClock()
    gen = torch.Generator(device).manual_seed(0)
    analog = analogsim.analogize(digital, "pcm", clock=clock, generator=gen)
    tiles = [layer._tile for layer in analog_layers(analog)]
    for tile in tiles:
        tile.noise_bf16 = tile.noise_bf16 and not args.noise_fp32
        tile.int8_mean = tile.int8_mean and not args.mean_fp32
    clock.advance(HOUR_S)  # read one hour after programming: drift and 1/f noise active
    x = torch.rand(args.batch, 784, device=device)
    with torch.no_grad():
        for _ in range(2):  # warm-up
            digital(x), analog(x)
        td, ta, tm = [], [], []
        for _ in range(reps):
            td.append(timed(lambda: digital(x), device))
            ta.append(timed(lambda: analog(x), device))  # same device time: state cached
            clock.advance(1.0)  # device time moves: drifted state and read noise recomputed
            tm.append(timed(lambda: analog(x), device))
    d, a, m = statistics.median(td), statistics.median(ta), statistics.median(tm)
    print(f"device {device}, batch {args.batch}, repeats {reps}, torch threads "
          f"{torch.get_num_threads()}; mean product "
          f"{'int8 digits' if all(t.int8_mean for t in tiles) else 'float32'}, read-noise "
          f"variance {'bfloat16' if all(t.noise_bf16 for t in tiles) else 'float32'}, normals "
          f"on {2 if normals.helper_thread_enabled() else 1} thread(s)")
    print(f"digital forward: {d * 1e3:8.2f} ms")
    print(f"analog  forward: {a * 1e3:8.2f} ms (pcm: prog. noise, drift+compensation, 1/f read "
          f"noise, 8-bit DAC/ADC, output noise, 512x512 tiles)")
    print(f"analog  forward after the clock moved: {m * 1e3:8.2f} ms "
          f"({m / d:.2f}x; drift and read-noise model recomputed for the new device time)")
    print(f"analog/digital forward: {a / d:.2f}x")


if __name__ == "__main__":
    main()
