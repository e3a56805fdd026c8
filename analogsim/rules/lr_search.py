"""Learning-rate searches: a coarse-then-refined log grid (``grid_search_lr``, what scenarios
use) and the paper's doubling search (``search_lr``)."""

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


def _metric_of(train: Callable[[float], float], lr: float) -> float:
    """``train(lr)``, with a divergence or NaN as −inf."""
    try:
        metric = float(train(lr))
    except DivergenceError:
        return -math.inf
    return -math.inf if math.isnan(metric) else metric


def log_grid(low: float, high: float, points: int) -> list[float]:
    """``points`` log-spaced values from ``low`` to ``high``, both included."""
    if not 0 < low < high or points < 2:
        raise ValueError("need 0 < low < high and points ≥ 2")
    ratio = (high / low) ** (1.0 / (points - 1))
    return [low * ratio**i for i in range(points - 1)] + [high]


def refined_grid(coarse: list[float], best: int, points: int) -> list[float]:
    """``points`` (even) log-spaced values around ``coarse[best]``: ``points // 2`` strictly
    between it and each neighbour (a neighbour past an end of the grid is one grid ratio
    beyond it), ascending."""
    if points % 2:
        raise ValueError("the refined grid needs an even number of points")
    k = points // 2
    ratio = coarse[1] / coarse[0]
    mid = coarse[best]
    lo = coarse[best - 1] if best > 0 else mid / ratio
    hi = coarse[best + 1] if best + 1 < len(coarse) else mid * ratio
    left = [mid * (lo / mid) ** (j / (k + 1)) for j in range(k, 0, -1)]
    right = [mid * (hi / mid) ** (j / (k + 1)) for j in range(1, k + 1)]
    return left + right


def grid_search_lr(train: Callable[[float], float], low: float, high: float, points: int,
                   refine: int = 0) -> LRSearch:
    """Best η on a coarse log grid ``low`` … ``high`` (``points`` values), then on a refined
    log grid of ``refine`` values between the best coarse value's neighbours.

    ``refine`` must be even. ``train(lr)`` returns the metric (higher is better: validation
    accuracy, or −loss); a
    run that raises ``DivergenceError`` or returns NaN counts as −inf. Ties go to the
    smaller η. When every trial diverged, the smallest η tried is returned with −inf.
    """
    coarse = log_grid(low, high, points)
    history = [(lr, _metric_of(train, lr)) for lr in coarse]
    best = max(range(len(coarse)), key=lambda i: (history[i][1], -i))
    if math.isfinite(history[best][1]):
        history += [(lr, _metric_of(train, lr)) for lr in refined_grid(coarse, best, refine)]
    best_lr, best_metric = min(history, key=lambda h: (-h[1], h[0]))
    if not math.isfinite(best_metric):
        best_lr = min(lr for lr, _ in history)
    return LRSearch(best_lr, best_metric, history)


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
