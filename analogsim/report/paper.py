"""Render docs/reproduction.md: the paper's numbers beside ours, from result folders only.

    analogsim report results/paper/* --out docs/reproduction.md --img docs/img/paper
    analogsim report results/gpu_paper/* --compact      # one short table

Each RESULTS folder was written by ``analogsim run`` on a scenario of ``scenarios/paper/``
(its ``manifest.json`` names the scenario; ``_reduced``/``_cpu`` variants count as the same
experiment). Every measured number printed here is read from those folders'
``records.jsonl``, ``lr_search.jsonl`` and ``manifest.json``; the paper's numbers are data
(``paper_reference.yaml`` next to this module, each with the table or figure it comes from).
Folders that are missing or incomplete are reported as such; nothing is filled in.

Uncertainty: every accuracy or loss compared is a per-seed number (the test metric at the
epoch chosen on the validation split, or the final one), summarised as the seed mean ± its
standard error (s.e.m.). A claim *holds* only when a two-sided Welch t-test at 5 % says the
difference has the claimed sign (it exceeds t times the combined s.e.m., t at the
Welch–Satterthwaite degrees of freedom: 2.78 for three seeds a side with equal spreads), *does
not hold* when it says the opposite sign, and is *not resolved at this scale* otherwise (and
always with fewer than two seeds a side). Each check is its own test at 5 %: over many checks
a few verdicts may come out by chance.

``--img DIR`` writes the figures (copies of the runs' own plots and a few drawn here from the
records) into DIR and links them relative to ``--out``.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from analogsim.errors import ScenarioError
from analogsim.plots import plot_lr_search
from analogsim.report.stats import (
    HOLDS,
    NOT_HOLDS,
    UNRESOLVED,
    Record,
    Run,
    Stat,
    all_of,
    curve,
    final_values,
    judge,
    judge_diff,
    load_run,
    num,
    pct,
    peak,
    rule_pred,
    seed_values,
    stat,
)
from analogsim.report.why import pair_evidence, sigma_evidence
from analogsim.runner.lr_store import read_search


# ------------------------------------------------------------------ the paper's numbers
@cache
def reference() -> dict[str, Any]:
    """The paper's numbers (``paper_reference.yaml``)."""
    text = resources.files("analogsim.report").joinpath("paper_reference.yaml").read_text()
    return yaml.safe_load(text)


def paper_table3() -> dict[str, dict[str, tuple[float, float]]]:
    """Table 3: experiment → rule → (peak train %, peak test %)."""
    return {k: {r: (float(v[0]), float(v[1])) for r, v in rules.items()}
            for k, rules in reference()["table3_peak_train_test"].items()}


def paper_table2() -> dict[str, dict[str, float]]:
    """Table 2: experiment → rule → η in the paper's convention."""
    return {k: {r: float(v) for r, v in rules.items()}
            for k, rules in reference()["table2_lr"].items()}


# ------------------------------------------------------------------ how claims are judged
#: DANP "learns nearly as well" with a noisy baseline: peak test within this many points.
NEARLY_AS_WELL_PTS = 2.0
#: "Stable across depth": no divergence and peak test within this many points of depth 3.
DEPTH_TOLERANCE_PTS = 5.0
#: Epochs at which learning curves are compared side by side.
EARLY_EPOCHS = (1, 3, 5)

RULE_ORDER = ("np", "dnp", "anp", "danp", "inp", "dinp", "bp", "dbp")
DECOR_PAIRS = (("np", "dnp"), ("anp", "danp"), ("inp", "dinp"), ("bp", "dbp"))
EXPERIMENTS = ("table2_lr_three_layer", "table2_lr_single_layer", "three_layer",
               "three_layer_he",
               "single_layer", "noisy_baseline", "hw_noisy_baseline", "depth_6", "depth_9",
               "alignment", "alignment_range", "hw_alignment", "sarcos", "convnet", "hw_three_layer",
               "hw_single_layer", "hw_depth_6", "hw_depth_9", "hw_convnet", "hw_sarcos")
TITLES = {
    "three_layer": "Three hidden layers of 1024, all eight rules (Fig. 3 top, Table 3)",
    "single_layer": "Single layer: NP, DNP, BP, DBP (Fig. 2, Table 3)",
    "noisy_baseline": "Clean against noisy baseline: DANP and DNP (Fig. 4)",
    "hw_noisy_baseline": "Hardware: DANP against DNP on analog devices, noisy baseline only",
    "depth": "Depth 3, 6 and 9: DANP and DINP (Fig. 3 middle, Table 3)",
    "alignment": "Update alignment with BP (Fig. 1) and its dependence on σ² (Fig. 6)",
    "sarcos": "SARCOS-style regression on robot-dynamics (Fig. 7, appendix I)",
    "convnet": "Convnet: DANP, DNP, DINP, BP (Fig. 3 bottom, Table 3)",
}


def first_epoch_reaching(c: dict[int, float], level: float) -> int | None:
    return next((e for e, v in c.items() if v >= level), None)


def cell_info(run: Run, pred: Callable[[Record], bool]) -> dict[str, Any]:
    cells = [r for r in run.cells if pred(r)]
    div = [r for r in cells if r["status"] == "diverged"]
    lrs = sorted({r["lr"] for r in cells if r["lr"] is not None})
    return {"n": len(cells), "diverged": len(div), "lr": lrs,
            "div_steps": [r["diverged_at_step"] for r in div],
            "div_what": sorted({str(r["diverged_what"]) for r in div})}


def lr_text(lrs: Sequence[float]) -> str:
    return " / ".join(f"{v:.4g}" for v in lrs) or "–"


def signed(x: float) -> str:
    """``+1.2`` / ``-0.3`` / ``+0.0`` (no negative zero)."""
    return f"{round(x, 1) + 0.0:+.1f}"


def dur(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def searched(run: Run) -> bool:
    return run.sc.get("lr_search") is not None


# ------------------------------------------------------------------ figures
class Figures:
    """Writes figures into ``img`` (if given) and returns Markdown links relative to
    ``base`` (the folder of the output file)."""

    def __init__(self, img: Path | None, base: Path) -> None:
        self.img, self.base = img, base
        if img is not None:
            img.mkdir(parents=True, exist_ok=True)

    def link(self, path: Path, alt: str) -> str:
        rel = os.path.relpath(path.resolve(), self.base.resolve())
        return f"![{alt}]({Path(rel).as_posix()})"

    def copy(self, run: Run, name: str, alt: str) -> str:
        src = run.folder / name
        if self.img is None or not src.is_file():
            return ""
        dst = self.img / f"{run.experiment}_{name}"
        shutil.copyfile(src, dst)
        return self.link(dst, alt) + "\n"

    def draw(self, name: str, alt: str, fn: Callable[[Any], bool],
             size: tuple[float, float] = (8.4, 3.3)) -> str:
        if self.img is None:
            return ""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=size, layout="constrained")
        FigureCanvasAgg(fig)
        if not fn(fig):
            return ""
        dst = self.img / name
        fig.savefig(dst, dpi=110)
        return self.link(dst, alt) + "\n"


# ------------------------------------------------------------------ sections
def scale_line(run: Run) -> str:
    sc, data = run.sc, run.manifest["data"]
    model = sc["model"]
    arch = ("convnet" if model["kind"] == "convnet" else
            "-".join(str(x) for x in [data["input_shape"][0], *model["hidden"],
                                      data["n_outputs"]]))
    eta = eta_text(run)
    seeds = sc["seeds"]
    n_val = data.get("n_val") or 0
    split = (f"{data['n_train']} train / {n_val} validation / {data['n_test']} test"
             if n_val else f"{data['n_train']} train / {data['n_test']} test (no validation "
             "split: epochs and η chosen on the test split, so optimistic)")
    init = (f", init {model.get('init', 'he')}"
            f"{'' if model.get('bias', True) else ' without bias'}")
    reps = run.manifest.get("evaluation_reps", 1)
    return (f"`{run.manifest['scenario_file']}`: {sc['dataset']['name']} "
            f"{split}, {arch}{init}, batch "
            f"{sc['batch_size']}, {sc['epochs']} epochs, {len(seeds)} seed(s) "
            f"{seeds}, profiles {', '.join(sc['profiles'])}, {eta}"
            f"{f', evaluations averaged over {reps} reads' if reps > 1 else ''}; "
            f"{len(run.cells)}/{len(run.manifest['cells'])} cells done "
            f"({sum(r['status'] == 'diverged' for r in run.cells)} diverged), "
            f"{dur(run.wall_s())} of cell time on {run.manifest['device']}.")


