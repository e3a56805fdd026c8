"""The numbers a report is made of: one results folder (``Run``), per-seed values read from
its records (the test metric at the epoch chosen on the validation split), their seed mean ±
s.e.m. (``Stat``), and the verdict on a difference against that spread (``judge``, a Welch
t-test at 5 %)."""

from __future__ import annotations

import datetime
import itertools
import json
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analogsim.plots import SummaryRow, summarize
from analogsim.runner.records import read_records

Record = dict[str, Any]

#: Seeds a side needs before a difference can be judged against its spread.
MIN_SEEDS = 2

#: Two-sided 5 % critical values of Student's t at whole degrees of freedom 1 … 30, 40, 60,
#: 120 and ∞ (standard tables).
_T975 = ((1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (5, 2.571), (6, 2.447), (7, 2.365),
         (8, 2.306), (9, 2.262), (10, 2.228), (11, 2.201), (12, 2.179), (13, 2.160),
         (14, 2.145), (15, 2.131), (16, 2.120), (17, 2.110), (18, 2.101), (19, 2.093),
         (20, 2.086), (21, 2.080), (22, 2.074), (23, 2.069), (24, 2.064), (25, 2.060),
         (26, 2.056), (27, 2.052), (28, 2.048), (29, 2.045), (30, 2.042), (40, 2.021),
         (60, 2.000), (120, 1.980), (math.inf, 1.960))


def t_critical(df: float) -> float:
    """Two-sided 5 % critical value of Student's t at ``df`` ≥ 1 degrees of freedom: the
    table's, linear in 1/df between its entries. Never below the exact quantile: at most 1.6 %
    above it from 2.5 degrees on (0.1 % from 4.5), up to 18 % between 1 and 2."""
    if not df >= 1:
        raise ValueError(f"degrees of freedom must be ≥ 1, got {df}")
    for (d0, t0), (d1, t1) in itertools.pairwise(_T975):
        if df <= d1:
            w = (1 / d0 - 1 / df) / (1 / d0 - 1 / d1)
            return t0 + w * (t1 - t0)
    return 1.960


def welch_df(parts: Sequence[Stat]) -> float:
    """Welch–Satterthwaite degrees of freedom of a sum or difference of the seed means of
    ``parts`` (each with n ≥ 2 and an s.e.m.): (Σ sᵢ²)² / Σ sᵢ⁴/(nᵢ − 1); inf when every
    spread is 0 (a difference without spread is exact)."""
    num = sum(p.sem**2 for p in parts) ** 2  # type: ignore[operator]
    den = sum(p.sem**4 / (p.n - 1) for p in parts)  # type: ignore[operator]
    return math.inf if den == 0 else max(1.0, num / den)


# ------------------------------------------------------------------ loading
@dataclass
class Run:
    """One results folder."""

    folder: Path
    manifest: dict[str, Any]
    records: list[Record]
    summary: list[SummaryRow] = field(default_factory=list)

    @property
    def experiment(self) -> str:
        name = self.manifest["scenario_name"]
        name = re.sub(r"_(reduced|cpu)$", "", name)
        return re.sub(r"^paper_", "", name)

    @property
    def sc(self) -> dict[str, Any]:
        return self.manifest["scenario"]

    @property
    def cells(self) -> list[Record]:
        return [r for r in self.records if r["kind"] == "cell"]

    @property
    def complete(self) -> bool:
        return len(self.cells) == len(self.manifest["cells"])

    def wall_s(self) -> float:
        return float(sum(self.manifest.get("cell_wall_s", {}).values()))

    def span(self) -> tuple[datetime.datetime, datetime.datetime] | None:
        """The run's manifest ``created`` and ``updated`` times (None if unreadable)."""
        try:
            a, b = (datetime.datetime.fromisoformat(self.manifest[k])
                    for k in ("created", "updated"))
        except (KeyError, TypeError, ValueError):
            return None
        return a, b

    def elapsed_s(self) -> float | None:
        """Wall time of the run, ``created`` → ``updated`` (a resumed run counts from its
        first start)."""
        sp = self.span()
        return None if sp is None else (sp[1] - sp[0]).total_seconds()

    def command(self) -> str:
        m = self.manifest
        dev = "" if m["device"] == "cpu" else f" --device {m['device']}"
        return (f"analogsim run {m['scenario_file']} --out {self.folder}{dev} "
                f"--jobs {m['jobs']} --threads {m['threads_per_cell']}")


def load_run(folder: Path) -> Run | None:
    man = folder / "manifest.json"
    if not man.is_file():
        return None
    try:
        manifest = json.loads(man.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{man.name}: not valid JSON ({err})") from None
    run = Run(folder, manifest, read_records(folder))
    if run.cells:
        run.summary = summarize(run.records)
    return run


# ------------------------------------------------------------------ numbers from records
def pct(v: float | None, nd: int = 1) -> str:
    return "–" if v is None else f"{100 * v:.{nd}f}"


def num(v: float | None, fmt: str = "{:.3g}") -> str:
    return "–" if v is None else fmt.format(v)


def curve(records: Iterable[Record], pred: Callable[[Record], bool],
          key: str = "test_accuracy") -> dict[int, float]:
    """Seed-mean of ``key`` per epoch over the epoch rows matching ``pred`` (diverged rows
    and missing values left out, as the runner's own summary does)."""
    by: dict[int, list[float]] = defaultdict(list)
    for r in records:
        if r["kind"] == "epoch" and not r["diverged"] and pred(r) and r[key] is not None:
            by[int(r["epoch"])].append(float(r[key]))
    return {e: sum(v) / len(v) for e, v in sorted(by.items())}


def rule_pred(rule: str, baseline: str | None = "any", profile: str | None = None
              ) -> Callable[[Record], bool]:
    def pred(r: Record) -> bool:
        return (r["rule"] == rule and (baseline == "any" or r["baseline"] == baseline)
                and (profile is None or r["profile_label"] == profile))
    return pred


def peak(c: dict[int, float], higher: bool = True) -> tuple[float | None, int | None]:
    if not c:
        return None, None
    e = (max if higher else min)(c, key=lambda k: c[k])
    return c[e], e


HOLDS, NOT_HOLDS, UNRESOLVED = "holds", "does not hold", "not resolved at this scale"


@dataclass(frozen=True)
class Stat:
    """One per-seed number over seeds: mean, s.e.m. (None under two seeds), n, min, max."""

    mean: float | None
    sem: float | None
    n: int
    lo: float | None = None
    hi: float | None = None

    def text(self, scale: float = 100.0, fmt: str = "{:.1f}") -> str:
        """``mean ± s.e.m. (n seeds)``, or ``–``."""
        if self.mean is None:
            return "–"
        m = fmt.format(scale * self.mean)
        spread = "" if self.sem is None else f" ± {fmt.format(scale * self.sem)}"
        return f"{m}{spread} (n={self.n})"


def stat(values: Sequence[float]) -> Stat:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return Stat(None, None, 0)
    n = len(vals)
    m = sum(vals) / n
    sem = math.sqrt(sum((v - m) ** 2 for v in vals) / (n - 1) / n) if n > 1 else None
    return Stat(m, sem, n, min(vals), max(vals))


def has_validation(run: Run) -> bool:
    return any(r.get("val_loss") is not None for r in run.records if r["kind"] == "epoch")


def seed_values(run: Run, pred: Callable[[Record], bool], key: str = "test_accuracy",
                epoch: int | None = None, until: int | None = None) -> list[float]:
    """Per seed of the cells matching ``pred``: ``key`` at ``epoch`` if given, else at the
    epoch (≤ ``until``) whose validation metric is best — the test metric itself chooses
    only in runs without a validation split. Diverged epochs are left out."""
    metric = key.split("_", 1)[1]
    higher = metric == "accuracy"
    sel = f"val_{metric}" if has_validation(run) else key
    by: dict[int, list[Record]] = defaultdict(list)
    for r in run.records:
        if (r["kind"] == "epoch" and not r["diverged"] and pred(r) and r[key] is not None
                and r.get(sel) is not None and (until is None or r["epoch"] <= until)):
            by[r["seed"]].append(r)
    out = []
    for rows in by.values():
        if epoch is not None:
            out += [r[key] for r in rows if r["epoch"] == epoch]
            continue
        best = max(rows, key=lambda r: ((r[sel] if higher else -r[sel]), -r["epoch"]))
        out.append(best[key])
    return out


def final_values(run: Run, pred: Callable[[Record], bool], key: str) -> list[float]:
    """``key`` of every finished (not diverged) cell matching ``pred``."""
    return [r[key] for r in run.cells if pred(r) and r["status"] == "done"
            and r[key] is not None]


def judge_diff(diff: float | None, parts: Sequence[Stat]) -> str:
    """Verdict on "``diff`` > 0" for a sum or difference of the seed means of ``parts``: a
    two-sided Welch t-test at 5 % — holds when ``diff`` exceeds t·s, does not hold when it is
    below −t·s, else not resolved (always under ``MIN_SEEDS`` seeds a side); s = the combined
    s.e.m. √Σsᵢ², t = ``t_critical`` at the Welch–Satterthwaite degrees of freedom (4.30 for
    two seeds a side with equal spreads, 2.78 for three)."""
    if diff is None:
        return "not measured"
    if any(p.n < MIN_SEEDS or p.sem is None for p in parts):
        return UNRESOLVED
    spread = math.sqrt(sum(p.sem**2 for p in parts))  # type: ignore[operator]
    bound = t_critical(welch_df(parts)) * spread
    return HOLDS if diff > bound else NOT_HOLDS if diff < -bound else UNRESOLVED


def judge(a: Stat, b: Stat, margin: float = 0.0) -> str:
    """Verdict on "a − b > ``margin``" (``judge_diff``: a Welch t-test at 5 %)."""
    if a.mean is None or b.mean is None:
        return "not measured"
    return judge_diff(a.mean - b.mean - margin, (a, b))


def all_of(verdicts: Iterable[str]) -> str:
    """Holds when every verdict holds; does not hold when any does not; else unresolved."""
    vs = list(verdicts)
    if not vs or "not measured" in vs:
        return "not measured"
    if all(v == HOLDS for v in vs):
        return HOLDS
    return NOT_HOLDS if NOT_HOLDS in vs else UNRESOLVED
