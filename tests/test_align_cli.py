"""``analogsim align`` writes the angle table and the bar plot."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from analogsim.cli import main


def test_align_cli_writes_table_and_plot(tmp_path: Path, capsys) -> None:
    rc = main(["align", "--sizes", "32,32", "--repeats", "2", "--batch", "200",
               "--rules", "np,inp", "--out", str(tmp_path)])
    assert rc == 0
    with (tmp_path / "alignment.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 3 and {r["rule"] for r in rows} == {"np", "inp"}
    assert all(0 < float(r["angle_mean_deg"]) < 90 for r in rows)
    assert (tmp_path / "alignment.png").stat().st_size > 5000
    assert "| INP |" in capsys.readouterr().out


@pytest.mark.parametrize(("flag", "value", "says"), [
    ("--sizes", "a,b", "integers"),
    ("--sizes", "0", "≥ 1"),
    ("--sizes", "16,-5", "≥ 1"),
    ("--rules", "", "at least one rule"),
    ("--rules", "np,dann", "did you mean 'danp'"),
    ("--sigma", "-1", "greater than or equal to 0"),
    ("--sigma", "nan", "finite"),
])
def test_align_cli_bad_option_is_one_line_naming_it_and_writes_nothing(
        tmp_path: Path, capsys, flag: str, value: str, says: str) -> None:
    out = tmp_path / "out"
    assert main(["align", "--sizes", "8", "--repeats", "1", "--batch", "20", flag, value,
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and err.startswith(f"error: {flag}: ") and says in err
    assert not out.exists()


def test_align_cli_states_profile_and_baseline_and_keeps_earlier_results(
        tmp_path: Path, capsys) -> None:
    args = ["align", "--sizes", "16", "--repeats", "2", "--batch", "100", "--rules", "np",
            "--profile", "pcm", "--out", str(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "profile pcm, noisy baseline" in out
    with (tmp_path / "alignment.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {(r["profile"], r["baseline"]) for r in rows} == {("pcm", "noisy")}
    before = (tmp_path / "alignment.csv").read_bytes()
    assert main(args) == 2  # an existing alignment is never overwritten silently
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "--fresh" in err
    assert (tmp_path / "alignment.csv").read_bytes() == before
    assert main([*args, "--fresh", "--baseline", "noisy"]) == 0
