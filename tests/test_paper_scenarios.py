"""The paper's scenarios (scenarios/paper/): every file validates and plans, the CPU and
hardware variants differ from their full-scale scenario only where they say, every training
scenario follows the protocol (validation split, η searched on it, ≥ 3 seeds), and a tiny
version of each full-scale scenario runs end to end (then `analogsim report` renders a report
from those runs).

Fashion-MNIST is read from wherever ``analogsim.data`` finds it; where it is absent, planning
of the Fashion-MNIST scenarios is skipped and their tiny runs use scikit-learn's digits
instead (the convnet, which needs 28×28 images, is skipped), each with the reason printed.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import analogsim.runner.data as runner_data
from analogsim.cli import main
from analogsim.config.scenario import LRFrom, Scenario, load_scenario
from analogsim.data import load as data_load
from analogsim.errors import DataError
from analogsim.runner import plan, read_records, run_scenario
from analogsim.runner.lr_store import read_search

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "scenarios" / "paper"
FULL = sorted(PAPER.glob("*.yaml"))
CPU = sorted((PAPER / "cpu").glob("*.yaml"))
SMALL = sorted((PAPER / "small").glob("*.yaml"))  # reduced scale: plan only
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
    assert "three_layer_he" in names  # the eight-rule comparison under both initialisations
    assert CPU


@pytest.mark.parametrize("path", FULL + CPU + SMALL, ids=lambda p: str(p.relative_to(PAPER)))
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


@pytest.mark.parametrize("path", [p for p in FULL + CPU if load_scenario(p).alignment is None
                                  and not p.stem.startswith("table2")],
                         ids=lambda p: str(p.relative_to(PAPER)))
def test_training_scenario_follows_the_protocol(path: Path) -> None:
    """Every training scenario holds out a validation split, searches η on it per profile ×
    rule × baseline with trials of several epochs (or takes η from a committed run that did,
    on the same model and data), runs ≥ 3 seeds on the full data, and states its
    initialisation."""
    sc = load_scenario(path)
    assert sc.dataset.validation > 0
    search = sc.lr_search.model_dump(mode="json") if sc.lr_search is not None else None
    if search is None:
        assert isinstance(sc.lr, LRFrom)
        source = json.loads((sc.resolve(sc.lr.from_) / "manifest.json").read_text())["scenario"]
        search = source["lr_search"]
        assert source["model"] == sc.model.model_dump(mode="json")
        assert source["dataset"] == sc.dataset.model_dump(mode="json")
    assert search is not None and search["epochs"] is not None and search["epochs"] >= 3
    assert search["refine"] >= 2
    assert len(sc.seeds) >= 3
    assert sc.dataset.n_train is None and sc.dataset.n_test is None
    assert "init" in sc.model.model_fields_set and "bias" in sc.model.model_fields_set


RESULTS = sorted((ROOT / "results" / "paper").glob("*/manifest.json"))


@pytest.mark.parametrize("manifest", RESULTS, ids=lambda p: p.parent.name)
def test_committed_results_folder_still_resumes(manifest: Path) -> None:
    """The scenario file a committed results folder names still plans the run it recorded
    (the same grid hash), so ``--resume`` finishes it rather than refusing: a scenario field
    added later must leave the hash of a run that does not set it unchanged."""
    m = json.loads(manifest.read_text())
    path = ROOT / m["scenario_file"]
    sc = load_scenario(path)
    if sc.dataset.name == "fashion-mnist" and not HAS_FMNIST:
        pytest.skip(NO_FMNIST)
    assert plan(sc, m["scenario_file"]).hash == m["hash"]


def _scale_free(sc: Scenario) -> dict[str, Any]:
    """The scenario with the fields a CPU-scale variant may change removed."""
    d = sc.model_dump(mode="json")
    for k in ("name", "description", "seeds", "epochs", "evaluation", "output"):
        d.pop(k)
    d["dataset"].pop("n_train")
    d["dataset"].pop("n_test")
    return d


@pytest.mark.parametrize("path", CPU, ids=lambda p: p.stem)
def test_cpu_scenario_changes_only_the_scale(path: Path) -> None:
    """scenarios/paper/cpu/X.yaml = ../X.yaml but for subset sizes, epochs, seeds,
    evaluation — and, where its header says so, fewer profiles or rules, or a fixed η."""
    small, full = load_scenario(path), load_scenario(PAPER / path.name)
    assert small.name == f"{full.name}_cpu"
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
    if hw.alignment is None:  # a noisy chip is read several times per evaluation
        assert a["evaluation"].pop("n_reps") >= 3 and b["evaluation"].pop("n_reps") == 1
    for d in (a, b):  # a chip runs only the noisy baseline: one search per rule either way
        if d["lr_search"] is not None:
            d["lr_search"].pop("baseline")
    assert a == b


def tiny(sc: Scenario, use_digits: bool) -> Scenario:
    """A few steps of ``sc``: 100 training samples in batches of 50 (convnet: 50), 1 epoch,
    1 seed, widths 16, one profile, at most 2 σ values per rule, an η search of 2 one-epoch
    trials."""
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
        update["lr_search"] = sc.lr_search.model_copy(
            update={"points": 2, "refine": 0, "epochs": 1, "steps": None})
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
            searches = read_search(folder)
            assert searches and all(rows[-1]["kind"] == "lr_choice"
                                    for rows in searches.values())


def test_report_renders_from_the_tiny_runs(tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    folders = [str(f) for f in tiny_runs.values()]
    out = tmp_path / "docs" / "reproduction.md"
    out.parent.mkdir()
    assert main(["report", *folders, "--out", str(out), "--img",
                 str(tmp_path / "docs" / "img")]) == 0
    text = out.read_text()
    assert "Which of the paper's claims hold here" in text
    assert "analogsim run" in text and "analogsim report" in text
    assert "## η searches" in text and "three_layer_he" in text
    assert "One η per rule for both baselines, as in the paper, searched on the clean" in text
    # one seed a side: no difference can be told from the spread
    assert "not resolved at this scale" in text
    judged = [ln for ln in text.splitlines() if "(n=1)" in ln and "| " in ln]
    # ... unless one side diverged on every seed (the report lets a diverging rule lose
    # outright); a tiny run at the paper's η can overflow
    lost: dict[str, set[tuple[str, str]]] = {}
    for stem, folder in tiny_runs.items():
        status: dict[tuple[str, str], list[bool]] = {}
        for r in read_records(folder):
            if r["kind"] == "cell":
                status.setdefault((r["profile"], r["rule"]), []).append(
                    r["status"] == "diverged")
        lost[stem] = {k for k, v in status.items() if all(v)}

    def by_divergence(line: str) -> bool:
        if "diverged seed(s)" in line:  # the evidence names the divergence that decided it
            return True
        m = re.search(r"on (\S+), DANP beats DNP \((\w+)\)", line)
        return m is not None and any(
            stem.endswith(m.group(2)) and {(m.group(1), "danp"), (m.group(1), "dnp")} & sides
            for stem, sides in lost.items())

    assert judged and not any(("**holds**" in ln or "**does not hold**" in ln)
                              and not by_divergence(ln) for ln in judged)
    for link in (tmp_path / "docs" / "img").iterdir():
        assert f"img/{link.name}" in text
    assert main(["report", *folders, "--compact", "--out", str(tmp_path / "c.md")]) == 0
    assert "| experiment |" in (tmp_path / "c.md").read_text()


def test_report_skips_a_run_with_no_finished_cell(tiny_runs: dict[str, Path], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A run just started (a manifest, its searches in progress, no cell yet) is named and
    skipped; the other folders still make the report, and with none left it fails cleanly."""
    started = tmp_path / "started"
    started.mkdir()
    (started / "manifest.json").write_text((tiny_runs["depth_9"] / "manifest.json").read_text())
    out = tmp_path / "r.md"
    assert main(["report", str(tiny_runs["three_layer"]), str(started), "--out", str(out)]) == 0
    assert f"{started}: no finished cell yet" in capsys.readouterr().err
    assert "## Depth 3, 6 and 9" not in out.read_text()
    assert main(["report", str(started), "--out", str(tmp_path / "none.md")]) == 2
    assert "no results folder with a manifest.json and a finished cell" in capsys.readouterr().err
    assert not (tmp_path / "none.md").exists()


