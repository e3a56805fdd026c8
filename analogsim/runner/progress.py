"""Grid progress on stderr: a tqdm bar when tqdm is installed and stderr is a terminal,
else one line per finished cell. (Each cell prints its own epoch lines from its worker.)"""

from __future__ import annotations

import sys
import time
from typing import Any


class GridProgress:
    """Counts finished cells of a grid of ``total`` (``already`` of them from a previous run)."""

    def __init__(self, total: int, already: int = 0, enabled: bool = True) -> None:
        self.total, self.done, self.enabled = total, already, enabled
        self.t0 = time.perf_counter()
        self._bar: Any = None
        if enabled and sys.stderr.isatty():
            try:
                from tqdm import tqdm
            except ModuleNotFoundError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(total=total, initial=already, unit="cell", desc="grid",
                                 file=sys.stderr, dynamic_ncols=True)

    def start(self, pending: int, workers: str) -> None:
        self.line(f"grid: {self.total} cells, {self.done} already done, {pending} to run "
                  f"on {workers}")

    def cell_done(self, cell_id: str, what: str) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.set_postfix_str(f"{cell_id}: {what}", refresh=False)
            self._bar.update(1)
        else:
            self.line(f"[grid {self.done}/{self.total}] {cell_id}: {what} "
                      f"({time.perf_counter() - self.t0:.1f} s)")

    def line(self, msg: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(msg, file=sys.stderr)
        else:
            sys.stderr.write(msg + "\n")
            sys.stderr.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
