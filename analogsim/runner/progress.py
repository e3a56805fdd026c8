"""Grid progress on stderr: one display per run.

On a terminal, one status line redrawn in place — cells done/total, elapsed time, ETA and the
last finished cell's result; other messages print above it. Elsewhere (a pipe, a log file, or
``plain=True`` when workers print their own per-epoch lines) one plain line per finished cell.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

#: Width assumed when the terminal does not report one (some report 0 columns).
FALLBACK_COLUMNS = 80


def _clock(s: float) -> str:
    """Seconds as ``42 s``, ``3:05`` or ``1:02:05``."""
    s = max(0, round(s))
    if s < 60:
        return f"{s} s"
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def columns(stream: TextIO) -> int:
    """Width of the terminal behind ``stream``; ``FALLBACK_COLUMNS`` when it reports none."""
    try:
        width = os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        width = 0
    return width if width > 0 else FALLBACK_COLUMNS


class GridProgress:
    """Counts finished cells of a grid of ``total`` (``already`` of them from a previous run).

    Args:
        enabled: False prints nothing.
        plain: plain lines even on a terminal (other processes write lines to it too).
        stream: where to write (default ``sys.stderr``).
    """

    def __init__(self, total: int, already: int = 0, enabled: bool = True, plain: bool = False,
                 stream: TextIO | None = None) -> None:
        self.total, self.done, self.enabled = total, already, enabled
        self.already = already
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", lambda: False)()
        self.live = enabled and not plain and isatty
        self.t0 = time.perf_counter()
        self.last = ""
        self._drawn = False

    # ------------------------------------------------------------------ public
    def start(self, pending: int, workers: str) -> None:
        self.line(f"grid: {self.total} cells, {self.done} already done, {pending} to run "
                  f"on {workers}")

    def cell_done(self, cell_id: str, what: str) -> None:
        self.done += 1
        self.last = f"{cell_id}: {what}"
        if self.live:
            self._draw()
        elif self.enabled:
            self._write(f"[{self.done}/{self.total} cells] {self.last} ({self._times()})\n")

    def line(self, msg: str) -> None:
        """A message of its own (above the status line on a terminal)."""
        if not self.enabled:
            return
        if self.live:
            self._clear()
            self._write(msg + "\n")
            self._draw()
        else:
            self._write(msg + "\n")

    def close(self) -> None:
        if self._drawn:
            self._write("\n")
            self._drawn = False

    # ------------------------------------------------------------------ helpers
    def eta_s(self) -> float | None:
        """Seconds left, from the mean wall time of the cells finished in this run."""
        finished = self.done - self.already
        if finished <= 0:
            return None
        return (time.perf_counter() - self.t0) / finished * (self.total - self.done)

    def _times(self) -> str:
        elapsed = _clock(time.perf_counter() - self.t0)
        eta = self.eta_s()
        if self.done >= self.total:
            return f"{elapsed}"
        return f"{elapsed}, ETA {_clock(eta)}" if eta is not None else elapsed

    def status(self) -> str:
        """The status line: ``[5/18 cells] 1:02, ETA 2:30 | last: pcm/danp/s0: test acc …``."""
        text = f"[{self.done}/{self.total} cells] {self._times()}"
        return f"{text} | last: {self.last}" if self.last else text

    def _draw(self) -> None:
        text = self.status()
        width = columns(self.stream) - 1  # never wrap: a wrapped line cannot be redrawn
        if len(text) > width:
            text = text[:max(0, width - 1)] + "…"
        self._write("\r\x1b[K" + text)
        self._drawn = True

    def _clear(self) -> None:
        if self._drawn:
            self._write("\r\x1b[K")
            self._drawn = False

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
