"""``DeviceState``: the per-device state of a tile, and the pure writes that change it.

Every device has its own programming time, drift exponent ν and 1/f coefficient, so a write
re-programs only the devices it changes: those restart their drift clock and draw a new ν,
the rest keep drifting. Conductances are relative, g = G/g_max ≥ 0, both devices of a
differential pair stacked: (D, C, ci, out_p), D = 2 (G+, G−) or 1.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from analogsim.analog import fused, normals, physics
from analogsim.analog.grid import TileGrid
from analogsim.config.profile import DeviceProfile, PulsedUpdate


class DeviceState(nn.Module):
    """Buffers (so ``state_dict`` carries the device), all (D, C, ci, out_p) unless noted.

    g_target: the conductance each device was last programmed towards.
    g_prog:   what that programming realised (programming noise, faults), at ``t_prog``.
    nu:       drift exponent drawn at that programming (zeros without drift).
    q2:       Q_s(g_prog)² of the 1/f read noise (zeros without relative read noise).
    t_prog_hi, t_prog_lo: device time of the device's last programming, s, as two float32
              words (``fused.split_times``): t_prog = t_prog_hi + t_prog_lo to 2⁻⁴⁸ relative
              (≤ 0.2 µs at a year). What the compiled read model takes as it is
              (``fused.ages``), with no float64 copy beside it; ``t_prog`` is their float64
              sum.
    stuck_low, stuck_high: fault masks (bool), fixed when the tile is made.
    scale:    (C, 1, out_p) weight units per normalized unit of each tile (or column).
    pulsed:   (C, ci, out_p) per-weight constants of a pulsed device (dw_up, dw_down, w_min,
              w_max), drawn once; absent for other update models.
    """

    def __init__(self, grid: TileGrid, profile: DeviceProfile, generator: torch.Generator,
                 device: torch.device) -> None:
        super().__init__()
        n_dev = 2 if profile.mapping.differential else 1
        shape = (n_dev, *grid.shape)
        for name in ("g_target", "g_prog", "nu", "q2"):
            self.register_buffer(name, torch.zeros(shape, device=device))
        for name in ("t_prog_hi", "t_prog_lo"):
            self.register_buffer(name, torch.zeros(shape, device=device))
        self.register_buffer("scale", torch.ones(grid.n_col, 1, grid.out_padded, device=device))
        # Faults: drawn once for each device of a pair (always, so that the generator's stream
        # does not depend on the fault fractions).
        f = profile.faults
        masks = [physics.fault_masks(grid.shape, f, generator, device) for _ in range(n_dev)]
        self.has_faults = f.stuck_at_min_fraction > 0 or f.stuck_at_max_fraction > 0
        self.register_buffer("stuck_low", torch.stack([lo for lo, _ in masks]))
        self.register_buffer("stuck_high", torch.stack([hi for _, hi in masks]))
        self.has_pulsed = isinstance(profile.update, PulsedUpdate)
        if self.has_pulsed:
            dev = physics.sample_pulsed_devices(grid.shape, profile.update,  # type: ignore[arg-type]
                                                generator, device)
            for name, t in dev.items():
                self.register_buffer(f"pulsed_{name}", t)

    @property
    def t_prog(self) -> Tensor:
        """Device time of each device's last programming, s, float64 (D, C, ci, out_p): the
        sum of its two float32 words (a new tensor; write through ``stamp``)."""
        return self.t_prog_hi.double() + self.t_prog_lo.double()

    def prog_times(self) -> tuple[Tensor, Tensor]:
        """The programming times' two float32 words (t_prog_hi, t_prog_lo), the buffers."""
        return self.t_prog_hi, self.t_prog_lo

    def stamp(self, now_s: float, changed: Tensor | None) -> None:
        """Programming time ``now_s`` (s) for every device, or where ``changed`` (bool), as
        ``fused.split_times`` splits it."""
        words = fused.split_times(torch.tensor(now_s, dtype=torch.float64))
        for t, v in zip(self.prog_times(), words):
            if changed is None:
                t.fill_(v)
            else:
                t.masked_fill_(changed, v)

    def _load_from_state_dict(self, state_dict: dict[str, Tensor], prefix: str,
                              *args: object, **kwargs: object) -> None:
        """Also loads a state saved with float64 programming times (one ``t_prog`` buffer),
        split into the two words."""
        old = prefix + "t_prog"
        if old in state_dict and prefix + "t_prog_hi" not in state_dict:
            hi, lo = fused.split_times(state_dict.pop(old).double())
            state_dict[prefix + "t_prog_hi"], state_dict[prefix + "t_prog_lo"] = hi, lo
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)  # type: ignore[arg-type]

    def pulsed(self) -> dict[str, Tensor]:
        """The pulsed device's constants as ``physics.pulsed_update`` takes them."""
        return {k: getattr(self, f"pulsed_{k}") for k in ("dw_up", "dw_down", "w_max", "w_min")}

    def weight_n(self, g: Tensor, differential: bool) -> Tensor:
        """Normalized weights (C, ci, out_p) of stacked relative conductances g (D, …)."""
        return g[0] - g[1] if differential else g[0] * 2 - 1


