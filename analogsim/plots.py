"""Figures and the summary table of a results folder — from its records only, never training.

- ``learning_curves.png``: test (solid) and train (dashed) metric per epoch, one panel per
  profile variant, one colour per rule: the seed mean with a min–max band over seeds.
- ``robustness.png``: final test metric against the swept profile field (or against the
  profile), one line per rule, seed mean with min–max bars.
- ``inference_vs_time.png``: test metric against device time after programming (log axis).
- ``alignment.png``: angle of each rule's update to BP's per layer (mean ± s.e.m.).
- ``summary.csv`` / ``summary.md``: per profile variant and rule, the final and peak test
  metric — peak both as the max of the seed-mean curve and as the max over seeds. When the
  records hold a validation split, the peak epoch (and the best seed) is chosen on it and
  the test metric is reported at that epoch; the test split never chooses.
- ``lr_search.png``: the η search's validation metric against η per rule (``lr_search``).

Uses matplotlib's Agg canvas directly (no pyplot, no global backend change).
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from analogsim.runner.records import read_records

Record = dict[str, Any]


# ----------------------------------------------------------------------------- grouping
def _metric(records: Sequence[Record]) -> tuple[str, bool]:
    """("accuracy", higher is better) for classification, else ("loss", lower is better)."""
    has_acc = any(r.get("test_accuracy") is not None for r in records
                  if r["kind"] in ("epoch", "cell"))
    return ("accuracy", True) if has_acc else ("loss", False)


def _ordered(values: Iterable[Any]) -> list[Any]:
    seen: dict[Any, None] = {}
    for v in values:
        seen.setdefault(v, None)
    return list(seen)


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


@dataclass(frozen=True)
class Band:
    """Seed statistics at each x: mean, min, max and the number of seeds."""

    x: list[float]
    mean: list[float]
    lo: list[float]
    hi: list[float]
    n: list[int]


def band(points: Iterable[tuple[float, float]]) -> Band:
    """(x, value) pairs from several seeds → mean/min/max per x (sorted by x)."""
    by_x: dict[float, list[float]] = defaultdict(list)
    for x, v in points:
        if v is not None and math.isfinite(v):
            by_x[x].append(v)
    xs = sorted(by_x)
    return Band(xs, [_mean(by_x[x]) for x in xs], [min(by_x[x]) for x in xs],
                [max(by_x[x]) for x in xs], [len(by_x[x]) for x in xs])


@dataclass(frozen=True)
class SummaryRow:
    """One profile variant × rule, over its seeds. Metric values are accuracies (fractions)
    for classification, mean per-sample losses for regression; peaks are maxima of accuracy
    or minima of loss."""

    profile: str
    sweep_field: str | None
    sweep_value: Any
    rule: str
    metric: str
    seeds: int
    diverged: int
    lr: str
    final_mean: float | None
    final_min: float | None
    final_max: float | None
    final_sem: float | None  # standard error of the seed mean (None under 2 seeds)
    peak_chosen_on: str  # "validation", or "test" for records without a validation split
    peak_mean_curve: float | None
    peak_mean_curve_epoch: int | None
    peak_over_seeds: float | None
    peak_over_seeds_seed: int | None
    after_programming_s: float | None
    after_programming_mean: float | None


def summarize(records: Sequence[Record]) -> list[SummaryRow]:
    """The summary table of ``records`` (grid order of profile variants and rules)."""
    metric, higher = _metric(records)
    key = f"test_{metric}"
    sel = f"val_{metric}"
    if not any(r.get(sel) is not None for r in records if r["kind"] == "epoch"):
        sel = key
    best = max if higher else min
    cells = [r for r in records if r["kind"] == "cell"]
    out = []
    for prof in _ordered(r["profile_label"] for r in cells):
        for rule in _ordered(r["rule_label"] for r in cells if r["profile_label"] == prof):
            mine = [r for r in records if r["profile_label"] == prof and r["rule_label"] == rule]
            summaries = [r for r in mine if r["kind"] == "cell"]
            epochs = [r for r in mine if r["kind"] == "epoch" and not r["diverged"]
                      and r[key] is not None and r.get(sel) is not None]
            finals = [r[key] for r in summaries if r["status"] == "done" and r[key] is not None]
            curve = band((r["epoch"], r[key]) for r in epochs)
            chooser = band((r["epoch"], r[sel]) for r in epochs)
            peak_i = None
            if chooser.x:  # the epoch is chosen on `sel`; the test metric reported there
                peak_i = curve.x.index(chooser.x[chooser.mean.index(best(chooser.mean))])
            per_seed = [(r[key], r["seed"], r[sel]) for r in epochs]
            peak_seed = best(per_seed, key=lambda p: p[2]) if per_seed else None
            inf = [r for r in mine if r["kind"] == "inference" and r[key] is not None]
            t_last = max((r["after_programming_s"] for r in inf), default=None)
            after = [r[key] for r in inf if r["after_programming_s"] == t_last]
            lrs = _ordered(r["lr"] for r in summaries)
            out.append(SummaryRow(
                profile=prof, sweep_field=summaries[0]["sweep_field"],
                sweep_value=summaries[0]["sweep_value"], rule=rule, metric=metric,
                seeds=len(summaries), diverged=sum(r["status"] == "diverged" for r in summaries),
                lr=" ".join(f"{v:g}" for v in lrs if v is not None),
                final_mean=_mean(finals) if finals else None,
                final_min=min(finals) if finals else None,
                final_max=max(finals) if finals else None,
                final_sem=sem(finals),
                peak_chosen_on="validation" if sel != key else "test",
                peak_mean_curve=None if peak_i is None else curve.mean[peak_i],
                peak_mean_curve_epoch=None if peak_i is None else int(curve.x[peak_i]),
                peak_over_seeds=None if peak_seed is None else peak_seed[0],
                peak_over_seeds_seed=None if peak_seed is None else peak_seed[1],
                after_programming_s=t_last if after else None,
                after_programming_mean=_mean(after) if after else None))
    return out


def sem(xs: Sequence[float]) -> float | None:
    """Standard error of the mean of ``xs`` (sample standard deviation / √n); None if n < 2."""
    n = len(xs)
    if n < 2:
        return None
    m = _mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1) / n)


def _duration(s: float) -> str:
    for unit, size in (("y", 365 * 86400.0), ("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if s >= size:
            return f"{s / size:.3g} {unit}"
    return f"{s:.3g} s"


def markdown_table(rows: Sequence[SummaryRow]) -> str:
    """The summary as a Markdown table (accuracies in %)."""
    if not rows:
        return "(no finished cells)\n"
    acc = rows[0].metric == "accuracy"

    def f(v: float | None) -> str:
        if v is None:
            return "–"
        return f"{100 * v:.1f}" if acc else f"{v:.4g}"

    unit = " %" if acc else " loss"
    after = next((r.after_programming_s for r in rows if r.after_programming_s is not None),
                 None)
    peak = "peak" if acc else "lowest"
    if rows[0].peak_chosen_on == "validation":
        peaks = [f"test{unit} at the {peak} validation epoch, seed-mean curve (epoch)",
                 f"test{unit} of the best seed on validation"]
    else:
        peaks = [f"{peak} test{unit}, seed-mean curve (epoch)", f"{peak} test{unit}, best seed"]
    head = ["profile", "rule", "seeds", "diverged", "η",
            f"final test{unit} ± s.e.m. (min–max)", *peaks]
    if after is not None:
        head.append(f"test{unit} {_duration(after)} after programming")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.profile, r.rule, str(r.seeds), str(r.diverged), r.lr or "–",
                 f"{f(r.final_mean)}{'' if r.final_sem is None else ' ± ' + f(r.final_sem)} "
                 f"({f(r.final_min)}–{f(r.final_max)})"
                 if r.final_mean is not None else "–",
                 f"{f(r.peak_mean_curve)} ({r.peak_mean_curve_epoch})"
                 if r.peak_mean_curve is not None else "–",
                 f(r.peak_over_seeds)]
        if after is not None:
            cells.append(f(r.after_programming_mean))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_summary(folder: str | Path, records: Sequence[Record] | None = None
                  ) -> tuple[Path, str]:
    """Write ``summary.csv`` and ``summary.md`` into ``folder``; returns (csv path, table)."""
    folder = Path(folder)
    rows = summarize(read_records(folder) if records is None else records)
    buf = io.StringIO()
    fields = list(SummaryRow.__dataclass_fields__)
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in asdict(r).items()})
    path = folder / "summary.csv"
    path.write_text(buf.getvalue())
    table = markdown_table(rows)
    (folder / "summary.md").write_text(table)
    return path, table


# ----------------------------------------------------------------------------- figures
def _colors(labels: Sequence[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {label: cmap(i % 10) for i, label in enumerate(labels)}


def _cross_y(colors: dict[str, Any], rule: str) -> float:
    """Height (axes fraction) of a rule's divergence crosses; one row per rule."""
    return 0.03 + 0.05 * (list(colors).index(rule) if rule in colors else 0)


