"""``AnalogTile``: the crossbars of one weight matrix — their devices, read model and periphery.

Where each effect lives:

- ``state.DeviceState``: per-device conductances, programming times, drift exponents, 1/f
  coefficients and faults; ``state.program`` re-programs the devices a write changes.
- ``AnalogTile.read_model``: what a read sees at the clock's device time — drifted mean
  weights and read variances in converter units, and the global drift compensation gain.
- ``periphery``: DAC → crossbar read with fresh per-sample read noise → additive output noise
  → ADC → digital rescale and sum over input tiles. There is no noise-free read.
- ``numerics``: how the products are computed (``"exact"`` float32, or measured fast paths).

Reads in both directions: ``mvm`` (forward, inputs on the crossbar rows) and
``mvm_transposed`` (backward, inputs on the columns), each with its own DAC, noise and ADC.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from analogsim.analog import fused, normals, periphery, physics
from analogsim.analog import numerics as num
from analogsim.analog import state as st
from analogsim.analog.grid import TileGrid
from analogsim.clock import SimClock
from analogsim.config.profile import DeviceProfile


@dataclass
class ReadModel:
    """What a read sees at one device time, in converter units (ADC codes per DAC code).

    w:       (C, ci, out_p) float32 mean weights w_n(t)·a/b (drifted).
    var:     (C, ci, out_p) read variance of each weight, (a/b)²·var_n; bfloat16 when the
             fast variance path is on; None without read noise.
    out_var: (1, 1, 1) output-noise variance in ADC codes², var's dtype; None without it.
    gain:    (C, 1, out_p) global drift compensation, one digital factor per crossbar applied
             after the ADC; None without compensation.
    wq, ws:  ``numerics.int8_digits(w)`` on the int8 path (the digits (q₁, q₂), each (C, ci,
             out_p) int8, and their units (C, 2, out_p)), else None.
    packs:   wq packed for oneDNN's int8 linear (``numerics.pack_int8_digits``) once the
             model has been read ``PACK_AT_READ`` times on the packed path, else None.
    reads:   forward reads of this model so far.
    """

    w: Tensor
    var: Tensor | None
    out_var: Tensor | None
    gain: Tensor | None
    wq: num.Digits | None = None
    ws: Tensor | None = None
    packs: list[tuple[Tensor, Tensor, Tensor]] | None = None
    reads: int = 0
    cache: dict[str, Tensor] = field(default_factory=dict)  # transposed blocks, mean weights

    def __getstate__(self) -> dict[str, object]:
        """Pickled and deep-copied without ``packs`` (oneDNN's packed tensors have no storage to
        copy): a copy packs again on its next read."""
        return {**self.__dict__, "packs": None}


#: A read model's digits are packed on its third forward read (``AnalogTile._packed``):
#: packing costs about what two and a half packed reads save (docs/performance.md). A
#: training step reads each model once before its write, so training never packs; an
#: evaluation at one device time reads it once per batch.
PACK_AT_READ = 3


def read_consts(profile: DeviceProfile, cv: periphery.Converters, device: torch.device
                ) -> Tensor:
    """The periphery constants of the fused read (``fused.dac_codes``, ``fused.read_out``),
    float32: output-noise variance (ADC codes²), ADC top (codes; or the saturation in codes
    without bits), the DAC's scale per max |x| (a/input_bound; a without absmax), k per
    scale (b/a; b without absmax), DAC top, input clip (input_bound/a)."""
    top = cv.adc_top if cv.adc_top is not None else (
        cv.output_bound / cv.b if cv.output_bound is not None else 0.0)
    vals = [(profile.adc.noise_std / cv.b) ** 2, top,
            cv.a / cv.input_bound if cv.absmax else cv.a, cv.b / cv.a if cv.absmax else cv.b,
            cv.dac_top or 0.0, cv.input_bound / cv.a]
    return torch.tensor(vals, dtype=torch.float32, device=device)


def fresh_seed() -> int:
    """A seed from the operating system's entropy (for chips drawn without a given seed)."""
    return int.from_bytes(os.urandom(8), "little") >> 2


