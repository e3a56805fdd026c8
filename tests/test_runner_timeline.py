"""The simpy timeline: device time spent by training, evaluations after programming, refresh."""

from __future__ import annotations

import pytest

from analogsim.clock import DAY_S, HOUR_S, SimClock
from analogsim.config.scenario import TimelineSpec
from analogsim.errors import DivergenceError
from analogsim.runner.timeline import Timeline


def run(spec: TimelineSpec, epochs: int = 2, steps: int = 3) -> tuple[list, Timeline]:
    clock = SimClock()
    tl = Timeline(clock, spec)
    log: list = []
    tl.run(tl.training(epochs, lambda e: range(steps), lambda b: log.append(("step", clock.now)),
                       lambda e: log.append(("epoch", e, clock.now))),
           lambda t: log.append(("eval", t, clock.now, tl.since_programming_s)),
           lambda: log.append(("refresh", clock.now)))
    return log, tl


def test_steps_spend_device_time_and_evaluations_follow_programming() -> None:
    log, tl = run(TimelineSpec(step_s=0.5, after_programming_s=[HOUR_S, 1.0]))
    steps = [e[1] for e in log if e[0] == "step"]
    assert steps == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.5])
    assert [e for e in log if e[0] == "epoch"] == [("epoch", 1, 1.5), ("epoch", 2, 3.0)]
    assert tl.trained_at_s == pytest.approx(2.5)  # the last step programmed the weights
    evals = [e for e in log if e[0] == "eval"]
    assert [e[1] for e in evals] == [1.0, HOUR_S]  # sorted
    for _, t, now, since in evals:
        assert now == pytest.approx(2.5 + t) and since == pytest.approx(t)


def test_refresh_reprograms_and_a_tied_evaluation_reads_before_it() -> None:
    log, _ = run(TimelineSpec(step_s=0.0, after_programming_s=[HOUR_S, DAY_S, 1.5 * DAY_S],
                              refresh_every_s=DAY_S))
    kinds = [e[0] for e in log if e[0] in ("eval", "refresh")]
    assert kinds == ["eval", "eval", "refresh", "eval"]
    evals = [e for e in log if e[0] == "eval"]
    assert evals[1][3] == pytest.approx(DAY_S)  # read just before the refresh
    assert evals[2][3] == pytest.approx(0.5 * DAY_S)  # half a day after the refresh


def test_no_schedule_means_training_only() -> None:
    log, _ = run(TimelineSpec(step_s=1.0), epochs=1, steps=2)
    assert [e[0] for e in log] == ["step", "step", "epoch"]


def test_divergence_inside_the_process_propagates() -> None:
    clock = SimClock()
    tl = Timeline(clock, TimelineSpec(step_s=1.0))

    def step(batch: int) -> None:
        if batch == 2:
            raise DivergenceError(2, "loss")

    with pytest.raises(DivergenceError) as err:
        tl.run(tl.training(1, lambda e: range(4), step, lambda e: None))
    assert err.value.step == 2 and clock.now == pytest.approx(2.0)
