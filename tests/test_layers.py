"""Analog layers: digital equivalence on the ideal profile, opacity, update models, devices."""

from __future__ import annotations

import math

import pytest
import torch
from nets import make_mlp
from torch import nn

import analogsim
from analogsim.analog import AnalogLayer, analog_layers, probe
from analogsim.config.profile import DeviceProfile

HARDWARE = ["pcm", "rram", "low_precision", "noisy_nodes"]


def convnet(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 16, 3, 2), nn.LeakyReLU(0.01), nn.Conv2d(16, 32, 3, 2),
                         nn.LeakyReLU(0.01), nn.Conv2d(32, 64, 3, 1, padding=1),
                         nn.LeakyReLU(0.01), nn.Flatten(), nn.Linear(64 * 7 * 7, 100))


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b).norm() / b.norm()).detach())


def test_ideal_profile_is_the_digital_network(device: torch.device) -> None:
    mlp = make_mlp([64, 256, 256, 10]).to(device)
    x = torch.rand(50, 64, device=device)
    a_mlp = analogsim.analogize(mlp, "ideal")
    cnn = convnet().to(device)
    xi = torch.rand(8, 3, 32, 32, device=device)
    a_cnn = analogsim.analogize(cnn, "ideal")
    with torch.no_grad():
        assert rel_err(a_mlp(x), mlp(x)) <= 1e-5
        assert rel_err(a_cnn(xi), cnn(xi)) <= 1e-5
    assert len(analog_layers(a_cnn)) == 4
    assert isinstance(a_cnn[0].to_digital(), nn.Conv2d)


def test_hardware_profiles_run_on_device_and_are_close(device: torch.device) -> None:
    mlp = make_mlp([64, 256, 10]).to(device)
    x = torch.rand(100, 64, device=device)
    for name in HARDWARE:
        gen = torch.Generator(device).manual_seed(0)
        net = analogsim.analogize(mlp, name, generator=gen)
        with torch.no_grad():
            y = net(x)
        assert y.device.type == device.type and y.dtype == torch.float32
        assert rel_err(y, mlp(x)) < 0.6, name  # a perturbed, not a broken, network


@pytest.mark.parametrize("name", HARDWARE)
def test_no_two_passes_agree_on_hardware(name: str) -> None:
    # Seeded, and 256 rows: on low_precision (4-bit ADC, small read noise) one row's ten
    # outputs repeat in two reads with probability about 0.77 (measured over 200 seeds at 20
    # rows: one full agreement, so 0.77**20 ~ 0.005), so 256 rows agree with probability
    # about 0.77**256 < 1e-28.
    torch.manual_seed(0)
    net = analogsim.analogize(make_mlp([64, 128, 10]), name,
                              generator=torch.Generator().manual_seed(1))
    x = torch.rand(256, 64, generator=torch.Generator().manual_seed(2))
    net.eval()
    with torch.no_grad():
        assert not torch.equal(net(x), net(x))
    assert all(layer.hardware for layer in analog_layers(net))


def test_public_surface_offers_no_clean_pass() -> None:
    layer = analog_layers(analogsim.analogize(make_mlp([8, 4]), "pcm"))[0]
    public = {n for n in dir(layer) if not n.startswith("_")} - set(dir(nn.Module))
    assert public <= {"weight", "bias", "profile", "clock", "decorrelator", "chip_seed",
                      "hardware", "program", "refresh", "from_digital", "to_digital",
                      "in_features", "out_features", "training"}, public


def test_ideal_profile_passes_agree() -> None:
    net = analogsim.analogize(make_mlp([16, 8, 4]), "ideal")
    x = torch.rand(5, 16)
    with torch.no_grad():
        assert torch.equal(net(x), net(x))
    assert not any(layer.hardware for layer in analog_layers(net))


def _exact_reader(update: dict, programming: bool) -> DeviceProfile:
    sec = {"update": update}
    if programming:
        sec["programming"] = {"sigma_poly_uS": [0.5]}
    return DeviceProfile.model_validate({"name": "t", "source": "test", **sec})


