"""Put your own (pretrained) torch model onto a simulated chip and measure it over device time.

A small convnet is trained digitally on scikit-learn's 8×8 digits, then programmed onto
phase-change memory (pcm) and resistive RAM (rram). ``analogsim.evaluate`` reads the whole
test set ten times at each device time after programming — 1 s to 1 year — and reports the
mean accuracy and its standard error over the reads: how much of the digital accuracy survives
programming noise, read noise and drift.

    python examples/bring_your_own_model.py

About 10 s on 2 CPU cores.
"""

from __future__ import annotations

# isort: off
import analogsim  # before torch: sets the OpenMP wait policy torch reads once
import torch
from torch import nn
# isort: on

TIMES_S = [1, 60, 3600, 86400, 365 * 86400]  # 1 s, 1 min, 1 h, 1 d, 1 y after programming


class SmallConvNet(nn.Module):
    """Any torch model works if its weights sit in nn.Linear and nn.Conv2d layers;
    ``analogize`` names every other weight-bearing module (Conv1d, LSTM, …) it cannot map,
    and refuses unless told ``allow_digital=True``."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 16, 3), nn.ReLU(), nn.Conv2d(16, 32, 3),
                                      nn.ReLU(), nn.Flatten())
        self.head = nn.Linear(32 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, 8, 8) → (B, 10)
        return self.head(self.features(x))


def main() -> None:
    torch.manual_seed(0)
    train = analogsim.data.load("digits", "train", flatten=False)
    test = analogsim.data.load("digits", "test", flatten=False)

    net = SmallConvNet()  # your model, trained as usual
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(15):
        for i in range(0, len(train), 64):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(net(train.x[i:i + 64]), train.labels[i:i + 64])
            loss.backward()
            opt.step()
    with torch.no_grad():
        digital = (net(test.x).argmax(1) == test.labels).double().mean().item()
    print(f"digital test accuracy: {digital:.4f}\n")

    for profile in ("pcm", "rram"):
        result = analogsim.evaluate(net, test, profile=profile, times=TIMES_S, n_reps=10,
                                    seed=0)
        print(result.table())


if __name__ == "__main__":
    main()
