"""The results folder under concurrency and damage: one run at a time (an exclusive lock), unique
temporary files, per-cell checksums (a damaged cell reruns), non-finite metrics fail their cell,
and SIGKILL at random points followed by ``--resume`` ends byte-identical, many times over."""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from analogsim import data
from analogsim.errors import DataError, ScenarioError
from analogsim.runner import run_scenario
from analogsim.runner.records import (
    LOCK,
    FolderBusy,
    RecordStore,
    checksum,
    folder_lock,
    read_records,
    row,
    write_atomic,
)

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "scenarios" / "tiny.yaml"




def small_scenario(folder: Path, **changes: object) -> Path:
    """tiny.yaml cut to 4 short cells (ideal and pcm × bp × 2 seeds)."""
    sc = yaml.safe_load(TINY.read_text())
    sc.update(rules=["bp"], lr=0.1, epochs=2, alignment=None, **changes)
    sc = {k: v for k, v in sc.items() if v is not None}
    path = folder / "small.yaml"
    path.write_text(yaml.safe_dump(sc))
    return path


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "analogsim.cli", *args]


def cell_rows(cell: str, n: int) -> list[dict]:
    base = {"scenario": "t", "cell": cell}
    return [row(base, kind="epoch", epoch=e, test_loss=1.0 / (e + 1)) for e in range(n)] + [
        row(base, kind="cell", status="done")]


# --- temporary files, checksums ------------------------------------------------------------------

def test_atomic_writes_from_many_threads_never_collide(tmp_path: Path) -> None:
    """With one shared temporary name, a writer's rename finds its file taken by another."""
    target, errors = tmp_path / "manifest.json", []

    def writer(k: int) -> None:
        try:
            for i in range(40):
                write_atomic(target, f"{k} {i}\n" * 100)
        except Exception as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(target.read_text().splitlines())) == 1  # one writer's whole text
    assert not list(tmp_path.glob(".*.tmp"))