def targets(w_n: Tensor, profile: DeviceProfile) -> Tensor:
    """Relative conductance targets (D, C, ci, out_p) of normalized weights (C, ci, out_p):
    G+ carries w > 0 and G− carries w < 0, or one device read against g_max/2 (w = 2g − 1);
    snapped to the profile's conductance levels."""
    if profile.mapping.differential:
        g = torch.stack((w_n, -w_n)).clamp_min_(0)
    else:
        g = w_n.clamp(-1, 1).add_(1).mul_(0.5).unsqueeze(0)
    if profile.mapping.levels is not None:
        g = physics.quantize_levels(g, 1.0, profile.mapping.levels)
    return g


def program(state: DeviceState, target: Tensor, now_s: float, profile: DeviceProfile,
            normals: Callable[[tuple[int, ...]], Tensor], noisy: bool,
            changed: Tensor | None) -> None:
    """Program the devices ``changed`` (bool like ``target``; None: all) towards ``target``.

    Each programmed device gets G_prog = max(0, G + σ_prog(G)·ξ) (when ``noisy``), its fault
    if stuck, ν = |μ_ν(G) + σ_ν(G)·ξ'| from its target (as in the PCM model), Q_s(G_prog)² and
    t_prog = ``now_s`` (as its two float32 words, ``DeviceState.stamp``). Normals: one draw of
    (programming, drift) × all devices, so the stream does not depend on which devices
    change.
    """
    p = profile
    prog = noisy and any(c != 0 for c in p.programming.sigma_poly_uS)
    drift = p.drift.enabled
    kinds = int(prog) + int(drift)
    xi = normals((kinds, *target.shape)) if kinds else None
    tgt = target
    if state.has_faults:
        tgt = physics.apply_faults(target, state.stuck_low, state.stuck_high, 1.0)
    if prog:
        assert xi is not None
        g = physics.program(target, 1.0, p.programming, None, xi[0])  # type: ignore[arg-type]
        if state.has_faults:
            g = physics.apply_faults(g, state.stuck_low, state.stuck_high, 1.0)
    else:
        g = tgt.clone()
    new = {"g_target": target, "g_prog": g}
    if drift:
        assert xi is not None
        new["nu"] = physics.sample_drift_nu(tgt, 1.0, p.drift.nu_mean, p.drift.nu_std,
                                            None, xi=xi[kinds - 1])  # type: ignore[arg-type]
    rn = p.read_noise
    if rn.q_coeff > 0 and rn.q_max > 0:
        new["q2"] = physics.q_s(g, rn).square_()
    for name, t in new.items():
        buf = getattr(state, name)
        if changed is None:
            buf.copy_(t)
        else:
            torch.where(changed, t, buf, out=buf)
    state.stamp(now_s, changed)


