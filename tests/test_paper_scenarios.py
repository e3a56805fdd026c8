"""The paper's scenarios (scenarios/paper/): every file validates and plans, the CPU-scale and
hardware variants differ from their full-scale scenario only where they say, and a tiny
version of each full-scale scenario runs end to end (then benchmarks/paper_report.py renders
a report from those runs).

Fashion-MNIST is read from wherever ``analogsim.data`` finds it; where it is absent, planning
of the Fashion-MNIST scenarios is skipped and their tiny runs use scikit-learn's digits
instead (the convnet, which needs 28×28 images, is skipped), each with the reason printed.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import analogsim.runner.data as runner_data
from analogsim.config.scenario import Scenario, load_scenario
from analogsim.data import load as data_load
from analogsim.errors import DataError
from analogsim.runner import plan, read_records, run_scenario

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "scenarios" / "paper"
FULL = sorted(PAPER.glob("*.yaml"))
REDUCED = sorted((PAPER / "reduced").glob("*.yaml"))
HARDWARE_PROFILES = ["pcm", "rram", "low_precision", "noisy_nodes"]


def _has_fashion_mnist() -> bool:
    try:
        data_load("fashion-mnist", "test")
    except DataError:
        return False
    return True


HAS_FMNIST = _has_fashion_mnist()
NO_FMNIST = "Fashion-MNIST is not installed here (analogsim data list says how to get it)"


@pytest.fixture(autouse=True)
def _memo_data(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Load each data set once for the whole module (the runner's cache is keyed by the
    subset, so every scenario would reload the full set), and keep torch's threads."""
    monkeypatch.setattr(runner_data, "load", _cached_load)
    monkeypatch.setattr(runner_data, "_CACHE", {})
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@functools.cache
def _cached_load_key(name: str, split: str, root: str | None, kw: tuple) -> Any:
    return data_load(name, split, root, **dict(kw))


def _cached_load(name: str, split: str, root: str | None = None, **kw: Any) -> Any:
    return _cached_load_key(name, split, root, tuple(sorted(kw.items())))


def test_there_are_paper_scenarios() -> None:
    names = {p.stem for p in FULL}
    for stem in ("single_layer", "three_layer", "noisy_baseline", "depth_6", "depth_9",
                 "convnet", "alignment", "sarcos"):
        assert stem in names
        assert f"hardware_{stem}" in names
    assert REDUCED


@pytest.mark.parametrize("path", FULL + REDUCED, ids=lambda p: str(p.relative_to(PAPER)))
def test_scenario_validates_and_plans(path: Path) -> None:
    sc = load_scenario(path)
    assert sc.name.startswith("paper_")
    assert sc.batch_size == 1000  # the paper's mini-batch
    for rule in sc.rules:
        if rule.base != "bp":
            assert rule.sigma > 0
    if sc.dataset.name == "fashion-mnist" and not HAS_FMNIST:
        pytest.skip(NO_FMNIST)
    grid = plan(sc, str(path))
    assert grid.cells
    assert not grid.skipped


def _scale_free(sc: Scenario) -> dict[str, Any]:
    """The scenario with the fields a CPU-scale variant may change removed."""
    d = sc.model_dump(mode="json")
    for k in ("name", "description", "seeds", "epochs", "evaluation", "output"):
        d.pop(k)
    d["dataset"].pop("n_train")
    d["dataset"].pop("n_test")
    return d


@pytest.mark.parametrize("path", REDUCED, ids=lambda p: p.stem)
def test_reduced_scenario_changes_only_the_scale(path: Path) -> None:
    """scenarios/paper/reduced/X.yaml = ../X.yaml but for subset sizes, epochs, seeds,
    evaluation — and, where its header says so, fewer profiles or rules, or a fixed η."""
    small, full = load_scenario(path), load_scenario(PAPER / path.name)
    assert small.name == f"{full.name}_reduced"
    a, b = _scale_free(small), _scale_free(full)
    assert set(a["profiles"]) <= set(b["profiles"])
    assert all(r in b["rules"] for r in a["rules"])
    if a["lr"] != b["lr"]:  # a fixed η where the full run searches: named in the header
        assert b["lr_search"] is not None and a["lr_search"] is None
        assert "η" in path.read_text().split("\nname:")[0]
    for k in ("profiles", "rules", "lr", "lr_search"):
        a.pop(k)
        b.pop(k)
    assert a == b
    assert small.epochs <= full.epochs and len(small.seeds) <= len(full.seeds)


@pytest.mark.parametrize("path", [p for p in FULL if p.stem.startswith("hardware_")],
                         ids=lambda p: p.stem)
def test_hardware_scenario_is_its_ideal_one_on_the_analog_profiles(path: Path) -> None:
    hw, ideal = load_scenario(path), load_scenario(PAPER / path.name[len("hardware_"):])
    assert hw.profiles == HARDWARE_PROFILES
    assert hw.baselines == ["noisy"]
    assert ideal.profiles == ["ideal"]
    a, b = hw.model_dump(mode="json"), ideal.model_dump(mode="json")
    for k in ("name", "description", "profiles", "baselines"):
        a.pop(k)
        b.pop(k)
    assert a == b


