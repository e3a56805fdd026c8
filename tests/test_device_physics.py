"""Device physics that a result rests on, each tested by the statistic it stands for: per-device
drift and writes, independent chips, exact converters, compensation after the ADC, the 1/f
read noise of the PCM model over time, and every physics field of a profile."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import analogsim
from analogsim.analog import analog_layers, periphery, probe
from analogsim.clock import DAY_S, HOUR_S, YEAR_S
from analogsim.config.profile import DeviceProfile
from analogsim.errors import HardwareError

NU = 0.1  # a drift exponent the same for every device: factor ((t + 20)/20)^−0.1


def profile(**sections) -> DeviceProfile:
    return DeviceProfile.model_validate({"name": "t", "source": "test", **sections})


def drifting(update: dict | None = None, **extra) -> DeviceProfile:
    """Drift with one ν for all devices, no read noise, no converters: exact one-hot reads."""
    return profile(drift={"enabled": True, "nu_mean": {"intercept": NU, "max": 1.0},
                          "nu_std": {"intercept": 0.0}},
                   update=update or {"kind": "ideal"}, **extra)


def realised(layer: nn.Module, n_in: int) -> torch.Tensor:
    """Realised weights (out, in) via one-hot reads (a profile without read noise)."""
    with torch.no_grad():
        return layer(torch.eye(n_in)).t()


def factor(dt_s: float) -> float:
    return ((dt_s + 20.0) / 20.0) ** -NU


# ------------------------------------------------------------------------------ per-device drift
def test_partial_write_restarts_only_the_written_devices() -> None:
    clock = analogsim.SimClock()
    w = torch.randn(8, 16, generator=torch.Generator().manual_seed(0)).abs() + 0.1
    layer = analogsim.AnalogLinear(w, None, drifting(), clock, seed=0)
    clock.advance(YEAR_S)
    assert torch.allclose(realised(layer, 16), w * factor(YEAR_S), rtol=1e-5)
    with torch.no_grad():
        layer.weight[:, :4] *= 0.5  # rewrite four inputs; every weight stays below the max
    layer.program()
    got = realised(layer, 16)
    assert torch.allclose(got[:, :4], w[:, :4] * 0.5, rtol=1e-5)  # fresh: no drift yet
    assert torch.allclose(got[:, 4:], w[:, 4:] * factor(YEAR_S), rtol=1e-5)  # still drifted
    clock.advance(DAY_S)
    got = realised(layer, 16)
    assert torch.allclose(got[:, :4], w[:, :4] * 0.5 * factor(DAY_S), rtol=1e-5)
    assert torch.allclose(got[:, 4:], w[:, 4:] * factor(YEAR_S + DAY_S), rtol=1e-5)
    t = layer._tile.state.t_prog[0].reshape(16, 8)  # (in, out) of G+
    assert bool((t[:4] == YEAR_S).all()) and bool((t[4:] == 0).all())


@pytest.mark.parametrize("update", [{"kind": "ideal"}, {"kind": "noisy_write"},
                                    {"kind": "pulsed", "dw_min_ctoc": 0.0}])
def test_a_write_that_changes_nothing_changes_nothing(update: dict) -> None:
    """After a year at 0.24×, ``program()`` with unchanged host weights leaves the chip as it
    is — no free restoration — and so does any write of zero increments."""
    clock = analogsim.SimClock()
    w = torch.randn(8, 16, generator=torch.Generator().manual_seed(0))
    p = drifting(update, programming={"sigma_poly_uS": [0.3]})
    layer = analogsim.AnalogLinear(w, None, p, clock, seed=1)
    clock.advance(YEAR_S)
    before = realised(layer, 16)
    state = {k: v.clone() for k, v in layer._tile.state.state_dict().items()}
    layer.program()
    assert torch.equal(realised(layer, 16), before)
    for k, v in layer._tile.state.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_refresh_reprograms_every_device_and_pays_programming_noise() -> None:
    clock = analogsim.SimClock()
    w = torch.randn(64, 128, generator=torch.Generator().manual_seed(0))
    p = drifting({"kind": "noisy_write"}, programming={"sigma_poly_uS": [0.25]})
    layer = analogsim.AnalogLinear(w, None, p, clock, seed=2)
    s = layer._tile.state
    first = s.g_prog - s.g_target
    clock.advance(YEAR_S)
    analogsim.analog.refresh(layer)
    err = s.g_prog - s.g_target
    assert bool((s.t_prog == YEAR_S).all())
    # a new, independent N(0, σ_g) error on every device whose target is far from the clamp
    # at 0 (σ_g = 0.25/25 = 0.01)
    far = s.g_target > 0.05
    a, b = err[far].double(), first[far].double()
    n = a.numel()
    assert abs(float(a.std()) / 0.01 - 1) < 5 / math.sqrt(2 * n)
    assert abs(float(torch.corrcoef(torch.stack((a, b)))[0, 1])) < 5 / math.sqrt(n)


def test_pulses_act_on_the_drifted_conductance_and_restart_only_pulsed_devices() -> None:
    clock = analogsim.SimClock()
    w = torch.rand(8, 16, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.25
    p = drifting({"kind": "pulsed", "dw_min": 0.01, "dw_min_dtod": 0.0, "dw_min_ctoc": 0.0,
                  "up_down_dtod": 0.0, "bounds_dtod": 0.0, "soft_bounds": False})
    layer = analogsim.AnalogLinear(w, None, p, clock, seed=3)
    scale = float(w.max()) / 0.6  # init_fill: weight units per device unit
    clock.advance(YEAR_S)
    drifted = realised(layer, 16)
    assert torch.allclose(drifted, w * factor(YEAR_S), rtol=1e-5)
    with torch.no_grad():
        layer.weight[:, :4] += 0.05 * scale  # 5 pulses up on four inputs
    layer.program()
    got = realised(layer, 16)
    assert torch.allclose(got[:, :4], drifted[:, :4] + 0.05 * scale, rtol=1e-4)
    assert torch.allclose(got[:, 4:], drifted[:, 4:], rtol=1e-6)
    clock.advance(YEAR_S)
    got2 = realised(layer, 16)
    assert torch.allclose(got2[:, :4], got[:, :4] * factor(YEAR_S), rtol=1e-4)
    assert torch.allclose(got2[:, 4:], w[:, 4:] * factor(2 * YEAR_S), rtol=1e-4)


# ------------------------------------------------------------------------------ chips
def test_layers_are_independent_chips_reproducible_from_one_seed() -> None:
    lin = nn.Linear(64, 64)
    twin = nn.Sequential(lin, nn.Linear(64, 64))
    with torch.no_grad():
        twin[1].weight.copy_(lin.weight)
        twin[1].bias.copy_(lin.bias)
    p = profile(programming={"sigma_poly_uS": [0.5]})

    def errors(net: nn.Module) -> list[torch.Tensor]:
        """Programming errors of the devices with targets far from the clamp at 0."""
        return [(layer._tile.state.g_prog - layer._tile.state.g_target)[
            layer._tile.state.g_target > 0.1] for layer in analog_layers(net)]

    a, b = errors(analogsim.analogize(twin, p, seed=11)), errors(analogsim.analogize(twin, p,
                                                                                   seed=11))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))  # one seed: one chip
    n = a[0].numel()
    rho = float(torch.corrcoef(torch.stack((a[0].flatten(), a[1].flatten())))[0, 1])
    assert abs(rho) < 5 / math.sqrt(n)  # the two layers' errors are independent
    fresh = [analogsim.analogize(twin, p) for _ in range(2)]
    seeds = [net.chip_seed for net in fresh]
    assert None not in seeds and seeds[0] != seeds[1]
    assert not torch.equal(errors(fresh[0])[0], errors(fresh[1])[0])
    assert all(torch.equal(x, y) for x, y in zip(errors(analogsim.analogize(twin, p,
                                                                            seed=seeds[0])),
                                                  errors(fresh[0]), strict=True))


# ------------------------------------------------------------------------------ periphery
def test_dac_codes_are_exact_for_symmetric_inputs() -> None:
    cv = periphery.Converters.of(profile(dac={"bits": 8, "scaling": "absmax"}))
    u, _ = periphery.encode(torch.tensor([[[1.0, -1.0, 0.5, -0.25, 0.0]]]), cv)
    assert u.tolist() == [[[127.0, -127.0, 64.0, -32.0, 0.0]]]  # ±max|x| are codes ±127
    layer = analogsim.AnalogLinear(torch.eye(3), None, profile(dac={"bits": 8}), seed=0)
    with torch.no_grad():
        y = layer(torch.tensor([[1.0, -1.0, 0.0], [0.3, -0.3, 0.0]]))
    assert torch.allclose(y, torch.tensor([[1.0, -1.0, 0.0], [0.3, -0.3, 0.0]]), atol=1e-7)


def test_drift_compensation_scales_after_the_adc() -> None:
    """A year of drift at ν = 0.1 shrinks every weight to 0.24×; the compensation's gain g
    multiplies the ADC's codes digitally, so outputs sit on a grid of g·step, not of step."""
    clock = analogsim.SimClock()
    p = drifting(adc={"bits": 8, "output_bound": 16.0},
                 dac={"scaling": "none", "input_bound": 1.0})
    p = p.with_field("drift.compensation", True)
    w = torch.rand(16, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    layer = analogsim.AnalogLinear(w, None, p, clock, seed=4)
    clock.advance(YEAR_S)
    m = layer._tile.read_model()
    gain = float(m.gain[0, 0, 0])
    assert abs(gain * factor(YEAR_S) - 1) < 0.05  # the all-ones read sees the drift
    x = torch.rand(200, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        y = layer(x) / float(layer._tile.state.scale.max())  # normalized units
    step = 16.0 / 127
    codes = y / (gain * step)
    assert torch.allclose(codes, codes.round(), atol=1e-3)  # on the compensated grid
    assert not torch.allclose(y / step, (y / step).round(), atol=1e-2)


def test_one_over_f_read_noise_grows_with_time_from_the_programmed_conductance() -> None:
    """Per-read variance of each weight at 1 s, 1 h, 1 d and 1 y against the PCM model:
    (|G(t)|·Q_s(G_prog))²·ln((t + t0 + t_r)/(2 t_r)). At ν = 0.1 a year drifts G to 0.24×,
    where Q_s of the drifted G would be 2.5× larger: the test tells the two apart."""
    rn = {"q_coeff": 0.0088, "q_exp": 0.65, "q_max": 0.2, "g_rel_floor": 1e-3,
          "one_over_f": True, "t_read_s": 2.5e-7}
    p = drifting(read_noise=rn)
    clock = analogsim.SimClock()
    w = torch.tensor([[1.0, 0.5, 0.2, 0.05]])  # four programmed conductances
    layer = analogsim.AnalogLinear(w, None, p, clock, seed=5)
    k = 20_000
    ratios = []
    for t in (1.0, HOUR_S, DAY_S, YEAR_S):
        clock.advance_to(t)
        x = torch.eye(4).repeat(k, 1)
        with torch.no_grad():
            y = layer(x).reshape(k, 4).double()
        g = w[0].double()
        q = torch.clamp(0.0088 / g.clamp_min(1e-3) ** 0.65, max=0.2)
        pred = (g * factor(t) * q) ** 2 * math.log((t + 20 + 2.5e-7) / 5e-7)
        ratios.append(y.var(0) / pred)
    sd = math.sqrt(2 / (k - 1))  # relative sd of a sample variance
    for r in ratios:
        assert bool(((r - 1).abs() < 5 * sd).all()), r


# ------------------------------------------------------------------------------ profile fields
def test_conductance_levels_snap_the_weights() -> None:
    w = torch.linspace(-1, 1, 33).reshape(3, 11)
    layer = analogsim.AnalogLinear(w, None, profile(mapping={"levels": 3}), seed=0)
    got = realised(layer, 11)
    assert set(torch.unique(got).tolist()) <= {-1.0, -0.5, 0.0, 0.5, 1.0}
    assert float((got - w).abs().max()) <= 0.25 + 1e-6


def test_absolute_read_noise_has_its_variance() -> None:
    """σ_abs per device, both devices of a pair: var(w) = 2·(σ_abs/g_max)²·scale² per read."""
    p = profile(read_noise={"absolute_uS": 0.5})
    w = torch.tensor([[2.0, 0.0, -1.0]])
    layer = analogsim.AnalogLinear(w, None, p, seed=0)
    k = 20_000
    with torch.no_grad():
        y = layer(torch.eye(3).repeat(k, 1)).reshape(k, 3).double()
    pred = 2 * (0.5 / 25) ** 2 * 2.0**2
    sd = math.sqrt(2 / (k - 1))
    assert bool(((y.var(0) / pred - 1).abs() < 5 * sd).all())


def test_per_column_scale_makes_programming_error_relative_to_each_column() -> None:
    """A constant σ_prog in normalized units is σ·scale in weight units: per column, the
    error follows the column's largest |w| (per tile, it would follow the tile's)."""
    cols = torch.tensor([1.0, 0.1])
    w = torch.randn(2, 4000, generator=torch.Generator().manual_seed(0)) * cols[:, None]
    errs = []
    for scale in ("column", "tile"):
        p = profile(mapping={"scale": scale, "tile_cols": 4096},
                    programming={"sigma_poly_uS": [0.25]})
        layer = analogsim.AnalogLinear(w, None, p, seed=1)
        errs.append((realised(layer, 4000) - w).std(1))  # per output (= crossbar column)
    col, tile = errs
    ratio = float(col[1] / col[0])
    expected = float(w[1].abs().max() / w[0].abs().max())
    assert abs(ratio / expected - 1) < 0.15  # sd of a std over 4000 draws: ~1 %
    assert abs(float(tile[1] / tile[0]) - 1) < 0.15


def test_single_device_mapping_reads_against_half_g_max() -> None:
    """One device per weight, w = (2g − 1)·scale: a programming error σ_g gives a weight error
    2σ_g·scale, symmetric (no device at 0 to clamp); a pair would give σ_g·scale + a
    half-normal."""
    w = torch.rand(1, 4000, generator=torch.Generator().manual_seed(0)) * 1.6 - 0.8
    w[0, 0] = 1.0
    sig = 0.25  # µS at g_max 25 → σ_g = 0.01
    p = profile(mapping={"differential": False, "tile_cols": 4096},
                programming={"sigma_poly_uS": [sig]})
    layer = analogsim.AnalogLinear(w, None, p, seed=2)
    err = (realised(layer, 4000) - w).double()[0, 1:]
    n = err.numel()
    pred = 2 * sig / 25 * 1.0
    assert abs(float(err.std()) / pred - 1) < 5 / math.sqrt(2 * n)
    assert abs(float(err.mean())) < 5 * pred / math.sqrt(n)


def test_noisy_write_reprograms_changed_devices_with_programming_noise() -> None:
    """A noisy write programs each changed device with σ_prog(G) of the PCM polynomial:
    (G_prog − G)/σ_prog(G) is N(0, 1) for targets far from 0."""
    p = profile(programming={"sigma_poly_uS": [0.26348, 1.9650, -1.1731]},
                update={"kind": "noisy_write"}, mapping={"tile_cols": 4096})
    w = torch.rand(16, 2000, generator=torch.Generator().manual_seed(0)) + 0.5
    layer = analogsim.AnalogLinear(w, None, p, seed=3)
    with torch.no_grad():
        layer.weight.mul_(0.9)
    layer.program()
    s = layer._tile.state
    g = s.g_target[0].double()
    sig = (0.26348 + 1.9650 * g - 1.1731 * g**2) / 25
    z = ((s.g_prog[0].double() - g) / sig).flatten()
    n = z.numel()
    assert abs(float(z.mean())) < 5 / math.sqrt(n)
    assert abs(float(z.std()) - 1) < 5 / math.sqrt(2 * n)


# ------------------------------------------------------------------------------ rules on chips
def test_bp_noisy_read_backward_never_reads_the_mean(monkeypatch: pytest.MonkeyPatch) -> None:
    from analogsim.analog.tile import AnalogTile
    from analogsim.rules import make

    def oracle(self: AnalogTile) -> torch.Tensor:
        raise AssertionError("the noisy-read backward read the mean weights")

    monkeypatch.setattr(AnalogTile, "mean_weight", oracle)
    net = analogsim.analogize(analogsim.models.mlp([20, 16, 4]), "pcm", seed=0)
    x, t = torch.rand(8, 20), torch.eye(4)[torch.arange(8) % 4]
    make("bp").fill_grads(net, x, t)
    with pytest.raises(AssertionError, match="mean weights"):
        make("bp", backward="mean").fill_grads(net, x, t)


def test_noisy_read_backward_has_the_devices_statistics() -> None:
    """The transposed read of an upstream gradient g: mean g @ W_mean, variance per input
    Σ_j g_j²·var_ji — the same devices read from the other side (no converters here)."""
    rn = {"q_coeff": 0.05, "q_max": 0.05}
    p = profile(read_noise=rn, mapping={"tile_rows": 8})  # 3 row blocks: a sum over crossbars
    w = torch.randn(20, 6, generator=torch.Generator().manual_seed(0))
    layer = analogsim.AnalogLinear(w, None, p, seed=1)
    k = 20_000
    g = torch.randn(1, 20, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        gx = layer._tile.mvm_transposed(g.expand(k, 20).contiguous()).double()
    w_mean = layer._tile.mean_weight().double()
    pred_mean = (g.double() @ w_mean)[0]
    var_w = (0.05 * w_mean.abs()) ** 2  # σ_rel·|G| for the one non-zero device of each pair
    pred_var = (g.double() ** 2 @ var_w)[0]
    sd = math.sqrt(2 / (k - 1))
    assert bool(((gx.var(0) / pred_var - 1).abs() < 5 * sd).all())
    assert bool(((gx.mean(0) - pred_mean).abs() < 5 * (pred_var / k).sqrt()).all())


def test_anp_without_injected_noise_is_refused_on_noise_free_reads() -> None:
    from analogsim.rules import make

    x, t = torch.rand(8, 20), torch.eye(4)[torch.arange(8) % 4]
    ideal = analogsim.analogize(analogsim.models.mlp([20, 16, 4]), "ideal", seed=0)
    for name in ("anp", "danp"):
        with pytest.raises(HardwareError, match="noise-free"):
            make(name, sigma=0.0).fill_grads(ideal, x, t)
    noisy = analogsim.analogize(analogsim.models.mlp([20, 16, 4]), "noisy_nodes", seed=0)
    make("danp", sigma=0.0).fill_grads(noisy, x, t)
    assert all(layer.weight.grad.abs().sum() > 0 for layer in analog_layers(noisy))


def test_probe_leaves_no_layer_in_a_surprising_state() -> None:
    net = analogsim.analogize(analogsim.models.mlp([20, 16, 4]), "pcm", seed=0)
    with pytest.raises(RuntimeError, match="boom"), probe(net, passes=2):
        raise RuntimeError("boom")
    assert all(layer._probe is None for layer in analog_layers(net))
    with probe(net), pytest.raises(RuntimeError, match="already"), probe(net):
        pass
