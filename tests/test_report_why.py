"""The report's evidence on why a comparison comes out as it does (``analogsim.report.why``),
on hand-built results whose answer is known: η-search trials, learning curves with a known
linear lead, a second initialisation, and an angle sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from analogsim.report.paper import NOT_HOLDS, Claim, why_section
from analogsim.report.stats import Run
from analogsim.report.why import (
    budget_evidence,
    eta_evidence,
    init_evidence,
    sigma_evidence,
)
from analogsim.runner.lr_store import append_search


def _row(**kw: Any) -> dict[str, Any]:
    base = {"kind": "epoch", "diverged": False, "baseline": "clean", "profile_label": "ideal",
            "seed": 0, "test_accuracy": None, "val_accuracy": None, "test_loss": None,
            "val_loss": None, "train_loss": None}
    return {**base, **kw}


def _run(folder: Path, records: list[dict[str, Any]], **model: Any) -> Run:
    folder.mkdir(parents=True, exist_ok=True)
    sc = {"epochs": 10, "model": {"init": "normal_fan_in", "bias": False, **model},
          "lr_search": {"epochs": 3}}
    return Run(folder, {"scenario": sc, "cells": []}, records)


def _search(folder: Path, rule: str, trials: list[tuple[float, float | None]]) -> None:
    rows = [{"cell": f"ideal/{rule}-clean/search", "kind": "lr_trial", "rule": rule, "lr": lr,
             "val_accuracy": v, "diverged": v is None} for lr, v in trials]
    best = max((t for t in trials if t[1] is not None), key=lambda t: t[1])
    rows.append({"cell": f"ideal/{rule}-clean/search", "kind": "lr_choice", "rule": rule,
                 "lr": best[0], "diverged": False})
    append_search(folder, rows)


def test_eta_evidence_reads_the_trials_and_the_grid_edges(tmp_path: Path) -> None:
    run = _run(tmp_path / "r", [])
    _search(run.folder, "dnp", [(1e-3, 0.60), (1e-2, 0.70), (1e-1, None)])
    _search(run.folder, "inp", [(1e-2, 0.65), (1e-1, 0.72)])
    text = eta_evidence(run, "dnp", "inp")
    assert text is not None
    assert "3-epoch trials" in text
    assert "DNP best 70.0 % at η 0.01 (η 0.1 diverged)" in text
    assert "INP best 72.0 % at η 0.1 (the largest η tried" in text
    assert "DNP already trails in the trials" in text  # 70.0 < 72.0 at each best η
    ahead = eta_evidence(run, "inp", "dnp")
    assert ahead is not None and "INP is ahead in the trials" in ahead
    assert eta_evidence(run, "dnp", "np") is None  # no trials of NP: no evidence
    _search(run.folder, "anp", [(1e-2, 0.698)])  # 0.2 points from DNP: within one trial's noise
    level = eta_evidence(run, "dnp", "anp")
    assert level is not None and "the two are level in the trials" in level


def _curves(a: str, b: str, lead_pts: Any, key: str = "test_accuracy",
            seeds: tuple[int, ...] = (0,)) -> list[dict[str, Any]]:
    """Epochs 0–10; b at 0.6 + 0.01·e, a ahead of b by ``lead_pts(e)`` points."""
    out = []
    for seed in seeds:
        for e in range(11):
            vb = 0.6 + 0.01 * e
            out.append(_row(rule=b, epoch=e, seed=seed, **{key: vb}))
            out.append(_row(rule=a, epoch=e, seed=seed, **{key: vb + lead_pts(e) / 100}))
    return out


@pytest.mark.parametrize(("lead", "slope", "trend"), [
    (lambda e: -12.0 + e, "+1.0", "closing"),                # behind, catching up 1 pt/epoch
    (lambda e: -1.0 - 0.5 * e, "-0.5", "widening in INP's favour"),
    (lambda e: 2.0 + 0.02 * e, "+0.0", "flat"),              # 0.08 pt over epochs 6–10 < 0.5
])
def test_budget_evidence_gives_the_lead_by_epoch_and_its_trend(
        tmp_path: Path, lead: Any, slope: str, trend: str) -> None:
    run = _run(tmp_path / "r", _curves("dnp", "inp", lead))
    text = budget_evidence(run, "dnp", "inp")
    assert text is not None
    assert f"e1 {lead(1):+.1f}" in text and f"e10 {lead(10):+.1f}" in text
    assert "e0 " not in text  # the evaluation before training is not part of the budget
    assert f"over epochs 6–10 is {slope} points per epoch ({trend})" in text


def test_budget_evidence_on_losses_names_overfitting(tmp_path: Path) -> None:
    recs = []
    for e in range(1, 11):  # DBP: lower train loss, higher test loss at the end
        recs += [_row(rule="bp", epoch=e, test_loss=2.0, train_loss=1.0),
                 _row(rule="dbp", epoch=e, test_loss=2.0 + 0.1 * e, train_loss=0.5)]
    run = _run(tmp_path / "r", recs)
    text = budget_evidence(run, "dbp", "bp", loss=True)
    assert text is not None
    assert "DBP's lead over BP (test loss, lower is better" in text
    assert "e10 -1" in text and "widening in BP's favour" in text
    assert "DBP fits the training data better and generalises worse (overfitting)" in text


def test_init_evidence_judges_the_other_initialisation(tmp_path: Path) -> None:
    recs = []
    for seed, (va, vb) in enumerate([(0.80, 0.70), (0.81, 0.71), (0.82, 0.72)]):
        recs += [_row(rule="dnp", epoch=1, seed=seed, test_accuracy=va, val_accuracy=va),
                 _row(rule="inp", epoch=1, seed=seed, test_accuracy=vb, val_accuracy=vb)]
    other = _run(tmp_path / "three_layer_he", recs, init="he", bias=True)
    text = init_evidence(other, "dnp", "inp")
    assert text is not None
    assert "with init he, with bias (three_layer_he)" in text
    assert "DNP 81.0 ± 0.6 (n=3) vs INP 71.0 ± 0.6 (n=3) — there it holds" in text
    reverse = init_evidence(other, "inp", "dnp")
    assert reverse is not None and reverse.endswith("there it does not hold.")
    assert init_evidence(None, "dnp", "inp") is None


def test_sigma_evidence_finds_the_first_rise_beyond_the_spread() -> None:
    ref = 1e-3
    st = {("ideal", "np", s, 2): v for s, v in
          [(1e-7, (86.0, 0.5)), (1e-6, (84.0, 0.5)), (1e-5, (83.2, 0.5)), (ref, (83.0, 0.5)),
           (0.1, (83.5, 0.5)), (0.3, (90.0, 0.5))]}
    st |= {("ideal", "inp", s, 2): (70.0, 0.5) for s in (1e-7, 1e-6, ref, 0.1, 0.3)}
    # 2 combined s.e.m. = 1.41°: NP rises at σ² = 1e-12 going down (84.0 − 83.0 = 1.0 is
    # not beyond it; 86.0 − 83.0 = 3.0 at 1e-14 is), and at σ² = 0.09 going up
    down = sigma_evidence(st, "ideal", ("np", "inp"), 2, ref, upward=False)
    assert down is not None
    assert "NP at σ² = 1e-14 (+3.0°)" in down and "INP never (to σ² = 1e-14)" in down
    up = sigma_evidence(st, "ideal", ("np", "inp"), 2, ref, upward=True)
    assert up is not None and "NP at σ² = 9e-02 (+7.0°)" in up
    assert sigma_evidence(st, "ideal", ("anp",), 2, ref, upward=True) is None


def test_why_section_lists_only_open_checks_with_evidence() -> None:
    claims = [Claim("a holds", True, "x", why=["never shown"]),
              Claim("b fails", False, "y", why=["η line", "budget line"]),
              Claim("c fails without evidence", False, "z")]
    text = why_section(claims)
    assert f"- **b fails** ({NOT_HOLDS}):\n  - η line\n  - budget line" in text
    assert "a holds" not in text and "never shown" not in text and "c fails" not in text
    assert why_section(claims[:1]) == ""


def test_evidence_reads_only_the_cells_it_is_given(tmp_path: Path) -> None:
    """Per profile and baseline (``where``): DNP leads INP by 3 points on pcm and trails by 2
    on ideal; pooled, the two would blur into a +0.5 lead."""
    recs = []
    for profile, lead in (("pcm", 3.0), ("ideal", -2.0)):
        for r in _curves("dnp", "inp", lambda e, lead=lead: lead):
            recs.append({**r, "profile_label": profile})
    run = _run(tmp_path / "r", recs)
    _search(run.folder, "dnp", [(1e-2, 0.70)])
    pcm = budget_evidence(run, "dnp", "inp", where=("clean", "pcm"))
    ideal = budget_evidence(run, "dnp", "inp", where=("clean", "ideal"))
    pooled = budget_evidence(run, "dnp", "inp")
    assert pcm is not None and "e1 +3.0" in pcm and "e10 +3.0" in pcm
    assert ideal is not None and "e1 -2.0" in ideal
    assert pooled is not None and "e1 +0.5" in pooled
    assert budget_evidence(run, "dnp", "inp", where=("noisy", "pcm")) is None  # no such cells