def _figure(n_panels: int, width: float = 4.2, height: float = 3.2,
            max_cols: int = 4) -> tuple[Figure, list[Axes]]:
    cols = min(max_cols, n_panels)
    rows = math.ceil(n_panels / cols)
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(rows, cols, i + 1) for i in range(n_panels)]
    return fig, axes


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=110)
    return path


def _ylabel(metric: str) -> str:
    return "accuracy (%)" if metric == "accuracy" else "loss (mean per sample)"


def _scale(metric: str, v: float) -> float:
    return 100 * v if metric == "accuracy" else v


def plot_learning_curves(records: Sequence[Record], path: Path) -> Path | None:
    """Test (solid) and train (dashed) metric vs epoch; seed mean and min–max band."""
    metric, _ = _metric(records)
    epochs = [r for r in records if r["kind"] == "epoch" and not r["diverged"]]
    if not epochs:
        return None
    profiles = _ordered(r["profile_label"] for r in epochs)
    colors = _colors(_ordered(r["rule_label"] for r in records if r["kind"] == "cell"))
    fig, axes = _figure(len(profiles))
    for ax, prof in zip(axes, profiles, strict=True):
        mine = [r for r in epochs if r["profile_label"] == prof]
        for rule in _ordered(r["rule_label"] for r in mine):
            rs = [r for r in mine if r["rule_label"] == rule]
            for split, style in (("test", "-"), ("train", "--")):
                b = band((r["epoch"], r[f"{split}_{metric}"]) for r in rs)
                if not b.x:
                    continue
                sc = [_scale(metric, v) for v in b.mean]
                ax.plot(b.x, sc, style, color=colors[rule],
                        label=rule if split == "test" else None)
                ax.fill_between(b.x, [_scale(metric, v) for v in b.lo],
                                [_scale(metric, v) for v in b.hi], color=colors[rule],
                                alpha=0.18 if split == "test" else 0.08, linewidth=0)
        for r in records:  # where a seed diverged: a cross near the axis at that epoch
            if r["kind"] == "epoch" and r["diverged"] and r["profile_label"] == prof:
                ax.plot([r["epoch"]], [_cross_y(colors, r["rule_label"])], "x",
                        color=colors.get(r["rule_label"], "k"), markersize=8, clip_on=False,
                        transform=ax.get_xaxis_transform())
        ax.set_title(prof, fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{_ylabel(metric)}")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, title="solid: test, dashed: train, ×: diverged",
                   title_fontsize=8)
    fig.suptitle("learning curves (seed mean, min–max band)", fontsize=11)
    return _save(fig, path)