def tiny(sc: Scenario, use_digits: bool) -> Scenario:
    """A few steps of ``sc``: 100 training samples in batches of 50 (convnet: 50), 1 epoch,
    1 seed, widths 16, one profile, at most 2 σ values per rule, an η search of 2 one-epoch
    trials (convnet: 1)."""
    ds = sc.dataset
    if ds.name == "robot-dynamics":
        ds = ds.model_copy(update={"n_train": None, "n_test": None,
                                   "options": {"n_train": 200, "n_test": 100}})
    else:
        name = "digits" if use_digits else ds.name
        n = 50 if sc.model.kind == "convnet" else 100
        ds = ds.model_copy(update={"name": name, "n_train": n, "n_test": 50})
    model = sc.model
    if model.kind == "mlp":
        model = model.model_copy(update={"hidden": [16] * len(model.hidden)})
    seen: dict[str, int] = {}
    rules = []
    for r in sc.rules:
        seen[r.name] = seen.get(r.name, 0) + 1
        if seen[r.name] <= 2:
            rules.append(r)
    update: dict[str, Any] = {
        "dataset": ds, "model": model, "profiles": sc.profiles[:1], "rules": rules,
        "seeds": sc.seeds[:1], "epochs": 1, "batch_size": 50,
        "evaluation": sc.evaluation.model_copy(update={"train_samples": None}),
    }
    if isinstance(sc.lr, dict):
        keys = set(sc.model_copy(update={"rules": rules}).rule_keys()) | {r.name for r in rules}
        update["lr"] = {k: v for k, v in sc.lr.items() if k in keys}
    if sc.lr_search is not None:
        trials = 1 if sc.model.kind == "convnet" else 2
        update["lr_search"] = sc.lr_search.model_copy(update={"max_steps": trials, "epochs": 1})
    if sc.alignment is not None:
        update["alignment"] = sc.alignment.model_copy(update={"repeats": 2, "batch_size": 50})
    # validate the result like a file (exclude_unset keeps each rule's own options only)
    out = Scenario.model_validate(sc.model_copy(update=update).model_dump(exclude_unset=True))
    out._folder = sc.folder
    return out


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every full-scale paper scenario, tiny, run end to end (one cell at a time)."""
    base = tmp_path_factory.mktemp("paper")
    mp = pytest.MonkeyPatch()
    mp.setattr(runner_data, "load", _cached_load)
    mp.setattr(runner_data, "_CACHE", {})
    n = torch.get_num_threads()
    out: dict[str, Path] = {}
    try:
        for path in FULL:
            sc = load_scenario(path)
            if sc.model.kind == "convnet" and not HAS_FMNIST:
                print(f"\n{path.name}: skipped ({NO_FMNIST}; digits are too small for it)")
                continue
            if sc.dataset.name == "fashion-mnist" and not HAS_FMNIST:
                print(f"\n{path.name}: tiny run on digits ({NO_FMNIST})")
            small = tiny(sc, use_digits=not HAS_FMNIST)
            folder = base / path.stem
            report = run_scenario(small, folder, jobs=1, threads=1, verbose=False,
                                  source=str(path))
            assert report.complete, (path.name, report.failed)
            out[path.stem] = folder
    finally:
        torch.set_num_threads(n)
        mp.undo()
    return out


def test_tiny_version_of_every_scenario_runs_end_to_end(tiny_runs: dict[str, Path]) -> None:
    expected = {p.stem for p in FULL} - (set() if HAS_FMNIST else {"convnet", "hardware_convnet"})
    assert set(tiny_runs) == expected
    for stem, folder in tiny_runs.items():
        rows = read_records(folder)
        cells = [r for r in rows if r["kind"] == "cell"]
        assert cells, stem
        if "alignment" in stem:
            assert any(r["kind"] == "alignment" and r["angle_deg"] is not None for r in rows)
        if load_scenario(PAPER / f"{stem}.yaml").lr_search is not None:
            assert any(r["kind"] == "lr_trial" for r in rows)


def _report_module() -> Any:
    spec = importlib.util.spec_from_file_location("paper_report",
                                                  ROOT / "benchmarks" / "paper_report.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["paper_report"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_report_renders_from_the_tiny_runs(tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    report = _report_module()
    folders = [str(f) for f in tiny_runs.values()]
    out = tmp_path / "docs" / "reproduction.md"
    out.parent.mkdir()
    assert report.main([*folders, "--out", str(out), "--img", str(tmp_path / "docs" / "img")]) == 0
    text = out.read_text()
    assert "Which of the paper's claims hold here" in text
    assert "analogsim run" in text
    for link in (tmp_path / "docs" / "img").iterdir():
        assert f"img/{link.name}" in text
    assert report.main([*folders, "--compact", "--out", str(tmp_path / "c.md")]) == 0
    assert "| experiment |" in (tmp_path / "c.md").read_text()
