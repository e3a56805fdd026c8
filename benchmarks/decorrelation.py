"""Cost of one decorrelation update R ← R − α·offdiag(mean x* x*ᵀ)·R for a wide layer,
side by side: C first (N·K² + K³) against ``decorrelation_step`` (which takes the factored
form (x*ᵀ(x* R))/N − diag(mean x*²)·R, 2·N·K², when N ≤ K/2). Best of 3 after a warm-up.

    python benchmarks/decorrelation.py [--k 4096] [--n 100 1000 2048] [--device cpu]
"""

from __future__ import annotations

import argparse

import omp_env  # noqa: F401  (before torch)
import torch
from timing import timed

from analogsim.rules.decorrelation import decorrelation_step, offdiag_second_moment


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=4096)
    ap.add_argument("--n", type=int, nargs="+", default=[100, 1000, 2048])
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    dev = torch.device(args.device)
    g = torch.Generator(dev).manual_seed(0)
    r = torch.eye(args.k, device=dev)
    print(f"device {dev}, K = {args.k}, float32")
    for n in args.n:
        x = torch.randn(n, args.k, generator=g, device=dev)

        def c_first(x: torch.Tensor = x) -> torch.Tensor:
            return r - 1e-3 * offdiag_second_moment(x) @ r

        def step(x: torch.Tensor = x) -> torch.Tensor:
            return decorrelation_step(r, x, 1e-3)

        a, b = (min(timed(f, dev) for _ in range(3)) for f in (c_first, step))
        print(f"N = {n:5}: C first {a * 1e3:8.1f} ms, decorrelation_step {b * 1e3:8.1f} ms "
              f"({b / a:.2f}x)")


if __name__ == "__main__":
    main()
