"""Rerun tests in a fresh pytest process at one torch thread.

Runner workers run at one torch thread from their start, and the CPU code ``torch.compile``
generates differs with the thread count; a check of compiled code is rerun there through
``ANALOGSIM_TEST_THREADS`` (``conftest.py`` sets the thread count from it before any test
compiles)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    """What the fresh process reported: its exit status, pytest's counts by outcome
    ("passed", "failed", "skipped", …) and the tail of its output (for the failure message)."""

    returncode: int
    counts: dict[str, int]
    tail: str


def run_on_one_thread(test_file: str, selector: str) -> Outcome:
    """Run the tests of ``test_file`` that ``-k selector`` picks in a fresh process set to one
    torch thread."""
    env = {**os.environ, "ANALOGSIM_TEST_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          test_file, "-k", selector],
                         env=env, capture_output=True, text=True, timeout=600, check=False)
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|errors?)",
                                               out.stdout)}
    return Outcome(out.returncode, counts, out.stdout[-2000:] + out.stderr[-2000:])
