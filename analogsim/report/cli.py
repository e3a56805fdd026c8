"""``analogsim report RESULTS...``: the reproduction report from results folders."""

from __future__ import annotations

import argparse
import sys


def _report(args: argparse.Namespace) -> int:
    from analogsim.report.paper import report

    if args.html:
        return _html(args)
    shown = [*args.results]
    if args.out:
        shown += ["--out", args.out]
    if args.img:
        shown += ["--img", args.img]
    if args.compact:
        shown.append("--compact")
    return report(args, shown)


def _html(args: argparse.Namespace) -> int:
    from pathlib import Path

    from analogsim.report.html import write

    for folder in args.results:
        try:
            print(f"wrote {write(Path(folder))}")
        except FileNotFoundError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    return 0


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The report's command-line arguments."""
    ap.add_argument("results", nargs="+", help="result folders of scenarios/paper/*.yaml runs")
    ap.add_argument("--out", help="write the Markdown here (default: stdout)")
    ap.add_argument("--img", help="folder for the figures (linked relative to --out)")
    ap.add_argument("--compact", action="store_true", help="only one short table")
    ap.add_argument("--html", action="store_true",
                    help="instead: write a self-contained report.html into each results folder "
                         "(scenario, manifest, tables, plots embedded, claim checks)")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``report`` to the main CLI."""
    rep = subparsers.add_parser(
        "report", help="the paper-reproduction report (Markdown) from results folders, or "
                       "one HTML page per folder (--html)",
        description="Render docs/reproduction.md from the results folders of "
                    "scenarios/paper/ runs: the paper's numbers beside ours, every claim "
                    "judged against the seeds' spread.")
    add_arguments(rep)
    rep.set_defaults(handler=_report)