def _realised(layer: AnalogLayer) -> torch.Tensor:
    with torch.no_grad():
        return (layer(torch.eye(layer.in_features)) - layer.bias).t()


def test_update_models_reach_the_device() -> None:
    w = torch.randn(16, 32, generator=torch.Generator().manual_seed(0))
    for kind, noisy in (("ideal", False), ("noisy_write", True)):
        layer = analogsim.AnalogLinear(w, torch.zeros(16), _exact_reader({"kind": kind}, noisy),
                                       seed=0)
        with torch.no_grad():
            layer.weight.add_(0.1)
        layer.program()
        err = (_realised(layer) - (w + 0.1)).abs().max()
        assert (err > 1e-3) if noisy else (err < 1e-5), kind
    # pulsed: a requested increment arrives quantized in steps, realised ≠ requested
    layer = analogsim.AnalogLinear(w, torch.zeros(16), _exact_reader(
        {"kind": "pulsed", "dw_min_ctoc": 0.0, "dw_min_dtod": 0.0, "up_down_dtod": 0.0,
         "soft_bounds": False, "bounds_dtod": 0.0, "dw_min": 0.01}, False))
    before = _realised(layer)
    scale = w.abs().max() / 0.6  # init_fill
    with torch.no_grad():
        layer.weight.add_(0.034 * scale)  # 3.4 steps → 3 pulses
    layer.program()
    assert torch.allclose(_realised(layer) - before, torch.full_like(w, 0.03 * scale),
                          atol=1e-5)


def test_on_device_optimizer_programs_after_step() -> None:
    net = analogsim.analogize(make_mlp([4, 3]), _exact_reader({"kind": "ideal"}, False))
    opt = analogsim.on_device(torch.optim.SGD(net.parameters(), lr=1.0), net)
    layer = analog_layers(net)[0]
    target = layer.weight.detach() - 0.5
    layer.weight.grad = torch.full_like(layer.weight, 0.5)
    opt.step()
    assert torch.allclose(_realised(layer), target, atol=1e-6)


def test_bp_gradients_flow_through_hardware() -> None:
    net = analogsim.analogize(make_mlp([16, 8, 4]), "pcm")
    x = torch.rand(10, 16, requires_grad=True)
    net(x).pow(2).sum().backward()
    for layer in analog_layers(net):
        assert layer.weight.grad is not None and torch.isfinite(layer.weight.grad).all()
        assert layer.weight.grad.abs().sum() > 0
    assert x.grad is not None


@pytest.mark.parametrize("backward", ["mean", "shadow"])
def test_straight_through_gradients_of_weight_bias_and_input(backward: str) -> None:
    """Loss Σ_n c·a_n: ∂/∂b = N·c, ∂/∂W = c·Σ_n x_n, ∂/∂x_n = c·W (the tile's mean weights,
    or the host's digital ones)."""
    from analogsim.analog import probe

    layer = analogsim.AnalogLinear(torch.randn(6, 20), torch.randn(6), "pcm",
                                   generator=torch.Generator().manual_seed(0))
    x = torch.rand(12, 20, requires_grad=True)
    c = torch.arange(6, dtype=torch.float32)
    with probe(layer, record=False, backward=backward):
        (layer(x) * c).sum().backward()
    assert torch.allclose(layer.bias.grad, 12 * c)
    assert torch.allclose(layer.weight.grad, c[:, None] * x.detach().sum(0), rtol=1e-5)
    w = layer._tile.mean_weight() if backward == "mean" else layer.weight.detach()
    assert torch.allclose(x.grad, (c @ w).expand(12, 20), rtol=1e-5, atol=1e-6)


