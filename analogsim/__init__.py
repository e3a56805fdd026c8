"""analogsim: a noisy analog-hardware simulator and learning-on-device toolkit."""

import os as _os
import sys as _sys

if "torch" not in _sys.modules and "OMP_WAIT_POLICY" not in _os.environ:
    # OpenMP's idle threads sleep after a short spin (~0.1 ms) instead of spinning for ~3 ms,
    # so that a helper thread can draw half of each large batch of read-noise normals
    # (analogsim/analog/normals.py). libgomp reads these once, when torch loads; the user's
    # own OMP_WAIT_POLICY wins. benchmarks/omp_env.py does the same for the benchmarks.
    _os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    _os.environ.setdefault("GOMP_SPINCOUNT", "10000")

from analogsim import data, models
from analogsim.analog import AnalogConv2d, AnalogLinear, analogize, on_device, program
from analogsim.clock import SimClock
from analogsim.config.profile import DeviceProfile, load_profile
from analogsim.config.rulespec import RuleSpec
from analogsim.config.scenario import Scenario, load_scenario
from analogsim.evaluate import Evaluation, evaluate

__version__ = "0.1.0"

__all__ = ["AnalogConv2d", "AnalogLinear", "DeviceProfile", "Evaluation", "RuleSpec", "Scenario",
           "SimClock", "__version__", "analogize", "data", "evaluate", "load_profile",
           "load_scenario", "models", "on_device", "program"]