def plot_robustness(records: Sequence[Record], path: Path) -> Path | None:
    """Final test metric vs the swept field (one panel per listed profile), or vs the
    profile when nothing is swept; one line per rule."""
    metric, _ = _metric(records)
    key = f"test_{metric}"
    cells = [r for r in records if r["kind"] == "cell"]
    if len(_ordered(r["profile_label"] for r in cells)) < 2:
        return None
    colors = _colors(_ordered(r["rule_label"] for r in cells))
    swept = cells[0]["sweep_field"] is not None
    groups = _ordered(r["profile"] for r in cells) if swept else ["all profiles"]
    fig, axes = _figure(len(groups), width=5.0, height=3.6)
    for ax, group in zip(axes, groups, strict=True):
        mine = [r for r in cells if not swept or r["profile"] == group]
        if swept:
            values = _ordered(r["sweep_value"] for r in mine)
            numeric = all(isinstance(v, int | float) and not isinstance(v, bool)
                          for v in values)
            xs = {v: (float(v) if numeric else float(i)) for i, v in enumerate(values)}
            ax.set_xlabel(cells[0]["sweep_field"])
            ax.set_title(f"{group}: final test {metric} vs {cells[0]['sweep_field']}",
                         fontsize=10)
            pos = [x for x in xs.values() if x > 0] if numeric else []
            if pos and min(xs.values()) >= 0 and max(pos) / min(pos) >= 100:
                if len(pos) == len(xs):  # decades apart: log axis (symlog when 0 is swept)
                    ax.set_xscale("log")
                else:
                    ax.set_xscale("symlog", linthresh=min(pos))
            if not numeric:
                ax.set_xticks(list(xs.values()), [str(v) for v in values])
            xkey = "sweep_value"
        else:
            labels = _ordered(r["profile_label"] for r in mine)
            xs = {v: float(i) for i, v in enumerate(labels)}
            ax.set_xticks(list(xs.values()), labels, rotation=20)
            ax.set_title(f"final test {metric} per device profile", fontsize=10)
            xkey = "profile_label"
        rules = _ordered(r["rule_label"] for r in mine)
        for j, rule in enumerate(rules):
            shift = 0.0 if swept else (j - (len(rules) - 1) / 2) * 0.08
            pts = [(xs[r[xkey]] + shift, r[key]) for r in mine
                   if r["rule_label"] == rule and r["status"] == "done"]
            lost = sorted({xs[r[xkey]] + shift for r in mine if r["rule_label"] == rule}
                          - {x for x, _ in pts})
            if lost:  # every seed diverged here: a cross on the axis
                ax.plot(lost, [_cross_y(colors, rule)] * len(lost), "x", color=colors[rule],
                        markersize=8, transform=ax.get_xaxis_transform(), clip_on=False)
            b = band(pts)
            if not b.x:
                continue
            mean = [_scale(metric, v) for v in b.mean]
            err = [[m - _scale(metric, lo) for m, lo in zip(mean, b.lo, strict=True)],
                   [_scale(metric, hi) - m for m, hi in zip(mean, b.hi, strict=True)]]
            ax.errorbar(b.x, mean, yerr=err, fmt="o-" if swept else "o", color=colors[rule],
                        capsize=3, label=rule)
        ax.set_ylabel(f"final test {_ylabel(metric)}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, title="×: every seed diverged", title_fontsize=8)
    return _save(fig, path)


def plot_inference_vs_time(records: Sequence[Record], path: Path) -> Path | None:
    """Test metric vs seconds after programming (log axis); one panel per profile."""
    metric, _ = _metric(records)
    key = f"test_{metric}"
    inf = [r for r in records if r["kind"] == "inference" and r[key] is not None]
    if not inf:
        return None
    profiles = _ordered(r["profile_label"] for r in inf)
    colors = _colors(_ordered(r["rule_label"] for r in records if r["kind"] == "cell"))
    fig, axes = _figure(len(profiles))
    for ax, prof in zip(axes, profiles, strict=True):
        mine = [r for r in inf if r["profile_label"] == prof]
        for rule in _ordered(r["rule_label"] for r in mine):
            b = band((r["after_programming_s"], r[key]) for r in mine if r["rule_label"] == rule)
            ax.plot(b.x, [_scale(metric, v) for v in b.mean], "o-", color=colors[rule],
                    label=rule, markersize=3)
            ax.fill_between(b.x, [_scale(metric, v) for v in b.lo],
                            [_scale(metric, v) for v in b.hi], color=colors[rule], alpha=0.18,
                            linewidth=0)
        if min(r["after_programming_s"] for r in mine) > 0:
            ax.set_xscale("log")
        else:
            ax.set_xscale("symlog", linthresh=1.0)
        ax.set_title(prof, fontsize=10)
        ax.set_xlabel("device time after programming (s)")
        ax.set_ylabel(f"test {_ylabel(metric)}")
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=8)
    fig.suptitle("inference after training vs time since programming (seed mean, min–max)",
                 fontsize=11)
    return _save(fig, path)


