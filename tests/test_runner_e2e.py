"""End to end: `analogsim run` on a tiny scenario, determinism, SIGKILL + resume, divergence."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import torch
import yaml

from analogsim.cli import main
from analogsim.config.scenario import load_scenario
from analogsim.errors import ScenarioError
from analogsim.runner import plan, read_records, run_scenario

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "scenarios" / "tiny.yaml"
N_CELLS = 8  # 2 profiles × (danp noisy, bp) × 2 seeds
EPOCHS = 3




@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run of the tiny scenario through the CLI (in this process)."""
    out = tmp_path_factory.mktemp("reference")
    n = torch.get_num_threads()
    try:
        assert main(["run", str(TINY), "--out", str(out), "--jobs", "1", "--threads", "1",
                     "--quiet"]) == 0
    finally:
        torch.set_num_threads(n)
    return out


def test_cli_run_writes_records_manifest_plots_and_table(reference: Path) -> None:
    rows = read_records(reference)
    per_cell = Counter(r["cell"] for r in rows)
    assert len(per_cell) == N_CELLS
    kinds = Counter((r["rule"], r["kind"]) for r in rows)
    # epoch 0..3 + 2 inference times + summary per cell; alignment per layer for DANP only
    assert kinds == {("danp", "epoch"): 4 * (EPOCHS + 1), ("bp", "epoch"): 4 * (EPOCHS + 1),
                     ("danp", "inference"): 4 * 2, ("bp", "inference"): 4 * 2,
                     ("danp", "alignment"): 4 * 2, ("danp", "cell"): 4, ("bp", "cell"): 4}
    assert all(r["status"] == "done" for r in rows if r["kind"] == "cell")
    assert [r["cell_index"] for r in rows] == sorted(r["cell_index"] for r in rows)
    ep = [r for r in rows if r["kind"] == "epoch" and r["cell"] == "ideal/bp/s0"]
    assert [r["epoch"] for r in ep] == [0, 1, 2, 3]
    assert [r["step"] for r in ep] == [0, 10, 20, 30]  # 200 samples / batch 20
    assert [r["device_time_s"] for r in ep] == pytest.approx([0.0, 1.0, 2.0, 3.0])  # 0.1 s/step

    # BP on the exact digital device learns something in 30 steps
    def mean_acc(epoch: int) -> float:
        accs = [r["test_accuracy"] for r in rows if r["kind"] == "epoch"
                and r["profile"] == "ideal" and r["rule"] == "bp" and r["epoch"] == epoch]
        return sum(accs) / len(accs)

    assert mean_acc(EPOCHS) > mean_acc(0) + 0.1
    # the ideal device neither drifts nor reads noisily: inference = final accuracy, exactly
    for cell in (c for c in per_cell if c.startswith("ideal/")):
        final = next(r for r in rows if r["cell"] == cell and r["kind"] == "cell")
        inf = [r for r in rows if r["cell"] == cell and r["kind"] == "inference"]
        assert [r["after_programming_s"] for r in inf] == [1.0, 3600.0]
        assert all(r["test_accuracy"] == final["test_accuracy"] for r in inf)
        assert all(r["since_programming_s"] == pytest.approx(r["after_programming_s"])
                   for r in inf)

    man = json.loads((reference / "manifest.json").read_text())
    assert man["hash"] == plan(load_scenario(TINY)).hash
    assert man["seeds"] == [0, 1] and man["device"] == "cpu" and man["complete"] is True
    assert len(man["cells"]) == N_CELLS and man["versions"]["torch"] == torch.__version__
    assert man["scenario"]["name"] == "tiny" and man["threads_per_cell"] == 1
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=False).stdout.strip()
    if (ROOT / ".git").exists() and head:  # a run from a git checkout names its commit
        assert len(man["code"]) == 1 and man["code"][0].split("+")[0] == head
    for name in ("learning_curves.png", "robustness.png", "inference_vs_time.png",
                 "alignment.png"):
        data = (reference / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    summary = (reference / "summary.csv").read_text().splitlines()
    assert len(summary) == 1 + 2 * 2  # header + profiles × rules
    assert summary[0].startswith("profile,sweep_field,sweep_value,rule,metric,seeds")


def test_plot_command_rebuilds_table_from_records(reference: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    (reference / "summary.csv").unlink()
    assert main(["plot", str(reference)]) == 0
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("|")]
    assert len(table) == 2 + 4  # header, rule line, one row per profile × rule
    assert "| ideal | BP | 2 | 0 | 0.1 |" in table[3]
    assert (reference / "summary.csv").is_file()


def test_damaged_results_are_named_not_silently_used(reference: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    folder = tmp_path / "damaged"
    shutil.copytree(reference, folder)
    records = folder / "records.jsonl"
    lines = records.read_text().splitlines(keepends=True)
    records.write_text("".join([*lines[:3], "garbage\n", "[1, 2]\n", *lines[3:]]))
    assert main(["plot", str(folder)]) == 0  # plotted from what is intact, with a warning
    out = capsys.readouterr()
    assert f"warning: {records}: 2 damaged line(s) left out" in out.err
    assert "| ideal | BP | 2 | 0 | 0.1 |" in out.out
    (folder / "manifest.json").write_text("{not json")
    assert main(["report", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "manifest.json: not valid JSON" in err


def test_existing_results_need_resume_and_the_same_scenario(reference: Path,
                                                           tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="already holds results"):
        run_scenario(TINY, reference, jobs=1, verbose=False)
    other = yaml.safe_load(TINY.read_text())
    other["epochs"] = 2
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(other))
    with pytest.raises(ScenarioError, match="different scenario"):
        run_scenario(path, reference, resume=True, verbose=False)


def _complete_cells(path: Path) -> int:
    if not path.is_file():
        return 0
    return sum('"kind": "cell"' in line for line in path.read_text().splitlines()
               if line.endswith("}"))


def test_sigkill_mid_grid_then_resume_equals_uninterrupted(reference: Path,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "analogsim.cli", "run", str(TINY), "--out", str(out),
           "--jobs", "1", "--threads", "1", "--quiet", "--no-plot"]
    log = tmp_path / "stderr.txt"
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=err)
        records = out / "records.jsonl"
        deadline = time.monotonic() + 60
        while (_complete_cells(records) < 2 and proc.poll() is None
               and time.monotonic() < deadline):
            time.sleep(0.005)
        os.killpg(proc.pid, signal.SIGKILL)  # the run and any worker it started
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, log.read_text()
    done_at_kill = _complete_cells(records)
    assert 2 <= done_at_kill < N_CELLS  # killed mid-grid
    with open(records, "a") as f:  # and as if the kill had landed mid-write
        f.write('{"scenario": "tiny", "cell": "pcm/bp/s1", "kind": "ep')

    report = run_scenario(TINY, out, resume=True, jobs=1, verbose=False)
    assert len(report.reused) == done_at_kill and len(report.ran) == N_CELLS - done_at_kill
    assert report.complete
    assert records.read_bytes() == (reference / "records.jsonl").read_bytes()
    lines = records.read_text().splitlines()
    assert len(lines) == len(set(lines))  # no duplicates
    assert all(json.loads(line) for line in lines)  # no torn line
    # resuming a complete grid runs nothing and changes nothing
    again = run_scenario(TINY, out, resume=True, jobs=1, verbose=False)
    assert again.ran == [] and records.read_bytes() == (reference / "records.jsonl").read_bytes()


def test_spawned_workers_give_the_same_numbers(reference: Path, tmp_path: Path) -> None:
    report = run_scenario(TINY, tmp_path / "jobs2", jobs=2, threads=1, verbose=False)
    assert report.complete and len(report.ran) == N_CELLS
    assert (tmp_path / "jobs2" / "records.jsonl").read_bytes() == \
        (reference / "records.jsonl").read_bytes()


def test_diverged_cell_is_recorded_and_the_grid_goes_on(tmp_path: Path) -> None:
    data = yaml.safe_load(TINY.read_text())
    data.update(profiles=["ideal"], seeds=[0], lr={"danp": 1.0e4, "bp": 0.1},
                rules=[{"name": "danp", "check_every": 1}, "bp"])
    data.pop("alignment")
    path = tmp_path / "diverge.yaml"
    path.write_text(yaml.safe_dump(data))
    report = run_scenario(path, tmp_path / "out", jobs=1, verbose=False)
    assert report.complete and report.diverged == ["ideal/danp-noisy/s0"]
    rows = read_records(tmp_path / "out")
    danp = [r for r in rows if r["rule"] == "danp"]
    assert [r["kind"] for r in danp] == ["epoch", "epoch", "cell"]  # epoch 0, the diverged one
    assert danp[1]["diverged"] is True and danp[1]["epoch"] == 1
    assert danp[2]["status"] == "diverged" and danp[2]["diverged_at_step"] is not None
    assert danp[2]["diverged_what"] in ("loss", "weights", "decorrelation matrices")
    bp = [r for r in rows if r["rule"] == "bp"]
    assert bp[-1]["status"] == "done" and len(bp) == EPOCHS + 1 + 2 + 1


def test_manifest_lists_each_commit_that_ran_the_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    from analogsim.runner import run

    monkeypatch.setattr(run, "code_version", lambda: "b" * 40)
    assert run._codes(["a" * 40]) == ["a" * 40, "b" * 40]  # resumed on newer code
    assert run._codes(["b" * 40]) == ["b" * 40]  # resumed on the same code
    assert run._codes(["b" * 40, "a" * 40]) == ["b" * 40, "a" * 40, "b" * 40]  # back to b
    monkeypatch.setattr(run, "code_version", lambda: None)  # not a git checkout
    assert run._codes(["a" * 40]) == ["a" * 40]
