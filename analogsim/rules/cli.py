"""``analogsim align``: update-alignment angles of the NP family against BP (paper Fig. 1)."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import pydantic
import torch

from analogsim.config.rulespec import RuleSpec
from analogsim.config.yaml_io import format_validation_error
from analogsim.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "align", help="angles between each rule's update and BP's, per layer",
        description="Angle between each perturbation rule's weight update and backprop's on the "
                    "same network and batch, per layer, mean ± s.e.m. over repeats (fresh "
                    "networks). Writes alignment.csv and alignment.png into --out and prints "
                    "the table.")
    p.add_argument("--dataset", default="digits", help="data set name (`analogsim data list`)")
    p.add_argument("--sizes", default="256,256,256",
                   help="hidden layer widths, comma separated (input/output from the data)")
    p.add_argument("--profile", default="ideal", help="device profile name or YAML path")
    p.add_argument("--rules", default="np,anp,inp", help="rules compared with BP, comma separated")
    p.add_argument("--repeats", type=int, default=10, help="networks (seeds) averaged over")
    p.add_argument("--batch", type=int, default=1000, help="training samples in the batch")
    p.add_argument("--sigma", type=float, default=1e-3, help="perturbation std σ")
    p.add_argument("--baseline", default="auto", choices=["clean", "noisy", "auto"],
                   help="the unperturbed pass: clean, noisy (hardware), or auto (clean on the "
                        "ideal profile, else noisy)")
    p.add_argument("--out", default="results/align", help="results folder")
    p.add_argument("--fresh", action="store_true",
                   help="replace an earlier alignment.csv/alignment.png in --out")
    p.set_defaults(handler=run_align)


def run_align(args: argparse.Namespace) -> int:
    import analogsim
    from analogsim import data, models
    from analogsim.rules.align import alignment

    try:
        hidden = [int(s) for s in args.sizes.split(",") if s]
    except ValueError:
        raise ConfigError(f"--sizes: expected comma-separated integers, got {args.sizes!r}") from None
    if any(h < 1 for h in hidden):
        raise ConfigError(f"--sizes: every width must be ≥ 1, got {args.sizes!r}")
    if args.repeats < 1 or args.batch < 1:
        raise ConfigError("--repeats and --batch must be ≥ 1")
    specs = _rule_specs(args.rules, args.sigma, args.baseline)
    out = Path(args.out)
    earlier = [out / n for n in ("alignment.csv", "alignment.png") if (out / n).exists()]
    if earlier and not args.fresh:
        raise ConfigError(f"{out} already holds {earlier[0].name}; pass --fresh to replace it, "
                          "or another --out")
    profile = analogsim.load_profile(args.profile)
    baseline = args.baseline
    if baseline == "auto":
        baseline = "clean" if profile.is_ideal else "noisy"
    ds = data.load(args.dataset, "train")
    x, t = ds.x[: args.batch], ds.y[: args.batch]
    sizes = [x.shape[1], *hidden, t.shape[1]]

    def factory(rep: int) -> torch.nn.Module:
        return analogsim.analogize(models.mlp(sizes, seed=rep), profile,
                                   generator=torch.Generator().manual_seed(rep))

    res = alignment(factory, x, t, rules=specs, repeats=args.repeats)
    out.mkdir(parents=True, exist_ok=True)
    rows = [(name, layer + 1, m, s, args.repeats, profile.name, baseline)
            for name, a in res.items() for layer, (m, s) in enumerate(zip(a.mean(), a.sem()))]
    tmp = out / "alignment.csv.tmp"
    with tmp.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["rule", "layer", "angle_mean_deg", "angle_sem_deg", "repeats", "profile",
                    "baseline"])
        w.writerows(rows)
    tmp.replace(out / "alignment.csv")
    _alignment_bars({n: (a.mean(), a.sem()) for n, a in res.items()}, out / "alignment.png",
                   title=f"{args.dataset}, {'-'.join(map(str, sizes))}, profile {profile.name}, "
                         f"{baseline} baseline\n, σ {args.sigma:g}, batch {len(x)}, "
                         f"mean ± s.e.m. over {args.repeats} repeats")
    print(f"angle to BP's update (°), mean ± s.e.m. over {args.repeats} repeats; profile "
          f"{profile.name}, {baseline} baseline, σ {args.sigma:g}, batch {len(x)}\n")
    print(f"| rule | {' | '.join(f'layer {i + 1}' for i in range(len(sizes) - 1))} |")
    print("|---" * len(sizes) + "|")
    for name, a in res.items():
        cells = " | ".join(f"{m:.1f} ± {s:.1f}" for m, s in zip(a.mean(), a.sem()))
        print(f"| {name.upper()} | {cells} |")
    print(f"wrote {out / 'alignment.csv'} and {out / 'alignment.png'}")
    return 0


_FLAGS = {"name": "--rules", "sigma": "--sigma", "baseline": "--baseline"}


def _rule_specs(rules: str, sigma: float, baseline: str) -> list[RuleSpec]:
    """The rules of ``--rules`` (comma separated) with ``--sigma`` and ``--baseline``, checked
    before anything runs: a bad one raises ``ConfigError`` naming its option."""
    names = [r.strip() for r in rules.split(",") if r.strip()]
    if not names:
        raise ConfigError(f"--rules: name at least one rule (bp, np, inp, anp, dbp, dnp, dinp, "
                          f"danp), got {rules!r}")
    specs = []
    for name in names:
        data = {"name": name, "sigma": sigma, "baseline": baseline}
        try:
            specs.append(RuleSpec.model_validate(data))
        except pydantic.ValidationError as exc:
            line = format_validation_error("align", exc, data, RuleSpec).splitlines()[0]
            field = line.split(": ", 2)[1]
            raise ConfigError(line.replace(f"align: {field}: ",
                                           f"{_FLAGS.get(field, field)}: ", 1)) from None
    return specs


def _alignment_bars(stats: dict[str, tuple[list[float], list[float]]], path: Path,
                    title: str) -> None:
    """Grouped bars: angle to BP per layer (x) and rule (colour), error bars = s.e.m."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_layers = len(next(iter(stats.values()))[0])
    width = 0.8 / len(stats)
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * n_layers, 3.4))
    for i, (name, (mean, sem)) in enumerate(stats.items()):
        xs = [layer + (i - (len(stats) - 1) / 2) * width for layer in range(n_layers)]
        ax.bar(xs, mean, width, yerr=sem, capsize=3, label=name.upper())
    ax.set_xticks(range(n_layers), [f"layer {i + 1}" for i in range(n_layers)])
    ax.set_ylabel("angle to BP update (°)")
    top = max(m + e for mean, sem in stats.values() for m, e in zip(mean, sem))
    ax.set_ylim(0, max(90.0, 1.05 * top))
    ax.set_title(title, fontsize=8)
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
