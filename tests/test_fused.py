"""The one-pass device math (``analogsim.analog.fused``) against the step-by-step reference.

Run as plain torch, the fused functions are the tile's step-by-step arithmetic, except that a
fused multiply-add may round once where the reference rounds twice (or the reverse): a few
ulps on the products that feed ν and G_prog (4 ulps = 4.8e-7 relative). Compiled (``numerics: "fast"``), the compiler may
evaluate exp/log/pow with its own vectorized routines and reorder a product; each is within
a couple of float32 ulps (2⁻²³ ≈ 1.2e-7 relative), and the longest chain is ~6 of them
(log1p, ·ν, exp, ·g, square, ·ln(1/f)), so 16 ulps (2e-6 relative) bounds a device's value.
The fused 1/f term ln((dt + t0 + t_read)/(2 t_read)), taken from the drift's ln((dt + t0)/t0)
when t_read/t0 < 2⁻²⁴, is off by < 2⁻²⁴ absolute on a term ≥ ln 2²³ ≈ 15.9 (< 4e-9
relative). The
compiled write computes its normals from the same key as the step-by-step write is given here
(``normals.counter_normals``), within 4 ulps of |z| + 1 of the eager ones.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable
from copy import deepcopy

import pytest
import torch
from one_thread import run_on_one_thread

import analogsim
from analogsim.analog import fused, normals, periphery
from analogsim.analog import numerics as num
from analogsim.analog import state as st
from analogsim.analog import tile as tile_mod
from analogsim.analog.grid import TileGrid
from analogsim.analog.tile import AnalogTile
from analogsim.config.profile import load_profile

ULPS16 = 16 * 2.0**-23
OUT, IN = 513, 601  # pcm's 512×512 crossbars: two of each, one padding row and column
ULPS4 = 4 * 2.0**-23
BUFFERS = ("g_target", "g_prog", "nu", "q2", "t_prog_hi", "t_prog_lo")


def _profile(name: str) -> analogsim.DeviceProfile:
    if name == "pcm_slow_read":  # t_read/t0 = 5e-5: the 1/f term keeps its own log
        d = load_profile("pcm").model_dump()
        d["read_noise"]["t_read_s"] = 1e-3
        return analogsim.DeviceProfile.model_validate(d)
    p = load_profile(name)
    if name == "low_precision":  # a single device against g_max/2, with faults
        d = p.model_dump()
        d["mapping"]["differential"] = False
        d["faults"] = {"stuck_at_min_fraction": 0.02, "stuck_at_max_fraction": 0.01}
        p = analogsim.DeviceProfile.model_validate(d)
    return p


def _tiles(name: str, compiled: bool, monkeypatch: pytest.MonkeyPatch,
           device: torch.device) -> tuple[AnalogTile, AnalogTile, analogsim.SimClock]:
    """Two tiles of the same chip (same seed): step by step, and fused (plain or compiled);
    the step-by-step writes take the fused writes' normals (``normals.counter_normals`` of a
    key from the same generator) instead of ``randn``'s, so the two must agree device by
    device."""
    p = _profile(name)
    if not compiled:
        monkeypatch.setattr(fused, "kernel", lambda n, s: fused.FUNCTIONS[n])
    monkeypatch.setattr(num, "fast_paths", lambda d: {**num.NONE, "fused": True})
    clock = analogsim.SimClock()
    ref = AnalogTile(OUT, IN, p, clock, torch.Generator(device).manual_seed(4), device,
                     numerics="exact")
    fz = AnalogTile(OUT, IN, p, clock, torch.Generator(device).manual_seed(4), device,
                    numerics="fast")

    def counter(shape: tuple[int, ...]) -> torch.Tensor:  # the fused write's normals, eager
        key = normals.write_key(ref.generator)
        return torch.stack(normals.counter_normals(key, shape[1:], shape[0]))

    monkeypatch.setattr(ref, "_write_normals", counter)
    return ref, fz, clock


def _write_and_drift(ref: AnalogTile, fz: AnalogTile, clock: analogsim.SimClock) -> None:
    """The first programming; a noisy write that changes part of the weights an hour later; a
    noise-free write of other weights (the ideal update model's); a refresh of every device;
    a last partial write; then a day of device time."""
    g = torch.Generator().manual_seed(9)
    w = torch.randn(OUT, IN, generator=g).to(ref.device)

    def change(w: torch.Tensor) -> torch.Tensor:
        w = w.clone()
        w[:, : IN // 2] += 0.05 * torch.randn(OUT, IN // 2, generator=g).to(ref.device)
        w[:5] = -w[:5]  # sign flips move weight between the devices of a pair
        return w

    for t in (ref, fz):
        t.program(w)
    for step, kw in ((3600.0, {}), (60.0, {"noisy": False}), (60.0, {"all_devices": True}),
                     (60.0, {})):
        clock.advance(step)
        w = change(w)
        for t in (ref, fz):
            t.program(w, **kw)
    clock.advance(86400.0)


@pytest.mark.parametrize("compiled", [False, True], ids=["plain", "compiled"])
@pytest.mark.parametrize("name", ["pcm", "rram", "noisy_nodes", "low_precision", "ideal",
                                  "pcm_slow_read"])
def test_fused_math_is_the_step_by_step_math(name: str, compiled: bool,
                                             monkeypatch: pytest.MonkeyPatch,
                                             device: torch.device) -> None:
    if compiled and name in ("rram", "noisy_nodes", "ideal", "pcm_slow_read"):
        pytest.skip("compiled: pcm and low_precision cover every branch (each compile ~10 s)")
    if compiled and not fused.compiled_ok(device.type):
        pytest.skip("torch.compile does not work on this host (the plain path is used)")
    ref, fz, clock = _tiles(name, compiled, monkeypatch, device)
    _write_and_drift(ref, fz, clock)
    tol = ULPS16 if compiled else ULPS4

    def close(a: torch.Tensor, b: torch.Tensor, floor: torch.Tensor | float = 0.0) -> bool:
        a, b = a.double(), b.double()
        return bool(((a - b).abs() <= tol * (a.abs() + floor)).all())

    s = ref.state
    # sums that may cancel carry the error of their operands: G_prog = G + σξ (up to G, then
    # Q_s² ∝ G_prog^(−2·q_exp) up to 2·q_exp times that), ν = |μ + σ_ν ξ'| (up to the largest ν);
    # the fused Q_s = q_coeff·exp(−q_exp·ln G) against the reference's pow: ln G to an ulp,
    # times q_exp to half an ulp more, exp to an ulp, squared: (3·q_exp·|ln G| + 3) ulps of Q_s²
    q_exp = ref.profile.read_noise.q_exp
    prog_floor = s.g_target.double()
    g_c = s.g_prog.double().clamp_min(ref.profile.read_noise.g_rel_floor)
    floors = {"g_prog": prog_floor, "nu": float(s.nu.abs().max()),
              "q2": (2 * q_exp * prog_floor / g_c
                     + (3 * q_exp * g_c.log().abs() + 3) * 2.0**-23 / tol) * s.q2.double()}
    for b in BUFFERS:
        assert close(getattr(s, b), getattr(fz.state, b), floors.get(b, 0.0)), b
    assert torch.equal(ref.state.g_target, fz.state.g_target)  # targets: exact arithmetic
    for b in ("t_prog_hi", "t_prog_lo"):
        assert torch.equal(getattr(ref.state, b), getattr(fz.state, b)), b
    # the read model of one and the same device state (each path's own rounding only)
    comp = fz.comp_ref.clone()
    fz.load_state_dict(ref.state_dict())
    ma, mb = ref.read_model(), fz.read_model()
    g = s.g_prog.abs().sum(0).double() * (ref.conv.a / ref.conv.b)  # w = a difference of two
    assert bool(((ma.w.double() - mb.w.double()).abs() <= tol * g).all())
    assert (ma.var is None) == (mb.var is None)
    if ma.var is not None:
        assert mb.var is not None and close(ma.var, mb.var)
    if ref.compensated:  # the reference reads after the write: an ADC code apart at most
        assert bool(((ref.comp_ref - comp).abs() <= 1.01 * ref.conv.b).all())
        assert ma.gain is not None and mb.gain is not None
        assert torch.allclose(ma.gain, mb.gain, rtol=0, atol=2 * ref.conv.b / float(
            ref.comp_ref.min()))


@pytest.mark.parametrize("compiled", [False, True], ids=["plain", "compiled"])
def test_fused_pulsed_update_is_the_step_by_step_update(compiled: bool,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        device: torch.device) -> None:
    """rram's pulsed on-device updates (soft bounds, cycle-to-cycle noise, faults, drift):
    after the first programming and three increments an hour apart, the fused tile holds the
    step-by-step tile's state. The same devices change (t_prog, exactly); values within 4
    ulps (plain) or 16 ulps (compiled) of the conductance scale 1 (g ≤ 1, and w = G+ − G−
    cancels); ν drawn from the same normals."""
    if compiled and not fused.compiled_ok(device.type):
        pytest.skip("torch.compile does not work on this host (the plain path is used)")
    ref, fz, clock = _tiles("rram", compiled, monkeypatch, device)
    g = torch.Generator().manual_seed(11)
    w = torch.randn(OUT, IN, generator=g).to(device)
    for t in (ref, fz):
        t.program(w)
    for _ in range(3):
        clock.advance(3600.0)
        delta = (0.01 * torch.randn(OUT, IN, generator=g)).to(device)
        delta[:, ::7] = 0.0  # weights that get no pulse keep their devices
        for t in (ref, fz):
            t.apply_increment(delta)
    tol = ULPS16 if compiled else ULPS4
    for b in ("t_prog_hi", "t_prog_lo"):  # the same devices re-programmed, at the same time
        assert torch.equal(getattr(ref.state, b), getattr(fz.state, b)), b
    assert torch.equal(ref.state.stuck_low, fz.state.stuck_low)
    changed = ref.state.t_prog > 0
    assert 0.3 < float(changed.float().mean()) < 0.9  # pulses moved many devices, not all
    for b in ("g_target", "g_prog", "nu"):
        diff = (getattr(ref.state, b) - getattr(fz.state, b)).abs()
        assert float(diff.max()) <= 4 * tol, b  # |g| ≤ 1, a pair's sum ≤ 2: a few ulps of 1
    assert torch.equal(ref.generator.get_state(), fz.generator.get_state())


@pytest.mark.parametrize("on", [True, False])
def test_fast_tiles_take_the_fused_path_exactly_when_it_is_chosen(
        on: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The measured choice (``fast_paths``) decides: a fast tile calls the kernels when
    ``fused`` and ``fused_read`` are on and never otherwise; exact tiles never do; runs
    record the choice."""
    calls: list[str] = []

    def kernel(name: str, structure: fused.Structure) -> object:
        calls.append(name)
        return fused.FUNCTIONS[name]

    monkeypatch.setattr(fused, "kernel", kernel)
    monkeypatch.setattr(num, "fast_paths", lambda d: {**num.NONE, "fused": on,
                                                      "fused_read": on})
    clock = analogsim.SimClock()
    for setting in ("exact", "fast"):
        tile = AnalogTile(30, 40, load_profile("pcm"), clock, torch.Generator().manual_seed(1),
                          numerics=setting)
        tile.program(torch.randn(30, 40))
        clock.advance(10.0)
        tile.mvm(torch.rand(4, 40))
        used = on and setting == "fast"
        assert bool(calls) == used, (setting, calls)
        if used:
            assert set(calls) == {"program_into", "read_fields", "dac_codes", "read_out"}
        rec = num.describe(setting)  # type: ignore[arg-type]
        assert rec["fused"] is used and rec["fused_read"] is used
        calls.clear()


def test_fused_write_has_the_programming_noise_of_the_profile(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A fast pcm write of one target conductance G: (G_prog − G)/σ_prog(G) over the devices
    carrying it has mean 0 and variance 1 (4.5 standard errors; G = 0.6·g_max, where the
    clamp at 0 is > 10 σ away), and ν the profile's mean and spread at G."""
    monkeypatch.setattr(num, "fast_paths", lambda d: {**num.NONE, "fused": True})
    p = load_profile("pcm")
    tile = AnalogTile(256, 512, p, analogsim.SimClock(), torch.Generator().manual_seed(8),
                      numerics="fast")
    w = torch.full((256, 512), 0.6)
    w[:, 0] = 1.0  # the tile's largest weight: g_max; the rest at 0.6 of it
    tile.program(w)
    gt = 0.6
    at = (tile.state.g_target[0] - gt).abs() < 1e-6  # G+ carries w > 0
    assert int(at.sum()) == 256 * 511
    g = tile.state.g_prog[0][at].double()
    from analogsim.analog import physics
    sigma = float(physics.programming_sigma_uS(torch.tensor([gt * p.mapping.g_max_uS]),
                                               p.mapping.g_max_uS, p.programming)[0])
    e = (g - gt) * p.mapping.g_max_uS / sigma
    n = e.numel()
    assert abs(float(e.mean())) < 4.5 / math.sqrt(n)
    assert abs(float(e.var()) - 1) < 4.5 * math.sqrt(2 / n)
    nu = tile.state.nu[0][at].double()
    ln_g = math.log(gt)
    mu = min(max(p.drift.nu_mean.ln_slope * ln_g + p.drift.nu_mean.intercept,
                 p.drift.nu_mean.min), p.drift.nu_mean.max)
    sd = min(max(p.drift.nu_std.ln_slope * ln_g + p.drift.nu_std.intercept,
                 p.drift.nu_std.min), p.drift.nu_std.max)
    assert mu > 4 * sd  # |μ + σξ| folds nothing back at 4 σ: plain mean and spread
    assert abs(float(nu.mean()) - mu) < 4.5 * sd / math.sqrt(n)
    assert abs(float(nu.std()) - sd) < 4.5 * sd / math.sqrt(2 * n)


def test_compiled_kernels_hold_on_one_thread() -> None:
    """Runner workers use one torch thread from their start: there the compiled kernels must
    hold to the same bounds (torch's CPU code differs with the thread count). Runs the pcm
    checks (device math and read) in a fresh process set to one thread before anything
    compiles."""
    if not fused.compiled_ok("cpu"):
        pytest.skip("torch.compile does not work on this host (the plain path is used)")
    out = run_on_one_thread(__file__, "step_by_step and pcm and compiled")
    assert out.returncode == 0, out.tail
    # the device math on pcm, and the fused read on pcm in float32 and (where torch has an
    # exact CPU int8 product) on int8 digits with a float32 and a bf16 variance
    want = 2 + 2 * int(num.cpu_int_mm())
    assert out.counts.get("passed") == want and "failed" not in out.counts, out.tail


# ------------------------------------------------------------------------------ the fused read
def _read_profile(name: str) -> analogsim.DeviceProfile:
    """pcm, and pcm with the periphery branches the fused read specialises on changed."""
    d = load_profile("pcm").model_dump()
    if name == "plain_dac_clip":  # no DAC bits nor scaling; an ADC that only saturates
        d["dac"] = {**d["dac"], "bits": None, "scaling": "none"}
        d["adc"] = {**d["adc"], "bits": None, "output_bound": 10.0}
    elif name == "output_noise_only":  # no device read noise; no ADC bits nor bound
        d["read_noise"] = {**d["read_noise"], "q_coeff": 0.0, "absolute_uS": 0.0}
        d["adc"] = {**d["adc"], "bits": None, "output_bound": None}
    elif name == "column_scales":  # one weight scale per crossbar column; no output noise
        d["mapping"] = {**d["mapping"], "scale": "column"}
        d["adc"] = {**d["adc"], "noise_std": 0.0}
    elif name == "noise_free":  # no noise at all: no key is drawn
        d["read_noise"] = {**d["read_noise"], "q_coeff": 0.0, "absolute_uS": 0.0}
        d["adc"] = {**d["adc"], "noise_std": 0.0}
    return analogsim.DeviceProfile.model_validate(d)


def _keyed_normals(tile: AnalogTile) -> None:
    """Make every normals draw of ``tile`` the fused read's: a key from its generator, then
    ``normals.split_normals`` (any shape, as rows of its last axis)."""
    def draw(shape: tuple[int, ...]) -> torch.Tensor:
        key = normals.write_key(tile.generator)
        flat = (1, math.prod(shape[:-1]), shape[-1]) if len(shape) != 3 else shape
        return normals.split_normals(key, flat).view(shape)

    tile._normals = draw  # type: ignore[method-assign]


@pytest.mark.parametrize("compiled", [False, True], ids=["plain", "compiled"])
@pytest.mark.parametrize("products", ["f32", "int8", "int8_bf16"])
@pytest.mark.parametrize("name", ["pcm", "plain_dac_clip", "output_noise_only", "column_scales",
                                  "noise_free"])
def test_fused_read_is_the_step_by_step_read(name: str, products: str, compiled: bool,
                                             monkeypatch: pytest.MonkeyPatch,
                                             device: torch.device) -> None:
    """``fused.dac_codes`` + the products + ``fused.read_out`` compute the step-by-step read
    (``periphery.encode``, ``read_noise``, the mean product, ``quantize_output``,
    ``_digital_sum``) when both draw the same normals: one and a half crossbars of inputs, an
    odd batch read once and twice (``repeats``), with the mean product in float32 or on int8
    digits, and the variance product in float32 or bfloat16, the same in both. Outputs sum the same codes in another order,
    so they agree to 1e-5 of Σ_c |k_c·sg_c·code_c| + |bias|, except where a pre-ADC value's
    rounding moved it across a code's edge:
    there by at most one code per crossbar, Σ_c |k_c·sg_c|, in < 2 % of the outputs. On CUDA
    too when one is present (Triton; the int8 product is a CPU path)."""
    int8, bf16 = products.startswith("int8"), products.endswith("bf16")
    if int8 and (device.type != "cpu" or not num.cpu_int_mm()):
        pytest.skip("the int8 product is a CPU path (and needs torch's exact CPU int8 matmul)")
    if compiled and not fused.compiled_ok(device.type):
        pytest.skip("torch.compile does not work on this host (the plain path is used)")
    if not compiled:
        monkeypatch.setattr(fused, "kernel", lambda n, s: fused.FUNCTIONS[n])
    p = _read_profile(name)
    if int8 and p.dac.bits is None:
        pytest.skip("the int8 product needs integer DAC codes")
    monkeypatch.setattr(num, "fast_paths", lambda d: {**num.NONE, "int8_mean": int8,
                                                      "bf16_variance": bf16,
                                                      "fused_read": True})
    clock = analogsim.SimClock()
    g = torch.Generator().manual_seed(5)
    w, bias = torch.randn(OUT, IN, generator=g), torch.randn(OUT, generator=g).to(device)
    x = (torch.rand(7, IN, generator=g) * 2 - 1).to(device)
    tiles = [AnalogTile(OUT, IN, p, clock, torch.Generator(device).manual_seed(4), device,
                        numerics="fast") for _ in range(2)]
    # the reference: the same products (int8 digits or float32), the step-by-step periphery
    tiles[0]._paths = lambda: {  # type: ignore[method-assign]
        **num.NONE, "int8_mean": int8, "bf16_variance": bf16}
    for t in tiles:
        _keyed_normals(t)
        t.program(w)
    clock.advance(3600.0)
    ref, fz = tiles
    m = ref.read_model()
    gr = ref.grid
    xp = torch.nn.functional.pad(x, (0, gr.in_padded - IN))
    _, k = periphery.encode(xp.reshape(7, gr.n_col, gr.ci).transpose(0, 1), ref.conv)
    sg = (ref.state.scale if m.gain is None else ref.state.scale * m.gain).abs()
    code = (k.abs() if isinstance(k, torch.Tensor)
            else torch.full((gr.n_col, 1, 1), k, device=device)) * sg
    for repeats in (1, 2):
        want, got = (t.mvm(x, bias, repeats).double() for t in (ref, fz))
        assert torch.equal(ref.generator.get_state(), fz.generator.get_state())
        # Σ_c |k_c·sg_c|, (R·N, out)
        one = code.sum(0)[:, :OUT].double().expand(7, -1).repeat(repeats, 1)
        top = ref.conv.adc_top or (ref.conv.output_bound or 1e3) / ref.conv.b
        scale = one * top + bias.abs().double()
        diff = (got - want).abs()
        off = diff > 1e-5 * scale
        assert float(off.double().mean()) < 0.02, (repeats, float(off.double().mean()))
        assert bool((diff <= 1.01 * one + 1e-5 * scale).all()), repeats
        if name == "noise_free":
            assert not off.any()  # no noise: the same codes


@pytest.mark.parametrize("fused_read", [False, True], ids=["step_by_step", "fused_read"])
def test_packing_a_read_model_changes_no_output(fused_read: bool,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A fast tile reads on int8 digits; from a read model's ``PACK_AT_READ``-th read on, the
    packed product (oneDNN's int8 linear) when ``packed_int8`` is on. Two tiles of one chip,
    packing and not, read the same inputs (an odd batch, once and twice per call) five times
    and after a write: the same outputs bit for bit, noise included; the packed tile packed
    its model at the third read; a pickled model comes without the packed tensors (they have
    no storage), and a deep copy of the tile packs again and reads the same; a new model after
    the write starts unpacked."""
    if not num.cpu_packed_int8():
        pytest.skip("this torch has no CPU oneDNN int8 linear giving the int8 product's floats")
    if fused_read and not fused.compiled_ok("cpu"):
        pytest.skip("torch.compile does not work on this host (the plain path is used)")
    clock = analogsim.SimClock()
    g = torch.Generator().manual_seed(5)
    w = torch.randn(OUT, IN, generator=g)
    x = torch.rand(7, IN, generator=g) * 2 - 1
    tiles = []
    for packed in (False, True):
        t = AnalogTile(OUT, IN, load_profile("pcm"), clock, torch.Generator().manual_seed(4),
                       torch.device("cpu"), numerics="fast")
        t._paths = lambda p=packed: {  # type: ignore[method-assign]
            **num.NONE, "int8_mean": True, "packed_int8": p, "bf16_variance": True,
            "fused": False, "fused_read": fused_read}
        t.program(w)
        tiles.append(t)
    clock.advance(3600.0)
    for read in range(1, 6):
        repeats = 1 + read % 2
        a, b = (t.mvm(x, None, repeats) for t in tiles)
        assert torch.equal(a, b), read
        assert (tiles[1].read_model().packs is not None) is (read >= tile_mod.PACK_AT_READ)
        assert tiles[0].read_model().packs is None
    m = pickle.loads(pickle.dumps(tiles[1].read_model()))
    assert m.packs is None and m.wq is not None and m.reads == 5
    copy = deepcopy(tiles[1])
    assert copy.read_model().packs is None
    want = tiles[0].mvm(x)  # the three generators in step
    assert torch.equal(copy.mvm(x), want) and torch.equal(tiles[1].mvm(x), want)
    assert copy.read_model().packs is not None
    for t in tiles:
        t.program(w * 0.9)
    assert torch.equal(*(t.mvm(x) for t in tiles)) and tiles[1].read_model().packs is None


@pytest.mark.parametrize("compiled", [False, True], ids=["plain", "compiled"])
def test_read_model_digits_and_bf16_variance_in_the_pass(compiled: bool) -> None:
    """The compiled read model's extras: ``fused.int8_digits`` (the compiler's form) is
    ``numerics.int8_digits`` (the eager one) bit for bit, plain and compiled (the same
    divisions and roundings; odd shapes for the loop tails); ``read_digits`` gives
    ``read_fields``' weights and variances and their digits, bit for bit; and
    ``read_fields`` rounds var to bfloat16 in the pass: the float32 var rounded, to one
    bfloat16 ulp (2⁻⁷ relative) where the compiled float32 value sits at a rounding edge."""
    if compiled and not fused.compiled_ok("cpu"):
        pytest.skip("torch.compile does not work on this host (the plain path is used)")
    s = fused.Structure.of(load_profile("pcm"), False)

    def k(name: str) -> object:
        return fused.kernel(name, s) if compiled else fused.FUNCTIONS[name]

    g = torch.Generator().manual_seed(12)
    for shape in ((2, 392, 1024), (3, 7, 13)):
        w = torch.randn(shape, generator=g)
        w[0, :, 0] = 0.0  # an all-zero column: the scale's floor
        got, want = k("int8_digits")(w), num.int8_digits(w)  # type: ignore[operator]
        assert all(torch.equal(a, b) for a, b in zip(got[0], want[0], strict=True)), shape
        assert torch.equal(got[1], want[1]), shape
    fz = fused.Fusion.of(load_profile("pcm"), 3.0, False, torch.device("cpu"))
    dev = (2, 2, 61, 67)
    t_prog = torch.rand(dev, generator=g, dtype=torch.float64)
    t_hi = t_prog.float()
    args = (torch.rand(dev, generator=g), torch.rand(dev, generator=g) * 0.1,
            torch.rand(dev, generator=g) * 0.01, t_hi, (t_prog - t_hi.double()).float(),
            torch.tensor(5.0, dtype=torch.float64), fz.c, fz.structure, True)
    rf = k("read_fields")
    w32, v32 = rf(*args)  # type: ignore[operator]
    w16, v16 = rf(*args, torch.bfloat16)  # type: ignore[operator]
    assert v16.dtype == torch.bfloat16 and torch.equal(w16, w32)
    wd, vd, qd, sd = k("read_digits")(*args, torch.bfloat16)  # type: ignore[operator]
    (q1, q2), units = num.int8_digits(w16)
    assert torch.equal(wd, w16) and torch.equal(vd, v16) and torch.equal(sd, units)
    assert torch.equal(qd[0], q1) and torch.equal(qd[1], q2)
    if compiled:
        assert bool(((v16.double() - v32.double()).abs() <= 2.0**-7 * v32.double()).all())
    else:
        assert torch.equal(v16, v32.to(torch.bfloat16))


def test_fused_read_takes_any_float_input_and_falls_back_past_its_counters(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """As the step-by-step DAC, the fused read turns any float input into float32 codes (a
    bfloat16 batch reads as its float32 values: the same outputs from the same chip state); a
    read with more counters than ``counter_normals`` has (C·⌈R·N/2⌉·out_p ≥ its limit) takes
    the step-by-step read instead of failing."""
    calls: list[str] = []

    def kernel(name: str, structure: object) -> object:
        calls.append(name)
        return fused.FUNCTIONS[name]

    monkeypatch.setattr(fused, "kernel", kernel)
    monkeypatch.setattr(num, "fast_paths", lambda d: {**num.NONE, "fused_read": True})
    g = torch.Generator().manual_seed(6)
    w, x = torch.randn(30, 40, generator=g), torch.rand(9, 40, generator=g).bfloat16()
    outs = []
    for inp in (x, x.float()):
        t = AnalogTile(30, 40, load_profile("pcm"), analogsim.SimClock(),
                       torch.Generator().manual_seed(2), numerics="fast")
        t.program(w)
        outs.append(t.mvm(inp))
    assert outs[0].dtype == torch.float32 and torch.equal(outs[0], outs[1])
    assert "read_out" in calls
    calls.clear()
    c_n, out_p = t.grid.n_col, t.grid.out_padded
    monkeypatch.setattr(normals, "COUNTER_LIMIT", c_n * 5 * out_p)  # 9 rows need ⌈9/2⌉ = 5
    y = t.mvm(x.float())
    assert "read_out" not in calls and y.shape == (9, 30) and bool(torch.isfinite(y).all())


@pytest.mark.parametrize("compiled", [False, True], ids=["plain", "compiled"])
def test_read_out_combines_the_digit_sums_as_the_int8_product(compiled: bool) -> None:
    """``read_out`` turns int8 digit sums into μ = fl(Σq₁·s) + fl(Σq₂·s₂), the floats of
    ``numerics.int8_mean_product`` (and so of the packed product) bit for bit: sums of 522
    rows of full codes (exact in float32) and of 1200 (past 2²⁴: rounded on conversion, as
    the products round them), the extremes included. One crossbar, k = sg = 1, noise-free
    and without an ADC, so the output is μ itself. (Compiled without contracting a·b + c into
    fused multiply-adds, as ``fused._kernel`` pins it.)"""
    if compiled and not fused.compiled_ok("cpu"):
        pytest.skip("torch.compile does not work on this host (the plain path is used)")
    g = torch.Generator().manual_seed(13)
    n, o = 6, 67  # the compiled loop's vectors and its tail
    _, ws = num.int8_digits(torch.randn(1, 40, o, generator=g))
    one = torch.ones(1, n, 1), torch.ones(1, 1, o)
    cst = torch.tensor([0.0, 1e12])
    rs = fused.ReadStructure(True, False, False, "none", False)
    read = fused.kernel("read_out", rs) if compiled else fused.FUNCTIONS["read_out"]
    for rows in (522, 1200):
        top = rows * 127 * 127  # the largest |Σ u·q| of ``rows`` rows
        sums = torch.randint(-top, top + 1, (2, 1, n, o), generator=g, dtype=torch.int32)
        sums[:, 0, 0], sums[:, 0, 1] = top, -top
        got = read(None, sums, ws, None, *one, None, cst, 1, rs)
        want = torch.mul(sums[0, 0], ws[0, :1]).add_(torch.mul(sums[1, 0], ws[0, 1:]))
        assert torch.equal(got, want), rows


@pytest.mark.parametrize("compiled", [False, True], ids=["plain", "compiled"])
def test_ages_from_split_times_are_the_float64_ages_rounded(compiled: bool) -> None:
    """``fused.ages`` from t_prog split into two float32 words gives float32(now − t_prog) to
    within an ulp of the age (the first difference is exact or rounded once, the second
    adds its own rounding), 0 for devices programmed after ``now``; ages from 0.1 s to a
    year, programming times from 0 to ten years."""
    if compiled and not fused.compiled_ok("cpu"):
        pytest.skip("torch.compile does not work on this host (the plain path is used)")
    ages = torch.compile(fused.ages, dynamic=True) if compiled else fused.ages
    g = torch.Generator().manual_seed(14)
    year = 365.25 * 86400.0
    for now_s in (3600.0 + 1 / 3, 10 * year + 0.1):
        age = torch.exp(torch.empty(100_003, dtype=torch.float64).uniform_(
            math.log(0.1), math.log(year), generator=g))
        t_prog = (now_s - age).clamp_min(0)
        t_prog[:5] = now_s + torch.tensor([0.5, 1.0, 10.0, 1e3, 1e6], dtype=torch.float64)
        t_hi = t_prog.float()
        got = ages(t_hi, (t_prog - t_hi.double()).float(),
                   torch.tensor(now_s, dtype=torch.float64)).double()
        want = (now_s - t_prog).clamp_min(0).float().double()
        assert bool((got[:5] == 0).all())
        assert bool(((got - want).abs() <= 2.0**-23 * want).all()), now_s


def test_programming_times_are_two_float32_words_and_load_from_float64() -> None:
    """A write stamps each device's time as ``fused.split_times`` of the clock (the two words
    sum to it within 2⁻⁴⁸ relative, ``t_prog``); a state saved with one float64 ``t_prog``
    buffer loads into the two words, and a state round-trips unchanged."""
    clock = analogsim.SimClock()
    tiles = [AnalogTile(20, 30, load_profile("pcm"), clock, torch.Generator().manual_seed(k))
             for k in (1, 2)]
    t, other = tiles
    g = torch.Generator().manual_seed(15)
    clock.advance(1234.5678 + 1 / 3)
    t.program(torch.randn(20, 30, generator=g))
    now = torch.tensor(clock.now, dtype=torch.float64)
    hi, lo = fused.split_times(now)
    assert float(lo) != 0.0  # the second word matters at this time
    assert bool((t.state.t_prog_hi == hi).all()) and bool((t.state.t_prog_lo == lo).all())
    assert bool(((t.state.t_prog - now).abs() <= 2.0**-47 * now).all())
    saved = t.state.state_dict()
    old = {k: v for k, v in saved.items() if not k.startswith("t_prog_")}
    # the float64 buffer of earlier versions, with bits the two words do not hold
    t64 = t.state.t_prog
    t64 = t64 + torch.rand(t64.shape, generator=g, dtype=torch.float64) * 1e-9
    old["t_prog"] = t64
    other.state.load_state_dict(old)
    for word, want in zip(other.state.prog_times(), fused.split_times(t64)):
        assert torch.equal(word, want)
    assert bool(((other.state.t_prog - t64).abs() <= 2.0**-48 * t64).all())
    for b in ("g_prog", "nu"):
        assert torch.equal(getattr(other.state, b), saved[b]), b
    other.state.load_state_dict(saved)
    assert all(torch.equal(v, saved[k]) for k, v in other.state.state_dict().items())


@pytest.mark.parametrize("compiled", [False, True], ids=["plain", "compiled"])
@pytest.mark.parametrize("name", ["pcm", "pcm_faults_levels"])
def test_pair_write_realises_what_the_device_write_realises(
        name: str, compiled: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Partial writes of differential pairs on the CPU (one device per pair, then G− of the
    pairs whose weight changed sign: ``fused.program_pairs_into``, ``fused.second_devices``)
    leave, device for device, the state of ``fused.program_into`` (every device computed;
    the GPU's path) given the same keys: the same devices written, with the same targets and
    time words, values bit for bit as plain torch and, compiled, within the tolerance of
    ``test_fused_math_is_the_step_by_step_math`` (16 ulps, its floors for sums that cancel).
    A noisy write, then an ideal one (no normals), on the transposed weight view the tile
    hands over (``TileGrid.to_grid``), at times a float32 cannot hold. Faults are only in
    the second profile (pcm has none): it catches a pair taking the other device's masks."""
    if compiled and not fused.compiled_ok():
        pytest.skip("torch.compile does not work on this host (the plain path is used)")
    kernels: list[str] = []
    compile_kernel = fused.kernel

    def pick(n: str, s: fused.Structure) -> Callable[..., object]:
        return compile_kernel(n, s) if compiled else fused.FUNCTIONS[n]

    def spy(n: str, s: fused.Structure) -> Callable[..., object]:
        kernels.append(n)
        return pick(n, s)

    monkeypatch.setattr(fused, "kernel", spy)
    p = load_profile("pcm")
    if name == "pcm_faults_levels":
        d = p.model_dump()
        d["faults"] = {"stuck_at_min_fraction": 0.03, "stuck_at_max_fraction": 0.02}
        d["mapping"]["levels"] = 200
        p = analogsim.DeviceProfile.model_validate(d)
    grid = TileGrid.for_matrix(OUT, IN, 512, 512)
    states = [st.DeviceState(grid, p, torch.Generator().manual_seed(4), torch.device("cpu"))
              for _ in range(2)]
    fz = fused.Fusion.of(p, 1.0, states[0].has_faults, torch.device("cpu"))
    g = torch.Generator().manual_seed(8)
    weight = torch.randn(OUT, IN, generator=g)
    w = grid.to_grid(weight)  # the tile's strided view (zeros where the grid pads)
    scale = w.abs().amax(1, keepdim=True).clamp_min(1e-12)
    gens = [torch.Generator().manual_seed(11) for _ in range(2)]
    t_first = torch.tensor(10.37, dtype=torch.float64)
    for s, gen in zip(states, gens):
        st.program_fused(s, w, scale, t_first, gen, True, False, fz)
    s_pair, s_dev = states
    for k, (t, noisy) in enumerate(((3610.123, True), (7300.456, False))):
        weight = weight.clone()
        weight[:, :200] += 0.05 * torch.randn(OUT, 200, generator=g)  # G+ or G− changes
        weight[:, 200 + 60 * k: 260 + 60 * k] *= -1  # sign flips: both devices change
        w = grid.to_grid(weight)
        before = s_dev.t_prog_hi.clone(), s_dev.t_prog_lo.clone()
        now = torch.tensor(t, dtype=torch.float64)
        kernels.clear()
        st.program_fused(s_pair, w, scale, now, gens[0], noisy, True, fz)  # the pair path
        assert kernels == ["program_pairs_into", "second_devices"], kernels
        key = normals.write_key(gens[1]) if fused.kinds_of(fz.structure, noisy) else None
        bufs = {n: getattr(s_dev, n) for n in ("g_target", "g_prog", "nu", "q2")}
        pick("program_into", fz.structure)(
            bufs, s_dev.prog_times(), w, scale, key, s_dev.stuck_low, s_dev.stuck_high, now,
            fz.c, fz.poly, fz.structure, noisy, True)
        written = (s_dev.t_prog_hi != before[0]) | (s_dev.t_prog_lo != before[1])
        assert 0.1 < float(written.float().mean()) < 0.6, k  # part of the devices
        assert bool((written[0] & written[1]).any()), k  # pairs with both devices written
        assert bool((s_dev.t_prog_lo[written] != 0).all()), k  # the low word carries bits
        for b in ("g_target", "t_prog_hi", "t_prog_lo"):
            assert torch.equal(getattr(s_pair, b), getattr(s_dev, b)), (k, b)
        # compiled: each kernel's own roundings, with the floors of
        # test_fused_math_is_the_step_by_step_math for the sums that cancel
        floors = {"g_prog": s_dev.g_target.double(), "nu": float(s_dev.nu.abs().max()),
                  "q2": 0.0}
        for b, floor in floors.items():
            a, d = getattr(s_pair, b), getattr(s_dev, b)
            if not compiled:
                assert torch.equal(a, d), (k, b)
            else:
                a, d = a.double(), d.double()
                assert bool(((a - d).abs() <= ULPS16 * (d.abs() + floor)).all()), (k, b)


@pytest.mark.parametrize("pulsed", [False, True], ids=["program", "pulse"])
def test_fused_writes_stamp_the_time_words_of_the_devices_they_write(
        pulsed: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fused partial write (``program_into``, ``pulse_into``) stamps ``fused.split_times``
    of the clock into the two time words of the devices it writes and leaves the others'."""
    monkeypatch.setattr(fused, "kernel", lambda n, s: fused.FUNCTIONS[n])
    monkeypatch.setattr(num, "fast_paths", lambda d: {**num.NONE, "fused": True})
    clock = analogsim.SimClock()
    t = AnalogTile(20, 30, load_profile("rram" if pulsed else "pcm"), clock,
                   torch.Generator().manual_seed(3), numerics="fast")
    g = torch.Generator().manual_seed(16)
    w = torch.randn(20, 30, generator=g)
    t.program(w)
    for k in range(2):
        clock.advance(1000.0 / 3)
        before = [b.clone() for b in t.state.prog_times()]
        if pulsed:
            delta = 0.05 * torch.randn(20, 30, generator=g)
            delta[:, ::3] = 0.0
            t.apply_increment(delta)
        else:
            w[:, ::3] += 0.1  # a partial write: the other devices keep their times
            t.program(w)
        written = t.state.t_prog_hi != before[0]
        assert 0 < float(written.float().mean()) < 1, k  # some devices written, some kept
        now = fused.split_times(torch.tensor(clock.now, dtype=torch.float64))
        for word, old, v in zip(t.state.prog_times(), before, now):
            assert torch.equal(word, torch.where(written, v, old)), k
