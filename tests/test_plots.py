"""Plots and the summary table, from hand-made records with known answers."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from analogsim.plots import markdown_table, plot_results, summarize, write_summary
from analogsim.runner.records import RecordStore, row

# test accuracy per epoch of two seeds: seed 0 peaks at epoch 2 (0.9), seed 1 at epoch 3
CURVES = {0: [0.1, 0.5, 0.9, 0.6], 1: [0.1, 0.4, 0.5, 0.8]}


def cell(profile: str, rule: str, seed: int, curve: list[float], *, sweep: float | None = None,
         diverged_at: int | None = None, regression: bool = False) -> list[dict]:
    label = profile if sweep is None else f"{profile} read_noise.q_coeff={sweep:g}"
    base = {"scenario": "t", "cell": f"{label}/{rule}/s{seed}", "profile": profile,
            "profile_label": label,
            "sweep_field": None if sweep is None else "read_noise.q_coeff",
            "sweep_value": sweep, "rule": rule, "rule_label": rule.upper(), "seed": seed,
            "lr": 0.01}
    metric = "test_loss" if regression else "test_accuracy"
    train = "train_loss" if regression else "train_accuracy"
    rows = [row(base, kind="alignment", epoch=0, layer=k, angle_deg=40.0 + k,
                angle_sem_deg=1.0, diverged=False) for k in (1, 2)]
    for e, v in enumerate(curve):
        if diverged_at is not None and e == diverged_at:
            rows.append(row(base, kind="epoch", epoch=e, diverged=True))
            return rows + [row(base, kind="cell", status="diverged", diverged=True,
                               diverged_at_step=e * 10, diverged_what="loss")]
        rows.append(row(base, kind="epoch", epoch=e, diverged=False, **{metric: v, train: v}))
    for t, drop in ((1.0, 0.0), (31536000.0, 0.1)):
        rows.append(row(base, kind="inference", after_programming_s=t, diverged=False,
                        **{metric: curve[-1] - drop}))
    return rows + [row(base, kind="cell", status="done", diverged=False, **{metric: curve[-1]})]


def records() -> list[dict]:
    out: list[dict] = []
    for prof in ("ideal", "pcm"):
        for seed, curve in CURVES.items():
            out += cell(prof, "danp", seed, curve)
            out += cell(prof, "dnp", seed, [0.1, 0.2, 0.3, 0.4],
                        diverged_at=2 if prof == "pcm" else None)
    return out


def test_peak_is_reported_both_ways() -> None:
    rows = {(r.profile, r.rule): r for r in summarize(records())}
    danp = rows[("ideal", "DANP")]
    # seed-mean curve: 0.1, 0.45, 0.7, 0.7 → peak 0.7 first at epoch 2; best seed: 0.9 (seed 0)
    assert danp.peak_mean_curve == pytest.approx(0.7) and danp.peak_mean_curve_epoch == 2
    assert danp.peak_over_seeds == pytest.approx(0.9) and danp.peak_over_seeds_seed == 0
    assert (danp.final_mean, danp.final_min, danp.final_max) == pytest.approx((0.7, 0.6, 0.8))
    assert danp.after_programming_s == 31536000.0
    assert danp.after_programming_mean == pytest.approx(0.6)
    dnp = rows[("pcm", "DNP")]
    assert (dnp.seeds, dnp.diverged, dnp.final_mean) == (2, 2, None)
    assert dnp.peak_mean_curve == pytest.approx(0.2) and dnp.peak_mean_curve_epoch == 1


def test_markdown_table_and_csv(tmp_path: Path) -> None:
    table = markdown_table(summarize(records()))
    lines = table.strip().splitlines()
    assert len(lines) == 2 + 4
    assert "| ideal | DANP | 2 | 0 | 0.01 | 70.0 ± 10.0 (60.0–80.0) | 70.0 (2) | 90.0 | 60.0 |" in lines
    assert "1 y after programming" in lines[0]
    store = RecordStore(tmp_path)
    rs = records()
    for c in dict.fromkeys(r["cell"] for r in rs):
        store.append_cell([r for r in rs if r["cell"] == c])
    path, _ = write_summary(tmp_path)
    with open(path) as f:
        got = list(csv.DictReader(f))
    assert len(got) == 4 and got[0]["peak_over_seeds"] == "0.9"


def test_regression_reports_lowest_loss(tmp_path: Path) -> None:
    rs = cell("ideal", "danp", 0, [1.0, 0.5, 0.2, 0.3], regression=True)
    rs += cell("ideal", "danp", 1, [1.0, 0.6, 0.4, 0.1], regression=True)
    (summary,) = summarize(rs)
    assert summary.metric == "loss"
    assert summary.peak_mean_curve == pytest.approx(0.2) and summary.peak_mean_curve_epoch == 3
    assert summary.peak_over_seeds == pytest.approx(0.1) and summary.peak_over_seeds_seed == 1
    header, _, line = markdown_table([summary]).splitlines()
    assert "%" not in header and "final test loss ± s.e.m. (min–max)" in header
    assert "| 0.2 ± 0.1 (0.1–0.3) | 0.2 (3) | 0.1 |" in line


def test_every_figure_is_drawn(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    rs = records()
    for q in (0.001, 0.01, 0.1):  # a sweep over three decades: robustness on a log axis
        rs += cell("ideal", "danp", 0, [0.1, 0.5 - q], sweep=q)
    for c in dict.fromkeys(r["cell"] for r in rs):
        store.append_cell([r for r in rs if r["cell"] == c])
    made = {p.name for p in plot_results(tmp_path)}
    assert made == {"learning_curves.png", "robustness.png", "inference_vs_time.png",
                    "alignment.png"}
    for name in made:
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_single_profile_has_no_robustness_plot(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    rs = cell("ideal", "danp", 0, [0.1, 0.4])
    store.append_cell(rs)
    made = {p.name for p in plot_results(tmp_path)}
    assert "robustness.png" not in made and "learning_curves.png" in made


def test_with_a_validation_split_the_peak_epoch_is_chosen_on_it() -> None:
    # validation accuracy per epoch peaks at epoch 1 for both seeds, the test curve at 2 or 3:
    # the table must report the test accuracy at epoch 1, not the test curve's maximum
    val = {0: [0.1, 0.7, 0.6, 0.5], 1: [0.1, 0.8, 0.3, 0.2]}
    rs = []
    for seed, curve in CURVES.items():
        for r in cell("ideal", "danp", seed, curve):
            if r["kind"] == "epoch":
                r["val_accuracy"] = val[seed][r["epoch"]]
            rs.append(r)
    (s,) = summarize(rs)
    assert s.peak_chosen_on == "validation"
    assert s.peak_mean_curve_epoch == 1 and s.peak_mean_curve == pytest.approx((0.5 + 0.4) / 2)
    assert s.peak_over_seeds_seed == 1 and s.peak_over_seeds == pytest.approx(0.4)
    header = markdown_table([s]).splitlines()[0]
    assert "at the peak validation epoch" in header and "best seed on validation" in header
