"""The scripts in examples/ run as a user runs them, and print what they promise."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _run(script: str, *args: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    res = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    return res.stdout


def _table(text: str, after: str) -> dict[str, list[float]]:
    """Rows ``| 1 s | 0.97 ± 0.01 | …`` of the first table after the line ``after``."""
    rows: dict[str, list[float]] = {}
    for line in text[text.index(after):].splitlines():
        m = re.match(r"\| (\d+ \w+) \| (.*) \|$", line)
        if m:
            rows[m.group(1)] = [float(c.split("±")[0]) for c in m.group(2).split(" | ")]
        elif rows:
            break
    return rows


@pytest.mark.slow
def test_bring_your_own_model(tmp_path: Path) -> None:
    out = _run("bring_your_own_model.py", cwd=tmp_path)
    digital = float(re.search(r"digital test accuracy: ([\d.]+)", out).group(1))
    assert digital > 0.9
    for profile in ("pcm", "rram"):
        rows = _table(out, f"profile {profile})")
        assert list(rows) == ["1 s", "1 min", "1 h", "1 d", "1 y"]
        assert all(abs(v[0] - digital) < 0.1 for v in rows.values())


@pytest.mark.slow
def test_custom_device_profile(tmp_path: Path) -> None:
    out = _run("custom_device_profile.py", str(tmp_path / "prof"), cwd=tmp_path)
    assert (tmp_path / "prof" / "my_chip.yaml").is_file()
    rows = _table(out, "| after | pcm | my_chip |")
    assert list(rows) == ["1 s", "1 min", "1 h", "1 d", "1 y"]
    # uncompensated drift: the made-up chip loses more over a year than pcm
    assert rows["1 y"][1] < rows["1 y"][0]


@pytest.mark.slow
def test_train_danp_on_chip(tmp_path: Path) -> None:
    png = tmp_path / "curves.png"
    out = _run("train_danp_on_chip.py", str(png), cwd=tmp_path)
    assert png.stat().st_size > 5000
    danp = re.search(r"DANP, σ = 0.001: test accuracy ([\d.]+) → ([\d.]+)", out)
    assert danp and float(danp.group(2)) > float(danp.group(1)) + 0.2
    assert "DNP, σ = 0.001: diverged" in out
