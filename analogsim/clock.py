"""``SimClock``: simulated device time over a ``simpy.Environment`` — the only "now".

Time is in seconds. Programming a tile stamps ``clock.now``; drift and 1/f read noise read it.
Training steps, evaluations and refresh are simpy processes on ``clock.env``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

#: Common durations in seconds, for timelines and plots.
MINUTE_S = 60.0
HOUR_S = 3600.0
DAY_S = 86400.0
MONTH_S = 30 * DAY_S
YEAR_S = 365 * DAY_S


class SimClock:
    """Simulated device time (seconds) backed by a ``simpy.Environment``."""

    def __init__(self, start_s: float = 0.0) -> None:
        if start_s < 0:
            raise ValueError("start_s must be ≥ 0")
        self.env = simpy.Environment(initial_time=start_s)

    @property
    def now(self) -> float:
        """Current device time, s."""
        return float(self.env.now)

    def advance(self, dt_s: float) -> float:
        """Let ``dt_s`` seconds of device time pass (runs any processes due meanwhile)."""
        if dt_s < 0:
            raise ValueError("cannot go back in time")
        self.env.run(until=self.env.now + dt_s)
        return self.now

    def advance_to(self, t_s: float) -> float:
        """Advance to absolute device time ``t_s`` (no-op if already there)."""
        if t_s > self.env.now:
            self.env.run(until=t_s)
        return self.now

    def process(self, gen: Generator[Any, Any, Any]) -> simpy.Process:
        """Register a simpy process (a generator yielding ``clock.timeout(...)``)."""
        return self.env.process(gen)

    def timeout(self, dt_s: float) -> simpy.Timeout:
        """A simpy event that fires after ``dt_s`` seconds."""
        return self.env.timeout(dt_s)

    def run(self, until: float | simpy.Event | None = None) -> None:
        """Run the registered processes (until a time, an event, or none left)."""
        self.env.run(until=until)

    def __repr__(self) -> str:
        return f"SimClock(now={self.now:g} s)"
