"""``analogsim report RESULTS...``: the reproduction report from results folders."""

from __future__ import annotations

import argparse


def _report(args: argparse.Namespace) -> int:
    from analogsim.report.paper import report

    shown = [*args.results]
    if args.out:
        shown += ["--out", args.out]
    if args.img:
        shown += ["--img", args.img]
    if args.compact:
        shown.append("--compact")
    return report(args, shown)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The report's command-line arguments."""
    ap.add_argument("results", nargs="+", help="result folders of scenarios/paper/*.yaml runs")
    ap.add_argument("--out", help="write the Markdown here (default: stdout)")
    ap.add_argument("--img", help="folder for the figures (linked relative to --out)")
    ap.add_argument("--compact", action="store_true", help="only one short table")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``report`` to the main CLI."""
    rep = subparsers.add_parser(
        "report", help="the paper-reproduction report (Markdown) from results folders",
        description="Render docs/reproduction.md from the results folders of "
                    "scenarios/paper/ runs: the paper's numbers beside ours, every claim "
                    "judged against the seeds' spread.")
    add_arguments(rep)
    rep.set_defaults(handler=_report)


