"""Output error of a fresh He-initialised 1024×1024 layer on each shipped profile.

Relative L2 error of the analog output against the digital one on ReLU-like inputs
(batch 256), read just after programming; for pcm also each effect alone.

    python benchmarks/layer_error.py
"""

from __future__ import annotations

import torch

import analogsim
from analogsim.config.profile import shipped_profiles
from analogsim.models import mlp


def rel_err(profile: analogsim.DeviceProfile, layer: torch.nn.Module, x: torch.Tensor) -> float:
    net = analogsim.analogize(layer, profile, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y, y0 = net(x), layer(x)
    return float((y - y0).norm() / y0.norm())


def main() -> None:
    layer = mlp([1024, 1024], seed=0)
    # (a seed other than the weights': the same stream would make x ∝ a weight row)
    x = torch.randn(256, 1024, generator=torch.Generator().manual_seed(123)).clamp_min(0)
    for name in shipped_profiles():
        print(f"{name:<15} {rel_err(analogsim.load_profile(name), layer, x):6.1%}")
    pcm, ideal = analogsim.load_profile("pcm"), analogsim.load_profile("ideal")
    parts = {
        "programming noise": ideal.model_copy(update={"programming": pcm.programming}),
        "read noise (1/f)": ideal.model_copy(update={"read_noise": pcm.read_noise}),
        "DAC + ADC + output noise": ideal.model_copy(update={"dac": pcm.dac, "adc": pcm.adc}),
    }
    for what, prof in parts.items():
        print(f"pcm, {what} alone: {rel_err(prof, layer, x):6.1%}")


if __name__ == "__main__":
    main()
