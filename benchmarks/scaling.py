"""How the cost of a training step grows with width and batch: step time and peak memory.

784-W-W-W-10 MLP on the pcm profile (``numerics`` fast by default), noisy baseline, SGD with
the device write after each step (``analogsim.on_device``), for BP, DANP and DNP. Each
(rule, width, batch) runs in a fresh process, so its peak memory is its own: the resident set
(``ru_maxrss``) on the CPU, ``torch.cuda.max_memory_allocated`` on CUDA. Times are the median
of ``--repeats`` steps after two warm-up steps. Prints a Markdown table, one row per width
and batch, and a last line with the growth of a DANP step from the smallest to the largest
configuration.

    python benchmarks/scaling.py [--device cpu|cuda] [--widths 256 1024 4096]
        [--batches 100 1000 4000] [--rules bp danp dnp] [--repeats 3] [--numerics fast]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def one(device: str, rule: str, width: int, batch: int, repeats: int, numerics: str) -> dict:
    """Run in this process: time ``repeats`` steps of ``rule`` and report peak memory."""
    import resource
    import statistics

    import omp_env  # noqa: F401  (before torch)
    import torch
    from timing import timed

    import analogsim
    from analogsim.models import mlp
    from analogsim.rules import make

    dev = torch.device(device)
    clock = analogsim.SimClock()
    net = analogsim.analogize(mlp([784, width, width, width, 10], seed=0).to(dev), "pcm",
                              clock=clock, seed=0, numerics=numerics)
    r = make(rule, baseline="noisy")
    opt = analogsim.on_device(torch.optim.SGD(net.parameters(), lr=1e-4), net)
    g = torch.Generator(dev).manual_seed(0)
    x = torch.rand(batch, 784, generator=g, device=dev)
    t = torch.nn.functional.one_hot(torch.arange(batch, device=dev) % 10, 10).float()

    def step() -> None:
        r.fill_grads(net, x, t)
        opt.step()
        clock.advance(0.1)

    times = []
    for i in range(2 + repeats):
        dt = timed(step, dev)
        if i >= 2:
            times.append(dt)
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB → MiB
    return {"rule": rule, "width": width, "batch": batch, "ms": statistics.median(times) * 1e3,
            "peak_mib": peak}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--widths", type=int, nargs="+", default=[256, 1024, 4096])
    ap.add_argument("--batches", type=int, nargs="+", default=[100, 1000, 4000])
    ap.add_argument("--rules", nargs="+", default=["bp", "danp", "dnp"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--numerics", choices=("exact", "fast"), default="fast")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # rule,width,batch: run in this process
    args = ap.parse_args()
    if args.one:
        rule, width, batch = args.one.split(",")
        print(json.dumps(one(args.device, rule, int(width), int(batch), args.repeats,
                             args.numerics)))
        return
    rows: dict[tuple[int, int], dict[str, dict]] = {}
    for width in args.widths:
        for batch in args.batches:
            for rule in args.rules:
                out = subprocess.run(
                    [sys.executable, str(HERE / "scaling.py"), "--device", args.device,
                     "--repeats", str(args.repeats), "--numerics", args.numerics,
                     "--one", f"{rule},{width},{batch}"],
                    capture_output=True, text=True, check=True, cwd=HERE)
                res = json.loads(out.stdout.strip().splitlines()[-1])
                rows.setdefault((width, batch), {})[rule] = res
                print(f"# {rule} width {width} batch {batch}: {res['ms']:.1f} ms, "
                      f"{res['peak_mib']:.0f} MiB", file=sys.stderr, flush=True)
    print(f"device {args.device}, pcm profile, numerics {args.numerics}, 784-W-W-W-10, "
          f"median of {args.repeats} steps (device write included); peak memory of the "
          "process (CPU: resident set; CUDA: allocated)")
    head = " | ".join(f"{r.upper()} ms | {r.upper()} MiB" for r in args.rules)
    print(f"| width | batch | {head} |")
    print("|---|---|" + "---|" * (2 * len(args.rules)))
    for (width, batch), res in rows.items():
        cells = " | ".join(f"{res[r]['ms']:.1f} | {res[r]['peak_mib']:.0f}" for r in args.rules)
        print(f"| {width} | {batch} | {cells} |")
    rule = "danp" if "danp" in args.rules else args.rules[0]
    first, last = rows[min(rows)][rule], rows[max(rows)][rule]
    print(f"{rule} step, width {min(rows)[0]} batch {min(rows)[1]} → width {max(rows)[0]} batch "
          f"{max(rows)[1]}: {last['ms'] / first['ms']:.1f}x time, "
          f"{last['peak_mib'] / first['peak_mib']:.1f}x memory")


if __name__ == "__main__":
    main()
