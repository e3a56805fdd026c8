"""Write your own device profile and compare it with the shipped phase-change memory (pcm).

A profile is plain YAML: every field, its unit and its default are listed by
``analogsim devices show ideal`` and described in docs/devices.md. The one below is a made-up
chip: pcm's drift without its global drift compensation, 6-bit converters, coarser
programming and 0.5 % of devices stuck at 0. The same digitally trained MLP is programmed onto
both chips and read ten times at each device time from 1 s to 1 year.

    python examples/custom_device_profile.py [FOLDER]   # writes FOLDER/my_chip.yaml

About 10 s on 2 CPU cores.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

# isort: off
import analogsim  # before torch: sets the OpenMP wait policy torch reads once
import torch
from torch import nn
# isort: on

MY_CHIP = """\
name: my_chip
description: pcm-like drift left uncompensated, 6-bit converters, 0.5 % stuck devices.
source: a made-up chip for this example (drift numbers as in the shipped pcm profile)
programming:
  sigma_poly_uS: [0.5, 1.5]           # σ(G) = 0.5 + 1.5·G/g_max µS at g_max = 25 µS
drift:
  enabled: true
  t0_s: 20.0
  nu_mean: {ln_slope: -0.0155, intercept: 0.0244, min: 0.049, max: 0.1}
  nu_std: {ln_slope: -0.0125, intercept: -0.0059, min: 0.008, max: 0.045}
  compensation: false                 # no global drift compensation
read_noise: {q_coeff: 0.0088, q_exp: 0.65, q_max: 0.2, one_over_f: true}
dac: {bits: 6}
adc: {bits: 6, output_bound: 12.0, noise_std: 0.04}
faults: {stuck_at_min_fraction: 0.005}
update: {kind: noisy_write}
"""

TIMES_S = [1, 60, 3600, 86400, 365 * 86400]  # 1 s, 1 min, 1 h, 1 d, 1 y


def main(folder: str | None = None) -> None:
    out = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="analogsim-"))
    out.mkdir(parents=True, exist_ok=True)
    path = out / "my_chip.yaml"
    path.write_text(MY_CHIP)
    mine = analogsim.load_profile(path)  # validated: a wrong field is one clear error line
    print(f"loaded {path} ({mine.name})\n")

    torch.manual_seed(0)
    train, test = analogsim.data.load("digits", "train"), analogsim.data.load("digits", "test")
    net = analogsim.models.mlp([64, 128, 10], seed=0)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(20):
        for i in range(0, len(train), 64):
            opt.zero_grad()
            nn.functional.cross_entropy(net(train.x[i:i + 64]), train.labels[i:i + 64]).backward()
            opt.step()

    results = {name: analogsim.evaluate(net, test, profile=prof, times=TIMES_S, n_reps=10,
                                        seed=0)
               for name, prof in (("pcm", "pcm"), (mine.name, mine))}
    print("test accuracy, mean ± s.e.m. over 10 reads (device seed 0)\n")
    print("| after | " + " | ".join(results) + " |")
    print("|---" * (len(results) + 1) + "|")
    stats = {name: list(zip(r.mean(), r.sem())) for name, r in results.items()}
    labels = ["1 s", "1 min", "1 h", "1 d", "1 y"]
    for k, label in enumerate(labels):
        cells = " | ".join(f"{m:.4f} ± {s:.4f}" for m, s in (stats[n][k] for n in results))
        print(f"| {label} | {cells} |")


if __name__ == "__main__":
    main(*sys.argv[1:2])
