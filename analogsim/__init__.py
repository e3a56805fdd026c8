"""analogsim: a noisy analog-hardware simulator and learning-on-device toolkit."""

from analogsim.analog import (AnalogConv2d, AnalogLinear, analogize, on_device, program)
from analogsim.clock import SimClock
from analogsim.config.profile import DeviceProfile, load_profile

__version__ = "0.1.0"

__all__ = ["AnalogConv2d", "AnalogLinear", "DeviceProfile", "SimClock", "__version__",
           "analogize", "load_profile", "on_device", "program"]
