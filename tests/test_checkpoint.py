"""Checkpoints: a network's device state, the clock, the generators, the optimizer and a rule's
state round-trip, so a resumed run is bit-identical to an uninterrupted one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

import analogsim
from analogsim.analog import analog_layers

_RUN = """
import sys, torch, analogsim
from analogsim.rules import make
torch.set_num_threads(1)
mode, path = sys.argv[1], sys.argv[2]
clock = analogsim.SimClock()
net = analogsim.analogize(analogsim.models.mlp([40, 32, 32, 5], seed=0), "{profile}", clock,
                          seed=7 if mode != "resume" else 99)  # a resumed run's chips are loaded
opt = analogsim.on_device(torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9), net)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
rule = make("{rule}", baseline="noisy")
g = torch.Generator().manual_seed(1)
x, t = torch.rand(64, 40, generator=g), torch.eye(5)[torch.arange(64) % 5]

def steps(n):
    for _ in range(n):
        rule.fill_grads(net, x, t)
        opt.step(); opt.zero_grad(); sched.step()
        clock.advance(10.0)

if mode == "resume":
    ck = torch.load(path, weights_only=False)
    net.load_state_dict(ck["net"]); opt.load_state_dict(ck["opt"])
    sched.load_state_dict(ck["sched"]); rule.load_state_dict(ck["rule"])
else:
    steps(3)
    if mode == "save":
        torch.save({{"net": net.state_dict(), "opt": opt.state_dict(),
                    "sched": sched.state_dict(), "rule": rule.state_dict()}}, path)
        sys.exit(0)
steps(3)
with torch.no_grad():
    y = net(x)
print(repr(float(sum(p.double().sum() for p in net.parameters()))), repr(float(y.double().sum())),
      repr(clock.now))
"""


def _run(profile: str, rule: str, mode: str, path: Path) -> str:
    code = _RUN.format(profile=profile, rule=rule)
    return subprocess.run([sys.executable, "-c", code, mode, str(path)], capture_output=True,
                           text=True, timeout=300, check=True).stdout.strip()


def test_resumed_training_is_bit_identical_in_a_fresh_process(tmp_path: Path) -> None:
    for profile, rule in (("pcm", "danp"), ("rram", "dbp")):
        ck = tmp_path / f"{profile}.pt"
        straight = _run(profile, rule, "straight", ck)
        _run(profile, rule, "save", ck)
        resumed = _run(profile, rule, "resume", ck)
        assert resumed == straight, (profile, rule)


def test_state_dict_carries_the_device_state() -> None:
    clock = analogsim.SimClock()
    net = analogsim.analogize(analogsim.models.mlp([8, 6, 3]), "pcm", clock, seed=1)
    clock.advance(100.0)
    keys = net.state_dict().keys()
    for name in ("g_prog", "g_target", "nu", "q2", "t_prog_hi", "t_prog_lo", "stuck_low",
                 "scale"):
        assert any(k.endswith(f"_tile.state.{name}") for k in keys), name
    assert any(k.endswith("_tile._extra_state") for k in keys)
    other = analogsim.analogize(analogsim.models.mlp([8, 6, 3]), "pcm", seed=2)
    other.load_state_dict(net.state_dict())
    assert analog_layers(other)[0].clock.now == 100.0
    x = torch.rand(4, 8)
    with torch.no_grad():
        assert torch.equal(net(x), other(x))  # same devices, same time, same streams
