"""The Ray executor on a local Ray instance: a tiny grid runs as Ray tasks, same numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analogsim.runner import read_records, run_scenario

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'analogsim[ray]')")

TINY = Path(__file__).resolve().parent / "scenarios" / "tiny.yaml"




def test_ray_executor_runs_the_grid_as_tasks(tmp_path: Path) -> None:
    local = run_scenario(TINY, tmp_path / "local", jobs=1, threads=1, verbose=False)
    remote = run_scenario(TINY, tmp_path / "ray", executor="ray", jobs=2, threads=1,
                          verbose=False)
    assert not ray.is_initialized()  # the instance it started is shut down again
    assert remote.complete and len(remote.ran) == len(local.ran) == 8
    assert (tmp_path / "ray" / "records.jsonl").read_bytes() == \
        (tmp_path / "local" / "records.jsonl").read_bytes()
    assert len({r["cell"] for r in read_records(tmp_path / "ray")}) == 8
    manifest = json.loads((tmp_path / "ray" / "manifest.json").read_text())
    assert manifest["executor"] == "ray" and manifest["versions"]["ray"] == ray.__version__
