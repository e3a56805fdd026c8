"""``DeviceProfile``: a device described as pure, validated, frozen data (no class names).

Units live in field names (``_uS`` microsiemens, ``_s`` seconds). "Normalized units" for the
periphery are those of one crossbar tile whose inputs are scaled into [-1, 1] by the DAC and
whose weights are scaled so that the largest |w| of the tile (or column) is 1 (= g_max).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from analogsim.config.yaml_io import load_model
from analogsim.errors import ProfileError


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Mapping(_Data):
    """How a weight matrix becomes conductances."""

    g_max_uS: float = Field(25.0, gt=0, description="largest programmable conductance, µS")
    scale: Literal["tile", "column"] = Field(
        "tile", description="weight scale per tile, or per output column of a tile")
    differential: bool = Field(
        True, description="G+ − G− device pair; else one device per weight, "
        "w ↦ G = (w + 1)/2·g_max, read against a fixed g_max/2 reference")
    tile_rows: int = Field(512, ge=1, le=4096, description="max outputs per crossbar tile")
    tile_cols: int = Field(512, ge=1, le=4096, description="max inputs per crossbar tile")
    levels: int | None = Field(
        None, ge=2, description="finite conductance levels per device (None: continuous)")


class ProgrammingNoise(_Data):
    """σ_prog(G) = (c0 + c1·g + c2·g² …) µS at g_max_ref_uS, g = G/g_max; scaled by g_max/ref."""

    sigma_poly_uS: list[Annotated[float, Field(allow_inf_nan=False)]] = Field(
        default_factory=lambda: [0.0], min_length=1, max_length=6)
    g_max_ref_uS: float = Field(25.0, gt=0)

    @model_validator(mode="after")
    def _nonnegative_at_ends(self) -> ProgrammingNoise:
        for g in (0.0, 0.5, 1.0):
            if sum(c * g**k for k, c in enumerate(self.sigma_poly_uS)) < 0:
                raise ValueError(f"sigma_poly_uS gives a negative σ at G/g_max = {g}")
        return self


class ClippedLog(_Data):
    """clip(slope · ln(G/g_max) + intercept, min, max)."""

    ln_slope: float = 0.0
    intercept: float = Field(0.0)
    min: float = Field(0.0, ge=0)
    max: float = Field(1.0, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> ClippedLog:
        if self.min > self.max:
            raise ValueError("min must not exceed max")
        return self


class Drift(_Data):
    """G(t) = G_prog·((t + t0)/t0)^(−ν), ν = |N(ν_mean(G), ν_std(G))| drawn once per device."""

    enabled: bool = False
    t0_s: float = Field(20.0, gt=0)
    nu_mean: ClippedLog = ClippedLog()
    nu_std: ClippedLog = ClippedLog()
    compensation: bool = Field(False, description="global drift compensation, one scalar per tile")


class ReadNoise(_Data):
    """Fresh every read: G_read = G + |G|·σ_rel·ξ + σ_abs·ξ'.

    σ_rel = min(q_max, q_coeff / max(g_rel_floor, G/g_max)^q_exp), times
    sqrt(ln((t + t0 + t_read)/(2·t_read))) when ``one_over_f`` (t since programming, s).
    """

    q_coeff: float = Field(0.0, ge=0)
    q_exp: float = Field(0.0, ge=0)
    q_max: float = Field(1.0, ge=0)
    g_rel_floor: float = Field(1e-3, gt=0, le=1)
    one_over_f: bool = False
    t_read_s: float = Field(250e-9, gt=0)
    absolute_uS: float = Field(0.0, ge=0, description="conductance-independent σ, µS")


class DAC(_Data):
    """Input converter: per-sample, per-tile scaling into ±input_bound, then bits."""

    bits: int | None = Field(None, ge=1, le=24, description="None: no input quantization")
    input_bound: float = Field(1.0, gt=0, description="normalized input range ±bound")
    scaling: Literal["absmax", "none"] = Field(
        "absmax", description="absmax: each input vector of a tile scaled by its max |x|")


class ADC(_Data):
    """Output converter of each tile, normalized units; additive output noise before it."""

    bits: int | None = Field(None, ge=1, le=24, description="None: no output quantization")
    output_bound: float | None = Field(
        None, gt=0, description="saturation at ±bound (normalized units); None: no clipping")
    noise_std: float = Field(0.0, ge=0, description="additive output noise σ, normalized units")

    @model_validator(mode="after")
    def _bound_with_bits(self) -> ADC:
        if self.bits is not None and self.output_bound is None:
            raise ValueError("bits needs output_bound (the quantizer's range)")
        return self


class Faults(_Data):
    """Devices stuck at G_min (0) or g_max, fixed per seed at programming."""

    stuck_at_min_fraction: float = Field(0.0, ge=0, le=1)
    stuck_at_max_fraction: float = Field(0.0, ge=0, le=1)

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
    dw_min: float = Field(0.002, gt=0, description="mean step per pulse, device units")
    dw_min_dtod: float = Field(0.3, ge=0, description="device-to-device spread of dw_min (rel.)")
    dw_min_ctoc: float = Field(0.3, ge=0, description="cycle-to-cycle spread per pulse (rel.)")
    up_down_dtod: float = Field(0.01, ge=0, description="spread of up/down asymmetry (rel.)")
    w_max: float = Field(1.0, gt=0, description="upper bound, device units")
    w_min: float = Field(-1.0, lt=0, description="lower bound, device units")
    bounds_dtod: float = Field(0.3, ge=0, description="device-to-device spread of bounds (rel.)")
    soft_bounds: bool = Field(True, description="step shrinks linearly to 0 at the bound")
    max_pulses: int = Field(100, ge=1, description="pulses per device per update, at most")
    init_fill: float = Field(0.6, gt=0, le=1, description="largest initial |w| of a tile, "
                             "as a fraction of the bound")


Update = Annotated[IdealUpdate | NoisyWriteUpdate | PulsedUpdate, Field(discriminator="kind")]


class DeviceProfile(_Data):
    """A device: mapping, programming, drift, read noise, periphery, faults, update model."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
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
        from analogsim.config.yaml_io import validate
        return validate(DeviceProfile, data, f"profile {self.name} with {dotted}={value!r}",
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