def plot_alignment(records: Sequence[Record], path: Path) -> Path | None:
    """Bars: angle (degrees) of each rule's update to BP's per layer, mean ± s.e.m. (seeds
    pooled: mean of the seeds' means, s.e.m. propagated)."""
    al = [r for r in records if r["kind"] == "alignment" and r["angle_deg"] is not None]
    if not al:
        return None
    profiles = _ordered(r["profile_label"] for r in al)
    rules_all = _ordered(r["rule_label"] for r in al)
    colors = _colors(_ordered(r["rule_label"] for r in records if r["kind"] == "cell"))
    fig, axes = _figure(len(profiles), width=4.6)
    for ax, prof in zip(axes, profiles, strict=True):
        mine = [r for r in al if r["profile_label"] == prof]
        rules = [r for r in rules_all if any(x["rule_label"] == r for x in mine)]
        layers = sorted({r["layer"] for r in mine})
        width = 0.8 / max(1, len(rules))
        top = 95.0
        for j, rule in enumerate(rules):
            means, sems = [], []
            for layer in layers:
                rs = [r for r in mine if r["rule_label"] == rule and r["layer"] == layer]
                means.append(_mean([r["angle_deg"] for r in rs]))
                sems.append(math.sqrt(sum((r["angle_sem_deg"] or 0.0) ** 2 for r in rs))
                            / len(rs))
            xs = [i + (j - (len(rules) - 1) / 2) * width for i in range(len(layers))]
            ax.bar(xs, means, width, yerr=sems, color=colors.get(rule), capsize=2, label=rule)
            top = max(top, *(m + e + 3 for m, e in zip(means, sems, strict=True)))
        ax.set_xticks(range(len(layers)), [str(x) for x in layers])
        ax.set_xlabel("layer")
        ax.set_ylabel("angle to BP update (°)")
        ax.set_ylim(0, top)
        ax.axhline(90, color="grey", linewidth=0.8, linestyle=":")
        ax.set_title(prof, fontsize=10)
    legend: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    fig.legend(list(legend.values()), list(legend), loc="outside lower center",
               ncols=min(4, len(legend)), fontsize=8)
    fig.suptitle("update alignment with backprop at initialisation (mean ± s.e.m.)",
                 fontsize=11)
    return _save(fig, path)


