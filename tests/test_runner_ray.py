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


def test_ray_resumes_an_interrupted_search_without_duplicate_rows(tmp_path: Path) -> None:
    """A search cut short after 3 of its 5 trials (a local run's file, each trial appended as
    it ended) resumed on Ray: the recorded trials are reused, not written twice, and the
    choice is the uninterrupted run's."""
    import yaml

    from analogsim.runner.lr_store import SEARCH, chosen_lr

    data = yaml.safe_load(TINY.read_text())
    data.update(profiles=["ideal"], seeds=[0], dataset={**data["dataset"], "validation": 0.2},
                lr_search={"low": 0.003, "high": 0.3, "points": 3, "refine": 2, "steps": 8})
    for k in ("lr", "alignment"):
        data.pop(k)
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(data))
    whole = tmp_path / "whole"
    run_scenario(path, whole, jobs=1, threads=1, verbose=False)
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "manifest.json").write_text((whole / "manifest.json").read_text())
    lines = (whole / SEARCH).read_text().splitlines(keepends=True)
    danp = [ln for ln in lines if "danp-noisy" in ln]
    assert len(danp) == 6  # 5 trials, then the choice
    (cut / SEARCH).write_text("".join(danp[:3]))
    remote = run_scenario(path, cut, executor="ray", jobs=2, threads=1, verbose=False,
                          resume=True)
    assert remote.complete and sorted(remote.searched) == ["ideal/bp", "ideal/danp-noisy"]
    rows = (cut / SEARCH).read_text().splitlines()
    assert len(rows) == len(set(rows)) == len(lines)
    assert chosen_lr(cut) == chosen_lr(whole)