def test_clock_stamps_programming_and_runs_processes() -> None:
    clock = analogsim.SimClock()
    seen = []

    def proc():
        yield clock.timeout(5)
        seen.append(clock.now)

    clock.process(proc())
    clock.advance(10)
    assert seen == [5.0] and clock.now == 10.0
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_shared_passes_read_once_per_pass_with_the_same_statistics() -> None:
    """``passes`` = P: the input's P copies are converted once and read P times, each read
    with its own noise — the same per-output mean and variance as P separate reads."""
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(40, 700, generator=gen) * 0.05
    x = torch.rand(1, 700, generator=gen)
    reads = 2000
    ys = []
    for shared in (False, True):
        layer = analogsim.AnalogLinear(w, torch.zeros(40), "pcm",
                                       generator=torch.Generator().manual_seed(1))
        with torch.no_grad(), probe(layer, passes=reads if shared else 1):
            ys.append(layer(x.expand(reads, 700).contiguous()).double())
    (y0, y1) = ys
    assert y1.shape == (reads, 40)
    # variance ratio of two independent samples of `reads` each: sd √(4/reads) per output
    ratio = y1.var(0) / y0.var(0)
    assert abs(float(ratio.mean()) - 1) < 5 * math.sqrt(4 / reads) / math.sqrt(40)
    se = torch.sqrt((y0.var(0) + y1.var(0)) / reads)
    assert bool(((y1.mean(0) - y0.mean(0)).abs() < 5 * se).all())
    assert float(y1.var(0).min()) > 0  # every read its own noise


def test_run_passes_shares_the_first_layer_only_where_its_input_is_the_model_input() -> None:
    from analogsim.analog.probe import input_layer
    from analogsim.rules.base import run_passes

    net = analogsim.analogize(make_mlp([16, 8, 4]), "pcm")
    assert input_layer(net) is analog_layers(net)[0]
    assert input_layer(nn.Sequential(nn.Flatten(), net)) is analog_layers(net)[0]
    assert input_layer(nn.Sequential(nn.Tanh(), net)) is None
    x = torch.rand(5, 16)
    with torch.no_grad():
        out, traces = run_passes(net, x, 3)
    assert out.shape == (15, 4)
    assert torch.equal(traces[0].inputs.reshape(3, 5, 16), x.expand(3, 5, 16))
    pre = traces[0].pre.reshape(3, 5, -1)
    assert not torch.equal(pre[0], pre[1]) and not torch.equal(pre[1], pre[2])
    assert all(layer._probe is None for layer in analog_layers(net))  # the probe is cleared


def test_shared_passes_through_a_convolution() -> None:
    """The first conv layer of a convnet shares its patches between passes: pass-major rows,
    identical recorded inputs, own noise per pass; the ideal profile gives identical passes."""
    from analogsim.rules.base import run_passes

    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    for profile in ("pcm", "ideal"):
        net = analogsim.analogize(convnet(), profile, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            out, traces = run_passes(net, x, 2)
            ref = net(x) if profile == "ideal" else None
        inputs, pre = traces[0].inputs, traces[0].pre  # (8, L, K), (8, L, 16)
        assert out.shape == (8, 100) and inputs.shape[0] == 8
        assert torch.equal(inputs[:4], inputs[4:])
        if ref is None:
            assert not torch.equal(pre[:4], pre[4:])
        else:
            assert torch.equal(pre[:4], pre[4:]) and torch.allclose(out[:4], ref, atol=1e-6)


def test_shared_passes_apply_to_the_next_call_only() -> None:
    """A layer used twice in a network shares its first call's input only."""
    w = torch.randn(6, 6, generator=torch.Generator().manual_seed(0))
    layer = analogsim.AnalogLinear(w, torch.zeros(6), "ideal")
    x, other = torch.rand(3, 6), torch.rand(6, 6)
    with torch.no_grad(), probe(layer, passes=2):
        first = layer(torch.cat([x, x]))
        second = layer(other)
    assert torch.allclose(first, torch.cat([x, x]) @ w.t(), atol=1e-6)
    assert torch.allclose(second, other @ w.t(), atol=1e-6) and layer._probe is None
