"""Statistical checks of the device physics, with fixed seeds and derived tolerances."""

from __future__ import annotations

import math

import pytest
import torch

import analogsim
from analogsim.analog import physics
from analogsim.clock import DAY_S, HOUR_S, MINUTE_S, YEAR_S
from analogsim.config.profile import DeviceProfile, Faults, ProgrammingNoise, PulsedUpdate


def profile(**sections) -> DeviceProfile:
    return DeviceProfile.model_validate({"name": "t", "source": "test", **sections})


def read_weights(layer: torch.nn.Module, n_in: int) -> torch.Tensor:
    """Realised weights (out, in) via one-hot reads (profile without read noise/ADC)."""
    with torch.no_grad():
        return (layer(torch.eye(n_in)) - layer.bias).t()


def test_quantizer_is_symmetric_with_2_pow_bits_minus_1_levels_and_clips() -> None:
    x = torch.linspace(-3, 3, 200_001, dtype=torch.float64)
    for bits in (2, 4, 8):
        for bound in (0.5, 1.0, 12.0):
            q = physics.quantize(x * bound, bits, bound)
            levels = torch.unique(q)
            step = bound / (2 ** (bits - 1) - 1)
            assert len(levels) == 2**bits - 1
            assert math.isclose(levels.min(), -bound) and math.isclose(levels.max(), bound)
            assert torch.allclose(torch.diff(levels), torch.full_like(levels[1:], step))


