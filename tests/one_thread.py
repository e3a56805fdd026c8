"""Rerun tests in a fresh pytest process at one torch thread.

Runner workers run at one torch thread from their start, and the CPU code ``torch.compile``
generates differs with the thread count; a check of compiled code is rerun there through
``ANALOGSIM_TEST_THREADS`` (``conftest.py`` sets the thread count from it before any test
compiles)."""

from __future__ import annotations

import os
import subprocess
import sys


def passes_on_one_thread(test_file: str, selector: str) -> None:
    """Run the tests of ``test_file`` that ``-k selector`` picks in a fresh process set to one
    thread; assert that they pass and that at least one ran."""
    env = {**os.environ, "ANALOGSIM_TEST_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          test_file, "-k", selector],
                         env=env, capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert " passed" in out.stdout, out.stdout[-2000:]
