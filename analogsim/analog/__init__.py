"""Analog crossbar simulation: device physics, tiles, layers, conversion, probes."""

from analogsim.analog.convert import analogize, on_device, program, refresh
from analogsim.analog.layers import (
    AnalogConv2d,
    AnalogLayer,
    AnalogLinear,
    Decorrelator,
    analog_layers,
)
from analogsim.analog.probe import BACKWARDS, Probe, Trace, probe
from analogsim.analog.tile import AnalogTile

__all__ = ["BACKWARDS", "AnalogConv2d", "AnalogLayer", "AnalogLinear", "AnalogTile",
           "Decorrelator", "Probe", "Trace", "analog_layers", "analogize", "on_device", "probe",
           "program", "refresh"]
