"""The paper's learning-rate search: start small and double η while the metric improves."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from analogsim.errors import DivergenceError


@dataclass(frozen=True)
class LRSearch:
    """Result: the best η, and every (η, metric) tried (−inf for a diverged run)."""

    best_lr: float
    best_metric: float
    history: list[tuple[float, float]]


def search_lr(train: Callable[[float], float], start: float = 1e-6, factor: float = 2.0,
              max_steps: int = 40, patience: int = 1) -> LRSearch:
    """Double η from ``start`` until the metric (higher is better) stops improving.

    ``train(lr)`` returns the metric (e.g. peak test accuracy, or −loss); a run that raises
    ``DivergenceError`` or returns NaN counts as −inf. Stops after ``patience`` consecutive
    non-improving tries or ``max_steps`` tries; returns the highest-metric (stable) η.
    """
    if start <= 0 or factor <= 1:
        raise ValueError("start must be > 0 and factor > 1")
    history: list[tuple[float, float]] = []
    best_lr, best = start, -math.inf
    worse = 0
    lr = start
    for _ in range(max_steps):
        try:
            metric = float(train(lr))
        except DivergenceError:
            metric = -math.inf
        if math.isnan(metric):
            metric = -math.inf
        history.append((lr, metric))
        if metric > best:
            best_lr, best, worse = lr, metric, 0
        else:
            worse += 1
            if worse >= patience:
                break
        lr *= factor
    return LRSearch(best_lr, best, history)