class AnalogTile(nn.Module):
    """The conductances of one (out, in) weight matrix on a grid of crossbars.

    Args:
        out_features, in_features: matrix shape.
        profile: the device.
        clock: device time source; programming stamps ``clock.now`` on the devices it writes.
        generator: draws every device random number (faults, programming, drift, reads).
        device: torch device of the state (float32; programming times float64).
        numerics: ``"exact"`` or ``"fast"`` (see ``analogsim.analog.numerics``).

    The device state is made of buffers, so ``state_dict`` carries it.
    """

    def __init__(self, out_features: int, in_features: int, profile: DeviceProfile,
                 clock: SimClock, generator: torch.Generator,
                 device: torch.device | str = "cpu", numerics: str = "exact") -> None:
        super().__init__()
        self.profile = profile
        self.clock = clock
        self.generator = generator
        self.device = torch.device(device)
        m = profile.mapping
        self.grid = TileGrid.for_matrix(out_features, in_features, m.tile_rows, m.tile_cols)
        self.state = st.DeviceState(self.grid, profile, generator, self.device)
        self.conv = periphery.Converters.of(profile)
        self.compensated = profile.drift.enabled and profile.drift.compensation
        self.register_buffer("comp_ref", torch.ones(self.grid.n_col, self.grid.n_row,
                                                    device=self.device))
        rn = profile.read_noise
        self._rel_noise = rn.q_coeff > 0 and rn.q_max > 0
        real = torch.zeros(self.grid.out_padded, dtype=torch.bool, device=self.device)
        real[: out_features] = True  # outputs that exist (the rest is padding)
        self.register_buffer("_real_out", real, persistent=False)
        self.register_buffer("_ref_codes", self._reference_codes(), persistent=False)
        self._version = 0
        self._cache_key: tuple[int, float, str] | None = None
        self._cache: ReadModel | None = None
        self._gen2: torch.Generator | None = None  # second-half normals (``normals.randn``)
        self._numerics = num.check(numerics)
        self._now: Tensor | None = None  # device time for the compiled kernels
        self._read_consts: Tensor | None = None  # the fused read's constants (``read_consts``)
        self._fusion = fused.Fusion.of(profile, self.conv.a / self.conv.b, self.state.has_faults,
                                       self.device)

    # ------------------------------------------------------------------------------- settings
    @property
    def numerics(self) -> str:
        """``"exact"`` or ``"fast"`` (see ``analogsim.analog.numerics``)."""
        return self._numerics

    @numerics.setter
    def numerics(self, value: str) -> None:
        self._numerics = num.check(value)
        self._cache_key = None

    def _paths(self) -> dict[str, bool]:
        """The fast paths in effect: int8 mean only with integer DAC codes of ≤ 8 bits."""
        if self._numerics == "exact":
            return dict(num.NONE)
        paths = dict(num.fast_paths(self.device.type))
        dac_bits = self.profile.dac.bits
        paths["int8_mean"] = paths["int8_mean"] and dac_bits is not None and dac_bits <= 8
        paths["packed_int8"] = paths["packed_int8"] and paths["int8_mean"]
        return paths

    @property
    def _var_noise(self) -> bool:
        """Whether reads have device noise (a read variance per weight)."""
        return self._rel_noise or self.profile.read_noise.absolute_uS > 0

    @property
    def noisy_reads(self) -> bool:
        """Whether two reads of the same input differ (read or output noise)."""
        return self._var_noise or self.profile.adc.noise_std > 0

    # ----------------------------------------------------------------------------- programming
    def program(self, weight: Tensor, noisy: bool = True, all_devices: bool = False) -> None:
        """Write target weights (out, in) as conductances at ``clock.now``.

        Only the devices whose target conductance changes are programmed (the first write, or
        ``all_devices`` — a refresh — programs every device). ``noisy``: apply the profile's
        programming noise (initial programming, ``noisy_write`` updates, refresh); the ideal
        update model writes exactly. Faults always apply. Pulsed devices keep the weight scale
        of their first programming (largest |w| of a tile at ``init_fill`` of the bound).
        """
        w = self.grid.to_grid(weight.detach().to(self.device, torch.float32))
        first = self._version == 0
        s = self.state
        if self.profile.mapping.scale == "tile":
            scale = self.grid.tile_absmax(w).clamp_min(1e-12)
        else:
            scale = self.grid.column_absmax(w).clamp_min(1e-12)
        if s.has_pulsed:
            if first:
                s.scale.copy_(scale / self.profile.update.init_fill)  # type: ignore[union-attr]
            dev = s.pulsed()
            w = torch.minimum(torch.maximum(w / s.scale, dev["w_min"]), dev["w_max"])
            unit = None  # w is normalized already
        else:
            s.scale.copy_(scale)
            unit = scale
        partial = not (first or all_devices)
        if self._paths()["fused"]:
            st.program_fused(s, w, unit if unit is not None else torch.ones_like(scale),
                             self._now_tensor(self.clock.now), self.generator, noisy, partial,
                             self._fusion)
        else:
            target = st.targets(w / unit if unit is not None else w, self.profile)
            changed = target != s.g_target if partial else None
            st.program(s, target, self.clock.now, self.profile, self._write_normals, noisy,
                       changed)
        self._written()

    def apply_increment(self, delta: Tensor) -> None:
        """Pulsed devices: apply a requested weight increment (out, in) as pulses on the
        drifted conductances; a device that receives a pulse restarts its drift clock."""
        s = self.state
        if not s.has_pulsed:
            raise ValueError(f"profile {self.profile.name}: increments need a pulsed update "
                             "model")
        d = self.grid.to_grid(delta.detach().to(self.device, torch.float32)) / s.scale
        if self._paths()["fused"]:
            st.pulse_fused(s, d.contiguous(), self._now_tensor(self.clock.now), self.profile.update,  # type: ignore[arg-type]
                           self.generator, self._fusion)
            self._written()
            return
        g_now, _ = st.conductances(s, self.clock.now, self.profile)
        diff = self.profile.mapping.differential
        w_now = s.weight_n(g_now, diff)
        w_new = physics.pulsed_update(w_now, d, s.pulsed(), self.profile.update,  # type: ignore[arg-type]
                                      self.generator)
        target = st.targets(w_new, self.profile)
        changed = (w_new != w_now).unsqueeze(0) & (target != g_now)
        st.program(s, target, self.clock.now, self.profile, self._write_normals, False,
                   changed)
        self._written()

    def _written(self) -> None:
        self._version += 1
        self._cache_key = None
        if self.compensated:
            # reference read just after programming, against which later reads compensate;
            # one input row: the float32 product, no int8 digits to make
            m = self._read_model_at(self.clock.now, gain=False, digits=False)
            self.comp_ref.copy_(self._readout(m))

    # ----------------------------------------------------------------------------- read model
    def read_model(self) -> ReadModel:
        """The read model at ``clock.now`` (cached until a write or the clock moves)."""
        key = (self._version, self.clock.now, self._numerics)
        if self._cache_key != key or self._cache is None:
            self._cache = self._read_model_at(self.clock.now, gain=self.compensated)
            self._cache_key = key
        return self._cache

    def _read_model_at(self, now_s: float, gain: bool, digits: bool = True) -> ReadModel:
        """Drifted mean weights and read variances at ``now_s``.

        Read noise per device: var = (|G(t)|·σ_rel)² + σ_abs², σ_rel = Q_s(G_prog)·1/f factor
        of the device's own time since programming (Nandakumar et al. 2019's model).
        """
        p, s, cv = self.profile, self.state, self.conv
        paths = self._paths()
        rn = p.read_noise
        noise = self._var_noise
        if paths["fused"]:
            now = self._now_tensor(now_s)
            fz = self._fusion
            var_dtype = torch.bfloat16 if paths["bf16_variance"] else torch.float32
            args = (s.g_prog, s.nu, s.q2, *s.prog_times(), now, fz.c, fz.structure, noise,
                    var_dtype)
            if paths["int8_mean"] and digits:  # the digits in the same kernel
                w, var, wq, ws = fused.kernel("read_digits", fz.structure)(*args)
                return self._finish_read_model(w, var, gain, (wq, ws))
            w, var = fused.kernel("read_fields", fz.structure)(*args)
            return self._finish_read_model(w, var, gain, None)
        g, dt = st.conductances(s, now_s, p)
        unit = cv.a / cv.b  # normalized weight → ADC codes per DAC code
        w = s.weight_n(g, p.mapping.differential).mul_(unit)
        var = None
        if noise:
            pair = 1.0 if p.mapping.differential else 4.0  # w_n = 2g − 1
            v = torch.zeros(self.grid.shape, device=self.device)
            if self._rel_noise:
                dev_var = g.square().mul_(s.q2)
                if rn.one_over_f:
                    dev_var.mul_(physics.one_over_f_sq(rn, dt, p.drift.t0_s))
                v = dev_var.sum(0)
            if rn.absolute_uS > 0:
                v.add_(g.shape[0] * (rn.absolute_uS / p.mapping.g_max_uS) ** 2)
            v.mul_(pair * unit**2)
            var = v.to(torch.bfloat16) if paths["bf16_variance"] else v
        wd = num.int8_digits(w) if paths["int8_mean"] and digits else None
        return self._finish_read_model(w, var, gain, wd)

    def _finish_read_model(self, w: Tensor, var: Tensor | None, gain: bool,
                           digits: tuple[num.Digits, Tensor] | None) -> ReadModel:
        """The read model of mean weights ``w``, variances ``var`` and int8 ``digits`` (wq,
        ws; None off the int8 path): output noise, and the compensation gain (a reference
        read) if ``gain``."""
        p, cv = self.profile, self.conv
        out_var = None
        if p.adc.noise_std > 0:
            out_var = torch.full((1, 1, 1), (p.adc.noise_std / cv.b) ** 2, device=self.device,
                                 dtype=var.dtype if var is not None else torch.float32)
        m = ReadModel(w, var, out_var, None)
        if digits is not None:
            m.wq, m.ws = digits
        if gain:
            now = self._readout(m)
            m.gain = self.grid.expand(self.comp_ref / now.clamp_min(1e-4))
        return m

    def _readout(self, m: ReadModel) -> Tensor:
        """Global drift compensation's reference read: the all-ones input through the periphery
        (DAC, read noise, ADC), mean |output| of each crossbar's real outputs, (C, R) in
        normalized units (after Joshi et al. 2020, aihwkit's ``GlobalDriftCompensation``).
        One input row: the float32 product of the mean weights whatever the numerics (an
        int8 product of one row costs as much as of a thousand on a CPU; the write's
        reference read has no digits either)."""
        u = self._ref_codes
        noise = periphery.read_noise(u, m.var, m.out_var, self.grid.out_padded, self._normals)
        y = torch.bmm(u, m.w) if noise is None else torch.baddbmm(noise, u, m.w)
        return self._reference_magnitude(y)

    def _now_tensor(self, now_s: float) -> Tensor:
        """``now_s`` in the tile's 0-d float64 device tensor (a fill on the device: no host
        round trip on a GPU), for the compiled kernels."""
        if self._now is None:
            self._now = torch.zeros((), dtype=torch.float64, device=self.device)
        return self._now.fill_(now_s)

    def _reference_codes(self) -> Tensor:
        """DAC codes (C, 1, ci) of the all-ones reference input (zeros on padding rows); made
        once, kept as the buffer ``_ref_codes``."""
        gr = self.grid
        x = torch.zeros(gr.in_padded, device=self.device)
        x[: gr.in_features] = 1.0
        u, _ = periphery.encode(x.view(gr.n_col, 1, gr.ci), self.conv)
        return u

    def _reference_magnitude(self, y: Tensor) -> Tensor:
        """ADC of the reference read's outputs y (C, 1, out_p), then mean |code| of each
        crossbar's real outputs, (C, R), normalized units."""
        gr = self.grid
        periphery.quantize_output(y, self.conv)
        mag = (y.abs() * self._real_out).reshape(gr.n_col, gr.n_row, gr.ro).sum(2)
        count = self._real_out.reshape(gr.n_row, gr.ro).sum(1).clamp_min(1)
        return mag / count * self.conv.b

    def mean_weight(self) -> Tensor:
        """The mean (noise-free expectation) weights the chip computes with now, (out, in),
        weight units, compensation included. An oracle: no chip exposes it (the ``mean``
        backward of BP, documented as optimistic)."""
        m = self.read_model()
        if "w_eff" not in m.cache:
            w = m.w * (self.state.scale / (self.conv.a / self.conv.b))
            if m.gain is not None:
                w = w * m.gain
            m.cache["w_eff"] = self.grid.from_grid(w)
        return m.cache["w_eff"]

    # ----------------------------------------------------------------------------- reading
    def mvm(self, x: Tensor, bias: Tensor | None = None, repeats: int = 1) -> Tensor:
        """One analog matrix-vector product per row of ``x`` (N, in) → (repeats·N, out), plus
        the digital ``bias`` (out,) if given.

        DAC (per-sample, per-crossbar absmax scaling) → crossbar read with fresh per-sample
        read noise → additive output noise → ADC per crossbar → digital rescale (DAC scale,
        weight scale, drift compensation) and sum over input tiles. Random draws: (C,
        repeats·N, out_p) normals per call. ``repeats`` > 1 reads ``x`` that many times, each
        with its own noise, converting and multiplying once. Float32 whatever the input's
        dtype: the DAC takes the input's float32 values.
        """
        gr = self.grid
        x = x.float()
        n, c_n = x.shape[0], gr.n_col
        if n == 0:  # nothing read, nothing drawn
            return x.new_zeros(0, gr.out_features)
        m = self.read_model()
        xp = x if gr.in_padded == gr.in_features else torch.nn.functional.pad(
            x, (0, gr.in_padded - gr.in_features))
        # the fused read's counters: C·⌈repeats·N/2⌉·out_p below normals.COUNTER_LIMIT
        if self._paths()["fused_read"] and (
                c_n * ((repeats * n + 1) // 2) * gr.out_padded < normals.COUNTER_LIMIT):
            return self._mvm_fused(xp, m, bias, repeats)[:, : gr.out_features]
        u, k = periphery.encode(xp.reshape(n, c_n, gr.ci).transpose(0, 1), self.conv)
        noise = periphery.read_noise(u, m.var, m.out_var, gr.out_padded, self._normals, repeats)
        if repeats == 1:
            y = self._mean_product(u, m, noise)  # (C, N, out_p)
        else:
            mean = self._mean_product(u, m, None).unsqueeze(1)  # (C, 1, N, out_p)
            y = (noise.view(c_n, repeats, n, -1).add_(mean) if noise is not None
                 else mean.expand(-1, repeats, -1, -1)).reshape(c_n, repeats * n, -1)
            if isinstance(k, Tensor):
                k = k.repeat(1, repeats, 1)
        periphery.quantize_output(y, self.conv)
        return self._digital_sum(y, k, bias, m.gain)[:, : gr.out_features]

    def _mvm_fused(self, xp: Tensor, m: ReadModel, bias: Tensor | None, repeats: int
                   ) -> Tensor:
        """``mvm`` of padded inputs ``xp`` (N, in_p) as two compiled passes around the two
        products: the DAC (``fused.dac_codes``), the mean product u @ w and the variance
        product u² @ var as matmuls, then noise, ADC, rescale and the sum over input tiles per
        output (``fused.read_out``) without storing the noisy codes; the noise from a key
        drawn from the tile's generator (``normals.split_normals``). (repeats·N, out_p),
        float32 whatever the input's dtype (as ``periphery.encode``'s codes)."""
        gr, cv = self.grid, self.conv
        c_n = gr.n_col
        if self._read_consts is None:
            self._read_consts = read_consts(self.profile, cv, self.device)
        packs = self._packed(m)
        rs = fused.ReadStructure(
            m.wq is not None and packs is None, m.var is not None, m.out_var is not None,
            "codes" if cv.adc_top is not None else "clip" if cv.output_bound is not None
            else "none", bias is not None, cv.absmax, cv.dac_top is not None, packs is not None)
        cst = self._read_consts
        dac = fused.ReadStructure(False, False, False, "none", False, rs.absmax, rs.dac)
        u, u2, k = fused.kernel("dac_codes", dac)(  # one kernel per DAC, whatever the read
            xp.float(), c_n, cst, dac, m.wq is not None, m.var.dtype if m.var is not None
            else None)
        if packs is not None:  # the float32 mean, as the pass would combine the digits
            mean = num.packed_mean_product(u, packs, m.ws, None)  # type: ignore[arg-type]
        elif m.wq is not None:  # both digits' integer sums, combined in the pass
            mean = torch.empty(2, c_n, xp.shape[0], gr.out_padded, dtype=torch.int32,
                               device=xp.device)
            for d in range(2):
                for c in range(c_n):
                    torch._int_mm(u[c], m.wq[d][c], out=mean[d, c])
        else:
            mean = torch.bmm(u, m.w)
        var = None  # σ² with the output noise, rounded as periphery.read_noise rounds it
        if m.var is not None and u2 is not None:
            var = torch.bmm(u2, m.var) if m.out_var is None else torch.baddbmm(m.out_var, u2,
                                                                                m.var)
            if packs is None:  # widened here: a bf16 operand slows the digits' pass (the
                var = var.float()  # packed mean's pass reads it faster as bf16)
        bias, sg = self._padded_bias(bias), self._scale_gain(m.gain)
        key = normals.write_key(self.generator) if rs.dev_noise or rs.out_noise else None
        return fused.kernel("read_out", rs)(key, mean, m.ws, var, k, sg, bias, cst, repeats,
                                            rs)

    def _packed(self, m: ReadModel) -> list[tuple[Tensor, Tensor, Tensor]] | None:
        """Counts a forward read of ``m``; its packed digits (packed on read ``PACK_AT_READ``)
        where the packed path is on, else None. The packed and unpacked means are the same
        floats, so when a model gets packed changes no output."""
        m.reads += 1
        if m.packs is None and m.wq is not None and m.reads >= PACK_AT_READ and \
                self._paths()["packed_int8"]:
            m.packs = num.pack_int8_digits(m.wq)
        return m.packs

    def _scale_gain(self, gain: Tensor | None) -> Tensor:
        """Weight scale times drift-compensation gain per crossbar column, (C, 1, out_p)."""
        return self.state.scale if gain is None else self.state.scale * gain

    def _padded_bias(self, bias: Tensor | None) -> Tensor | None:
        """``bias`` (out,) zero-padded to the grid's padded outputs."""
        gr = self.grid
        if bias is None or gr.out_padded == gr.out_features:
            return bias
        return torch.nn.functional.pad(bias, (0, gr.out_padded - gr.out_features))

    def _digital_sum(self, y: Tensor, k: Tensor | float, bias: Tensor | None,
                     gain: Tensor | None) -> Tensor:
        """out[n, j] = bias[j] + Σ_c k[c, n]·scale[c, j]·gain[c, j]·y[c, n, j], (N, out_p).

        y: (C, N, out_p) ADC codes; k: (C, N, 1) per-sample DAC factors (or a number). With
        one factor per crossbar they fold into k, one output tile at a time.
        """
        gr = self.grid
        sg, bias = self._scale_gain(gain), self._padded_bias(bias)
        if self.profile.mapping.scale == "tile":
            f = sg[:, :, :: gr.ro] * k  # (C, N or 1, R)
            out = torch.empty(y.shape[1], gr.out_padded, device=y.device)
            for r in range(gr.n_row):
                blk = slice(r * gr.ro, (r + 1) * gr.ro)
                periphery.weighted_sum(y[:, :, blk], f[:, :, r:r + 1],
                                       bias[blk] if bias is not None else None, out[:, blk])
            return out
        y.mul_(sg)
        kk = k if isinstance(k, Tensor) else torch.full((gr.n_col, 1, 1), k, device=y.device)
        return periphery.weighted_sum(y, kk, bias, torch.empty(y.shape[1:], device=y.device))

    def mvm_transposed(self, g: Tensor) -> Tensor:
        """A read from the output side: (N, out) → (N, in), out_i = Σ_j g_j·w_ji, through the
        same devices with fresh read noise, a DAC per crossbar row block and an ADC per
        crossbar; what a chip's transposed read (the backward of on-chip BP) measures.

        Per-column weight scales are applied to the inputs digitally before their DAC; tile
        scales and the drift compensation after the ADC. Float32 whatever ``g``'s dtype.
        """
        gr, cv, s = self.grid, self.conv, self.state
        g = g.float()
        n, c_n, r_n = g.shape[0], gr.n_col, gr.n_row
        if n == 0:
            return g.new_zeros(0, gr.in_features)
        m = self.read_model()
        if "wT" not in m.cache:
            m.cache["wT"] = gr.transposed(m.w)
            if m.var is not None:
                m.cache["varT"] = gr.transposed(m.var.float())
        gp = g if gr.out_padded == gr.out_features else torch.nn.functional.pad(
            g, (0, gr.out_padded - gr.out_features))
        xin = gp.reshape(n, r_n, gr.ro).transpose(0, 1).unsqueeze(0).expand(c_n, -1, -1, -1)
        per_xbar = s.scale.reshape(c_n, r_n, 1, gr.ro) if self.profile.mapping.scale == "column" \
            else None
        if per_xbar is not None:
            xin = xin * per_xbar
        u, k = periphery.encode(xin.reshape(c_n * r_n, n, gr.ro), cv)
        out_var = m.out_var.float() if m.out_var is not None else None  # widened, as varT
        noise = periphery.read_noise(u, m.cache.get("varT"), out_var, gr.ci, self._normals)
        y = torch.bmm(u, m.cache["wT"]) if noise is None else torch.baddbmm(noise, u,
                                                                            m.cache["wT"])
        periphery.quantize_output(y, cv)  # (C·R, N, ci)
        f = torch.ones(c_n, r_n, device=self.device)
        if per_xbar is None:
            f = f * s.scale[:, 0, :: gr.ro]
        if m.gain is not None:
            f = f * m.gain[:, 0, :: gr.ro]
        y = y.mul_(f.reshape(-1, 1, 1) * k)
        out = y.reshape(c_n, r_n, n, gr.ci).sum(1)  # (C, N, ci)
        return out.transpose(0, 1).reshape(n, gr.in_padded)[:, : gr.in_features]

    def _mean_product(self, u: Tensor, m: ReadModel, add: Tensor | None) -> Tensor:
        """``add`` + u @ w per crossbar: (C, N, ci) codes → (C, N, out_p) float32."""
        packs = self._packed(m)
        if packs is not None and m.ws is not None:
            return num.packed_mean_product(u, packs, m.ws, add)
        if m.wq is not None and m.ws is not None:
            return num.int8_mean_product(u, m.wq, m.ws, add)
        return torch.bmm(u, m.w) if add is None else torch.baddbmm(add, u, m.w)

    def _write_normals(self, shape: tuple[int, ...]) -> Tensor:
        """The normals (kinds, D, C, ci, out_p) of a step-by-step write or pulsed update
        (``_normals``; the fused passes compute their own from a key,
        ``normals.counter_normals``)."""
        return self._normals(shape)

    def _normals(self, shape: tuple[int, ...]) -> Tensor:
        """float32 N(0, 1) of ``shape`` from the tile's generators (``normals.randn``)."""
        if self._gen2 is None and self.device.type == "cpu":
            self._gen2 = normals.second_generator(self.generator)
        return normals.randn(shape, self.generator, self._gen2)

    # ----------------------------------------------------------------------------- checkpoints
    def rng_state(self) -> dict[str, Tensor | None]:
        """The states of the tile's generators (device randomness still to come)."""
        return {"generator": self.generator.get_state(),
                "second": self._gen2.get_state() if self._gen2 is not None else None}

    def set_rng_state(self, state: dict[str, Tensor | None]) -> None:
        """Put the generators back to ``rng_state()``; the cached read model (whose drift
        compensation read drew from them) is dropped so the next read redraws it."""
        self._cache_key = None
        self.generator.set_state(state["generator"])  # type: ignore[arg-type]
        if state["second"] is None:
            self._gen2 = None
        else:
            if self._gen2 is None:
                self._gen2 = torch.Generator(self.generator.device)
            self._gen2.set_state(state["second"])

    def get_extra_state(self) -> dict[str, object]:
        """What ``state_dict`` adds to the buffers: generator states and the device time."""
        return {"rng": self.rng_state(), "clock_s": self.clock.now}

    def set_extra_state(self, state: dict[str, object]) -> None:
        self.set_rng_state(state["rng"])  # type: ignore[arg-type]
        self.clock.advance_to(float(state["clock_s"]))  # type: ignore[arg-type]
        self._version += 1  # the loaded buffers are a new device state
        self._cache_key = None
