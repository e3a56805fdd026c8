"""``DeviceProfile``: a device described as pure, validated, frozen data (no class names).

Units live in field names (``_uS`` microsiemens, ``_s`` seconds). "Normalized units" for the
periphery are those of one crossbar tile whose inputs are scaled into [-1, 1] by the DAC and
whose weights are scaled so that the largest |w| of the tile (or column) is 1 (= g_max).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator

from analogsim.config.strict import (
    Bits,
    Conductance_uS,
    ConductanceSpread_uS,
    Fraction,
    StrictData,
)
from analogsim.config.yaml_io import load_model
from analogsim.errors import ProfileError

#: Base of every model here: strict, finite, no unknown keys (config/strict.py).
_Data = StrictData



#: Largest noise σ (programming, absolute read noise), in conductance windows (g_max).
MAX_SIGMA_WINDOWS = 10.0


class Mapping(_Data):
    """How a weight matrix becomes conductances."""

    g_max_uS: Conductance_uS = Field(
        25.0, description="largest programmable conductance, µS, in [1e-3, 1e4]")
    scale: Literal["tile", "column"] = Field(
        "tile", description="weight scale per tile, or per output column of a tile")
    differential: bool = Field(
        True, description="G+ − G− device pair; else one device per weight, "
        "w ↦ G = (w + 1)/2·g_max, read against a fixed g_max/2 reference")
    tile_rows: int = Field(512, ge=1, le=4096, description="max outputs per crossbar tile")
    tile_cols: int = Field(512, ge=1, le=4096, description="max inputs per crossbar tile")
    levels: int | None = Field(
        None, ge=2, le=2**24,
        description="finite conductance levels per device, 2 … 2^24 (None: continuous)")


class ProgrammingNoise(_Data):
    """σ_prog(G) = (c0 + c1·g + c2·g² …) µS at g_max_ref_uS, g = G/g_max; scaled by g_max/ref."""

    sigma_poly_uS: list[Annotated[float, Field(ge=-1e4, le=1e4)]] = Field(
        default_factory=lambda: [0.0], min_length=1, max_length=6,
        description="polynomial coefficients c0, c1, … (µS, each in [-1e4, 1e4]); "
        "σ_prog must be ≥ 0 over all of G/g_max ∈ [0, 1]")
    g_max_ref_uS: Conductance_uS = Field(
        25.0, description="g_max at which the polynomial holds, µS, in [1e-3, 1e4]")

    @model_validator(mode="after")
    def _nonnegative_on_unit_interval(self) -> ProgrammingNoise:
        g, low = polynomial_min(self.sigma_poly_uS)
        if low < -1e-12:
            raise ValueError(f"sigma_poly_uS gives a negative σ ({low:.4g} µS) at "
                             f"G/g_max = {g:.4g}; it must be ≥ 0 over all of [0, 1]")
        return self


def polynomial_min(coeffs: list[float]) -> tuple[float, float]:
    """(x, p(x)) where p(x) = Σ c_k x^k is smallest over x ∈ [0, 1] (ends and stationary
    points)."""
    poly = np.polynomial.Polynomial(coeffs)
    xs = [0.0, 1.0]
    if len(coeffs) > 2:
        xs += [float(r.real) for r in poly.deriv().roots()
               if abs(r.imag) < 1e-9 and 0.0 < r.real < 1.0]
    values = [float(poly(x)) for x in xs]
    i = int(np.argmin(values))
    return xs[i], values[i]


class ClippedLog(_Data):
    """clip(slope · ln(G/g_max) + intercept, min, max)."""

    ln_slope: float = Field(0.0, ge=-10, le=10, description="per unit ln(G/g_max), in [-10, 10]")
    intercept: float = Field(0.0, ge=-10, le=10, description="value at G = g_max, in [-10, 10]")
    min: Fraction = Field(0.0, description="lower clip, in [0, 1]")
    max: Fraction = Field(1.0, description="upper clip, in [0, 1]")

    @model_validator(mode="after")
    def _ordered(self) -> ClippedLog:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self


class Drift(_Data):
    """G(t) = G_prog·((t + t0)/t0)^(−ν), ν = |N(ν_mean(G), ν_std(G))| drawn once per device."""

    enabled: bool = False
    t0_s: float = Field(20.0, ge=1e-9, le=1e9, description="drift reference time, s, in "
                        "[1e-9, 1e9]")
    nu_mean: ClippedLog = Field(ClippedLog(), description="mean drift exponent ν, in [0, 1]")
    nu_std: ClippedLog = Field(ClippedLog(), description="spread of ν across devices, in [0, 1]")
    compensation: bool = Field(False, description="global drift compensation, one scalar per tile")


class ReadNoise(_Data):
    """Fresh every read: G_read = G + |G|·σ_rel·ξ + σ_abs·ξ'.

    σ_rel = min(q_max, q_coeff / max(g_rel_floor, G/g_max)^q_exp), times
    sqrt(ln((t + t0 + t_read)/(2·t_read))) when ``one_over_f`` (t since programming, s).
    """

    q_coeff: float = Field(0.0, ge=0, le=10, description="relative σ at G = g_max, in [0, 10]")
    q_exp: float = Field(0.0, ge=0, le=10, description="exponent of 1/(G/g_max), in [0, 10]")
    q_max: float = Field(1.0, ge=0, le=10, description="cap of the relative σ, in [0, 10]")
    g_rel_floor: float = Field(1e-3, ge=1e-9, le=1,
                               description="smallest G/g_max in the power law, in [1e-9, 1]")
    one_over_f: bool = False
    t_read_s: float = Field(250e-9, ge=1e-12, le=1e3,
                            description="duration of one read, s, in [1e-12, 1e3]")
    absolute_uS: ConductanceSpread_uS = Field(
        0.0, description="conductance-independent σ, µS, in [0, 1e4]")


class DAC(_Data):
    """Input converter: per-sample, per-tile scaling into ±input_bound, then bits."""

    bits: Bits | None = Field(None, description="1 … 24; None: no input quantization")
    input_bound: float = Field(1.0, ge=1e-3, le=1e3,
                               description="normalized input range ±bound, in [1e-3, 1e3]")
    scaling: Literal["absmax", "none"] = Field(
        "absmax", description="absmax: each input vector of a tile scaled by its max |x|")


class ADC(_Data):
    """Output converter of each tile, normalized units; additive output noise before it."""

    bits: Bits | None = Field(None, description="1 … 24; None: no output quantization")
    output_bound: float | None = Field(
        None, ge=1e-3, le=1e3, description="saturation at ±bound (normalized units, in "
        "[1e-3, 1e3]); None: no clipping")
    noise_std: float = Field(0.0, ge=0, le=1e3,
                             description="additive output noise σ, normalized units, in [0, 1e3]")

    @model_validator(mode="after")
    def _bound_with_bits(self) -> ADC:
        if self.bits is not None and self.output_bound is None:
            raise ValueError("bits needs output_bound (the quantizer's range); set both or neither")
        return self


class Faults(_Data):
    """Devices stuck at G_min (0) or g_max, fixed per seed at programming."""

    stuck_at_min_fraction: Fraction = Field(0.0, description="in [0, 1]")
    stuck_at_max_fraction: Fraction = Field(0.0, description="in [0, 1]")

    @model_validator(mode="after")
    def _sum(self) -> Faults:
        if self.stuck_at_min_fraction + self.stuck_at_max_fraction > 1:
            raise ValueError("stuck_at_min_fraction + stuck_at_max_fraction must be ≤ 1")
        return self


class IdealUpdate(_Data):
    """The requested weights are written exactly."""

    kind: Literal["ideal"] = "ideal"


class NoisyWriteUpdate(_Data):
    """Each update re-programs the target weights, with the profile's programming noise."""

    kind: Literal["noisy_write"] = "noisy_write"