def program_fused(state: DeviceState, w: Tensor, scale: Tensor, now: Tensor,
                  generator: torch.Generator, noisy: bool, partial: bool,
                  fusion: fused.Fusion) -> None:
    """``program`` of the targets of weights ``w`` (C, ci, out_p) in units of ``scale`` (C, 1,
    out_p) at device time ``now`` (0-d float64 tensor on the state's device, s) in one compiled
    pass (``fused.program_into``): the same physics, with the normals computed in the pass
    from a key drawn from ``generator`` (``normals.counter_normals``) instead of drawn before
    it. ``partial``: only the devices whose target changed; else all.

    A partial write of differential pairs on the CPU computes one device per pair
    (``fused.program_pairs_into``; half the devices' arithmetic, the same physics and normals)
    and then G− of the pairs whose weight changed sign (``fused.program_second``): finding
    those pairs (``nonzero``) would wait on a GPU, so there every device is computed."""
    kinds = fused.kinds_of(fusion.structure, noisy)
    key = normals.write_key(generator) if kinds else None
    bufs = {n: getattr(state, n) for n in ("g_target", "g_prog", "nu", "q2")}
    if partial and fusion.structure.differential and w.device.type == "cpu":
        more = {**bufs, "t_prog_hi": state.t_prog_hi, "t_prog_lo": state.t_prog_lo,
                "stuck_low": state.stuck_low, "stuck_high": state.stuck_high}
        halves = ({n: t[0] for n, t in more.items()}, {n: t[1] for n, t in more.items()})
        both = fused.kernel("program_pairs_into", fusion.structure)(
            halves, w, scale, key, now, fusion.c, fusion.poly, fusion.structure, noisy)
        pairs = both.reshape(-1).nonzero().squeeze(1)
        if pairs.numel():
            fused.program_second(halves[1], pairs, w, scale, key, now, fusion.c, fusion.poly,
                                 fusion.structure, noisy)
        return
    kern = fused.kernel("program_into", fusion.structure)
    kern(bufs, state.prog_times(), w, scale, key, state.stuck_low, state.stuck_high, now,
         fusion.c, fusion.poly, fusion.structure, noisy, partial)


def pulse_fused(state: DeviceState, delta: Tensor, now: Tensor, cfg: PulsedUpdate,
                generator: torch.Generator, fusion: fused.Fusion) -> None:
    """A pulsed update of the requested normalized increments ``delta`` (C, ci, out_p) at
    device time ``now`` (0-d float64 tensor, s) in one compiled pass (``fused.pulse_into``):
    the physics of ``physics.pulsed_update`` then ``program`` (no programming noise) of the
    devices that change. The pulses' normals are drawn from ``generator`` as the step-by-step
    update draws them; the drift exponents' are computed in the pass from a key drawn after
    them (``normals.counter_normals``)."""
    xi_pulse = torch.randn(delta.shape, generator=generator, device=delta.device,
                           dtype=delta.dtype)
    kinds = fused.kinds_of(fusion.structure, False)
    key = normals.write_key(generator) if kinds else None
    bufs = {n: getattr(state, n) for n in ("g_target", "g_prog", "nu", "q2")}
    fused.kernel("pulse_into", fusion.structure)(
        bufs, state.prog_times(), delta, xi_pulse, state.pulsed(), float(cfg.max_pulses),
        float(cfg.dw_min_ctoc), cfg.soft_bounds, key, state.stuck_low, state.stuck_high, now,
        fusion.c, fusion.poly, fusion.structure)


def conductances(state: DeviceState, now_s: float, profile: DeviceProfile
                 ) -> tuple[Tensor, Tensor]:
    """(g(t), dt): the drifted conductances G(t)/g_max = g_prog·((dt + t0)/t0)^(−ν) and each
    device's seconds since its programming dt (float32), both (D, C, ci, out_p)."""
    dt = (now_s - state.t_prog).clamp_min_(0).float()
    if not profile.drift.enabled:
        return state.g_prog, dt
    return physics.drift_factor(state.nu, dt, profile.drift.t0_s).mul_(state.g_prog), dt
