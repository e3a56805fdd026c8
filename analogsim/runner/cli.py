"""``analogsim run SCENARIO`` and ``analogsim plot RESULTS_DIR``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analogsim.errors import ScenarioError


def _report(folder: Path) -> None:
    """Figures, summary.csv/summary.md, and the Markdown table on stdout."""
    from analogsim.plots import plot_lr_search, plot_results, write_summary
    from analogsim.runner.lr_store import read_search

    figures = plot_results(folder)
    searches = [r for rows in read_search(folder).values() for r in rows]
    lr_fig = plot_lr_search(searches, folder / "lr_search.png") if searches else None
    if lr_fig is not None:
        figures.append(lr_fig)
    csv_path, table = write_summary(folder)
    for p in [*figures, csv_path, csv_path.with_suffix(".md")]:
        sys.stderr.write(f"wrote {p}\n")
    sys.stdout.write("\n" + table)
    sys.stdout.flush()


def _run(args: argparse.Namespace) -> int:
    from analogsim.runner.run import run_scenario

    report = run_scenario(args.scenario, args.out, device=args.device, executor=args.executor,
                          jobs=args.jobs, threads=args.threads, resume=args.resume,
                          fresh=args.fresh, verbose=args.verbose,
                          show_progress=not args.quiet,
                          ray_address=args.ray_address)
    sys.stderr.write(f"{len(report.ran)} cell(s) run, {len(report.reused)} reused, "
                     f"{len(report.diverged)} diverged, {len(report.failed)} failed in "
                     f"{report.wall_s:.1f} s → {report.out}\n")
    if not args.no_plot and (report.ran or report.reused):
        _report(report.out)
    return 0 if not report.failed else 1


def _plot(args: argparse.Namespace) -> int:
    from analogsim.runner.records import RECORDS, parse_lines

    folder = Path(args.results)
    if not folder.is_dir():
        raise ScenarioError(f"{folder}: no such results folder")
    path = folder / RECORDS
    rows, dropped = parse_lines(path.read_text(encoding="utf-8")) if path.is_file() else ([], 0)
    if dropped:  # plotted from what is intact; the file itself is left as it is
        sys.stderr.write(f"warning: {path}: {dropped} damaged line(s) left out\n")
    if not any(r.get("kind") == "cell" for r in rows):
        raise ScenarioError(f"{folder}: no finished cells in records.jsonl to plot")
    _report(folder)
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be ≥ 1")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``run`` and ``plot`` to the main CLI."""
    run = subparsers.add_parser(
        "run", help="run a scenario's grid (profiles × rules × baselines × seeds)",
        description="Expand SCENARIO into cells, run the unfinished ones, write records.jsonl "
                    "and manifest.json, then the plots (*.png), summary.csv and summary.md "
                    "(the results table, also printed) into the results folder.")
    run.add_argument("scenario", help="scenario YAML file")
    run.add_argument("--out", help="results folder (default: the scenario's output, else "
                     "results/<name>)")
    run.add_argument("--device", choices=("cpu", "cuda"),
                     help="override the scenario's (default: the scenario's device)")
    run.add_argument("--executor", choices=("local", "ray"), default="local",
                     help="local processes or Ray tasks")
    run.add_argument("--jobs", type=_positive,
                     help="cells in parallel (local processes; Ray: cells per GPU / CPUs of "
                     "a local instance); default: one per CPU core on CPU, 1 on CUDA")
    run.add_argument("--threads", type=_positive,
                     help="torch CPU threads per cell (default: cores // jobs); the same "
                     "count gives the same numbers")
    state = run.add_mutually_exclusive_group()
    state.add_argument("--resume", action="store_true",
                       help="keep the finished cells in --out, run only the others")
    state.add_argument("--fresh", action="store_true",
                       help="discard earlier results in --out and start over")
    run.add_argument("--ray-address", help="Ray cluster address (default $RAY_ADDRESS, "
                     "else a local instance)")
    talk = run.add_mutually_exclusive_group()
    talk.add_argument("--quiet", action="store_true", help="no progress display")
    talk.add_argument("--verbose", action="store_true",
                      help="each cell's per-epoch lines, and plain progress lines")
    run.add_argument("--no-plot", action="store_true",
                     help="skip the figures, summary.csv and summary.md")
    run.set_defaults(handler=_run)

    plot = subparsers.add_parser(
        "plot", help="figures and summary table of a results folder",
        description="Redraw the figures (*.png) and rewrite summary.csv and summary.md (the "
                    "results table, also printed) of a results folder from its records.jsonl.")
    plot.add_argument("results", help="a folder written by `analogsim run`")
    plot.set_defaults(handler=_plot)
