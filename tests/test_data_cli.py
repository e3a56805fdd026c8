"""``analogsim data list | check``: one line per set, exit 0 when found, 2 with instructions."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_fixtures.formats import write_mnist

from analogsim import data
from analogsim.cli import main
from analogsim.data import locate


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(locate.ENV_VAR, raising=False)
    monkeypatch.setattr(locate, "SYSTEM_PLACES", {})
    monkeypatch.chdir(tmp_path)


def test_list_has_a_line_per_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_mnist(tmp_path / "d" / "mnist")
    assert main(["data", "list", "--root", str(tmp_path / "d")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split(":")[0] for ln in lines] == data.names()
    by_name = dict(ln.split(": ", 1) for ln in lines)
    assert by_name["mnist"].startswith(f"found at {tmp_path / 'd' / 'mnist'}")
    assert "apt-get install dataset-fashion-mnist" in by_name["fashion-mnist"]
    assert by_name["robot-dynamics"].startswith("available, generated")
    assert by_name["digits"].startswith("available")


def test_check_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "check", "cifar10"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cifar10: not found") and "\n" not in err
    assert "cifar-10-python.tar.gz" in err
    write_mnist(tmp_path / "x")
    assert main(["data", "check", "fashion-mnist", "--root", str(tmp_path / "x")]) == 0
    assert capsys.readouterr().out.strip() == (
        f"fashion-mnist: found at {tmp_path / 'x'} (IDX, gzip)")
    assert main(["data", "check", "teacher"]) == 0
    assert main(["data", "check", "nope"]) == 2
    assert "known: digits" in capsys.readouterr().err
