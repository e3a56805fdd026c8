"""Analog crossbar simulation: device physics, tiles, layers, conversion."""

from analogsim.analog.convert import OnDevice, analogize, on_device, program
from analogsim.analog.layers import (
                                     AnalogConv2d,
                                     AnalogLayer,
                                     AnalogLinear,
                                     Decorrelator,
                                     Trace,
                                     analog_layers,
)
from analogsim.analog.tile import AnalogTile

__all__ = ["AnalogConv2d", "AnalogLayer", "AnalogLinear", "AnalogTile", "Decorrelator",
           "OnDevice", "Trace", "analog_layers", "analogize", "on_device", "program"]