def eta_text(run: Run) -> str:
    """How the run's η were set."""
    spec, lr = run.sc.get("lr_search"), run.sc.get("lr")
    if spec and "low" in spec:
        length = (f"{spec['epochs']} epoch(s)" if spec.get("epochs") else
                  f"{spec['steps']} steps")
        return (f"η searched per profile × rule × baseline on the validation split (log grid "
                f"{spec['low']:g}…{spec['high']:g} in {spec['points']} points, then "
                f"{spec['refine']} refined points; trials of {length})")
    if spec:
        return "η searched per cell on the test split (an earlier protocol)"
    if isinstance(lr, dict) and "from" in lr:
        return f"η from the search in `{lr['from']}`"
    return "fixed η"


def rules_in(run: Run) -> list[str]:
    present = {r["rule"] for r in run.cells}
    return [r for r in RULE_ORDER if r in present]


def accuracy_table(run: Run, paper_key: str | None, baselines: Sequence[str | None] = ("any",),
                   profiles: Sequence[str | None] = (None,)) -> str:
    """Per rule: η, seeds, diverged, peak test (seed-mean curve, epoch), best seed, final
    test, peak train, the paper's peak train/test."""
    paper = paper_table3().get(paper_key or "", {})
    head = ["rule", "η", "seeds (diverged)", "test % at the chosen epoch, mean ± s.e.m.",
            "min–max", "final test %, mean ± s.e.m.", "peak train %"]
    if paper:
        head += ["paper peak test %", "paper peak train %"]
    multi_prof = len(profiles) > 1 or profiles[0] is not None
    if multi_prof:
        head.insert(0, "profile")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for prof in profiles:
        for rule in rules_in(run):
            for bl in baselines:
                pred = rule_pred(rule, bl, prof)
                info = cell_info(run, pred)
                if not info["n"]:
                    continue
                tr = curve(run.records, pred, "train_accuracy")
                chosen = stat(seed_values(run, pred))
                finals = stat(final_values(run, pred, "test_accuracy"))
                label = rule.upper() + ("" if bl in ("any", None) else f" ({bl})")
                div = f"{info['n']} ({info['diverged']}"
                div += f", step {', '.join(map(str, info['div_steps']))})" \
                    if info["diverged"] else ")"
                row = [label, lr_text(info["lr"]), div, chosen.text(),
                       f"{pct(chosen.lo)}–{pct(chosen.hi)}", finals.text(), pct(peak(tr)[0])]
                if paper:
                    p = paper.get(rule)
                    row += [f"{p[1]:.1f}" if p else "–", f"{p[0]:.1f}" if p else "–"]
                if multi_prof:
                    row.insert(0, prof or "")
                lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def early_table(run: Run, rules: Sequence[str], baselines: Sequence[str | None] = ("any",),
                profile: str | None = None) -> str:
    epochs = [e for e in EARLY_EPOCHS if e <= run.sc["epochs"]] + [run.sc["epochs"]]
    epochs = sorted(set(epochs))
    head = ["rule"] + [f"test % at epoch {e}" for e in epochs]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for rule in rules:
        for bl in baselines:
            c = curve(run.records, rule_pred(rule, bl, profile))
            if not c and not cell_info(run, rule_pred(rule, bl, profile))["n"]:
                continue
            label = rule.upper() + ("" if bl in ("any", None) else f" ({bl})")
            lines.append("| " + " | ".join([label] + [pct(c.get(e)) for e in epochs]) + " |")
    return "\n".join(lines) + "\n"


@dataclass
class Claim:
    text: str
    holds: bool | str | None  # a verdict string (HOLDS, …), a plain yes/no, None: not measured
    evidence: str
    beyond: bool = False  # a question of this study (hardware), not a claim of the paper
    why: list[str] = field(default_factory=list)  # evidence on why it comes out so (why.py)

    @property
    def verdict(self) -> str:
        h = self.holds
        if isinstance(h, str):
            return h
        return {True: HOLDS, False: NOT_HOLDS, None: "not measured"}[h]


def verdict(c: Claim) -> str:
    v = c.verdict
    return f"**{v}**" if v in (HOLDS, NOT_HOLDS) else v


def decorrelation_claims(run: Run, pairs: Sequence[tuple[str, str]], where: str,
                         other: Run | None = None) -> list[Claim]:
    """Per (plain, decorrelated) pair: is the decorrelated rule ahead early (test accuracy
    at epoch min(3, epochs)), and at the epoch chosen on validation? Seed means ± s.e.m.;
    a claim that does not hold carries the evidence on why (``other``: the run with the other
    initialisation)."""
    out = []
    early = min(3, int(run.sc["epochs"]))
    for plain, dec in pairs:
        if not cell_info(run, rule_pred(plain))["n"] or not cell_info(run, rule_pred(dec))["n"]:
            continue
        pe, de = (stat(seed_values(run, rule_pred(r), epoch=early)) for r in (plain, dec))
        pb, db = (stat(seed_values(run, rule_pred(r))) for r in (plain, dec))
        out.append(Claim(
            f"decorrelation speeds up {plain.upper()}: {dec.upper()} is ahead at epoch {early}",
            judge(de, pe), f"{dec.upper()} {de.text()} % vs {plain.upper()} {pe.text()} % "
            f"[{where}]"))
        out.append(Claim(
            f"{dec.upper()} ends ahead of {plain.upper()} (test accuracy at the epoch chosen on "
            "validation)", judge(db, pb), f"{dec.upper()} {db.text()} % vs {plain.upper()} "
            f"{pb.text()} % [{where}]"))
        for c in out[-2:]:
            if c.verdict != HOLDS:
                c.why = pair_evidence(run, dec, plain, other)
    return out


def section_table2(runs: dict[str, Run]) -> str:
    out = ["## The paper's learning rates in this package's convention\n",
           ("design.md §6 converts Table 2 to this package's convention (per-sample "
           "sum-of-squares loss, batch-mean updates): NP-family η as printed, BP-family η × "
           f"{reference()['batch_size']} (the paper's BP summed over the batch). Each η below was run for "
           "two epochs on the ideal device (scenarios `table2_lr_*.yaml`):\n")]
    any_run = False
    for key, paper_key in (("table2_lr_single_layer", "single_layer"),
                           ("table2_lr_three_layer", "three_layer")):
        run = runs.get(key)
        if run is None:
            continue
        any_run = True
        out.append(f"{scale_line(run)}\n")
        lines = ["| rule | paper η (Table 2) | η here | outcome after 2 epochs |",
                 "|---|---|---|---|"]
        for rule in rules_in(run):
            info = cell_info(run, rule_pred(rule))
            cells = [r for r in run.cells if r["rule"] == rule]
            if info["diverged"]:
                what = (f"diverged at step {', '.join(map(str, info['div_steps']))} "
                        f"({', '.join(info['div_what'])})")
            else:
                accs = [r["test_accuracy"] for r in cells if r["test_accuracy"] is not None]
                what = f"trains: {pct(sum(accs) / len(accs))} % test" if accs else "–"
            lines.append(f"| {rule.upper()} | {paper_table2()[paper_key].get(rule, '–'):g} | "
                         f"{lr_text(info['lr'])} | {what} |")
        out.append(f"{'Single layer' if 'single' in key else 'Three hidden layers'}:\n\n"
                   + "\n".join(lines) + "\n")
        n_div = sum(1 for r in rules_in(run) if cell_info(run, rule_pred(r))["diverged"])
        out.append(f"{n_div} of {len(rules_in(run))} Table-2 η diverge here.\n")
    if not any_run:
        return ""
    out.append("The η search therefore picks η in the training scenarios below: per profile, "
               "rule and baseline, trial runs on a coarse then a refined log grid, judged by "
               "their validation accuracy (a diverged trial counts as the worst); the test split "
               "plays no part. The η each cell used is in the tables, every trial in the η "
               "search section.\n")
    return "\n".join(out) + "\n"