def test_damaged_middle_row_makes_its_cell_rerun(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    for c in "abc":
        store.append_cell(cell_rows(c, 3))
    lines = store.path.read_text().splitlines()
    assert json.loads(lines[3])["cell_checksum"] == checksum(json.loads(x) for x in lines[:3])
    del lines[5]  # a middle row of b
    i = next(i for i, ln in enumerate(lines) if '"cell": "c"' in ln and '"epoch": 1,' in ln)
    assert '"test_loss": 0.5,' in lines[i]
    lines[i] = lines[i].replace('"test_loss": 0.5,', '"test_loss": 0.25,')  # a number of c
    store.path.write_text("\n".join(lines) + "\n")
    assert sorted(store.recover()) == ["a"]
    assert [r["cell"] for r in read_records(tmp_path)] == ["a"] * 4


def test_summary_without_checksum_is_not_trusted(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    rows = cell_rows("a", 2)
    store.path.write_text("".join(json.dumps(r) + "\n" for r in rows))  # no checksum
    assert store.recover() == {}


def test_resume_reruns_a_damaged_cell(tmp_path: Path) -> None:
    sc, out = small_scenario(tmp_path), tmp_path / "out"
    run_scenario(sc, out, jobs=1, threads=1, verbose=False)
    reference = (out / "records.jsonl").read_bytes()
    lines = reference.decode().splitlines()
    second = json.loads(lines[0])["cell"]
    victim = next(i for i, ln in enumerate(lines)
                  if json.loads(ln)["cell"] != second and json.loads(ln)["kind"] == "epoch")
    damaged_cell = json.loads(lines[victim])["cell"]
    del lines[victim]
    (out / "records.jsonl").write_text("\n".join(lines) + "\n")
    report = run_scenario(sc, out, resume=True, jobs=1, threads=1, verbose=False)
    assert report.ran == [damaged_cell] and len(report.reused) == 3
    assert (out / "records.jsonl").read_bytes() == reference


# --- the lock --------------------------------------------------------------------------------------

def test_lock_refuses_a_second_holder_and_names_the_first(tmp_path: Path) -> None:
    probe = ("import sys; from pathlib import Path\n"
             "from analogsim.runner.records import FolderBusy, folder_lock\n"
             "try:\n    with folder_lock(Path(sys.argv[1])): print('got it')\n"
             "except FolderBusy as e: print(e.pid)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with folder_lock(tmp_path):
        assert (tmp_path / LOCK).read_text().strip() == str(os.getpid())
        r = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True,
                           text=True, env=env, check=True)
        assert r.stdout.strip() == str(os.getpid())
    r = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True,
                       text=True, env=env, check=True)
    assert r.stdout.strip() == "got it"  # released


def test_lock_dies_with_its_holder(tmp_path: Path) -> None:
    code = ("import sys, time; from pathlib import Path\n"
            "from analogsim.runner.records import folder_lock\n"
            "with folder_lock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderBusy) as info, folder_lock(tmp_path):
            pass
        assert info.value.pid == holder.pid
    finally:
        holder.kill()
        holder.communicate()  # reaps it and closes its pipe
    with folder_lock(tmp_path):  # SIGKILL left no stale lock behind
        pass


def test_two_concurrent_cli_runs_on_one_folder(tmp_path: Path) -> None:
    """The second of two real `analogsim run` processes into one --out is refused in one line
    naming the folder and the first's PID; the first finishes untouched."""
    sc, out = small_scenario(tmp_path), tmp_path / "out"
    args = ["run", str(sc), "--out", str(out), "--jobs", "1", "--threads", "1", "--quiet",
            "--no-plot"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen(cli(*args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and first.poll() is None:
            lock = out / LOCK
            if lock.is_file() and lock.read_text().strip() == str(first.pid):
                break
            time.sleep(0.002)
        # hold the first run inside its grid while the others try (it keeps its lock)
        first.send_signal(signal.SIGSTOP)
        assert first.poll() is None, "the first run ended before the second could start"
        second = subprocess.run(cli(*args, "--resume"), capture_output=True, text=True,
                                env=env, check=False)
        third = subprocess.run(cli(*args, "--fresh"), capture_output=True, text=True, env=env,
                               check=False)
    finally:
        first.send_signal(signal.SIGCONT)
        _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    for other in (second, third):
        assert other.returncode == 2
        assert other.stderr.strip() == (
            f"error: {out}: another run (PID {first.pid}) is using this results folder; "
            "wait for it to finish or use another --out")
    assert sorted(RecordStore(out).recover()) == sorted(
        {r["cell"] for r in read_records(out)}) and len(RecordStore(out).recover()) == 4


def test_busy_folder_is_a_scenario_error(tmp_path: Path) -> None:
    sc, out = small_scenario(tmp_path), tmp_path / "out"
    out.mkdir()
    with folder_lock(out), pytest.raises(ScenarioError, match=f"PID {os.getpid()}"):
        run_scenario(sc, out, jobs=1, threads=1, verbose=False)


# --- crash safety ---------------------------------------------------------------------------------

def test_sigkill_at_random_points_then_resume_is_byte_identical(tmp_path: Path) -> None:
    """Kill `analogsim run` at seeded random instants across a whole run (start-up, mid-cell,
    mid-write, the final rewrite), resume, and compare records byte for byte; four times."""
    sc = small_scenario(tmp_path)
    args = ["--jobs", "1", "--threads", "1", "--quiet", "--no-plot"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ref = tmp_path / "reference"
    t0 = time.perf_counter()
    subprocess.run(cli("run", str(sc), "--out", str(ref), *args), check=True, env=env,
                   stdout=subprocess.DEVNULL)
    full = time.perf_counter() - t0
    reference = (ref / "records.jsonl").read_bytes()
    rng = random.Random(20260)
    for trial in range(4):
        out = tmp_path / f"killed{trial}"
        proc = subprocess.Popen(cli("run", str(sc), "--out", str(out), *args), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        time.sleep(rng.uniform(0.4, 1.0) * full)
        with contextlib.suppress(ProcessLookupError):  # it may have finished already
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        report = run_scenario(sc, out, resume=(out / "manifest.json").exists(), jobs=1,
                              threads=1, verbose=False)
        assert report.complete
        assert (out / "records.jsonl").read_bytes() == reference, f"trial {trial}"


def test_manifest_of_a_run_in_progress_lists_each_finished_cell(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When a cell is reported done, the manifest on disk already holds its wall time and a
    fresh ``updated`` time (a report on a run in progress reads how far it got)."""
    from analogsim.runner.progress import GridProgress

    out = tmp_path / "out"
    seen: list[tuple[str, set[str], str]] = []
    done = GridProgress.cell_done

    def spy(self: GridProgress, cell_id: str, what: str) -> None:
        m = json.loads((out / "manifest.json").read_text())
        seen.append((cell_id, set(m["cell_wall_s"]), m["updated"]))
        done(self, cell_id, what)

    monkeypatch.setattr(GridProgress, "cell_done", spy)
    report = run_scenario(small_scenario(tmp_path), out, jobs=1, threads=1, verbose=False)
    assert report.complete and len(seen) == 4
    for i, (cell, listed, _) in enumerate(seen):
        assert cell in listed and len(listed) == i + 1  # this cell and those before it
    assert [u for _, _, u in seen] == sorted(u for _, _, u in seen)
    assert not json.loads((out / "manifest.json").read_text()).get("failed")


# --- non-finite data and metrics ----------------------------------------------------------------

def test_nonfinite_data_refused_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    from analogsim.data import registry

    original = registry.GENERATORS["teacher"]

    def poisoned(split: str, seed: int, **kw: object) -> registry.Raw:
        raw = original(split, seed, **kw)
        raw.x[7, 2] = np.nan
        raw.x[9, 0] = np.inf
        return raw

    monkeypatch.setitem(registry.GENERATORS, "teacher", poisoned)
    with pytest.raises(DataError, match=r"^dataset teacher \(train split\): input of row 7 "
                                        r"is NaN or infinite \(2 such rows\)"):
        data.load("teacher", "train")


def test_nonfinite_metrics_mark_their_cell_diverged(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A network whose outputs overflow between the guard's checks: never a `done` cell with
    null losses; it is recorded as diverged, naming the metrics and where they went bad."""
    from analogsim.runner import cell

    sc, out = small_scenario(tmp_path, profiles=["ideal"], seeds=[0]), tmp_path / "out"
    real = cell.evaluate
    calls = []

    def nan_from_epoch_1(*a: object, **k: object) -> tuple[float, float | None]:
        loss, acc = real(*a, **k)
        calls.append(loss)
        return (math.nan if len(calls) > 2 else loss), acc  # epoch 0: test, train

    monkeypatch.setattr(cell, "evaluate", nan_from_epoch_1)
    report = run_scenario(sc, out, jobs=1, threads=1, verbose=False)
    assert report.complete and report.diverged == report.ran == ["ideal/bp/s0"]
    rows = read_records(out)
    summary = rows[-1]
    assert summary["status"] == "diverged" and summary["diverged"] is True
    assert summary["diverged_what"] == "non-finite test_loss, train_loss"
    assert summary["diverged_at_step"] == next(r["step"] for r in rows if r["epoch"] == 1)
    assert rows[0]["test_loss"] is not None  # epoch 0 was fine and is kept
