"""The fast analog forward stays exact: stacked write path, log-domain read model, folded
converter units, per-tile noise and scales (C > 1 input tiles), the bf16 switch."""

from __future__ import annotations

import math

import pytest
import torch

import analogsim
from analogsim.analog import physics
from analogsim.analog.tile import AnalogTile
from analogsim.clock import HOUR_S, YEAR_S
from analogsim.config.profile import (
    ClippedLog,
    DeviceProfile,
    ProgrammingNoise,
    ReadNoise,
    load_profile,
)

RN = {"q_coeff": 0.0088, "q_exp": 0.65, "q_max": 0.2, "g_rel_floor": 1e-3, "one_over_f": True,
      "t_read_s": 2.5e-7}


def profile(**sections) -> DeviceProfile:
    return DeviceProfile.model_validate({"name": "t", "source": "test", **sections})


# ------------------------------------------------------------------------------ write path
def test_write_draws_its_normals_once_and_matches_formulas() -> None:
    """The write consumes the generators as documented (fault masks per device, then one
    two-generator draw of (programming, drift) × device normals), and realises the profile's
    formulas."""
    from analogsim.analog import normals

    p = load_profile("pcm")
    tile = AnalogTile(40, 700, p, analogsim.SimClock(), torch.Generator().manual_seed(7))
    w = torch.randn(40, 700, generator=torch.Generator().manual_seed(1))
    tile.program(w)
    gen = torch.Generator().manual_seed(7)
    shape = tile._shape
    for _ in range(2):
        physics.fault_masks(shape, p.faults, gen, torch.device("cpu"))
    xi = normals.randn((2, 2, *shape), gen, normals.second_generator(gen)).double()
    w_n = (tile.grid.to_grid(w) / tile._scale).double()
    for d, target in enumerate((w_n.clamp_min(0), (-w_n).clamp_min(0))):
        xi_p, xi_nu = xi[0, d], xi[1, d]
        g = (target * 25 + physics.programming_sigma_uS(target * 25, 25.0, p.programming)
             * xi_p).clamp_min(0) / 25
        assert torch.allclose(tile._g[d].double(), g, rtol=1e-5, atol=1e-6)
        nu = (physics.clipped_log(p.drift.nu_mean, tile._g[d].double())
              + physics.clipped_log(p.drift.nu_std, tile._g[d].double()) * xi_nu).abs()
        assert torch.allclose(tile._nu[d].double(), nu, rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------------------------ physics forms
def test_log_domain_read_variance_matches_pow_form() -> None:
    g = torch.rand(50_000, dtype=torch.float64) * 1.05
    g[:500], g[500:1000] = 0.0, 1e-9
    for extra in ({}, {"q_exp": 0.0}, {"one_over_f": False}, {"g_rel_floor": 0.2}):
        cfg = ReadNoise(**{**RN, **extra})
        ref = physics.read_variance_uS2(g * 25, 25.0, cfg, HOUR_S, 20.0) / 25**2
        got = physics.read_variance_rel(g, torch.log(g), cfg, HOUR_S, 20.0, gain=1.0)
        assert torch.allclose(got, ref, rtol=1e-9, atol=0), extra
        assert bool((got[:500] == 0).all())


def test_folded_programming_sigma_and_shared_log_drift() -> None:
    cfg = ProgrammingNoise(sigma_poly_uS=[0.26348, 1.9650, -1.1731], g_max_ref_uS=20.0)
    g = torch.rand(1000, dtype=torch.float64) * 40
    g_rel = g / 40
    ref = (0.26348 + 1.9650 * g_rel - 1.1731 * g_rel**2).clamp_min(0) * (40 / 20)
    assert torch.allclose(physics.programming_sigma_uS(g, 40.0, cfg), ref, rtol=1e-12)
    mu = ClippedLog(ln_slope=-0.0155, intercept=0.0244, min=0.049, max=0.1)
    sd = ClippedLog(ln_slope=-0.0125, intercept=-0.0059, min=0.008, max=0.045)
    a = physics.sample_drift_nu(g, 40.0, mu, sd, torch.Generator().manual_seed(1))
    b = physics.sample_drift_nu(g, 40.0, mu, sd, torch.Generator().manual_seed(1),
                                ln_g_rel=torch.log(g_rel))
    xi = torch.randn(1000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ref_nu = (physics.clipped_log(mu, g_rel) + physics.clipped_log(sd, g_rel) * xi).abs()
    assert torch.allclose(a, ref_nu, rtol=1e-12) and torch.allclose(b, ref_nu, rtol=1e-12)


# ------------------------------------------------------------------------------ read model
def test_read_model_matches_profile_formulas() -> None:
    """Drift (both devices), global compensation and read variance against the profile's
    formulas evaluated on the tile's own programmed conductances and drift exponents."""
    p = load_profile("pcm")
    clock = analogsim.SimClock()
    tile = AnalogTile(300, 700, p, clock, torch.Generator().manual_seed(0))
    tile.program(torch.randn(300, 700, generator=torch.Generator().manual_seed(1)))
    tile.noise_bf16 = False
    clock.advance(HOUR_S)
    m = tile._read_model()
    g0, nu = tile._g.double(), tile._nu.double()  # G/g_max at programming, (2, C, ci, out_p)
    gt = g0 * physics.drift_factor(nu, HOUR_S, 20.0)
    w_now, w_prog = gt[0] - gt[1], g0[0] - g0[1]
    gain = tile.grid.tile_abs_sum(w_prog) / tile.grid.tile_abs_sum(w_now)
    r = tile._a / tile._b  # DAC unit / ADC unit: the read model's units
    assert torch.allclose(m.w.double(), w_now * gain * r, rtol=1e-5, atol=1e-6)
    var = sum(physics.read_variance_uS2(gt[d] * 25, 25.0, p.read_noise, HOUR_S, 20.0)
              for d in range(2)) / 25**2 * gain**2 * r**2
    assert torch.allclose(m.var.double(), var, rtol=1e-4, atol=1e-12)
    tile.noise_bf16 = True  # the switch re-reads: bf16 variances, same mean
    m2 = tile._read_model()
    assert m2.var.dtype == torch.bfloat16 and torch.equal(m2.w, m.w)
    assert torch.allclose(m2.var.double(), var, rtol=2**-8, atol=1e-12)


# ------------------------------------------------------------------------------ mvm
def _ref_mvm(tile: AnalogTile, x: torch.Tensor) -> torch.Tensor:
    """Noise-free reference: DAC per sample and tile, mean read, ADC per tile, rescale, sum —
    in float64, the old (unfolded) order of operations."""
    p, gr = tile.profile, tile.grid
    m = tile._read_model()
    w_n = m.w.double() * (tile._b / tile._a)  # normalized mean weights
    xp = torch.nn.functional.pad(x.double(), (0, gr.in_padded - gr.in_features))
    xc = xp.reshape(len(x), gr.n_col, gr.ci).transpose(0, 1)
    half_in, half_out = 2 ** (p.dac.bits - 1), 2 ** (p.adc.bits - 1)
    unit, out_unit = p.dac.input_bound / half_in, p.adc.output_bound / half_out
    s = xc.abs().amax(dim=2, keepdim=True) * (unit / p.dac.input_bound)
    u = (xc / s).round().clamp(-half_in, half_in - 1)
    y = torch.bmm(u, w_n) * (unit / out_unit)
    y = y.round().clamp(-half_out, half_out - 1) * out_unit * tile._scale.double() * s / unit
    return y.sum(0)[:, : gr.out_features]


@pytest.mark.parametrize("out_f", [600, 40])  # 2×2 tiles (scale per tile varies with j), 2×1
def test_noise_free_mvm_matches_reference(out_f: int) -> None:
    p = profile(drift={"enabled": True, "compensation": True,
                       "nu_mean": {"intercept": 0.06, "max": 1.0}, "nu_std": {"intercept": 0.01}},
                dac={"bits": 8, "scaling": "absmax"}, adc={"bits": 8, "output_bound": 12.0},
                mapping={"tile_rows": 512, "tile_cols": 512})
    clock = analogsim.SimClock()
    tile = AnalogTile(out_f, 700, p, clock, torch.Generator().manual_seed(0))
    w = torch.randn(out_f, 700, generator=torch.Generator().manual_seed(1))
    w[:, 350:] *= 3  # the two input tiles get different scales
    tile.program(w)
    clock.advance(YEAR_S)
    x = torch.rand(64, 700, generator=torch.Generator().manual_seed(2)) * 2 - 1
    x[:, :350] *= 0.1  # and different per-sample DAC scales
    got, ref = tile.mvm(x).double(), _ref_mvm(tile, x)
    # Float rounding may flip an ADC code at an exact half step (rare): one LSB of one tile.
    lsb = 12.0 / 128 * float(tile._scale.max()) * float(x.abs().max())  # weight units
    diff = (got - ref).abs()
    assert float((diff > 1e-4 * lsb).float().mean()) < 1e-2
    assert float(diff.max()) <= 1.01 * lsb


def _two_tile_layer(p: DeviceProfile, gen: torch.Generator) -> tuple:
    clock = analogsim.SimClock()
    w = torch.randn(40, 700, generator=gen)
    w[:, 350:] *= 3  # tile 0 (inputs 0..349) and tile 1 have different weight scales
    layer = analogsim.AnalogLinear(w, torch.zeros(40), p, clock, gen)
    return clock, w, layer


def test_read_noise_variance_over_two_input_tiles() -> None:
    p = profile(read_noise=RN, mapping={"tile_cols": 512})
    gen = torch.Generator().manual_seed(0)
    clock, w, layer = _two_tile_layer(p, gen)
    clock.advance(HOUR_S)
    k = 4000
    x = torch.rand(1, 700, generator=gen)
    with torch.no_grad():
        y = layer(x.expand(k, 700))
    # design.md §5 per device, each input tile with its own scale max|w| over the tile
    var_w = torch.empty(40, 700, dtype=torch.float64)
    for cols in (slice(0, 350), slice(350, 700)):
        scale = w[:, cols].abs().max()
        g = (w[:, cols].abs() / scale).double()
        q = torch.clamp(0.0088 / g.clamp_min(1e-3) ** 0.65, max=0.2)
        sig = q * math.sqrt(math.log((HOUR_S + 20 + 2.5e-7) / (2 * 2.5e-7)))
        var_w[:, cols] = (g * sig * scale) ** 2
    pred = (x.double() ** 2) @ var_w.t()
    ratio = y.double().var(dim=0) / pred[0]
    sd = math.sqrt(2 / (k - 1))
    assert abs(float(ratio.mean()) - 1) < 5 * sd / math.sqrt(40) + 0.005
    assert float((ratio - 1).abs().max()) < 5 * sd + 0.005


def test_output_noise_is_per_tile_with_its_scales() -> None:
    """σ_out is added to each tile's normalized output before its ADC: in weight units it is
    σ_out·scale_c·max|x_c|/bound per tile c, and the tiles add in variance."""
    p = profile(adc={"noise_std": 0.1}, mapping={"tile_cols": 512},
                dac={"scaling": "absmax", "input_bound": 1.0})
    gen = torch.Generator().manual_seed(0)
    _, w, layer = _two_tile_layer(p, gen)
    k = 4000
    x = torch.rand(1, 700, generator=gen)
    x[:, :350] *= 0.25
    pred = sum((0.1 * float(w[:, c].abs().max()) * float(x[:, c].abs().max())) ** 2
               for c in (slice(0, 350), slice(350, 700)))
    sd = math.sqrt(2 / (k - 1))
    for _ in range(3):  # every read the same σ (the cached read model is not altered)
        with torch.no_grad():
            y = layer(x.expand(k, 700))
        ratio = y.double().var(dim=0) / pred
        assert abs(float(ratio.mean()) - 1) < 5 * sd / math.sqrt(40)
    mean_err = (y.double().mean(0) - (x.double() @ w.double().t())[0]).abs()
    assert bool((mean_err < 5 * math.sqrt(pred / k)).all())


# ------------------------------------------------------------------------------ int8 mean
def test_int8_digits_reconstruct_weights_within_their_bound() -> None:
    from analogsim.analog.tile import int8_digits

    gen = torch.Generator().manual_seed(0)
    w = torch.randn(2, 300, 50, generator=gen) * torch.logspace(-3, 1, 50)  # column scales
    w[:, :, 0] = 0.0  # an all-zero column
    q, s = int8_digits(w)
    assert q.dtype == torch.int8 and q.shape == (2, 300, 100)
    assert int(q.abs().max()) <= 127
    rebuilt = s.double() * (q[..., :50].double() + q[..., 50:].double() / 254)
    # bound s/508 from rounding t = w/s to q₁ + q₂/254; float32 t adds ≤ 2⁻²⁴·127·s
    assert bool(((rebuilt - w.double()).abs() <= s.double() * (1 / 508 + 127 * 2**-23)).all())


@pytest.mark.parametrize(("in_f", "cols"), [(700, 512), (1200, 600)])  # int32 / float combine
def test_int8_mean_product_matches_float32(in_f: int, cols: int) -> None:
    """Same tile, same noise draws: the int8 digit product and the float32 one give the same
    outputs but for rare ADC codes flipped by the digits' error (≤ max|w|/64 516 per weight,
    ~1e-3 LSB per output here: a flip chance of ~1e-3 per output; allowed 1 %)."""
    p = load_profile("pcm").with_field("mapping.tile_cols", cols)
    outs = []
    for int8 in (False, True):
        tile = AnalogTile(60, in_f, p, analogsim.SimClock(), torch.Generator().manual_seed(0))
        tile.program(torch.randn(60, in_f, generator=torch.Generator().manual_seed(1)))
        tile.int8_mean = int8
        x = torch.randn(500, in_f, generator=torch.Generator().manual_seed(2))
        outs.append(tile.mvm(x).double())
        assert (tile._read_model().wq is not None) == int8
    lsb = (p.adc.output_bound / 128 * float(tile._scale.max())  # type: ignore[operator]
           * float(x.abs().max()) / p.dac.input_bound * 1.01)
    diff = (outs[0] - outs[1]).abs()
    assert float((diff > 1e-4 * lsb).float().mean()) < 1e-2
    assert float(diff.max()) <= lsb


def test_int8_mean_needs_an_integer_dac() -> None:
    p = profile(dac={"bits": 10}, read_noise=RN)
    tile = AnalogTile(8, 16, p, analogsim.SimClock(), torch.Generator().manual_seed(0))
    assert not tile.int8_mean
    with pytest.raises(ValueError, match="at most 8 bits"):
        tile.int8_mean = True


# ------------------------------------------------------------------------------ normals
def test_split_normals_are_one_stream_threaded_or_not(monkeypatch: pytest.MonkeyPatch) -> None:
    from analogsim.analog import normals

    shape = (3, 700, 101)  # odd count: halves of n//2 and n − n//2
    draws = []
    for threaded in (True, False, True):
        monkeypatch.setattr(normals, "helper_thread_enabled", lambda t=threaded: t)
        gen = torch.Generator().manual_seed(5)
        draws.append(normals.randn(shape, gen, normals.second_generator(gen)))
    assert torch.equal(draws[0], draws[1]) and torch.equal(draws[0], draws[2])
    gen = torch.Generator().manual_seed(5)
    second = normals.second_generator(gen)
    n = 3 * 700 * 101
    flat = draws[0].reshape(-1)
    assert torch.equal(flat[: n // 2], torch.randn(n // 2, generator=gen))
    assert torch.equal(flat[n // 2:], torch.randn(n - n // 2, generator=second))
    # N(0, 1), halves uncorrelated: 5 standard errors
    z = flat.double()
    assert abs(float(z.mean())) < 5 / math.sqrt(n)
    assert abs(float(z.var()) - 1) < 5 * math.sqrt(2 / n)
    h = n // 2
    r = float(torch.corrcoef(torch.stack((z[: h], z[h: 2 * h])))[0, 1])
    assert abs(r) < 5 / math.sqrt(h)


def test_helper_thread_draws_in_inference_mode_and_after_fork(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The helper's half is written in the caller's inference mode, and a forked child starts
    its own helper (it inherits the pool object without its thread)."""
    import multiprocessing

    from analogsim.analog import normals

    monkeypatch.setattr(normals, "helper_thread_enabled", lambda: True)
    outs = []
    for mode in (torch.no_grad, torch.inference_mode):
        layer = analogsim.AnalogLinear(torch.randn(300, 400, generator=torch.Generator()
                                                   .manual_seed(0)), None, "pcm",
                                       generator=torch.Generator().manual_seed(1))
        with mode():
            outs.append(layer(torch.rand(500, 400, generator=torch.Generator().manual_seed(2))))
    assert torch.equal(outs[0], outs[1])
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=normals.randn, args=((4, 1 << 16), torch.Generator(),
                                                    torch.Generator()))
    child.start()
    child.join(60)
    if child.exitcode is None:
        child.kill()
    assert child.exitcode == 0


_TRAIN_A_FEW_STEPS = """
import analogsim, torch, sys
from analogsim.analog import normals
from analogsim.rules import make
torch.set_num_threads(2)
if sys.argv[1] == "off":
    normals.helper_thread_enabled = lambda: False
print(normals.helper_thread_enabled())
net = analogsim.analogize(analogsim.models.mlp([300, 400, 10], seed=0), "pcm",
                          generator=torch.Generator().manual_seed(1))
rule = make("danp", baseline="noisy")
opt = analogsim.on_device(torch.optim.SGD(net.parameters(), lr=1e-3), net)
x = torch.rand(200, 300, generator=torch.Generator().manual_seed(2))
t = torch.nn.functional.one_hot(torch.arange(200) % 10, 10).float()
for _ in range(3):
    rule.fill_grads(net, x, t)
    opt.step()
print(repr(float(sum(p.double().sum() for p in net.parameters()))))
"""


def test_training_is_the_same_with_and_without_the_helper_thread() -> None:
    """A fresh process that imports analogsim first (idle OpenMP threads sleep): three DANP
    steps give bit-identical weights whether the normals' halves run on two threads or one."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    runs = [subprocess.run([sys.executable, "-c", _TRAIN_A_FEW_STEPS, mode], env=env,
                           capture_output=True, text=True, timeout=120, check=True).stdout.split()
            for mode in ("on", "off")]
    assert runs[0][0] == "True" and runs[1][0] == "False"
    assert runs[0][1] == runs[1][1]
