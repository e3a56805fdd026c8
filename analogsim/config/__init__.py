"""Pydantic models of everything a user writes in YAML."""

from analogsim.config.profile import DeviceProfile, load_profile, shipped_profiles

__all__ = ["DeviceProfile", "load_profile", "shipped_profiles"]
