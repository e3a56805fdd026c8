"""One cell's device time as simpy processes on its ``SimClock``.

- ``training``: every step spends ``step_s`` seconds of device time after it programmed the
  new weights (drift and 1/f noise advance between steps); epoch ends run at the time they
  fall on.
- ``after_training``: evaluations at the scheduled seconds after training's last
  programming (1 s … 1 year): accuracy versus time since programming. Optionally the final
  weights are re-programmed every ``refresh_every_s`` seconds meanwhile; an evaluation due at
  the same instant as a refresh reads the chip before it is refreshed (the period's worst
  case).

Evaluations take no device time.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from typing import Any

import simpy

from analogsim.clock import SimClock
from analogsim.config.scenario import TimelineSpec

Process = Generator[simpy.Event, Any, None]


class Timeline:
    """Schedules a cell's training, inference evaluations and refreshes on ``clock``."""

    def __init__(self, clock: SimClock, spec: TimelineSpec) -> None:
        self.clock = clock
        self.spec = spec
        #: Device time (s) of the last programming of the weights (training step or refresh).
        self.last_programmed_s = clock.now
        #: Device time (s) when training ended (its last programming).
        self.trained_at_s = clock.now

    def training(self, epochs: int, batches: Callable[[int], Iterable[Any]],
                 step: Callable[[Any], None], end_epoch: Callable[[int], None]) -> Process:
        """Epochs 1..``epochs``: ``step(batch)`` for each of ``batches(epoch)``, then
        ``end_epoch(epoch)``."""
        for epoch in range(1, epochs + 1):
            for batch in batches(epoch):
                step(batch)
                self.last_programmed_s = self.clock.now
                yield self.clock.timeout(self.spec.step_s)
            end_epoch(epoch)
        self.trained_at_s = self.last_programmed_s

    def after_training(self, evaluate: Callable[[float], None],
                       reprogram: Callable[[], None] | None = None) -> Process:
        """``evaluate(t)`` at each scheduled ``t`` seconds after training's last programming;
        with ``refresh_every_s``, ``reprogram()`` every that many seconds in between (an
        evaluation due at a refresh instant reads the chip before the refresh)."""
        spec = self.spec
        events = [(t, 0) for t in spec.after_programming_s]  # (offset s, 0 eval | 1 refresh)
        if spec.refresh_every_s is not None and events:
            if reprogram is None:
                raise ValueError("the timeline refreshes: give reprogram")
            k, last = 1, max(spec.after_programming_s)
            while k * spec.refresh_every_s <= last:
                events.append((k * spec.refresh_every_s, 1))
                k += 1
        for offset, what in sorted(events):
            yield self.clock.timeout(max(0.0, self.trained_at_s + offset - self.clock.now))
            if what == 0:
                evaluate(offset)
            else:
                assert reprogram is not None
                reprogram()
                self.last_programmed_s = self.clock.now

    def run(self, training: Process, evaluate: Callable[[float], None] | None = None,
            reprogram: Callable[[], None] | None = None) -> None:
        """Run the training process to its end, then (given ``evaluate``) the one after it.

        Exceptions raised inside a process (e.g. ``DivergenceError``) propagate.
        """
        self.clock.run(until=self.clock.process(training))
        if evaluate is not None and self.spec.after_programming_s:
            self.clock.run(until=self.clock.process(self.after_training(evaluate, reprogram)))

    @property
    def since_programming_s(self) -> float:
        """Seconds since the weights were last programmed."""
        return self.clock.now - self.last_programmed_s
