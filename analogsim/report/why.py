"""Why a comparison of the report comes out as it does: the evidence its own records hold on
the three things that most often turn a ranking — η, the training budget and the
initialisation — each read from a results folder, never guessed.

For "rule ``a`` does better than rule ``b``" in a run:

- **η** (``eta_evidence``): each rule's η-search trials on the validation split; whether the
  ordering already holds at each rule's best trial (then no η of the grid changes it), and
  whether a rule's chosen η sits at an edge of what was tried;
- **budget** (``budget_evidence``): the seed-mean test gap a − b epoch by epoch and its trend
  over the second half of training (closing, widening or flat);
- **initialisation** (``init_evidence``): the same comparison in the run that differs only in
  its initialisation, with its verdict.

``sigma_evidence`` locates, for the update-alignment claims, the σ² at which each rule's angle
first rises beyond the spread of its reference angle.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from analogsim.report.stats import Run, curve, judge, pct, rule_pred, seed_values, stat
from analogsim.runner.lr_store import read_search

#: A lead whose least-squares trend moves it over the second half of training by less than
#: this many points (accuracy), or this fraction of the final loss (loss), is called flat.
FLAT_PTS = 0.5
FLAT_LOSS_FRACTION = 0.02
#: Best trials closer than this (points of accuracy, or fraction of the loss) are called level:
#: a trial is one seed, and the seed-to-seed range of the final accuracies in the committed
#: paper runs is 0.2–2 points, so a smaller difference between two trials is not read.
LEVEL_PTS = 0.5
LEVEL_LOSS_FRACTION = 0.01

Trial = tuple[float, float | None, bool]  # (η, validation metric, diverged)


#: Which cells a comparison reads: (baseline or "any", profile label or None for any).
Where = tuple[str | None, str | None]
ANY: Where = ("any", None)


def trials(run: Run, rule: str, loss: bool, where: Where = ANY) -> list[Trial]:
    """The η-search trials of ``rule`` in ``run`` on the cells ``where`` selects, sorted by
    η."""
    key = "val_loss" if loss else "val_accuracy"
    pred = rule_pred(rule, *where)
    out = []
    for rows in read_search(run.folder).values():
        for r in rows:
            if r["kind"] == "lr_trial" and pred(r):
                v = r.get(key)
                ok = v is not None and math.isfinite(v) and not r["diverged"]
                out.append((float(r["lr"]), float(v) if ok else None, not ok))
    return sorted(out)


def _best(ts: Sequence[Trial], loss: bool) -> Trial | None:
    good = [t for t in ts if t[1] is not None]
    if not good:
        return None
    return (min if loss else max)(good, key=lambda t: t[1])  # type: ignore[arg-type,return-value]


def _metric(v: float | None, loss: bool) -> str:
    return "–" if v is None else (f"{v:.4g}" if loss else f"{pct(v)} %")


def _edge(ts: Sequence[Trial], best: Trial, loss: bool) -> str:
    """What lies beyond the best trial's η on the grid: the next larger η's outcome, or that
    none larger (smaller) was tried."""
    etas = [t[0] for t in ts]
    larger = [t for t in ts if t[0] > best[0]]
    if not larger:
        return f"the largest η tried; none larger was tested (grid {min(etas):.3g}…{max(etas):.3g})"
    nxt = larger[0]
    if nxt[2]:
        return f"η {nxt[0]:.3g} diverged"
    note = f"η {nxt[0]:.3g}: {_metric(nxt[1], loss)}"
    if best[0] == min(etas):
        note += "; the smallest η tried"
    return note


def eta_evidence(run: Run, a: str, b: str, loss: bool = False, where: Where = ANY
                 ) -> str | None:
    """Whether η explains "a does better than b" coming out as it does in ``run``: each
    rule's best validation trial, what lies beyond it on the grid, and whether the ordering of
    the best trials is the reported one."""
    ta, tb = trials(run, a, loss, where), trials(run, b, loss, where)
    ba, bb = _best(ta, loss), _best(tb, loss)
    if ba is None or bb is None:
        return None
    epochs = (run.sc.get("lr_search") or {}).get("epochs")
    length = f"{epochs}-epoch trials" if epochs else "trials"
    diff = (bb[1] - ba[1]) if loss else (ba[1] - bb[1])  # type: ignore[operator]
    level = LEVEL_LOSS_FRACTION * abs(bb[1]) if loss else LEVEL_PTS / 100  # type: ignore[arg-type]
    if abs(diff) < level:
        verdict = ("at each rule's best η the two are level in the trials, so the order is "
                   "settled later in training, not by the choice of η")
    elif diff > 0:
        verdict = (f"at each rule's best η {a.upper()} is ahead in the trials, so the order "
                   "turns later in training, not in the choice of η")
    else:
        verdict = (f"at each rule's best η {a.upper()} already trails in the trials: no η of "
                   "the grid puts it ahead")
    return (f"η (validation, {length}): {a.upper()} best {_metric(ba[1], loss)} at η "
            f"{ba[0]:.3g} ({_edge(ta, ba, loss)}); {b.upper()} best {_metric(bb[1], loss)} at "
            f"η {bb[0]:.3g} ({_edge(tb, bb, loss)}) — {verdict}.")


def _slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ys on xs (at least two distinct xs)."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return (sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
            / sum((x - mx) ** 2 for x in xs))


def budget_evidence(run: Run, a: str, b: str, loss: bool = False, where: Where = ANY
                    ) -> str | None:
    """``a``'s seed-mean test lead over ``b`` epoch by epoch (points of accuracy, or loss
    units with lower better; positive: a ahead) and its least-squares trend over the second
    half of training; for losses also the final train losses (a test gap that the train
    losses do not show is overfitting)."""
    key = "test_loss" if loss else "test_accuracy"
    ca, cb = (curve(run.records, rule_pred(r, *where), key) for r in (a, b))
    epochs = sorted(e for e in set(ca) & set(cb) if e >= 1)  # epoch 0: before training
    if len(epochs) < 3:
        return None
    scale = 1.0 if loss else 100.0
    lead = {e: ((cb[e] - ca[e]) if loss else (ca[e] - cb[e])) * scale for e in epochs}
    last = epochs[-1]
    half = epochs[len(epochs) // 2:]
    slope = _slope(half, [lead[e] for e in half])
    flat = FLAT_LOSS_FRACTION * abs(cb[last]) if loss else FLAT_PTS
    if abs(slope) * (last - half[0]) < flat:
        trend = "flat"
    elif (slope > 0) == (lead[last] > 0):
        trend = f"widening in {a.upper() if lead[last] > 0 else b.upper()}'s favour"
    else:
        trend = "closing"
    shown = sorted({epochs[0], *(e for e in (3, 5) if e in lead), half[0], last})
    unit, fmt = ("", "{:+.3g}") if loss else (" points", "{:+.1f}")
    what = "test loss, lower is better" if loss else "test accuracy"
    text = (f"training budget: {a.upper()}'s lead over {b.upper()} ({what}, seed means) by "
            "epoch: " + ", ".join(f"e{e} {fmt.format(lead[e])}" for e in shown)
            + f"{unit}; its least-squares trend over epochs {half[0]}–{last} is "
            f"{fmt.format(slope)}{unit} per epoch ({trend}).")
    if loss:
        ta, tb = (curve(run.records, rule_pred(r, *where), "train_loss") for r in (a, b))
        if last in ta and last in tb:
            text += (f" Train loss at e{last}: {a.upper()} {ta[last]:.4g}, {b.upper()} "
                     f"{tb[last]:.4g}; test loss {ca[last]:.4g} and {cb[last]:.4g}")
            worse = a if ca[last] > cb[last] else b
            tw, tbt = (ta, tb) if worse == a else (tb, ta)
            text += (f": {worse.upper()} fits the training data better and generalises worse "
                     "(overfitting)." if tw[last] < tbt[last] else ".")
    return text


def init_evidence(other: Run | None, a: str, b: str, loss: bool = False) -> str | None:
    """The same comparison in ``other`` (the run that differs in its initialisation)."""
    if other is None:
        return None
    key = "test_loss" if loss else "test_accuracy"
    sa, sb = (stat(seed_values(other, rule_pred(r), key=key)) for r in (a, b))
    if sa.mean is None or sb.mean is None:
        return None
    m = other.sc["model"]
    init = f"init {m.get('init', 'he')}, {'with' if m.get('bias', True) else 'without'} bias"
    v = judge(sb, sa) if loss else judge(sa, sb)
    scale, fmt = (1.0, "{:.4f}") if loss else (100.0, "{:.1f}")
    return (f"initialisation: with {init} ({other.folder.name}), {a.upper()} "
            f"{sa.text(scale, fmt)} vs {b.upper()} {sb.text(scale, fmt)} — there it "
            f"{'holds' if v == 'holds' else 'does not hold' if v == 'does not hold' else 'is not resolved'}.")


def pair_evidence(run: Run, a: str, b: str, other: Run | None = None, loss: bool = False,
                  where: Where = ANY) -> list[str]:
    """Every line of evidence on "a does better than b" in ``run`` on the cells ``where``
    selects (``other``: the run with the other initialisation, if any)."""
    lines = [eta_evidence(run, a, b, loss, where), budget_evidence(run, a, b, loss, where),
             init_evidence(other, a, b, loss)]
    return [x for x in lines if x]


def sigma_evidence(st: dict[tuple[str, str, float, int], tuple[float, float]], prof: str,
                   rules: Sequence[str], layer: int, ref: float, upward: bool) -> str | None:
    """Per rule, the first σ² beyond the reference σ ``ref`` (upward: larger σ, else smaller)
    at which the angle (``st``: (profile, rule, σ, layer) → (mean°, s.e.m.°)) exceeds the
    reference angle by more than 2 combined s.e.m.; the σ² range swept is stated."""
    parts, swept = [], set()
    for r in rules:
        base = st.get((prof, r, ref, layer))
        if base is None:
            continue
        sig = sorted((s for (p, rr, s, x) in st if p == prof and rr == r and x == layer
                      and (s > ref if upward else s < ref)), reverse=not upward)
        if not sig:
            continue
        swept.update(sig)
        hit = next((s for s in sig if st[prof, r, s, layer][0] - base[0]
                    > 2 * math.hypot(st[prof, r, s, layer][1], base[1])), None)
        if hit is None:
            parts.append(f"{r.upper()} never (to σ² = {sig[-1] ** 2:.0e})")
        else:
            d = st[prof, r, hit, layer][0] - base[0]
            parts.append(f"{r.upper()} at σ² = {hit ** 2:.0e} ({d:+.1f}°)")
    if not parts:
        return None
    return (f"σ² swept {min(swept) ** 2:.0e}…{max(swept) ** 2:.0e} in layer {layer}: the angle "
            f"first rises by more than 2 combined s.e.m. over its σ² = {ref ** 2:.0e} value — "
            + "; ".join(parts) + ".")
