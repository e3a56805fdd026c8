"""``numerics: fast`` is raced once per run: every cell, in any process and on resume, takes
the paths the manifest records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from analogsim.analog import numerics
from analogsim.runner import cell as cell_mod
from analogsim.runner import run_scenario

TINY = Path(__file__).resolve().parent / "scenarios" / "tiny.yaml"
ALL = dict.fromkeys(numerics.NONE, True)


def test_fixed_paths_replace_the_races_within_the_block(monkeypatch) -> None:
    monkeypatch.setattr(numerics, "raced_paths", lambda d: dict(numerics.NONE))
    monkeypatch.setattr(numerics, "_possible", lambda d: {**ALL, "fused": False})
    want = {**numerics.NONE, "bf16_variance": True, "fused": True}
    with numerics.fixed_paths("cpu", want):
        # a path the host cannot take (here: no compiler) is left out
        assert numerics.fast_paths("cpu") == {**want, "fused": False}
        with numerics.fixed_paths("cpu", None):
            assert numerics.fast_paths("cpu")["bf16_variance"]
        assert numerics.fast_paths("cuda") == numerics.NONE  # another device: its own
    assert numerics.fast_paths("cpu") == numerics.NONE
    with pytest.raises(ValueError, match="fast paths must name exactly"):
        numerics.fixed_paths("cpu", {"int8": True}).__enter__()


def test_cells_take_the_manifests_paths_also_on_resume(tmp_path: Path, monkeypatch) -> None:
    seen: list[dict[str, bool]] = []
    run = cell_mod.CellRunner.run

    def spy(self: cell_mod.CellRunner) -> cell_mod.CellResult:
        seen.append(numerics.fast_paths("cpu"))
        return run(self)

    monkeypatch.setattr(cell_mod.CellRunner, "run", spy)
    monkeypatch.setattr(numerics, "_possible", lambda d: dict(ALL))
    raced = {**numerics.NONE, "bf16_variance": True}
    monkeypatch.setattr(numerics, "raced_paths", lambda d: dict(raced))
    sc = yaml.safe_load(TINY.read_text())
    sc.update(numerics="fast", profiles=["pcm"], rules=["bp"], seeds=[0, 1], epochs=1,
              lr={"bp": 0.1})
    del sc["alignment"]
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(sc))
    out = tmp_path / "out"
    assert run_scenario(path, out, jobs=1, threads=1, verbose=False,
                        show_progress=False).complete
    man = json.loads((out / "manifest.json").read_text())
    assert man["numerics"] == {"numerics": "fast", **raced} and seen == [raced, raced]
    # the manifest says another choice (a run raced elsewhere); one cell is rerun on resume
    # by a process whose own races would choose differently: it takes the recorded paths
    recorded = {**numerics.NONE, "bf16_variance": True, "packed_int8": True}
    man["numerics"] = {"numerics": "fast", **recorded}
    (out / "manifest.json").write_text(json.dumps(man))
    lines = (out / "records.jsonl").read_text().splitlines(keepends=True)
    first = json.loads(lines[0])["cell"]
    (out / "records.jsonl").write_text("".join(
        line for line in lines if json.loads(line)["cell"] == first))
    seen.clear()
    report = run_scenario(path, out, jobs=1, threads=1, resume=True, verbose=False,
                          show_progress=False)
    assert report.complete and len(report.ran) == 1
    assert seen == [recorded]
    assert json.loads((out / "manifest.json").read_text())["numerics"] == {
        "numerics": "fast", **recorded}
