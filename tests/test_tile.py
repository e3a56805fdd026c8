"""The tile: its write consumes normals as documented, its read model follows the profile's
formulas, its forward matches an unfolded reference, noise per tile, the numerics setting."""

from __future__ import annotations

import math

import pytest
import torch

import analogsim
from analogsim.analog import fused, physics
from analogsim.analog import numerics as num
from analogsim.analog.tile import AnalogTile
from analogsim.clock import HOUR_S, YEAR_S
from analogsim.config.profile import (
    ClippedLog,
    DeviceProfile,
    ProgrammingNoise,
    load_profile,
)

RN = {"q_coeff": 0.0088, "q_exp": 0.65, "q_max": 0.2, "g_rel_floor": 1e-3, "one_over_f": True,
      "t_read_s": 2.5e-7}


def profile(**sections) -> DeviceProfile:
    return DeviceProfile.model_validate({"name": "t", "source": "test", **sections})


@pytest.fixture(params=["exact", "fused read"])
def read_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The numerics setting of a read test: ``exact``, or ``fast`` with only the compiled read
    (``fused.read_out``, its own noise draws) on, so the test holds for both reads."""
    if request.param == "exact":
        return "exact"
    if not fused.compiled_ok("cpu"):
        pytest.skip("torch.compile does not work on this host (the plain path is used)")
    monkeypatch.setattr(num, "fast_paths", lambda d: {**num.NONE, "fused_read": True})
    return "fast"


# ------------------------------------------------------------------------------ write path
def test_write_realises_the_pcm_programming_and_drift_statistics() -> None:
    """Through a tile's write: (G_prog − G_T)/σ_prog(G_T) is N(0, 1) away from the clamp at 0,
    and ν drawn from the *target* has mean μ_ν(G_T) and sd σ_ν(G_T) (binned by target)."""
    p = load_profile("pcm")
    tile = AnalogTile(512, 4096, p, analogsim.SimClock(), torch.Generator().manual_seed(7))
    tile.program(torch.randn(512, 4096, generator=torch.Generator().manual_seed(1)))
    s = tile.state
    g = s.g_target.double()
    sig = physics.programming_sigma_uS(g * 25, 25.0, p.programming) / 25
    far = g > 0.2
    z = ((s.g_prog.double() - g) / sig)[far]
    n = z.numel()
    assert abs(float(z.mean())) < 5 / math.sqrt(n)
    assert abs(float(z.std()) - 1) < 5 / math.sqrt(2 * n)
    nu = s.nu.double()
    for lo, hi in ((0.05, 0.06), (0.3, 0.31), (0.8, 0.81)):
        band = (g >= lo) & (g < hi)
        mid = torch.tensor((lo + hi) / 2, dtype=torch.float64)
        mu = float(physics.clipped_log(p.drift.nu_mean, mid))
        sd = float(physics.clipped_log(p.drift.nu_std, mid))
        k = int(band.sum())
        # |N(μ, σ)| with μ ≥ 2σ here: the fold moves the mean by < 1e-3·σ; the band's width
        # moves μ by < 0.0155·ln(hi/lo) ≤ 3e-3 at the narrowest (relative) band
        slack = 0.0155 * math.log(hi / lo)
        assert abs(float(nu[band].mean()) - mu) < 5 * sd / math.sqrt(k) + slack, (lo, k)
        assert abs(float(nu[band].std()) - sd) < 5 * sd / math.sqrt(2 * k) + slack, (lo, k)


# ------------------------------------------------------------------------------ physics forms
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
    """Drift of both devices and the read variance against the published PCM model evaluated
    on the tile's own programmed conductances and drift exponents: Q_s from the programmed
    conductance, multiplying the drifted one; the compensation is a separate digital gain."""
    p = load_profile("pcm")
    clock = analogsim.SimClock()
    tile = AnalogTile(300, 700, p, clock, torch.Generator().manual_seed(0))
    tile.program(torch.randn(300, 700, generator=torch.Generator().manual_seed(1)))
    clock.advance(HOUR_S)
    m = tile.read_model()
    g0, nu = tile.state.g_prog.double(), tile.state.nu.double()  # (2, C, ci, out_p)
    gt = g0 * physics.drift_factor(nu, HOUR_S, 20.0)
    r = tile.conv.a / tile.conv.b  # DAC unit / ADC unit: the read model's units
    assert torch.allclose(m.w.double(), (gt[0] - gt[1]) * r, rtol=1e-5, atol=1e-6)
    q = torch.clamp(0.0088 / g0.clamp_min(1e-3) ** 0.65, max=0.2)  # from G_prog
    f2 = math.log((HOUR_S + 20 + 2.5e-7) / (2 * 2.5e-7))
    var = ((gt * q) ** 2 * f2).sum(0) * r**2  # multiplies G(t)
    assert torch.allclose(m.var.double(), var, rtol=1e-4, atol=1e-12)
    assert m.gain is not None and bool((m.gain > 1).all())  # a drifted chip is read up
    tile.numerics = "fast"  # the setting re-reads: same mean up to the int8 digits
    m2 = tile.read_model()
    assert torch.allclose(m2.w, m.w) and torch.allclose(m2.var.double(), var, rtol=2**-7)


# ------------------------------------------------------------------------------ mvm
def _ref_mvm(tile: AnalogTile, x: torch.Tensor) -> torch.Tensor:
    """Noise-free reference: symmetric DAC per sample and tile, mean read, ADC per tile,
    digital rescale with the compensation gain, sum — in float64, unfolded."""
    p, gr = tile.profile, tile.grid
    m = tile.read_model()
    w_n = m.w.double() * (tile.conv.b / tile.conv.a)  # normalized mean weights
    xp = torch.nn.functional.pad(x.double(), (0, gr.in_padded - gr.in_features))
    xc = xp.reshape(len(x), gr.n_col, gr.ci).transpose(0, 1)
    top_in, top_out = 2 ** (p.dac.bits - 1) - 1, 2 ** (p.adc.bits - 1) - 1
    unit, out_unit = p.dac.input_bound / top_in, p.adc.output_bound / top_out
    s = xc.abs().amax(dim=2, keepdim=True) / top_in  # x units per DAC code
    u = (xc / s).round().clamp(-top_in, top_in)
    y = torch.bmm(u, w_n) * (unit / out_unit)
    gain = m.gain.double() if m.gain is not None else 1.0
    y = y.round().clamp(-top_out, top_out) * out_unit * tile.state.scale.double() * gain * s / unit
    return y.sum(0)[:, : gr.out_features]


@pytest.mark.parametrize("out_f", [600, 40])  # 2×2 tiles (scale per tile varies with j), 2×1
def test_noise_free_mvm_matches_reference(out_f: int, read_path: str) -> None:
    p = profile(drift={"enabled": True, "compensation": True,
                       "nu_mean": {"intercept": 0.06, "max": 1.0}, "nu_std": {"intercept": 0.01}},
                dac={"bits": 8, "scaling": "absmax"}, adc={"bits": 8, "output_bound": 12.0},
                mapping={"tile_rows": 512, "tile_cols": 512})
    clock = analogsim.SimClock()
    tile = AnalogTile(out_f, 700, p, clock, torch.Generator().manual_seed(0),
                      numerics=read_path)
    w = torch.randn(out_f, 700, generator=torch.Generator().manual_seed(1))
    w[:, 350:] *= 3  # the two input tiles get different scales
    tile.program(w)
    clock.advance(YEAR_S)
    x = torch.rand(64, 700, generator=torch.Generator().manual_seed(2)) * 2 - 1
    x[:, :350] *= 0.1  # and different per-sample DAC scales
    got, ref = tile.mvm(x).double(), _ref_mvm(tile, x)
    # Float rounding may flip an ADC code at an exact half step (rare): one LSB of one tile.
    lsb = 12.0 / 127 * float((tile.state.scale * tile.read_model().gain).max()) * float(
        x.abs().max())  # one ADC code, weight units
    diff = (got - ref).abs()
    assert float((diff > 1e-4 * lsb).float().mean()) < 1e-2
    assert float(diff.max()) <= 1.01 * lsb


def test_reads_take_any_float_input_and_an_empty_batch(read_path: str) -> None:
    """Both reads and the transposed read convert in float32 (a bfloat16 batch reads as its
    float32 values): the same chip state and seed give the same outputs, float32; an empty
    batch gives an empty output."""
    g = torch.Generator().manual_seed(6)
    w, x = torch.randn(30, 40, generator=g), torch.rand(9, 40, generator=g).bfloat16()
    grad = torch.randn(9, 30, generator=g).bfloat16()
    outs = []
    for a, b in ((x, grad), (x.float(), grad.float())):
        t = AnalogTile(30, 40, load_profile("pcm"), analogsim.SimClock(),
                       torch.Generator().manual_seed(2), numerics=read_path)
        t.program(w)
        outs.append((t.mvm(a), t.mvm_transposed(b)))
    for got, want in zip(*outs, strict=True):
        assert got.dtype == torch.float32 and torch.equal(got, want)
    state = t.generator.get_state()  # an empty batch reads nothing and draws nothing
    assert t.mvm(x[:0]).shape == (0, 30) and t.mvm_transposed(grad[:0]).shape == (0, 40)
    assert torch.equal(t.generator.get_state(), state)


def _two_tile_layer(p: DeviceProfile, gen: torch.Generator, numerics: str = "exact") -> tuple:
    clock = analogsim.SimClock()
    w = torch.randn(40, 700, generator=gen)
    w[:, 350:] *= 3  # tile 0 (inputs 0..349) and tile 1 have different weight scales
    layer = analogsim.AnalogLinear(w, torch.zeros(40), p, clock, gen, numerics=numerics)
    return clock, w, layer


def test_read_noise_variance_over_two_input_tiles(read_path: str) -> None:
    p = profile(read_noise=RN, mapping={"tile_cols": 512})
    gen = torch.Generator().manual_seed(0)
    clock, w, layer = _two_tile_layer(p, gen, read_path)
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


def test_output_noise_is_per_tile_with_its_scales(read_path: str) -> None:
    """σ_out is added to each tile's normalized output before its ADC: in weight units it is
    σ_out·scale_c·max|x_c|/bound per tile c, and the tiles add in variance."""
    p = profile(adc={"noise_std": 0.1}, mapping={"tile_cols": 512},
                dac={"scaling": "absmax", "input_bound": 1.0})
    gen = torch.Generator().manual_seed(0)
    _, w, layer = _two_tile_layer(p, gen, read_path)
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


# ------------------------------------------------------------------------------ numerics
def test_int8_digits_reconstruct_weights_within_their_bound() -> None:
    from analogsim.analog.numerics import int8_digits

    gen = torch.Generator().manual_seed(0)
    w = torch.randn(2, 300, 50, generator=gen) * torch.logspace(-3, 1, 50)  # column scales
    w[:, :, 0] = 0.0  # an all-zero column
    (q1, q2), units = int8_digits(w)
    for q in (q1, q2):
        assert q.dtype == torch.int8 and q.shape == (2, 300, 50) and q.is_contiguous()
        assert int(q.abs().max()) <= 127
    assert units.shape == (2, 2, 50)
    s = units[:, :1]
    assert torch.equal(units[:, 1:], s / 254)  # the second digit's unit, float32
    rebuilt = s.double() * (q1.double() + q2.double() / 254)
    # bound s/508 from rounding t = w/s to q₁ + q₂/254; float32 t adds ≤ 2⁻²⁴·127·s
    assert bool(((rebuilt - w.double()).abs() <= s.double() * (1 / 508 + 127 * 2**-23)).all())


# sums exact in float32 / past 2²⁴ (rounded on conversion)
@pytest.mark.parametrize(("in_f", "cols"), [(700, 512), (1200, 1200)])
def test_int8_mean_product_matches_float32_and_the_packed_one_bit_for_bit(in_f: int,
                                                                        cols: int) -> None:
    """Same codes: the int8 digit product and the float32 one differ by at most the digits'
    error, Σ_i |u_i|·max|w|/64 516 per output (float32 rounding adds ~1e-6 relative); the
    packed product (oneDNN's int8 linear) gives the int8 product's floats, with and without
    a term to add, on an odd batch; the digits' transposed copies for packing are the
    transposes (tiled where 64 divides both sides, plain otherwise)."""
    from analogsim.analog import numerics as num

    if not num.cpu_int_mm():
        pytest.skip("this torch has no CPU torch._int_mm")
    gen = torch.Generator().manual_seed(0)
    c = in_f // cols + 1
    w = torch.randn(c, cols, 64, generator=gen)  # 512 × 64: packed from tiled transposes
    u = torch.randint(-127, 128, (c, 501, cols), generator=gen).float()
    u[0, 0] = 127.0  # with q₁ = 127 down column 0: the largest sums, past 2²⁴ with 1200 rows
    w[0, :, 0] = 1.0 - 1e-3 * torch.rand(cols, generator=gen)
    q, s = num.int8_digits(w)
    got = num.int8_mean_product(u, q, s, None)
    ref = torch.bmm(u.double(), w.double())
    bound = u.abs().sum(2, keepdim=True).double() @ (s[:, :1].double() * 127 / 64516 * 1.01)
    assert bool(((got.double() - ref).abs() <= bound + 1e-5 * ref.abs()).all())
    if not num.cpu_packed_int8():
        pytest.skip("this torch has no CPU oneDNN int8 linear giving the same floats")
    for d in q:
        tr = num._transposed(d[0])
        assert tr.is_contiguous() and torch.equal(tr, d[0].t().contiguous())
    packs = num.pack_int8_digits(q)
    assert torch.equal(num.packed_mean_product(u, packs, s, None), got)
    add = torch.randn(got.shape, generator=gen)
    want = num.int8_mean_product(u, q, s, add.clone())
    assert torch.equal(num.packed_mean_product(u.to(torch.int8), packs, s, add), want)


def test_numerics_settings_agree_within_their_bound_and_are_recorded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``exact`` and ``fast`` (with the paths measured here, the compiled read aside: it
    draws its own noise, ``test_fused``) read the same devices with the same noise draws;
    their outputs differ only through the fast paths' rounding: int8 digits (≤ 1/64 516 of a
    column's largest weight) and bf16 variances (σ off by ≤ 2⁻⁸), a flipped ADC code at
    most."""
    from analogsim.analog import numerics

    rec = numerics.describe("fast")
    assert rec["numerics"] == "fast" and set(rec) == {"numerics", "int8_mean", "packed_int8",
                                                    "bf16_variance", "fused", "fused_read"}
    measured = numerics.fast_paths("cpu")
    monkeypatch.setattr(numerics, "fast_paths", lambda d: {**measured, "fused_read": False})
    p = load_profile("pcm")
    outs = []
    state = None
    for setting in ("exact", "fast"):
        layer = analogsim.AnalogLinear(torch.randn(300, 700, generator=torch.Generator()
                                                   .manual_seed(1)), None, p, seed=3,
                                       numerics=setting)
        # the same chip for both (the fast write's rounding differs by a few ulps)
        if state is None:
            state = layer.state_dict()
        else:
            layer.load_state_dict(state)
        x = torch.rand(400, 700, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            outs.append(layer(x).double())
    lsb = 12.0 / 255 * float(layer._tile.state.scale.max()) * float(x.abs().max())
    diff = (outs[0] - outs[1]).abs()
    sd = outs[0].std()  # the noise-and-signal spread
    assert float(diff.max()) <= 2 * lsb + 2**-7 * float(sd) * 4
    assert float(diff.mean()) < 0.05 * lsb + 2**-8 * float(sd)
    xg = x[:8].clone().requires_grad_(True)  # the transposed read works in both settings
    layer(xg).sum().backward()
    assert xg.grad is not None and bool(torch.isfinite(xg.grad).all())
    assert numerics.describe("exact") == {"numerics": "exact", "int8_mean": False,
                                          "packed_int8": False, "bf16_variance": False,
                                          "fused": False, "fused_read": False}
    with pytest.raises(ValueError, match="exact, fast"):
        analogsim.AnalogLinear(torch.ones(2, 2), None, p, seed=0, numerics="quick")


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