class PulsedUpdate(_Data):
    """Increments applied as pulses, aihwkit-style constant-step device.

    Units are normalized device units: ±1 is ±g_max of the device pair. At the first
    programming the largest |w| of each tile maps to ``init_fill``; that scale then stays fixed,
    and a requested weight increment Δ becomes Δ/scale in device units.
    """

    kind: Literal["pulsed"] = "pulsed"
    dw_min: float = Field(0.002, ge=1e-9, le=2,
                          description="mean step per pulse, device units, in [1e-9, 2]")
    dw_min_dtod: float = Field(0.3, ge=0, le=10,
                               description="device-to-device spread of dw_min (rel.), in [0, 10]")
    dw_min_ctoc: float = Field(0.3, ge=0, le=10,
                               description="cycle-to-cycle spread per pulse (rel.), in [0, 10]")
    up_down_dtod: float = Field(0.01, ge=0, le=10,
                                description="spread of up/down asymmetry (rel.), in [0, 10]")
    w_max: float = Field(1.0, ge=1e-6, le=100,
                         description="upper bound, device units, in [1e-6, 100]")
    w_min: float = Field(-1.0, ge=-100, le=-1e-6,
                         description="lower bound, device units, in [-100, -1e-6]")
    bounds_dtod: float = Field(0.3, ge=0, le=10,
                               description="device-to-device spread of bounds (rel.), in [0, 10]")
    soft_bounds: bool = Field(True, description="step shrinks linearly to 0 at the bound")
    max_pulses: int = Field(100, ge=1, le=1_000_000,
                            description="pulses per device per update, at most; 1 … 1e6")
    init_fill: float = Field(0.6, gt=0, le=1, description="largest initial |w| of a tile, "
                             "as a fraction of the bound, in (0, 1]")