def plot_results(folder: str | Path) -> list[Path]:
    """Every figure the records of ``folder`` support, written into ``folder``."""
    folder = Path(folder)
    records = read_records(folder)
    made = [plot_learning_curves(records, folder / "learning_curves.png"),
            plot_robustness(records, folder / "robustness.png"),
            plot_inference_vs_time(records, folder / "inference_vs_time.png"),
            plot_alignment(records, folder / "alignment.png")]
    return [p for p in made if p is not None]


def plot_lr_search(rows: Sequence[Record], path: Path) -> Path | None:
    """The η search (rows of ``lr_search.jsonl``): final validation metric of each trial
    against η (log axis), one panel per profile variant, one line per rule; the chosen η
    circled, diverged trials as crosses along the bottom."""
    trials = [r for r in rows if r["kind"] == "lr_trial"]
    if not trials:
        return None
    metric = "accuracy" if any(r.get("val_accuracy") is not None for r in trials) else "loss"
    key = f"val_{metric}"
    profiles = _ordered(r["profile_label"] for r in trials)
    colors = _colors(_ordered(r["rule_label"] for r in trials))
    fig, axes = _figure(len(profiles))
    for ax, prof in zip(axes, profiles, strict=True):
        mine = [r for r in rows if r["profile_label"] == prof]
        for rule in _ordered(r["rule_label"] for r in mine):
            pts = sorted((r["lr"], _scale(metric, r[key])) for r in mine
                         if r["rule_label"] == rule and r["kind"] == "lr_trial"
                         and r[key] is not None)
            if pts:
                ax.plot(*zip(*pts, strict=True), "o-", color=colors[rule], markersize=3,
                        label=rule)
            for r in mine:
                if r["rule_label"] != rule:
                    continue
                if r["kind"] == "lr_trial" and r[key] is None:
                    ax.plot([r["lr"]], [_cross_y(colors, rule)], "x", color=colors[rule],
                            markersize=7, clip_on=False, transform=ax.get_xaxis_transform())
                elif r["kind"] == "lr_choice" and r[key] is not None:
                    ax.plot([r["lr"]], [_scale(metric, r[key])], "o", markersize=10,
                            markerfacecolor="none", markeredgecolor=colors[rule])
        ax.set_xscale("log")
        ax.set_title(prof, fontsize=10)
        ax.set_xlabel("η")
        ax.set_ylabel(f"validation {_ylabel(metric)}")
        ax.grid(alpha=0.3)
    legend: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    fig.legend(list(legend.values()), list(legend), loc="outside lower center",
               ncols=min(4, len(legend)), fontsize=8)
    fig.suptitle("η search: validation metric at the end of each trial (○ chosen, × diverged)",
                 fontsize=11)
    return _save(fig, path)