def test_adc_through_layer_outputs_on_grid_and_saturate() -> None:
    p = profile(dac={"scaling": "none"}, adc={"bits": 3, "output_bound": 2.0})
    w = torch.tensor([[1.0, -0.5], [0.25, 0.5]])
    layer = analogsim.AnalogLinear(w, torch.zeros(2), p)
    x = torch.rand(500, 2, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        y = layer(x)  # scale = max|w| = 1: outputs are ADC levels directly
    levels = torch.arange(-3, 4) * (2.0 / 3)  # 3 bits: codes −3 … 3 of 2/3
    assert all(min(abs(v - lv) for lv in levels.tolist()) < 1e-6 for v in torch.unique(y).tolist())
    with torch.no_grad():  # 1.5 → nearest code 2 (4/3)
        sat = layer(torch.tensor([[1.0, -1.0], [-1.0, 1.0]]))
        # 3 in normalized units saturates at the ADC's bound 2
        big = analogsim.AnalogLinear(torch.tensor([[1.0, -1.0, 1.0]]), torch.zeros(1), p)(
            torch.tensor([[1.0, -1.0, 1.0], [-1.0, 1.0, -1.0]]))
    assert math.isclose(float(sat[0, 0]), 4 / 3, rel_tol=1e-6)
    assert math.isclose(float(sat[1, 0]), -4 / 3, rel_tol=1e-6)
    assert torch.allclose(big[:, 0], torch.tensor([2.0, -2.0]))


def test_programming_noise_sigma_matches_model() -> None:
    cfg = ProgrammingNoise(sigma_poly_uS=[0.26348, 1.9650, -1.1731])
    gen = torch.Generator().manual_seed(0)
    n = 200_000
    for g in (5.0, 12.5, 25.0):
        target = torch.full((n,), g, dtype=torch.float64)
        got = physics.program(target, 25.0, cfg, gen)
        g_rel = g / 25.0
        expect = 0.26348 + 1.9650 * g_rel - 1.1731 * g_rel**2
        # std of a sample std: σ/sqrt(2n); clamp at 0 is ≥ 4σ away for these targets
        assert abs(float(got.std()) / expect - 1) < 5 / math.sqrt(2 * n)
        assert abs(float(got.mean()) - g) < 5 * expect / math.sqrt(n)


def test_stuck_at_fractions_within_binomial_tolerance() -> None:
    shape = torch.Size((300, 400))
    n = shape.numel()
    low, high = physics.fault_masks(shape, Faults(stuck_at_min_fraction=0.02,
                                                  stuck_at_max_fraction=0.005),
                                    torch.Generator().manual_seed(3), torch.device("cpu"))
    for mask, f in ((low, 0.02), (high, 0.005)):
        assert abs(float(mask.float().mean()) - f) < 5 * math.sqrt(f * (1 - f) / n)
    assert not (low & high).any()


def test_stuck_devices_in_a_layer() -> None:
    p = profile(faults={"stuck_at_max_fraction": 0.1})
    w = torch.full((64, 128), 0.5)
    w[0, 0] = 1.0  # tile scale: max|w| = 1 ↔ g_max
    layer = analogsim.AnalogLinear(w, torch.zeros(64), p)
    got = read_weights(layer, 128)
    # A weight is off when its G+ (→ w = 1) or G− (→ w = 0.5 − 1) is stuck: 1 − 0.9² = 19 %
    frac = float((got - w).abs().gt(1e-5).float().mean())
    n = w.numel()
    assert abs(frac - 0.19) < 5 * math.sqrt(0.19 * 0.81 / n)


@pytest.mark.parametrize("t_s", [MINUTE_S, HOUR_S, DAY_S, YEAR_S])
def test_drift_follows_power_law(t_s: float) -> None:
    mu, sd, t0 = 0.05, 0.01, 20.0
    p = profile(drift={"enabled": True, "t0_s": t0,
                       "nu_mean": {"intercept": mu, "max": 1.0},
                       "nu_std": {"intercept": sd, "max": 1.0}})
    clock = analogsim.SimClock()
    w = torch.randn(128, 256, generator=torch.Generator().manual_seed(0))
    layer = analogsim.AnalogLinear(w, torch.zeros(128), p, clock,
                                   torch.Generator().manual_seed(1))
    w0 = read_weights(layer, 256)
    clock.advance(t_s)
    wt = read_weights(layer, 256)
    nu = -torch.log(wt / w0) / math.log((t_s + t0) / t0)  # per device (one per weight)
    n = nu.numel()
    # ν = |N(μ, σ)| with μ = 5σ: E|ν| = μ up to 1e-6, sd(ν) = σ
    assert abs(float(nu.mean()) - mu) < 5 * sd / math.sqrt(n)
    assert abs(float(nu.std()) - sd) < 5 * sd / math.sqrt(2 * n)


def test_drift_compensation_restores_scale() -> None:
    p = profile(drift={"enabled": True, "compensation": True,
                       "nu_mean": {"intercept": 0.06, "max": 1.0},
                       "nu_std": {"intercept": 0.0}})
    clock = analogsim.SimClock()
    w = torch.randn(32, 64, generator=torch.Generator().manual_seed(0))
    layer = analogsim.AnalogLinear(w, torch.zeros(32), p, clock)
    clock.advance(YEAR_S)
    assert torch.allclose(read_weights(layer, 64), w, rtol=1e-4, atol=1e-6)


def test_read_noise_variance_matches_profile_model() -> None:
    rn = {"q_coeff": 0.0088, "q_exp": 0.65, "q_max": 0.2, "g_rel_floor": 1e-3,
          "one_over_f": True, "t_read_s": 2.5e-7}
    p = profile(read_noise=rn)
    clock = analogsim.SimClock()
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(32, 128, generator=gen)
    layer = analogsim.AnalogLinear(w, torch.zeros(32), p, clock, gen)
    clock.advance(HOUR_S)
    k = 4000
    x = torch.rand(1, 128, generator=gen)
    with torch.no_grad():
        y = layer(x.expand(k, 128))  # k independent reads of the same input
    # Independent prediction from design.md §5: σ_read = Q_s·sqrt(ln((t+t0+t_r)/(2 t_r))),
    # Q_s = min(0.2, 0.0088/max(1e-3, g)^0.65), G = |w|/max|w|·g_max, w = (G+ − G−)/g_max·scale.
    scale = w.abs().max()
    g_rel = (w.abs() / scale).double()
    q = torch.clamp(0.0088 / g_rel.clamp_min(1e-3) ** 0.65, max=0.2)
    sig_rel = q * math.sqrt(math.log((HOUR_S + 20 + 2.5e-7) / (2 * 2.5e-7)))
    var_w = (g_rel * sig_rel * scale) ** 2  # weight units
    pred = (x.double() ** 2) @ var_w.t()
    emp = y.double().var(dim=0)
    ratio = emp / pred[0]
    # sample variance: relative sd sqrt(2/(k−1)) per output (2.2 %); mean over 32 outputs
    sd = math.sqrt(2 / (k - 1))
    assert abs(float(ratio.mean()) - 1) < 5 * sd / math.sqrt(32) + 0.005  # + bf16 rounding
    assert float((ratio - 1).abs().max()) < 5 * sd + 0.005
    mean_err = (y.double().mean(0) - (x.double() @ w.double().t())[0]).abs()
    assert bool((mean_err < 5 * pred[0].sqrt() / math.sqrt(k)).all())


def test_pulsed_update_statistics() -> None:
    cfg = PulsedUpdate(dw_min=0.01, dw_min_dtod=0.0, dw_min_ctoc=0.3, up_down_dtod=0.0,
                       bounds_dtod=0.0, soft_bounds=False)
    gen = torch.Generator().manual_seed(0)
    shape = torch.Size((100_000,))
    dev = physics.sample_pulsed_devices(shape, cfg, gen, torch.device("cpu"))
    w = torch.zeros(shape)
    new = physics.pulsed_update(w, torch.full(shape, 0.1), dev, cfg, gen)  # 10 pulses
    n = shape.numel()
    sd = 0.01 * 0.3 * math.sqrt(10)
    assert abs(float(new.mean()) - 0.1) < 5 * sd / math.sqrt(n)
    assert abs(float(new.std()) / sd - 1) < 5 / math.sqrt(2 * n)
    # Soft bounds: from w at 3/4 of the bound the step shrinks to 1/4.
    cfg_sb = cfg.model_copy(update={"soft_bounds": True, "dw_min_ctoc": 0.0})
    near = physics.pulsed_update(torch.full(shape, 0.75), torch.full(shape, 0.1), dev, cfg_sb,
                                 gen)
    assert torch.allclose(near, torch.full(shape, 0.75 + 0.1 * 0.25))
    # Hard limit at the bound, and at most max_pulses.
    big = physics.pulsed_update(w, torch.full(shape, 100.0), dev,
                                cfg.model_copy(update={"dw_min_ctoc": 0.0}), gen)
    assert torch.allclose(big, torch.full(shape, 1.0))
