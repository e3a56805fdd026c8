"""Cost of one learning step per rule, side by side in one run, on the same analog network.

784-1024-1024-1024-10 MLP on the pcm profile, batch 1000, float32. A step is
``rule.fill_grads`` + ``optimizer.step()`` (SGD); the device write (``program``) is timed on
its own because it is the same for every rule. BP and DBP use their default backward, a
transposed noisy read of the devices. ``--numerics`` (default fast) sets the crossbar
arithmetic. Interleaved repeats, medians. Last line:
``danp/dbp step: 0.85x``.

    python benchmarks/step_cost.py [--device cpu|cuda] [--repeats 7] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable

import omp_env  # noqa: F401  (before torch: OpenMP idle threads as analogsim sets them)
import torch
from timing import timed

import analogsim
from analogsim.analog import program, tile
from analogsim.models import mlp
from analogsim.rules import make
from analogsim.rules.base import layers_of, per_sample_loss, run_passes, write_grads

RULES = ("bp", "anp", "dbp", "danp", "inp")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--quick", action="store_true", help="2 repeats (smoke run)")
    ap.add_argument("--numerics", choices=("exact", "fast"), default="fast",
                    help="crossbar arithmetic of the analog network")
    args = ap.parse_args()
    reps = 2 if args.quick else args.repeats
    device = torch.device(args.device)
    digital = mlp([784, 1024, 1024, 1024, 10], seed=0).to(device)
    clock = analogsim.SimClock()
    gen = torch.Generator(device).manual_seed(0)
    nets = {r: analogsim.analogize(digital, "pcm", clock=clock, generator=gen,
                                   numerics=args.numerics) for r in RULES}
    pulsed = analogsim.analogize(digital, "rram", clock=clock, generator=gen,
                                 numerics=args.numerics)
    rules = {r: make(r, baseline="noisy") for r in RULES}
    opts = {r: torch.optim.SGD(nets[r].parameters(), lr=1e-6) for r in RULES}
    x = torch.rand(args.batch, 784, device=device)
    t = torch.nn.functional.one_hot(torch.arange(args.batch, device=device) % 10, 10).float()

    def step(r: str) -> None:
        rules[r].fill_grads(nets[r], x, t)
        opts[r].step()

    # The parts of an ANP step and a BP step, on the same network at the same device time.
    # A training step reads each read model once, so it never packs the int8 digits
    # (``tile.PACK_AT_READ``); the parts re-read one model and must not pack either.
    tile.PACK_AT_READ = 1 << 30
    net = nets["anp"]
    layers = layers_of(net)
    with torch.no_grad():
        _, traces = run_passes(net, x, 1)
    signals = [torch.randn_like(tr.pre) for tr in traces]
    xs = [tr.inputs for tr in traces]

    def bp_backward() -> Callable[[], None]:
        loss = per_sample_loss(net(x), t).mean()  # forward outside the timed call
        return loss.backward

    parts: dict[str, Callable[[], object]] = {
        "F": lambda: net(x), "F2": lambda: run_passes(net, x, 2), "D": lambda: digital(x),
        "G": lambda: write_grads(layers, signals, xs, "mean")}
    for r in RULES:  # warm-up
        step(r)
    times: dict[str, list[float]] = {r: [] for r in (*RULES, *parts, "Bwd")}
    t_write, t_pulse, t_refresh = [], [], []
    tiles = [m._tile for m in nets["anp"].modules() if hasattr(m, "_tile")]

    def refresh() -> None:  # the read model at a new device time, every layer
        for t in tiles:
            t.read_model()

    for _ in range(2):  # warm-up of the writes and the refresh (compiled kernels, if any)
        clock.advance(0.1)
        program(nets["bp"])
        program(pulsed)
        refresh()
    for _ in range(reps):
        for r in RULES:
            times[r].append(timed(lambda r=r: step(r), device))
        with torch.no_grad():
            for name, fn in parts.items():
                times[name].append(timed(fn, device))
        times["Bwd"].append(timed(bp_backward(), device))
        clock.advance(0.1)
        t_write.append(timed(lambda: program(nets["bp"]), device))
        with torch.no_grad():
            for p in pulsed.parameters():
                p.add_(1e-3)
        t_pulse.append(timed(lambda: program(pulsed), device))
        clock.advance(0.1)
        t_refresh.append(timed(refresh, device))
    med = {r: statistics.median(v) for r, v in times.items()}
    print(f"device {device}, batch {args.batch}, repeats {reps}, torch threads "
          f"{torch.get_num_threads()}; pcm profile, noisy baseline; paths "
          f"{analogsim.analog.numerics.describe(args.numerics, device)}")
    for r in RULES:
        print(f"{r:>5} step: {med[r] * 1e3:8.1f} ms")
    print(f"device write, noisy_write (pcm): {statistics.median(t_write) * 1e3:8.1f} ms per step")
    print(f"device write, pulsed (rram):     {statistics.median(t_pulse) * 1e3:8.1f} ms per step")
    print(f"read-model refresh (pcm):        {statistics.median(t_refresh) * 1e3:8.1f} ms per "
          "step (the clock moved)")
    ms = {k: f"{v * 1e3:.1f} ms" for k, v in med.items()}
    print(f"parts (cached device state): analog forward F {ms['F']}, two passes sharing the "
          f"input layer F2 {ms['F2']}, BP backward (input and weight grads) {ms['Bwd']}, "
          f"perturbation weight grads G {ms['G']}, digital forward D {ms['D']}")
    print(f"anp/bp floor from the parts, (F2 + G)/(F + backward): "
          f"{(med['F2'] + med['G']) / (med['F'] + med['Bwd']):.2f}x; with an analog forward as "
          f"cheap as the digital one, (2D + G)/(D + backward): "
          f"{(2 * med['D'] + med['G']) / (med['D'] + med['Bwd']):.2f}x")
    print(f"noisy write / bp step: {statistics.median(t_write) / med['bp']:.2f}x")
    print(f"read-model refresh / bp step: {statistics.median(t_refresh) / med['bp']:.2f}x")
    print(f"inp/bp step: {med['inp'] / med['bp']:.2f}x")
    print(f"anp/bp step: {med['anp'] / med['bp']:.2f}x")
    print(f"danp/dbp step: {med['danp'] / med['dbp']:.2f}x")


if __name__ == "__main__":
    main()