def section_three_layer(run: Run, figs: Figures, claims: list[Claim], tag: str = "",
                        other: Run | None = None) -> str:
    """``tag``: what tells this run from the other initialisation's (title, claims);
    ``other``: that run, if any (evidence on why a claim does not hold)."""
    out = [f"## {TITLES['three_layer']}{tag}\n", scale_line(run) + "\n",
           accuracy_table(run, "three_layer", baselines=("clean", None)),
           ("Paper: CIFAR-10, 3072-1024×3-10, 5 seeds; ours: Fashion-MNIST, see the scale "
           "above. Absolute accuracies are not comparable (different data set, far fewer "
           "epochs); the ordering of the rules is.\n"),
           early_table(run, rules_in(run)),
           figs.draw(f"{run.experiment}_pairs.png", "each rule with and without decorrelation",
                     lambda fig: _draw_pairs(fig, run, DECOR_PAIRS), size=(13.0, 3.2))]
    st = {r: stat(seed_values(run, rule_pred(r))) for r in rules_in(run)}
    ours = sorted((r for r in st if st[r].mean is not None), key=lambda r: -st[r].mean)  # type: ignore[operator]
    theirs = sorted((r for r in paper_table3()["three_layer"] if r in st),
                    key=lambda r: -paper_table3()["three_layer"][r][1])
    out.append(f"Ranking by the seed-mean test accuracy at the chosen epoch — ours: "
               f"{' > '.join(r.upper() for r in ours)}; paper: "
               f"{' > '.join(r.upper() for r in theirs)}.\n")
    where = f"3 hidden layers{tag}"
    claims += decorrelation_claims(run, DECOR_PAIRS, where, other)
    dec, plain = ("dnp", "danp", "dinp"), ("np", "anp", "inp")
    if all(r in st for r in ("bp", *dec, *plain)):
        for text, pairs in (
                (f"every decorrelated NP variant beats every plain one ({where})",
                 [(d, p) for d in dec for p in plain]),
                (f"BP stays ahead of every NP variant in test accuracy ({where})",
                 [("bp", d) for d in dec]),
                (f"INP beats NP and ANP without decorrelation ({where})",
                 [("inp", p) for p in ("np", "anp")])):
            shown = list(dict.fromkeys(r for pr in pairs for r in pr))
            c = Claim(text, all_of(judge(st[a], st[b]) for a, b in pairs),
                      "; ".join(f"{r.upper()} {st[r].text()} %" for r in shown))
            if c.verdict != HOLDS:  # per left-hand rule, the pair it fails by the most
                failing: dict[str, list[str]] = {}
                for a, b in pairs:
                    if judge(st[a], st[b]) == c.verdict:
                        failing.setdefault(a, []).append(b)
                for a, bs in failing.items():  # the best-scoring partner: the largest gap
                    b = max(bs, key=lambda r: st[r].mean)  # type: ignore[arg-type,return-value]
                    c.why += [f"{a.upper()} vs {b.upper()} — {x}"
                              for x in pair_evidence(run, a, b, other)]
            claims.append(c)
    return "\n".join(o for o in out if o) + "\n"


def _draw_pairs(fig: Any, run: Run, pairs: Sequence[tuple[str, str]]) -> bool:
    """One panel per (plain, decorrelated) pair: test (solid) and train (dashed) accuracy."""
    pairs = [p for p in pairs if all(cell_info(run, rule_pred(r))["n"] for r in p)]
    if not pairs:
        return False
    axes = [fig.add_subplot(1, len(pairs), i + 1) for i in range(len(pairs))]
    for ax, pair in zip(axes, pairs, strict=True):
        for rule, color in zip(pair, ("tab:blue", "tab:orange"), strict=True):
            for key, style in (("test_accuracy", "-"), ("train_accuracy", "--")):
                c = curve(run.records, rule_pred(rule), key)
                ax.plot(list(c), [100 * v for v in c.values()], style, color=color,
                        label=rule.upper() if style == "-" else None)
            for r in run.records:
                if r["kind"] == "epoch" and r["diverged"] and r["rule"] == rule:
                    ax.plot([r["epoch"]], [0.04], "x", color=color, markersize=8,
                            transform=ax.get_xaxis_transform(), clip_on=False)
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, title="solid test, dashed train", title_fontsize=7)
    return True


def section_single_layer(run: Run, figs: Figures, claims: list[Claim]) -> str:
    out = [f"## {TITLES['single_layer']}\n", scale_line(run) + "\n",
           accuracy_table(run, "single_layer", baselines=("clean", None)),
           early_table(run, rules_in(run)),
           figs.draw("single_layer_pairs.png", "single layer with and without decorrelation",
                     lambda fig: _draw_pairs(fig, run, (("np", "dnp"), ("bp", "dbp"))),
                     size=(8.4, 3.2))]
    claims += decorrelation_claims(run, (("np", "dnp"), ("bp", "dbp")), "single layer")
    return "\n".join(o for o in out if o) + "\n"


def section_noisy_baseline(run: Run, figs: Figures, claims: list[Claim],
                           three: Run | None) -> str:
    out = [f"## {TITLES['noisy_baseline']}\n", scale_line(run) + "\n"]
    if not searched(run) and three is not None:
        same = []
        for rule in ("danp", "dnp"):
            a, b = cell_info(run, rule_pred(rule))["lr"], cell_info(three, rule_pred(rule))["lr"]
            same.append(f"{rule.upper()} η {lr_text(a)} (picked by the η search of "
                        f"`{three.manifest['scenario_file']}`: {lr_text(b)}"
                        f"{'' if a == b else ' — DIFFERENT'})")
        out.append("One η per rule for both baselines, as in the paper: " + "; ".join(same)
                   + ".\n")
    elif searched(run) and (shared := run.sc["lr_search"].get("baseline")) is not None:
        etas = "; ".join(f"{rule.upper()} η {lr_text(cell_info(run, rule_pred(rule))['lr'])}"
                         for rule in ("danp", "dnp"))
        out.append(f"One η per rule for both baselines, as in the paper, searched on the "
                   f"{shared} baseline: {etas}.\n")
    out += [accuracy_table(run, None, baselines=("clean", "noisy")),
            early_table(run, ("danp", "dnp"), baselines=("clean", "noisy")),
            figs.copy(run, "learning_curves.png", "clean vs noisy baseline")]
    res: dict[tuple[str, str], tuple[Stat, dict[str, Any]]] = {}
    for rule in ("danp", "dnp"):
        for bl in ("clean", "noisy"):
            pred = rule_pred(rule, bl)
            res[rule, bl] = (stat(seed_values(run, pred)), cell_info(run, pred))
    (dc, _), (dn, dn_i) = res["danp", "clean"], res["danp", "noisy"]
    (pc, pc_i), (pn, pn_i) = res["dnp", "clean"], res["dnp", "noisy"]
    if dc.mean is not None and dn.mean is not None:
        v = NOT_HOLDS if dn_i["diverged"] else judge(dn, dc, -NEARLY_AS_WELL_PTS / 100)
        claims.append(Claim(
            f"DANP with a noisy baseline learns nearly as well as with a clean one (test "
            f"accuracy within {NEARLY_AS_WELL_PTS:g} points, by a Welch t-test at 5 %)", v,
            f"clean {dc.text()} %, noisy {dn.text()} %, {dn_i['diverged']} diverged seed(s)"))
    if pc.mean is not None:
        if pn_i["diverged"] > pc_i["diverged"]:
            v = HOLDS
        elif None in (pn.mean, dc.mean, dn.mean):
            v = "not measured"
        else:
            diff = (pc.mean - pn.mean) - (dc.mean - dn.mean)  # type: ignore[operator]
            v = judge_diff(diff, (pc, pn, dc, dn))
        claims.append(Claim(
            "DNP degrades with a noisy baseline (more than DANP does, or diverges on more "
            "seeds than with a clean one)", v,
            f"DNP clean {pc.text()} %, {pc_i['diverged']} diverged seed(s), noisy {pn.text()} "
            f"%, {pn_i['diverged']} diverged; DANP clean {dc.text()} %, noisy {dn.text()} %"))
    return "\n".join(o for o in out if o) + "\n"


