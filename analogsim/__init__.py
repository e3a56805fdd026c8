"""analogsim: a noisy analog-hardware simulator and learning-on-device toolkit."""

import os as _os
import sys as _sys

if "torch" not in _sys.modules:
    # OpenMP's idle threads sleep instead of spinning, so that a helper thread can draw half of
    # each large batch of read-noise normals (analogsim/analog/normals.py). libgomp reads this
    # once, when torch loads; an explicit OMP_WAIT_POLICY wins.
    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from analogsim import data, models
from analogsim.analog import AnalogConv2d, AnalogLinear, analogize, on_device, program
from analogsim.clock import SimClock
from analogsim.config.profile import DeviceProfile, load_profile
from analogsim.config.rulespec import RuleSpec
from analogsim.config.scenario import Scenario, load_scenario

__version__ = "0.1.0"

__all__ = ["AnalogConv2d", "AnalogLinear", "DeviceProfile", "RuleSpec", "Scenario", "SimClock",
           "__version__", "analogize", "data", "load_profile", "load_scenario", "models",
           "on_device", "program"]
