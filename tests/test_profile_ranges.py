"""Every profile the ranges admit gives finite outputs: seeded random profiles whose every
number sits at a corner of its range (low end, high end or middle, read from the models'
own constraints, so a field added later is covered) are analogized and read."""

from __future__ import annotations

import random
import typing
from typing import Any

import annotated_types as at
import pytest
import torch
from pydantic import BaseModel, ValidationError

import analogsim
from analogsim.config.profile import DeviceProfile, PulsedUpdate
from analogsim.errors import ProfileError


def _bounds(info: Any) -> tuple[float, float] | None:
    lo = hi = None
    for m in info.metadata:
        if isinstance(m, (at.Ge, at.Gt)):
            lo = float(m.ge if isinstance(m, at.Ge) else m.gt)
        if isinstance(m, (at.Le, at.Lt)):
            hi = float(m.le if isinstance(m, at.Le) else m.lt)
    return None if lo is None or hi is None else (lo, hi)


class _Meta:
    def __init__(self, items: Any) -> None:
        self.metadata = [m for item in items for m in getattr(item, "metadata", [item])]


def _corner(rng: random.Random, info: Any, annotation: Any) -> Any:
    bounds = _bounds(info)
    args = typing.get_args(annotation)
    base = annotation
    if typing.get_origin(annotation) is not list and args:
        base = next((a for a in args if a is not type(None)), annotation)
    if bounds is None:
        # Optional numbers (bits, levels, bounds) carry their range on the inner type
        inner = typing.get_args(base)
        if inner and inner[0] in (int, float):
            bounds = _bounds(_Meta(inner[1:]))
            base = inner[0]
    if isinstance(base, type) and issubclass(base, BaseModel):
        return _model(rng, base)
    if typing.get_origin(base) is list:
        item = typing.get_args(base)[0]
        return [_corner(rng, _Meta(typing.get_args(item)[1:]), typing.get_args(item)[0])
                for _ in range(rng.choice([1, 2, 3]))]
    if base is bool:
        return rng.random() < 0.5
    if base in (int, float) and bounds is not None:
        lo, hi = bounds
        if base is float and lo == 0 and any(isinstance(m, at.Gt) for m in info.metadata):
            lo = 1e-9
        value = rng.choice([lo, hi, (lo + hi) / 2])
        return int(value) if base is int else float(value)
    return None  # leave the default


def random_profile(rng: random.Random) -> dict[str, Any]:
    data: dict[str, Any] = {"name": "corner", "source": "test"}
    for name, info in DeviceProfile.model_fields.items():
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            data[name] = _model(rng, info.annotation)
    if rng.random() < 0.5:
        data["update"] = {"kind": "pulsed", **_model(rng, PulsedUpdate)}
    return _admissible(rng, data)


def _admissible(rng: random.Random, data: dict[str, Any]) -> dict[str, Any]:
    """Move the corners that break a cross-field rule to the edge of what it allows."""
    if data["adc"].get("output_bound") is None:
        data["adc"]["output_bound"] = 10.0
    for nu in ("nu_mean", "nu_std"):
        lo, hi = sorted((data["drift"][nu]["min"], data["drift"][nu]["max"]))
        data["drift"][nu].update(min=lo, max=hi)
    faults = data["faults"]
    if faults["stuck_at_min_fraction"] + faults["stuck_at_max_fraction"] > 1:
        faults.update(stuck_at_min_fraction=0.5, stuck_at_max_fraction=0.5)
    prog, g_max = data["programming"], data["mapping"]["g_max_uS"]
    n = len(prog["sigma_poly_uS"])  # σ ≥ 0 on [0, 1] and at most 10 windows at its peak
    top = min(1e4, 10 * prog["g_max_ref_uS"] / n)
    prog["sigma_poly_uS"] = [rng.choice([0.0, 0.5, 1.0]) * top for _ in range(n)]
    data["read_noise"]["absolute_uS"] = rng.choice([0.0, 0.5, 1.0]) * min(1e4, 10 * g_max)
    rn = data["read_noise"]
    if rn["one_over_f"] and rn["t_read_s"] >= data["drift"]["t0_s"]:
        rn["t_read_s"] = data["drift"]["t0_s"] / 2
    return data


def _model(rng: random.Random, model: type[BaseModel]) -> dict[str, Any]:
    part = {}
    for field, info in model.model_fields.items():
        value = _corner(rng, info, info.annotation)
        if value is not None:
            part[field] = value
    return part


@pytest.mark.parametrize("seed", range(4))
def test_profiles_at_range_corners_give_finite_outputs(seed: int) -> None:
    rng = random.Random(seed)
    checked = 0
    for _ in range(25):
        try:
            profile = DeviceProfile.model_validate(random_profile(rng))
        except ValidationError:  # a corner that a cross-field rule still refuses
            continue
        torch.manual_seed(seed)
        net = torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
        analog = analogsim.analogize(net, profile)
        x = torch.randn(4, 7) * rng.choice([1e-6, 1.0, 1e6])
        y = analog(x)
        assert torch.isfinite(y).all(), profile.model_dump()
        checked += 1
    assert checked >= 20  # nearly every corner is a valid profile


def test_corner_generator_reaches_the_ends_of_ranges() -> None:
    rng = random.Random(0)
    seen = {random_profile(rng)["mapping"]["g_max_uS"] for _ in range(40)}
    assert {1e-3, 1e4} <= seen
    with pytest.raises(ProfileError):
        DeviceProfile(name="x", source="y").with_field("mapping.g_max_uS", 1e4 + 1)