def test_gpu_paper_script_runs_tiny_scenarios_on_the_cpu(tmp_path: Path) -> None:
    """benchmarks/gpu_paper.sh end to end with --device cpu on tiny versions of its
    scenarios (one process per scenario): every run finishes, the report is written."""
    import shutil
    import subprocess

    import yaml

    if shutil.which("bash") is None or shutil.which("timeout") is None:
        pytest.skip("needs bash and timeout")
    scen = tmp_path / "scenarios"
    scen.mkdir()
    names = ["three_layer", "three_layer_he", "sarcos"]
    for name in names:
        small = tiny(load_scenario(PAPER / f"{name}.yaml"), use_digits=not HAS_FMNIST)
        data = small.model_dump(mode="json", exclude_unset=True, by_alias=True)
        (scen / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    out = tmp_path / "out"
    res = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_paper.sh"), "--device", "cpu", "--scenarios",
         str(scen), "--out", str(out), "--budget", "300", "--max-jobs", "1"],
        capture_output=True, text=True, timeout=600, cwd=ROOT, check=False)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "no " in res.stdout and "left out" in res.stdout  # the scenarios not written here
    for name in names:
        cells = [r for r in read_records(out / name) if r["kind"] == "cell"]
        assert cells, name
    text = (out / "reproduction.md").read_text()
    assert "Which of the paper's claims hold here" in text and "## η searches" in text
