"""The command line's help, version and sub-command handling."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator

import pytest

import analogsim
from analogsim.cli import build_parser, main


def _parsers(parser: argparse.ArgumentParser, name: str = "analogsim"
             ) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"analogsim {analogsim.__version__}"


def test_python_dash_m_runs_the_cli() -> None:
    res = subprocess.run([sys.executable, "-m", "analogsim", "--version"], capture_output=True,
                         text=True, timeout=60, check=False)
    assert res.returncode == 0 and res.stdout.strip() == f"analogsim {analogsim.__version__}"


def test_devices_or_data_alone_prints_its_help(capsys) -> None:
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "list" in out and "show" in out and "validate" in out and "usage:" in out
    assert main(["data"]) == 0
    out = capsys.readouterr().out
    assert "check" in out and "download" in out and "usage: analogsim data" in out


def test_every_option_has_help_and_shows_its_default() -> None:
    seen = 0
    for name, parser in _parsers(build_parser()):
        formatter = parser._get_formatter()
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction,
                                   argparse._SubParsersAction)):
                continue
            seen += 1
            assert action.help, f"{name} {action.dest}: no help text"
            if action.option_strings and action.default not in (None, False):
                shown = formatter._get_help_string(action) % {"default": action.default}
                assert "default" in shown, f"{name} {action.option_strings[0]}: default hidden"
    assert seen > 30


def test_top_level_help_is_plain_text_and_run_plot_name_summary_md() -> None:
    parser = build_parser()
    assert "``" not in parser.format_help() and ":func:" not in parser.format_help()
    helps = dict(_parsers(parser))
    for cmd in ("analogsim run", "analogsim plot"):
        assert "summary.md" in " ".join(helps[cmd].format_help().split()), cmd
