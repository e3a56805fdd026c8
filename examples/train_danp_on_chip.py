"""Train on a simulated chip with DANP and with DNP, and plot their test accuracy per epoch.

Both rules see the chip only as hardware does: two noisy forward passes per batch, one of them
perturbed; no clean pass and no gradient. DANP learns from the measured difference of the two
passes' activities (its own perturbation plus the device's noise), DNP from its injected
perturbation alone: with DANP's small σ the device noise swamps DNP's signal and training
diverges; with a σ well above the device noise DNP learns again.

    python examples/train_danp_on_chip.py [OUTPUT.png]

About 15 s on 2 CPU cores.
"""

from __future__ import annotations

import sys

# isort: off
import analogsim  # before torch: sets the OpenMP wait policy torch reads once
import torch
from analogsim.errors import DivergenceError
# isort: on
from matplotlib.figure import Figure

PROFILE = "pcm"  # phase-change memory: programming and read noise, drift, DAC/ADC
RUNS = [("danp", 1e-3), ("dnp", 1e-3), ("dnp", 0.1)]  # (rule, perturbation σ)
EPOCHS = 20
BATCH = 100
STEP_S = 0.1  # device seconds per training step
LR = 0.004


def accuracy(net: torch.nn.Module, data: analogsim.data.Dataset) -> float:
    """Fraction of ``data`` classified correctly by one (noisy) read of the chip."""
    with torch.no_grad():
        return (net(data.x).argmax(1) == data.labels).double().mean().item()


def train(rule_name: str, sigma: float, train_set: analogsim.data.Dataset,
          test_set: analogsim.data.Dataset) -> tuple[list[float], str]:
    """Test accuracy after each epoch (index 0: before training), and how training ended."""
    clock = analogsim.SimClock()
    digital = analogsim.models.mlp([64, 128, 128, 10], seed=0)
    net = analogsim.analogize(digital, PROFILE, clock=clock,
                              generator=torch.Generator().manual_seed(0))
    rule = analogsim.rules.make(rule_name, sigma=sigma, baseline="noisy", seed=0)
    opt = analogsim.on_device(torch.optim.SGD(net.parameters(), lr=LR), net)
    order = torch.Generator().manual_seed(1)
    curve = [accuracy(net, test_set)]
    for epoch in range(1, EPOCHS + 1):
        perm = torch.randperm(len(train_set), generator=order)
        try:
            for i in range(0, len(perm), BATCH):
                idx = perm[i:i + BATCH]
                rule.fill_grads(net, train_set.x[idx], train_set.y[idx])
                opt.step()  # the new weights are written through the device's update model
                clock.advance(STEP_S)
        except DivergenceError as err:
            return curve, f"diverged in epoch {epoch} ({err.what})"
        curve.append(accuracy(net, test_set))
    return curve, f"test accuracy {curve[0]:.3f} → {curve[-1]:.3f} after {EPOCHS} epochs"


def main(out: str = "danp_vs_dnp.png") -> None:
    torch.manual_seed(0)
    train_set = analogsim.data.load("digits", "train")
    test_set = analogsim.data.load("digits", "test")
    fig = Figure(figsize=(5.5, 3.2))
    ax = fig.subplots()
    for name, sigma in RUNS:
        curve, outcome = train(name, sigma, train_set, test_set)
        label = f"{name.upper()}, σ = {sigma:g}"
        print(f"{label:>16}: {outcome}")
        line, = ax.plot(range(len(curve)), curve, "o-", markersize=3, label=label)
        if len(curve) <= EPOCHS:  # diverged: a cross above the axes, never among results
            ax.plot(len(curve), 1.04, "x", color=line.get_color(), markersize=8,
                    clip_on=False)
            line.set_label(f"{label} (× diverged)")
    ax.set_ylim(0, 1)
    ax.set_xlim(-0.3, EPOCHS + 0.3)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (one read)")
    ax.set_title(f"digits on {PROFILE}, noisy baseline, seed 0", fontsize=9)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
