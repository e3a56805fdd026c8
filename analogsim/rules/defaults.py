"""Per-rule learning rates η (plain SGD) that work, with where each number comes from.

``PAPER_LR``: the paper's Table 2 (CIFAR-10, 3 hidden layers of 1024, batch 1000) converted to
this package's convention — per-sample sum-of-squares loss, updates averaged over the batch.
The paper's NP-family values already fit that convention; its BP values were for a loss summed
over the batch, so they are multiplied by the batch size (1000) here (design.md §6).

In this convention most Table-2 values diverge within a few steps (6 of 8 on the
three-hidden-layer net, one seed; BP and INP train; 3 of 4 on the single layer):
``scenarios/paper/table2_lr_*.yaml`` record it and ``docs/reproduction.md`` shows it. They
stay here as the paper's reference, not as defaults.

``PAPER_SCALE_LR``: what the η search chose at the paper's scale here — Fashion-MNIST (54 000
train / 6 000 validation images), 784-1024-1024-1024-10, batch 1000, ideal profile, clean
baseline, W ~ N(0, 1/fan_in) without bias; a log grid 1e-4 … 10 (6 points) refined by 2 points,
3-epoch trials judged on the validation split (``scenarios/paper/cpu/three_layer.yaml``, its
``lr_search.jsonl`` in ``results/paper/three_layer``; docs/reproduction.md). With He-normal
weights and bias the same search chose 3–10× smaller values (``three_layer_he``).

``DIGITS_LR``: measured here on scikit-learn's digits, 64-256-256-256-10, batch 100, 30
epochs, ideal profile (the largest stable η of a doubling search, rounded down).
"""

from __future__ import annotations

PAPER_LR: dict[str, float] = {
    "np": 2.6e-1, "dnp": 1.3e2, "anp": 2.6e-1, "danp": 1.3e2,
    "inp": 1.0e-3, "dinp": 2.6e-1, "bp": 6.4e-5 * 1000, "dbp": 4.1e-3 * 1000,
}

PAPER_SCALE_LR: dict[str, float] = {
    "np": 0.00316, "dnp": 0.01, "anp": 0.00316, "danp": 0.01,
    "inp": 0.0316, "dinp": 0.0316, "bp": 0.0316, "dbp": 0.1,
}

DIGITS_LR: dict[str, float] = {
    "bp": 0.03, "dbp": 0.03, "np": 0.003, "dnp": 0.003, "anp": 0.003, "danp": 0.005,
    "inp": 0.01, "dinp": 0.01,
}


TABLES = {"digits": DIGITS_LR, "paper_scale": PAPER_SCALE_LR, "paper_table2": PAPER_LR}


def default_lr(rule: str, scale: str = "digits") -> float:
    """η for ``rule`` (e.g. "danp") from table ``scale``: "digits", "paper_scale" (what works
    at the paper's network and batch here) or "paper_table2" (the paper's own values)."""
    if scale not in TABLES:
        raise KeyError(f"no learning-rate table {scale!r} (tables: {', '.join(TABLES)})")
    if rule not in TABLES[scale]:
        raise KeyError(f"no default learning rate for rule {rule!r}")
    return TABLES[scale][rule]