def section_hw_noisy_baseline(run: Run, figs: Figures, claims: list[Claim],
                              ideal: Run | None) -> str:
    out = [f"## {TITLES['hw_noisy_baseline']}\n", scale_line(run) + "\n",
           ("The question the paper could not ask: on a device whose noise the learning rule "
           "cannot see or switch off, does DANP keep its lead over DNP? Every pass reads the "
           "device's own noise; both rules run with the noisy baseline and the paper's "
           "σ = 1e-3; " + ("η searched per profile and rule on the validation split (see the "
                          "η searches below)" if searched(run) else "η as in the ideal Fig.-4 "
                          "run") + ". BP, where present, backpropagates by a transposed "
           "noisy read of the same devices (what a chip can do).\n")]
    profiles = [p for p in dict.fromkeys(r["profile_label"] for r in run.cells)]
    out.append(accuracy_table(run, None, baselines=("noisy", None), profiles=profiles))
    if ideal is not None:
        n_ep = run.sc["epochs"]

        def ideal_peak(rule: str, bl: str) -> str:
            return stat(seed_values(ideal, rule_pred(rule, bl), until=n_ep)).text()

        out.append(f"Ideal device, same rules and η, test accuracy at the epoch (≤ {n_ep}) "
                   "chosen on validation (from the Fig.-4 run above): " + ", ".join(
                       f"{rule.upper()} ({bl}) {ideal_peak(rule, bl)} %"
                       for rule in ("danp", "dnp") for bl in ("clean", "noisy")) + ".\n")
    out.append(figs.copy(run, "learning_curves.png", "DANP vs DNP on analog devices"))
    for prof in profiles:
        a = stat(seed_values(run, rule_pred("danp", "noisy", prof)))
        b = stat(seed_values(run, rule_pred("dnp", "noisy", prof)))
        ia, ib = (cell_info(run, rule_pred(r, "noisy", prof)) for r in ("danp", "dnp"))
        if a.mean is None and b.mean is None:
            continue
        claims.append(Claim(f"on {prof}, DANP keeps its lead over DNP (noisy baseline)",
                            _lead(ia, ib, judge(a, b)),
                            f"DANP {a.text()} % ({ia['diverged']}/{ia['n']} diverged), DNP "
                            f"{b.text()} % ({ib['diverged']}/{ib['n']} diverged)",
                            beyond=True))
    return "\n".join(o for o in out if o) + "\n"


def _lead(ia: dict[str, Any], ib: dict[str, Any], otherwise: str) -> str:
    """Verdict on "rule a beats rule b" (cell infos ``ia``, ``ib``) where a diverging side
    loses outright: every seed of b diverged and none of a → holds (the reverse → does not
    hold); else ``otherwise`` (the judged difference)."""
    if ib["n"] and ib["diverged"] == ib["n"] and not ia["diverged"] and ia["n"]:
        return HOLDS
    if ia["n"] and ia["diverged"] == ia["n"] and not ib["diverged"] and ib["n"]:
        return NOT_HOLDS
    return otherwise


def section_depth(runs: dict[str, Run], figs: Figures, claims: list[Claim]) -> str:
    three = runs.get("three_layer")
    depth_runs = {3: three, 6: runs.get("depth_6"), 9: runs.get("depth_9")}
    have = {d: r for d, r in depth_runs.items() if r is not None}
    if len(have) < 2:
        return ""
    out = [f"## {TITLES['depth']}\n"]
    for d, r in have.items():
        out.append(f"- depth {d}: {scale_line(r)}")
    common = min(r.sc["epochs"] for r in have.values())
    out.append(f"\nCompared over the first {common} epochs (the shortest run): test accuracy "
               "at the epoch chosen on validation, seed mean ± s.e.m.:\n")
    lines = ["| rule | " + " | ".join(f"depth {d}: η, test % ± s.e.m." for d in have)
             + " | paper depth 3 / 6 / 9 test % |", "|---|" + "---|" * (len(have) + 1)]
    stats: dict[tuple[str, int], tuple[Stat, dict[str, Any]]] = {}
    for rule in ("danp", "dinp"):
        row = [rule.upper()]
        for d, r in have.items():
            st = stat(seed_values(r, rule_pred(rule), until=common))
            info = cell_info(r, rule_pred(rule))
            stats[rule, d] = (st, info)
            row.append(f"{lr_text(info['lr'])}, {st.text()}"
                       + (f", {info['diverged']} diverged" if info["diverged"] else ""))
        paper = " / ".join(f"{paper_table3()[k][rule][1]:.1f}" for k in
                           ("three_layer", "depth_6", "depth_9"))
        lines.append("| " + " | ".join(row + [paper]) + " |")
    out.append("\n".join(lines) + "\n")
    out.append(figs.draw("depth_curves.png", "test accuracy vs epoch at depth 3, 6, 9",
                         lambda fig: _draw_depth(fig, have, common)))
    for rule in ("danp", "dinp"):
        ref = stats[rule, 3][0] if (rule, 3) in stats else Stat(None, None, 0)
        deeper = [(d, *stats[rule, d]) for d in have  # depths where the rule has finished cells
                  if d != 3 and (rule, d) in stats and stats[rule, d][1]["n"]]
        if ref.mean is None or not deeper:
            continue
        stable = all(info["diverged"] == 0 and st.mean is not None for _, st, info in deeper)
        claims.append(Claim(
            f"{rule.upper()} stays stable at depth 6 and 9 (no divergence)", stable,
            "; ".join(f"depth {d}: {info['diverged']}/{info['n']} diverged"
                      for d, _, info in deeper)))
        claims.append(Claim(
            f"{rule.upper()} performs about as well at depth 6 and 9 as at depth 3 (test "
            f"accuracy within {DEPTH_TOLERANCE_PTS:g} points, by a Welch t-test at 5 %, "
            f"first {common} epochs)",
            all_of(judge(st, ref, -DEPTH_TOLERANCE_PTS / 100) for _, st, _ in deeper),
            f"depth 3 {ref.text()} %; " + "; ".join(f"depth {d} {st.text()} %"
                                                    for d, st, _ in deeper)))
    both = [d for d in have if ("danp", d) in stats and ("dinp", d) in stats
            and stats["danp", d][0].mean is not None and stats["dinp", d][0].mean is not None]
    if both:
        claims.append(Claim("DINP outperforms DANP at every depth",
                            all_of([judge(stats["dinp", d][0], stats["danp", d][0])
                                    for d in both]
                                   + ["not measured" for d in have if d not in both]),
                            "; ".join(f"depth {d}: DINP {stats['dinp', d][0].text()} vs DANP "
                                      f"{stats['danp', d][0].text()}" for d in both)
                            + "".join(f"; depth {d}: not both run yet" for d in have
                                      if d not in both)))
    return "\n".join(o for o in out if o) + "\n"


