"""Per-rule learning rates η (plain SGD) that work, with where each number comes from.

``PAPER_LR``: the paper's Table 2 (CIFAR-10, 3 hidden layers of 1024, batch 1000) converted to
this package's convention — per-sample sum-of-squares loss, updates averaged over the batch.
The paper's NP-family values already fit that convention; its BP values were for a loss summed
over the batch, so they are multiplied by the batch size (1000) here (design.md §6).

``DIGITS_LR``: measured here on scikit-learn's digits, 64-256-256-256-10, batch 100, 30
epochs, ideal profile (the largest stable η of a doubling search, rounded down).
"""

from __future__ import annotations

PAPER_LR: dict[str, float] = {
    "np": 2.6e-1, "dnp": 1.3e2, "anp": 2.6e-1, "danp": 1.3e2,
    "inp": 1.0e-3, "dinp": 2.6e-1, "bp": 6.4e-5 * 1000, "dbp": 4.1e-3 * 1000,
}

DIGITS_LR: dict[str, float] = {
    "bp": 0.03, "dbp": 0.03, "np": 0.003, "dnp": 0.003, "anp": 0.003, "danp": 0.005,
    "inp": 0.01, "dinp": 0.01,
}


def default_lr(rule: str, scale: str = "digits") -> float:
    """η for ``rule`` (e.g. "danp") at ``scale`` "digits" or "paper"."""
    table = DIGITS_LR if scale == "digits" else PAPER_LR
    if rule not in table:
        raise KeyError(f"no default learning rate for rule {rule!r}")
    return table[rule]