Update = Annotated[IdealUpdate | NoisyWriteUpdate | PulsedUpdate, Field(discriminator="kind")]


class DeviceProfile(_Data):
    """A device: mapping, programming, drift, read noise, periphery, faults, update model."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$",
                      description="letters, digits, _ . - (not starting with a dot)")
    description: str = ""
    source: str = Field(min_length=1, description="citation for the numbers")
    mapping: Mapping = Mapping()
    programming: ProgrammingNoise = ProgrammingNoise()
    drift: Drift = Drift()
    read_noise: ReadNoise = ReadNoise()
    dac: DAC = DAC()
    adc: ADC = ADC()
    faults: Faults = Faults()
    update: Update = IdealUpdate()

    @model_validator(mode="after")
    def _noise_within_window(self) -> DeviceProfile:
        # σ of many conductance windows is no device; and it overflows float32 downstream.
        g_max = self.mapping.g_max_uS
        if self.read_noise.absolute_uS > MAX_SIGMA_WINDOWS * g_max:
            raise ValueError(
                f"read_noise.absolute_uS ({self.read_noise.absolute_uS:g} µS) must be at most "
                f"{MAX_SIGMA_WINDOWS:g} × mapping.g_max_uS ({g_max:g} µS)")
        prog = self.programming
        coeffs = [-c for c in prog.sigma_poly_uS]  # the largest σ is minus the smallest of −σ
        g, neg = polynomial_min(coeffs)
        sigma = -neg * g_max / prog.g_max_ref_uS
        if sigma > MAX_SIGMA_WINDOWS * g_max:
            raise ValueError(
                f"programming: sigma_poly_uS reaches σ = {sigma:.4g} µS at G/g_max = {g:.3g} "
                f"(scaled to mapping.g_max_uS); at most {MAX_SIGMA_WINDOWS:g} × g_max_uS")
        return self

    @model_validator(mode="after")
    def _read_before_t0(self) -> DeviceProfile:
        # The 1/f factor sqrt(ln((t + t0 + t_read)/(2·t_read))) is real and > 0 from t = 0 on
        # only if t_read < t0 (the model assumes a read much shorter than t0).
        if self.read_noise.one_over_f and not self.read_noise.t_read_s < self.drift.t0_s:
            raise ValueError(
                f"read_noise.t_read_s ({self.read_noise.t_read_s:g} s) must be below "
                f"drift.t0_s ({self.drift.t0_s:g} s) when read_noise.one_over_f is on")
        return self

    @property
    def is_ideal(self) -> bool:
        """True when every effect is off: the profile is the digital reference."""
        return (
            all(c == 0 for c in self.programming.sigma_poly_uS)
            and not self.drift.enabled
            and self.read_noise.q_coeff == 0 and self.read_noise.absolute_uS == 0
            and self.dac.bits is None and self.adc.bits is None
            and self.adc.output_bound is None and self.adc.noise_std == 0
            and self.faults.stuck_at_min_fraction == 0 and self.faults.stuck_at_max_fraction == 0
            and self.mapping.levels is None
            and self.update.kind == "ideal"
        )

    def with_field(self, dotted: str, value: object) -> DeviceProfile:
        """A copy with one field (``"read_noise.q_coeff"``) replaced; validated."""
        data = self.model_dump()
        node = data
        parts = dotted.split(".")
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                raise ProfileError(f"profile {self.name}: {dotted}: no such field")
            node = node[p]
        if parts[-1] not in node:
            raise ProfileError(f"profile {self.name}: {dotted}: no such field")
        node[parts[-1]] = value
        from analogsim.config.yaml_io import shown, validate
        return validate(DeviceProfile, data, f"profile {self.name} with {dotted}={shown(value)}",
                        ProfileError)


def devices_dir() -> Path:
    """The folder of shipped profiles: ``analogsim/devices/``, installed as package data
    (the checkout's top-level ``devices/`` is a link to it)."""
    return Path(__file__).resolve().parents[1] / "devices"


def shipped_profiles() -> list[str]:
    """Names of the shipped profiles."""
    return sorted(p.stem for p in devices_dir().glob("*.yaml"))


def load_profile(path_or_name: str | Path | DeviceProfile) -> DeviceProfile:
    """Load a profile from a YAML path, or by the name of a shipped profile (``"pcm"``)."""
    if isinstance(path_or_name, DeviceProfile):
        return path_or_name
    path = Path(path_or_name)
    if path.suffix not in (".yaml", ".yml") and not path.exists():
        candidate = devices_dir() / f"{path_or_name}.yaml"
        if not candidate.is_file():
            raise ProfileError(
                f"{path_or_name}: no such profile file, and not a shipped profile "
                f"(shipped: {', '.join(shipped_profiles())})")
        path = candidate
    return load_model(DeviceProfile, path, ProfileError)