def _draw_depth(fig: Any, have: dict[int, Run], common: int) -> bool:
    axes = [fig.add_subplot(1, 2, i + 1) for i in range(2)]
    for ax, rule in zip(axes, ("danp", "dinp"), strict=True):
        for d, r in have.items():
            c = {e: v for e, v in curve(r.records, rule_pred(rule)).items() if e <= common}
            if c:
                ax.plot(list(c), [100 * v for v in c.values()], "o-", markersize=3,
                        label=f"{d} hidden layers")
        ax.set_title(f"{rule.upper()} (clean baseline), test accuracy", fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return True


def _sigma(label: str) -> float | None:
    m = re.search(r"sigma=([0-9.eE+-]+)", label)
    return float(m.group(1)) if m else None


def angle_count(run: Run) -> int:
    """Networks behind each of ``run``'s pooled angles: the alignment's repeats per seed ×
    seeds."""
    return int(run.sc["alignment"]["repeats"]) * len(run.sc.get("seeds") or [0])


def alignment_stats(run: Run) -> dict[tuple[str, str, float, int], tuple[float, float]]:
    """(profile, rule, σ, layer) → (mean angle, s.e.m.), seeds pooled."""
    by: dict[tuple[str, str, float, int], list[tuple[float, float]]] = defaultdict(list)
    default = {r["name"]: r.get("sigma", 1e-3) for r in run.sc["rules"]}
    for r in run.records:
        if r["kind"] == "alignment" and r["angle_deg"] is not None:
            s = _sigma(r["rule_label"])
            s = default.get(r["rule"], 1e-3) if s is None else s
            by[r["profile_label"], r["rule"], s, int(r["layer"])].append(
                (r["angle_deg"], r["angle_sem_deg"] or 0.0))
    return {k: (sum(m for m, _ in v) / len(v),
                math.sqrt(sum(e * e for _, e in v)) / len(v)) for k, v in by.items()}


def section_alignment(run: Run, hw: Run | None, figs: Figures, claims: list[Claim],
                      wide: Run | None = None) -> str:
    """Figs. 1 and 6 from ``run``; ``hw``: the same on hardware; ``wide``: the σ² sweep
    beyond Fig. 6's range (``alignment_range``), the evidence on its two ends."""
    st = alignment_stats(run)
    out = [f"## {TITLES['alignment']}\n", scale_line(run) + "\n"]
    prof = "ideal"
    layers = sorted({k[3] for k in st})
    sig0 = 1e-3
    lines = ["| rule | " + " | ".join(f"layer {x}" for x in layers) + " |",
             "|---|" + "---|" * len(layers)]
    for rule in ("np", "anp", "inp"):
        cells = [st.get((prof, rule, sig0, x)) for x in layers]
        if any(c is None for c in cells):
            continue
        lines.append(f"| {rule.upper()} | " + " | ".join(
            f"{m:.1f} ± {s:.1f}" for m, s in cells) + " |")  # type: ignore[misc]
    out.append(f"Angle to BP's update (degrees, mean ± s.e.m. over "
               f"{run.sc['alignment']['repeats']} fresh networks), σ = 1e-3 (σ² = 1e-6), "
               f"clean baseline:\n\n" + "\n".join(lines) + "\n")
    ok_layers, detail = [], []
    n_ang = angle_count(run)
    for x in layers:
        a = {r: st.get((prof, r, sig0, x)) for r in ("np", "anp", "inp")}
        if any(v is None for v in a.values()):
            continue
        inp, anp, np_ = (Stat(*a[r], n_ang) for r in ("inp", "anp", "np"))  # type: ignore[misc]
        # INP < ANP (t-test); ANP ≤ NP: not significantly above it
        above, over_np = judge(anp, inp), judge(anp, np_)
        v = (NOT_HOLDS if above == NOT_HOLDS or over_np == HOLDS
             else HOLDS if above == HOLDS else UNRESOLVED)
        ok_layers.append(v)
        detail.append(f"layer {x}: INP {inp.mean:.1f}, ANP {anp.mean:.1f}, NP {np_.mean:.1f}"
                      + ("" if v == HOLDS else " ✗" if v == NOT_HOLDS else " ?"))
    if ok_layers:
        claims.append(Claim(f"angle ranking {reference()['angle_ranking']} at every layer (Fig. 1; "
                            "INP below ANP and ANP not above NP by a Welch t-test at 5 %, "
                            f"{n_ang} networks a rule)", all_of(ok_layers), "; ".join(detail)))
    out.append(figs.draw("alignment_fig1.png", "angles per layer (Fig. 1)",
                         lambda fig: _draw_fig1(fig, st, prof, layers)))
    sigmas = sorted({k[2] for k in st if k[0] == prof})
    if len(sigmas) > 1:
        lay = 2 if 2 in layers else layers[0]
        lines = ["| σ² | " + " | ".join(f"{r.upper()}" for r in ("np", "anp", "inp")) + " |",
                 "|---|---|---|---|"]
        for s in sigmas:
            cells = [st.get((prof, r, s, lay)) for r in ("np", "anp", "inp")]
            lines.append(f"| {s * s:.0e} | " + " | ".join(
                "–" if c is None else f"{c[0]:.1f} ± {c[1]:.1f}" for c in cells) + " |")
        out.append(f"σ² sweep (Fig. 6), angle in layer {lay} (the second hidden layer):\n\n"
                   + "\n".join(lines) + "\n")
        out.append(figs.draw("alignment_fig6.png", "angle vs σ² (Fig. 6)",
                             lambda fig: _draw_fig6(fig, st, prof, sigmas, lay)))
        mid = [s for s in sigmas if 1e-6 <= s * s <= 1e-4 + 1e-12]
        if len(mid) >= 2:
            spread = {r: max(st[prof, r, s, lay][0] for s in mid) -
                      min(st[prof, r, s, lay][0] for s in mid) for r in ("np", "anp", "inp")
                      if all((prof, r, s, lay) in st for s in mid)}
            claims.append(Claim("angles are flat in σ² from 1e-6 to 1e-4 (Fig. 6; spread < 3°)",
                                all(v < 3.0 for v in spread.values()),
                                ", ".join(f"{r.upper()} spread {v:.1f}°"
                                          for r, v in spread.items())))
        ref = 1e-3 if 1e-3 in sigmas else None
        for s_end, what in ((sigmas[0], ("float precision errors raise the angles at the "
                             "smallest σ²")), (sigmas[-1], "the largest σ² raises the angles")):
            if ref is None or s_end == ref or not (s_end * s_end < 1e-7 or s_end * s_end > 1e-3):
                continue
            rows = [(r, st.get((prof, r, s_end, lay)), st.get((prof, r, ref, lay)))
                    for r in ("np", "anp", "inp")]
            rows = [(r, a, b) for r, a, b in rows if a is not None and b is not None]
            if rows:
                up = [a[0] - b[0] > 2 * math.hypot(a[1], b[1]) for _, a, b in rows]
                c = Claim(f"{what} (Fig. 6; σ² = {s_end * s_end:.0e} vs 1e-6, by more than 2 "
                          "combined s.e.m., for every rule)", all(up),
                          ", ".join(f"{r.upper()} {signed(a[0] - b[0])}°" for r, a, b in rows))
                if not all(up) and wide is not None:
                    both = {**alignment_stats(wide), **st}
                    ev = sigma_evidence(both, prof, ("np", "anp", "inp"), lay, ref,
                                        upward=s_end > ref)
                    c.why = [f"{ev} ({wide.folder.name})"] if ev else []
                claims.append(c)
        if wide is not None:
            wst = alignment_stats(wide)
            wsig = sorted({k[2] for k in wst if k[0] == prof and k[3] == lay})
            lines = ["| σ² | NP | ANP | INP |", "|---|---|---|---|"]
            for s in wsig:
                cells = [wst.get((prof, r, s, lay)) for r in ("np", "anp", "inp")]
                lines.append(f"| {s * s:.0e} | " + " | ".join(
                    "–" if c_ is None else f"{c_[0]:.1f} ± {c_[1]:.1f}" for c_ in cells) + " |")
            out.append(f"Beyond Fig. 6's range, the angle in layer {lay} at σ² from "
                       f"{wsig[0] ** 2:.0e} to {wsig[-1] ** 2:.0e}: {scale_line(wide)}\n\n"
                       + "\n".join(lines) + "\n")
    if hw is not None:
        hst = alignment_stats(hw)
        profs = list(dict.fromkeys(k[0] for k in hst))
        hsig = sorted({k[2] for k in hst})
        out.append("\n### The same angles on hardware\n\n" + scale_line(hw) + "\n\nNoisy "
                   "baseline (no clean pass exists on a chip); angle to BP's update per layer, "
                   "mean ± s.e.m.:\n")
        hl = sorted({k[3] for k in hst})
        lines = ["| profile | σ | rule | " + " | ".join(f"layer {x}" for x in hl) + " |",
                 "|---|---|---|" + "---|" * len(hl)]
        for p in profs:
            for s in hsig:
                for rule in ("np", "anp", "inp"):
                    cells = [hst.get((p, rule, s, x)) for x in hl]
                    if all(c is None for c in cells):
                        continue
                    lines.append(f"| {p} | {s:g} | {rule.upper()} | " + " | ".join(
                        "–" if c is None else f"{c[0]:.1f} ± {c[1]:.1f}" for c in cells) + " |")
        out.append("\n".join(lines) + "\n")
        out.append(figs.copy(hw, "alignment.png", "alignment on hardware"))
        for p in profs:
            for s_ in hsig:
                got = {r: [hst.get((p, r, s_, x)) for x in hl] for r in ("np", "anp", "inp")}
                if any(v is None for vals in got.values() for v in vals):
                    continue
                n_hw = angle_count(hw)
                ang = {r: [Stat(*c, n_hw) for c in cs] for r, cs in got.items()}  # type: ignore[misc]
                best = all_of(judge(ang[r][i], ang["anp"][i])
                              for r in ("np", "inp") for i in range(len(hl)))
                claims.append(Claim(
                    f"on {p} with σ = {s_:g} (noisy baseline), ANP is the best-aligned rule at "
                    "every layer (below NP and INP by a Welch t-test at 5 %, "
                    f"{n_hw} networks a rule) — beyond the paper, whose ideal-device ranking "
                    "has INP first", best, "; ".join(
                        f"layer {x}: ANP {ang['anp'][i].mean:.1f}, INP "
                        f"{ang['inp'][i].mean:.1f}, NP {ang['np'][i].mean:.1f}"
                        for i, x in enumerate(hl)), beyond=True))
    return "\n".join(o for o in out if o) + "\n"


def _draw_fig1(fig: Any, st: dict, prof: str, layers: list[int]) -> bool:
    ax = fig.add_subplot(1, 1, 1)
    width = 0.25
    for j, rule in enumerate(("np", "anp", "inp")):
        vals = [st.get((prof, rule, 1e-3, x)) for x in layers]
        if any(v is None for v in vals):
            continue
        ax.bar([i + (j - 1) * width for i in range(len(layers))], [v[0] for v in vals],
               width, yerr=[v[1] for v in vals], capsize=3, label=rule.upper())
    ax.set_xticks(range(len(layers)), [f"layer {x}" for x in layers])
    ax.set_ylabel("angle to BP update (°)")
    ax.set_title("untrained 784-1024×3-10, Fashion-MNIST batch of 1000, σ² = 1e-6",
                 fontsize=9)
    ax.legend(fontsize=8)
    return True


def _draw_fig6(fig: Any, st: dict, prof: str, sigmas: list[float], lay: int) -> bool:
    ax = fig.add_subplot(1, 1, 1)
    for rule in ("np", "anp", "inp"):
        pts = [(s * s, st[prof, rule, s, lay]) for s in sigmas if (prof, rule, s, lay) in st]
        if pts:
            ax.errorbar([p[0] for p in pts], [p[1][0] for p in pts],
                        yerr=[p[1][1] for p in pts], fmt="o-", capsize=3, label=rule.upper())
    ax.set_xscale("log")
    ax.set_xlabel("σ² (perturbation variance)")
    ax.set_ylabel(f"angle to BP update, layer {lay} (°)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return True


def section_sarcos(run: Run, figs: Figures, claims: list[Claim]) -> str:
    out = [f"## {TITLES['sarcos']}\n", scale_line(run) + "\n",
           ("Losses are the mean per-sample sum of squares over the 7 standardised torques of "
           "the generated stand-in; the paper's are on SARCOS itself, so only the ranking "
           "compares.\n")]
    lines = [("| rule | η | seeds (diverged) | final test loss ± s.e.m. | min–max | test loss "
             "at the chosen epoch ± s.e.m. | paper final test loss |"),
             "|---|---|---|---|---|---|---|"]
    fs: dict[str, Stat] = {}
    paper = reference()["sarcos_final_test_loss"]
    for rule in rules_in(run):
        info = cell_info(run, rule_pred(rule))
        f = stat(final_values(run, rule_pred(rule), "test_loss"))
        ch = stat(seed_values(run, rule_pred(rule), "test_loss"))
        if f.mean is not None:
            fs[rule] = f
        lines.append(f"| {rule.upper()} | {lr_text(info['lr'])} | {info['n']} "
                     f"({info['diverged']}) | {f.text(1, '{:.4f}')} | "
                     f"{num(f.lo, '{:.4f}')}–{num(f.hi, '{:.4f}')} | {ch.text(1, '{:.4f}')} | "
                     f"{paper.get(rule, float('nan')):.2f} |")
    out.append("\n".join(lines) + "\n")
    finals = {r: st.mean for r, st in fs.items()}
    ours = sorted(finals, key=lambda r: finals[r])  # type: ignore[arg-type, return-value]
    theirs = sorted((r for r in paper if r in finals), key=lambda r: paper[r])
    out.append(f"Ranking by final test loss (best first) — ours: "
               f"{' < '.join(r.upper() for r in ours)}; paper: "
               f"{' < '.join(r.upper() for r in theirs)}.\n")
    out.append(figs.copy(run, "learning_curves.png", "SARCOS-style learning curves"))
    for plain, dec in (("np", "dnp"), ("anp", "danp"), ("bp", "dbp")):
        if plain in fs and dec in fs:
            c = Claim(f"decorrelation lowers the final test loss of {plain.upper()} "
                      "(SARCOS-style)", judge(fs[plain], fs[dec]),
                      f"{plain.upper()} {fs[plain].text(1, '{:.4f}')}, {dec.upper()} "
                      f"{fs[dec].text(1, '{:.4f}')}")
            if c.verdict != HOLDS:
                c.why = pair_evidence(run, dec, plain, loss=True)
            claims.append(c)
    if {"dnp", "danp", "bp"} <= set(fs):
        bp = fs["bp"]
        bound = Stat(1.25 * bp.mean, None if bp.sem is None else 1.25 * bp.sem, bp.n)  # type: ignore[operator]
        c = Claim("DNP and DANP come close to BP (SARCOS-style; within 25 % of BP's final "
                  "test loss)", all_of(judge(bound, fs[r]) for r in ("dnp", "danp")),
                  f"DNP {fs['dnp'].text(1, '{:.4f}')}, DANP "
                  f"{fs['danp'].text(1, '{:.4f}')}, BP {bp.text(1, '{:.4f}')}")
        if c.verdict != HOLDS:
            c.why = [f"{r.upper()} vs BP — {x}" for r in ("dnp", "danp")
                     if judge(bound, fs[r]) != HOLDS
                     for x in pair_evidence(run, r, "bp", loss=True)]
        claims.append(c)
    return "\n".join(o for o in out if o) + "\n"


def section_convnet(run: Run, figs: Figures, claims: list[Claim]) -> str:
    out = [f"## {TITLES['convnet']}\n", scale_line(run) + "\n",
           ("Paper: CIFAR-100 (100 classes), so its accuracies are far lower than any "
           "10-class number here; compare orderings only.\n"),
           accuracy_table(run, "convnet", baselines=("clean", None)),
           early_table(run, rules_in(run)),
           figs.copy(run, "learning_curves.png", "convnet learning curves")]
    st = {r: stat(seed_values(run, rule_pred(r))) for r in rules_in(run)}
    if "danp" in st and "dnp" in st:
        claims.append(Claim("DANP outperforms DNP on the convnet", judge(st["danp"], st["dnp"]),
                            f"DANP {st['danp'].text()} %, DNP {st['dnp'].text()} %"))
    return "\n".join(o for o in out if o) + "\n"


def loss_table(run: Run, profiles: Sequence[str]) -> tuple[str, dict[tuple[str, str], float]]:
    """Regression: per profile and rule, η, seeds (diverged), final and lowest test loss."""
    lines = [("| profile | rule | η | seeds (diverged) | final test loss ± s.e.m. | min–max |"),
             "|---|---|---|---|---|---|"]
    finals: dict[tuple[str, str], Stat] = {}
    for prof in profiles:
        for rule in rules_in(run):
            pred = rule_pred(rule, "any", prof)
            info = cell_info(run, pred)
            if not info["n"]:
                continue
            f = stat(final_values(run, pred, "test_loss"))
            if f.mean is not None:
                finals[prof, rule] = f
            lines.append(f"| {prof} | {rule.upper()} | {lr_text(info['lr'])} | {info['n']} "
                         f"({info['diverged']}) | {f.text(1, '{:.4f}')} | "
                         f"{num(f.lo, '{:.4f}')}–{num(f.hi, '{:.4f}')} |")
    return "\n".join(lines) + "\n", finals


def section_other_hw(run: Run, figs: Figures, claims: list[Claim]) -> str:
    profiles = list(dict.fromkeys(r["profile_label"] for r in run.cells))
    out = [f"## Hardware: {run.experiment[3:].replace('_', ' ')}\n", scale_line(run) + "\n",
           ("Every pass reads the device's own noise; every perturbation rule runs with the "
           "noisy baseline.\n")]
    if run.manifest["data"]["task"] == "classification":
        out.append(accuracy_table(run, None, baselines=("noisy", None), profiles=profiles))
        for prof in profiles:
            ia, ib = (cell_info(run, rule_pred(r, "noisy", prof)) for r in ("danp", "dnp"))
            if not ia["n"] or not ib["n"]:
                continue
            a = stat(seed_values(run, rule_pred("danp", "noisy", prof)))
            b = stat(seed_values(run, rule_pred("dnp", "noisy", prof)))
            claims.append(Claim(f"on {prof}, DANP beats DNP ({run.experiment[3:]})",
                                _lead(ia, ib, judge(a, b)),
                                f"DANP {a.text()} %, DNP {b.text()} %",
                                beyond=True))
    else:
        table, finals = loss_table(run, profiles)
        out.append(table)
        for prof in profiles:
            none = Stat(None, None, 0)
            a, b = finals.get((prof, "danp"), none), finals.get((prof, "dnp"), none)
            ia = cell_info(run, rule_pred("danp", "any", prof))
            ib = cell_info(run, rule_pred("dnp", "any", prof))
            if a.mean is None and b.mean is None:
                continue
            claims.append(Claim(
                f"on {prof}, DANP ends with a lower test loss than DNP ({run.experiment[3:]})",
                _lead(ia, ib, judge(b, a)),  # a lower loss beats
                f"DANP {a.text(1, '{:.4f}')} ({ia['diverged']}/{ia['n']} diverged), DNP "
                f"{b.text(1, '{:.4f}')} ({ib['diverged']}/{ib['n']} diverged)", beyond=True))
    out.append(figs.copy(run, "learning_curves.png", run.experiment))
    return "\n".join(o for o in out if o) + "\n"


# ------------------------------------------------------------------ document
def render(runs: dict[str, Run], figs: Figures, argv: Sequence[str]) -> str:
    claims: list[Claim] = []
    body: list[str] = []
    if any(k.startswith("table2") for k in runs):
        body.append(section_table2(runs))
    for key in ("three_layer", "three_layer_he"):
        if key in runs:
            init = runs[key].sc["model"].get("init", "he")
            bias = "with" if runs[key].sc["model"].get("bias", True) else "without"
            other = runs.get("three_layer_he" if key == "three_layer" else "three_layer")
            body.append(section_three_layer(runs[key], figs, claims,
                                            f" — init {init}, {bias} bias", other))
    if "noisy_baseline" in runs:
        body.append(section_noisy_baseline(runs["noisy_baseline"], figs, claims,
                                           runs.get("three_layer")))
    if "hw_noisy_baseline" in runs:
        body.append(section_hw_noisy_baseline(runs["hw_noisy_baseline"], figs, claims,
                                              runs.get("noisy_baseline")))
    if "alignment" in runs:
        body.append(section_alignment(runs["alignment"], runs.get("hw_alignment"), figs,
                                      claims, runs.get("alignment_range")))
    if "single_layer" in runs:
        body.append(section_single_layer(runs["single_layer"], figs, claims))
    body.append(section_depth(runs, figs, claims))
    if "sarcos" in runs:
        body.append(section_sarcos(runs["sarcos"], figs, claims))
    if "convnet" in runs:
        body.append(section_convnet(runs["convnet"], figs, claims))
    for key in ("hw_three_layer", "hw_single_layer", "hw_depth_6", "hw_depth_9",
                "hw_convnet", "hw_sarcos"):
        if key in runs:
            body.append(section_other_hw(runs[key], figs, claims))

    head = ["# Reproduction of the node-perturbation paper\n",
            ("Generated by `analogsim report` from the result folders listed below; every "
            "measured number is read from their `records.jsonl` / `lr_search.jsonl` / "
            "`manifest.json`, the paper's numbers are data "
            "(`analogsim/report/paper_reference.yaml`, each with its table or figure). "
            "Do not edit by hand — rerun:\n"),
            "```bash\n" + "\n".join(r.command() for r in runs.values()) +
            f"\nanalogsim report {' '.join(argv)}\n```\n",
            ("Data: Fashion-MNIST (28×28 grey images, 10 classes, pixels scaled to [0, 1], no "
            "standardisation) stands in for CIFAR-10/100, which these runs do not use (their readers "
            "are in `analogsim.data`); "
            "`robot-dynamics` (generated 7-joint arm inverse dynamics, 21 → 7) stands in for "
            "SARCOS. The paper ran 5 seeds (3 for SARCOS) on the full sets for many more "
            "epochs; the scale of each run here (subset sizes, epochs, seeds) is stated in "
            "its section and in the table below. Every accuracy is a seed mean ± its standard "
            "error (s.e.m., n seeds): per seed, the test accuracy at the epoch whose "
            "validation accuracy is best (the validation split is carved from the training "
            "set; the test split chooses nothing). A claim holds only when a two-sided "
            "Welch t-test at 5 % gives the difference its claimed sign (it exceeds t times the "
            "combined s.e.m.; t = 2.78 for three seeds a side with equal spreads), does not hold "
            "when it gives the opposite sign; otherwise it is \"not resolved at this scale\" "
            "(always with one seed). Each check is its own test: over many checks a few "
            "verdicts may come out by chance.\n")]
    scale = [("| experiment | scenario | data (train/validation/test) | epochs | seeds | cells done "
             "(diverged) | cell time | wall time | device, jobs × threads |"),
             "|---|---|---|---|---|---|---|---|---|"]
    total = 0.0
    spans = [sp for sp in (r.span() for r in runs.values()) if sp is not None]
    elapsed = ((max(b for _, b in spans) - min(a for a, _ in spans)).total_seconds()
               if spans else 0.0)
    for key, r in runs.items():
        el = r.elapsed_s()
        d = r.manifest["data"]
        total += r.wall_s()
        scale.append(f"| {key} | `{r.manifest['scenario_file']}` | {r.sc['dataset']['name']} "
                     f"{d['n_train']}/{d.get('n_val', 0)}/{d['n_test']} | {r.sc['epochs']} | {len(r.sc['seeds'])} "
                     f"| {len(r.cells)}/{len(r.manifest['cells'])} "
                     f"({sum(c['status'] == 'diverged' for c in r.cells)}) | "
                     f"{dur(r.wall_s())} | {'–' if el is None else dur(el)} | "
                     f"{r.manifest['device']}, {r.manifest['jobs']} × "
                     f"{r.manifest['threads_per_cell']} |")
    versions = next(iter(runs.values())).manifest["versions"] if runs else {}
    head.append("\n".join(scale) + "\n")
    head.append(f"Total: {dur(total)} of cell time (the sum of the cells' own wall times) in "
                f"{dur(elapsed)} of wall time, from the first run's start to the last one's "
                "end (manifests' created/updated; a resumed run's wall time counts from its "
                "first start). Software: " + ", ".join(
                    f"{k} {v}" for k, v in versions.items() if k != "platform") + ".\n")
    for beyond, title, intro in (
            (False, "## Which of the paper's claims hold here",
             ("Each check's criterion is in its wording (thresholds are constants of the "
             "script).")),
            (True, "## Beyond the paper: the hardware study",
             ("On the analog profiles every pass reads the device's own noise and no clean pass "
             "exists, so every perturbation rule runs with the noisy baseline."))):
        mine = [c for c in claims if c.beyond == beyond]
        if not mine:
            continue
        lines = ["| check | verdict | evidence (ours) |", "|---|---|---|"]
        lines += [f"| {c.text} | {verdict(c)} | {c.evidence} |" for c in mine]
        n_ok = sum(c.verdict == HOLDS for c in mine)
        n_open = sum(c.verdict == UNRESOLVED for c in mine)
        head.append(f"{title}\n\n{n_ok} of {len(mine)} checks hold, {n_open} are not "
                    f"resolved at this scale. {intro}\n\n"
                    + "\n".join(lines) + "\n")
        head.append(why_section(mine))
    head.append(
        "## Notes on how far these numbers carry\n\n"
        "- **Scale.** The CPU runs take a few hundred steps of batch 1000; the paper took "
        "thousands (about 50 steps per epoch over many epochs). Rankings late in training, "
        "and anything that needs many steps, may change at full scale "
        "(`benchmarks/gpu_paper.sh`).\n"
        "- **η.** Each η is judged by a trial of the length stated in its section (a rule "
        "whose largest stable η grows during training is judged by that trial's end), on the "
        "validation split; the accuracy-vs-η figures show every trial.\n"
        "- **Code version.** A results folder records the package versions, the full "
        "scenario and the git commit of every start of its run (manifest `code`; `+dirty`: "
        "the package differed from that commit). Device-model changes made after a run "
        "change its hardware numbers.\n")
    searches = [search_section(r, key, figs) for key, r in runs.items()]
    if any(searches):
        body.append("## η searches\n\nPer profile × rule × baseline: the validation accuracy "
                    "(or loss) at the end of each trial, the chosen η circled.\n\n"
                    + "\n".join(x for x in searches if x))
    missing = [k for k in EXPERIMENTS if k not in runs]
    if missing:
        head.append("Not run at this scale (no result folder given): "
                    + ", ".join(f"`{m}`" for m in missing)
                    + ". `bash benchmarks/gpu_paper.sh` runs the full-scale grid on one GPU in "
                    "timed parts (`BUDGET` seconds each, 440 by default), each resuming where the last stopped "
                    "(the hardware versions other than Fig. 4's with `--all`); every scenario "
                    "header under `scenarios/paper/cpu/` gives its CPU command, resumable with "
                    "`--resume`.\n")
    return "\n".join(head + [b for b in body if b])


def why_section(claims: Sequence[Claim]) -> str:
    """For each check that does not hold or is not resolved, the evidence its records hold
    on why (η, training budget, initialisation, σ² range: ``why.py``)."""
    open_ = [c for c in claims if c.verdict in (NOT_HOLDS, UNRESOLVED) and c.why]
    if not open_:
        return ""
    out = [("### Why these checks come out so\n\nFor each check that does not hold or is not "
            "resolved: what the records say about η (the η-search trials on the validation "
            "split), the training budget (the gap epoch by epoch), the initialisation (the "
            "run that differs only in it) and, for the angles, the σ² range.\n")]
    for c in open_:
        out.append(f"- **{c.text}** ({c.verdict}):\n" + "\n".join(f"  - {w}" for w in c.why))
    return "\n".join(out) + "\n"


def search_section(run: Run, key: str, figs: Figures) -> str:
    """The η searches of ``run``: chosen η and trial count per group, and the figure."""
    groups = read_search(run.folder)
    if not groups:
        return ""
    lines = [f"### {key}\n",
             "| group | trials (diverged) | chosen η | validation at the chosen η |",
             "|---|---|---|---|"]
    for g, rows in groups.items():
        trials = [r for r in rows if r["kind"] == "lr_trial"]
        ch = rows[-1]
        val = (pct(ch["val_accuracy"]) + " %" if ch.get("val_accuracy") is not None else
               num(ch.get("val_loss"), "{:.4g}"))
        lines.append(f"| {g} | {len(trials)} ({sum(bool(r['diverged']) for r in trials)}) | "
                     f"{ch['lr']:.4g} | {val} |")
    out = "\n".join(lines) + "\n"
    if figs.img is not None:
        path = plot_lr_search([r for rows in groups.values() for r in rows],
                              figs.img / f"{key}_lr_search.png")
        if path is not None:
            out += "\n" + figs.link(path, f"η search, {key}") + "\n"
    return out


def compact(runs: dict[str, Run]) -> str:
    """One short table: experiment, profile, rule, seeds, diverged, η, peak/final metric."""
    lines = [("| experiment | profile | rule | seeds (div.) | η | test at the chosen epoch, "
              "seed-mean curve (epoch) | final test |"),
             "|---|---|---|---|---|---|---|"]
    for key, r in runs.items():
        for s in r.summary:
            acc = s.metric == "accuracy"

            def f(v: float | None, acc: bool = acc) -> str:
                return "–" if v is None else (f"{100 * v:.1f} %" if acc else f"{v:.4g}")

            lines.append(f"| {key} | {s.profile} | {s.rule} | {s.seeds} ({s.diverged}) | "
                         f"{s.lr or '–'} | {f(s.peak_mean_curve)} ({s.peak_mean_curve_epoch}) "
                         f"| {f(s.final_mean)} |")
        if not r.summary:
            lines.append(f"| {key} | – | (no finished cells) | – | – | – | – |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``analogsim report`` without the rest of the CLI (its arguments as ``argv``)."""
    from analogsim.report.cli import add_arguments

    ap = argparse.ArgumentParser(prog="analogsim report", description=__doc__.splitlines()[0])
    add_arguments(ap)
    args = ap.parse_args(argv)
    return report(args, list(sys.argv[1:] if argv is None else argv))


def report(args: argparse.Namespace, shown: list[str]) -> int:
    """Render the report of ``args.results``; ``shown``: the arguments quoted in it."""
    runs: dict[str, Run] = {}
    for folder in args.results:
        try:
            run = load_run(Path(folder))
        except (OSError, ValueError, KeyError) as err:
            raise ScenarioError(f"{folder}: unreadable results folder: {err}") from None
        if run is None:
            sys.stderr.write(f"{folder}: no manifest.json, skipped\n")
            continue
        if not run.cells:
            sys.stderr.write(f"{folder}: no finished cell yet (a run in progress), skipped\n")
            continue
        if run.experiment in runs:
            sys.stderr.write(f"{folder}: a second run of {run.experiment}; the first "
                             f"({runs[run.experiment].folder}) is used\n")
            continue
        runs[run.experiment] = run
    if not runs:
        raise ScenarioError("no results folder with a manifest.json and a finished cell among "
                            + ", ".join(args.results))
    order = {k: i for i, k in enumerate(EXPERIMENTS)}
    runs = dict(sorted(runs.items(), key=lambda kv: order.get(kv[0], len(order))))
    if args.compact:
        text = compact(runs)
    else:
        base = Path(args.out).parent if args.out else Path.cwd()
        figs = Figures(Path(args.img) if args.img else None, base)
        text = render(runs, figs, shown)
    if args.out:
        Path(args.out).write_text(text)
        sys.stderr.write(f"wrote {args.out}\n")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
