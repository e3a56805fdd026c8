"""Scenarios: the shipped ones plan; bad ones fail before any training with one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from analogsim.cli import main
from analogsim.config.scenario import load_scenario
from analogsim.errors import ScenarioError
from analogsim.runner.grid import plan

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "scenarios" / "tiny.yaml"


def tiny(**changes: object) -> dict:
    """The tiny test scenario as a mapping, with top-level fields replaced or removed."""
    data = yaml.safe_load(TINY.read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def write(tmp_path: Path, data: dict, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_shipped_scenarios_plan() -> None:
    qs = plan(load_scenario(ROOT / "scenarios" / "quickstart.yaml"))
    assert [v.label for v in qs.variants] == ["ideal", "pcm", "noisy_nodes"]
    assert len(qs.cells) == 3 * 3 * 2  # profiles × rule entries × seeds
    assert {c.baseline for c in qs.cells} == {"noisy"}
    assert {c.rule.name for c in qs.cells} == {"danp", "dnp"}
    rob = plan(load_scenario(ROOT / "scenarios" / "robustness_read_noise.yaml"))
    sweep = rob.scenario.sweep
    assert sweep is not None and len(rob.variants) == len(sweep.values)
    for v, value in zip(rob.variants, sweep.values, strict=True):
        section, name = sweep.field.split(".")
        assert getattr(getattr(v.profile, section), name) == value
        assert v.sweep_value == value and v.sweep_field == sweep.field
    assert {c.rule.name for c in rob.cells} == {"danp", "dnp", "bp"}


def test_grid_crosses_baselines_and_resolves_auto(tmp_path: Path) -> None:
    sc = load_scenario(write(tmp_path, tiny(profiles=["ideal", "pcm"],
                                            baselines=["clean", "noisy", "auto"],
                                            skip_impossible=True)))
    grid = plan(sc)
    combos = {(c.variant.label, c.rule.name, c.baseline) for c in grid.cells}
    # ideal: clean and noisy (auto = clean, deduplicated); pcm: noisy only (clean skipped,
    # auto = noisy); BP has no baseline pass: one cell per profile.
    assert combos == {("ideal", "danp", "clean"), ("ideal", "danp", "noisy"),
                      ("pcm", "danp", "noisy"), ("ideal", "bp", None), ("pcm", "bp", None)}
    assert grid.skipped == ["pcm × danp baseline clean"]
    assert len(grid.cells) == len(combos) * 2
    assert [c.index for c in grid.cells] == list(range(len(grid.cells)))
    assert len({c.id for c in grid.cells}) == len(grid.cells)
    assert all(c.rule.baseline == c.baseline for c in grid.cells if c.baseline)


def test_same_rule_twice_gets_distinct_labels_and_lr(tmp_path: Path) -> None:
    rules = [{"name": "dnp", "sigma": 1e-3}, {"name": "dnp", "sigma": 0.1}]
    sc = load_scenario(write(tmp_path, tiny(rules=rules, lr={"dnp sigma=0.1": 0.002,
                                                                 "dnp": 0.004})))
    grid = plan(sc)
    labels = {c.rule_label: c.lr for c in grid.cells}
    assert labels == {"DNP (noisy) sigma=0.001": 0.004, "DNP (noisy) sigma=0.1": 0.002}


def test_profile_path_is_relative_to_the_scenario_file(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "devs").mkdir()
    (tmp_path / "devs" / "mine.yaml").write_text(
        "name: mine\nsource: test\nadc: {noise_std: 0.05}\n")
    path = write(tmp_path, tiny(profiles=["devs/mine.yaml", "ideal"]))
    monkeypatch.chdir(ROOT)  # not the scenario's folder
    grid = plan(load_scenario(path))
    assert grid.variants[0].profile.name == "mine"
    assert grid.variants[0].profile.adc.noise_std == 0.05


def test_drift_compensation_override() -> None:
    sc = load_scenario(ROOT / "scenarios" / "quickstart.yaml")
    timeline = sc.timeline.model_copy(update={"drift_compensation": False})
    grid = plan(sc.model_copy(update={"timeline": timeline}))
    pcm = next(v for v in grid.variants if v.label == "pcm")
    assert pcm.profile.drift.compensation is False


BAD = [
    ("unknown rule", {"rules": ["danp", "xnp"], "lr": 0.01}, "rules.1: Input should be"),
    ("unknown rule, written out", {"rules": [{"name": "xnp"}], "lr": 0.01},
     "rules.0.name: Input should be"),
    ("missing profile file", {"profiles": ["ideal", "nowhere/none.yaml"]},
     "profiles.1: "),
    ("sweep over a missing field",
     {"sweep": {"field": "read_noise.colour", "values": [0.1, 0.2]}},
     "sweep.field: profile ideal: read_noise.colour: no such field"),
    ("sweep value out of range",
     {"sweep": {"field": "read_noise.q_coeff", "values": [0.1, -1.0]}}, "sweep.values"),
    ("negative epochs", {"epochs": -3}, "epochs: Input should be greater than or equal to 1"),
    ("unknown dataset", {"dataset": "imagenet"},
     "dataset: unknown data set 'imagenet'; known: digits"),
    ("clean baseline on hardware", {"baselines": ["clean"]},
     "baselines: 'clean' needs a noise-free pass, but profile pcm"),
    ("η missing for a rule", {"lr": {"danp": 0.01}}, "lr has no η for rule bp"),
    ("η for a rule not in the grid", {"lr": {"danp": 0.01, "bp": 0.1, "inp": 1.0}},
     "lr names inp"),
    ("both lr and lr_search", {"lr_search": {"low": 1e-3, "high": 1.0, "epochs": 1}},
     "exactly one of lr"),
    ("η search trial length twice",
     {"lr": None, "lr_search": {"low": 1e-3, "high": 1.0, "epochs": 1, "steps": 5}},
     "give exactly one of epochs and steps"),
    ("odd refined grid",
     {"lr": None, "lr_search": {"low": 1e-3, "high": 1.0, "epochs": 1, "refine": 3}},
     "lr_search.refine: Input should be a multiple of 2"),
    ("η search without a validation split",
     {"lr": None, "lr_search": {"low": 1e-3, "high": 1.0, "epochs": 1}},
     "set dataset.validation"),
    ("validation split of everything",
     {"dataset": {"name": "digits", "validation": 1.0}}, "dataset.validation: Input should be less than 1"),
    ("η from a folder without a search", {"lr": {"from": "nowhere"}}, "lr.from: "),
    ("unknown init", {"model": {"init": "xavier"}}, "model.init"),
    ("unknown field", {"colour": "red"}, "colour: unknown field"),
    ("subset larger than the data", {"dataset": {"name": "digits", "n_train": 99999}},
     "dataset: dataset.n_train = 99999 exceeds"),
    ("convnet on flat data it cannot fit", {"model": {"kind": "convnet"}},
     "model: input (1, 8, 8) is too small"),
]


@pytest.mark.parametrize(("what", "changes", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_scenario_fails_before_training_with_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], what: str, changes: dict,
        expected: str) -> None:
    path = write(tmp_path, tiny(**changes))
    out = tmp_path / "results"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: {path}: "), lines[0]
    assert expected in lines[0], lines[0]
    assert not (out / "records.jsonl").exists()  # nothing trained, nothing recorded


def test_missing_scenario_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="file not found"):
        load_scenario(tmp_path / "nope.yaml")
    with pytest.raises(ScenarioError, match="a folder, not a YAML file"):
        load_scenario(tmp_path)


def test_cuda_asked_without_cuda_fails_up_front(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here: the request is valid")
    with pytest.raises(ScenarioError, match="device: cuda asked for"):
        plan(load_scenario(write(tmp_path, tiny(device="cuda"))))
