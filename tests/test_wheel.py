"""The package installs like a library: sdist → wheel → a fresh virtual environment.

The environment reuses this interpreter's installed packages (``--system-site-packages``,
``--no-index``: nothing is downloaded), and runs from a folder outside the checkout, so that the
profiles, the CLI and a tiny scenario can only come from the installed wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = {"ideal", "pcm", "noisy_nodes", "rram", "low_precision"}

TINY = """\
name: wheel_tiny
dataset: {name: digits, n_train: 100, n_test: 50}
model: {hidden: [16]}
profiles: [pcm]
rules: [danp]
baselines: [noisy]
seeds: [0]
epochs: 1
batch_size: 50
lr: {danp: 0.01}
timeline: {step_s: 0.1, after_programming_s: [1, 86400]}
"""


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=timeout, check=False)
    assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stdout}\n{res.stderr}"
    return res


def _build_wheel(tmp: Path) -> Path:
    """An sdist of a copy of the checkout's packaged files, then a wheel built from the sdist."""
    src = tmp / "src"
    src.mkdir()
    shutil.copy(ROOT / "pyproject.toml", src)
    shutil.copy(ROOT / "README.md", src)
    shutil.copytree(ROOT / "analogsim", src / "analogsim",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp / "dist"
    code = ("import sys; from setuptools import build_meta as b; "
            "print(getattr(b, sys.argv[1])(sys.argv[2]))")
    sdist = _run([sys.executable, "-c", code, "build_sdist", str(dist)], src).stdout.split()[-1]
    unpacked = tmp / "unpacked"
    shutil.unpack_archive(dist / sdist, unpacked)
    (tree,) = unpacked.iterdir()
    name = _run([sys.executable, "-c", code, "build_wheel", str(dist)], tree).stdout.split()[-1]
    return dist / name


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_venv_and_runs(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as z:
        packed = {Path(n).stem for n in z.namelist() if n.startswith("analogsim/devices/")}
    assert SHIPPED <= packed, packed

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
         tmp_path)
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-index",
          "--no-build-isolation", "--quiet", str(wheel)], tmp_path, env)
    work = tmp_path / "elsewhere"
    work.mkdir()

    where = _run([str(py), "-c", "import analogsim; print(analogsim.__file__)"], work, env)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout
    listed = _run([str(venv / "bin" / "analogsim"), "devices", "list"], work, env).stdout
    assert {line.split()[0] for line in listed.splitlines()} >= SHIPPED
    code = "import analogsim; p = analogsim.load_profile('pcm'); print(p.name, p.drift.enabled)"
    prof = _run([str(py), "-c", code], work, env).stdout
    assert prof.split() == ["pcm", "True"]

    (work / "tiny.yaml").write_text(TINY)
    _run([str(py), "-m", "analogsim", "run", "tiny.yaml", "--out", "res", "--jobs", "1",
          "--threads", "1", "--no-plot"], work, env)
    rows = [json.loads(r) for r in (work / "res" / "records.jsonl").read_text().splitlines()]
    assert [r["status"] for r in rows if r["kind"] == "cell"] == ["done"]
    assert sorted(r["after_programming_s"] for r in rows if r["kind"] == "inference") == [1, 86400]
    assert not (work / "devices").exists()
