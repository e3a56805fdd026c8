"""The run's progress display: one status line on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io
import os

import pytest

from analogsim.runner import progress
from analogsim.runner.progress import GridProgress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return 0


def test_plain_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    p = GridProgress(4, already=1, stream=out)
    p.start(3, "1 local process(es)")
    p.cell_done("pcm/danp/s0", "test acc 0.912")
    p.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "grid: 4 cells, 1 already done, 3 to run on 1 local process(es)"
    assert lines[1].startswith("[2/4 cells] pcm/danp/s0: test acc 0.912 (")
    assert "ETA" in lines[1] and "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_one_status_line_redrawn_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "get_terminal_size", lambda fd: os.terminal_size((70, 20)))
    out = _Terminal()
    p = GridProgress(3, stream=out)
    p.start(3, "2 local process(es)")
    p.cell_done("ideal/bp/s0", "test acc 0.950")
    p.line("cell pcm/bp/s0 failed: boom")
    p.cell_done("ideal/bp/s1", "test acc 0.940")
    p.close()
    text = out.getvalue()
    assert text.count("\n") == 3  # the two messages and the final line: nothing else scrolls
    last = text.split("\r\x1b[K")[-1]
    assert last.startswith("[2/3 cells]") and "last: ideal/bp/s1: test acc 0.940" in last
    assert "failed: boom\n" in text
    assert all(len(part.rstrip("\n")) <= 69 for part in text.split("\r\x1b[K"))


def test_zero_column_terminal_still_shows_the_status(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "get_terminal_size", lambda fd: os.terminal_size((0, 0)))
    out = _Terminal()
    p = GridProgress(2, stream=out)
    p.cell_done("pcm/danp/s0", "test acc 0.900")
    assert progress.columns(out) == progress.FALLBACK_COLUMNS
    assert "[1/2 cells]" in out.getvalue() and "pcm/danp/s0" in out.getvalue()


def test_disabled_prints_nothing() -> None:
    out = _Terminal()
    p = GridProgress(2, enabled=False, stream=out)
    p.start(2, "x")
    p.cell_done("a", "b")
    p.line("c")
    p.close()
    assert out.getvalue() == ""


def test_eta_from_this_runs_cells(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: now[0])
    p = GridProgress(10, already=4, stream=io.StringIO())
    assert p.eta_s() is None
    now[0] = 130.0
    p.cell_done("a", "x")
    p.cell_done("b", "y")  # 2 cells in 30 s, 4 to go
    assert p.eta_s() == pytest.approx(60.0)
