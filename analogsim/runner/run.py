"""``run_scenario``: plan the grid, skip finished cells, run the η searches the rest need
and the cells in one queue (a group's cells once its search ends); record, plot.

The results folder holds ``manifest.json`` (scenario, its hash, versions, seeds, device,
splits, cells), ``records.jsonl`` (see ``records``) and, with ``lr_search``,
``lr_search.jsonl`` (see ``lr_store``). Only this coordinating process writes them, and only
while it holds the folder's lock (``records.folder_lock``).
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from analogsim.analog import numerics
from analogsim.config.scenario import LRFrom, Scenario, load_scenario
from analogsim.errors import ScenarioError
from analogsim.runner import executors
from analogsim.runner.cell import CellJob, CellResult
from analogsim.runner.grid import Cell, Grid, plan, search_baseline, search_group
from analogsim.runner.lr_store import SEARCH, append_search, read_search, read_trials, repair
from analogsim.runner.progress import GridProgress
from analogsim.runner.records import (
    MANIFEST,
    RECORDS,
    FolderBusy,
    RecordStore,
    folder_lock,
    mark_nonfinite,
    write_json,
)

Executor = Literal["local", "ray"]

#: Files a run writes into its results folder (``--fresh`` removes these, nothing else).
OUTPUTS = (RECORDS, MANIFEST, SEARCH, "summary.csv", "summary.md", "learning_curves.png",
           "robustness.png", "inference_vs_time.png", "alignment.png", "lr_search.png")


@dataclass
class RunReport:
    """What a run did."""

    out: Path
    grid: Grid
    ran: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    searched: list[str] = field(default_factory=list)  # η search groups run now
    diverged: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def complete(self) -> bool:
        """Every cell of the grid has its records."""
        return not self.failed and len(self.ran) + len(self.reused) == len(self.grid.cells)


def versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Versions of Python and the packages that shape the numbers."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("analogsim", "torch", "numpy", "pydantic", "simpy", "scikit-learn", *extra):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def code_version() -> str | None:
    """The git commit of the analogsim checkout running this (``<sha>``, ``<sha>+dirty`` when
    the package's tracked files differ from it), or None outside a git checkout."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=30, check=True).stdout.strip()

    try:
        sha = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", "analogsim")
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("+dirty" if dirty else "")


def _codes(previous: list[str]) -> list[str]:
    """The manifest's ``code`` list: ``previous`` plus this start's commit when it differs
    from the last start's."""
    now = code_version()
    if now is None or (previous and previous[-1] == now):
        return list(previous)
    return [*previous, now]


def _numerics_record(setting: str, device: str, previous: dict[str, Any] | None
                     ) -> dict[str, object]:
    """The manifest's ``numerics``: a resumed run's recorded paths (its cells took them),
    else this process's choice on ``device`` (``numerics.describe``)."""
    old = (previous or {}).get("numerics")
    if (isinstance(old, dict) and old.get("numerics") == setting
            and set(old) == {"numerics", *numerics.NONE}):
        return dict(old)
    return numerics.describe(setting, device)  # type: ignore[arg-type]


def _manifest(grid: Grid, source: str, executor: str, jobs: int, threads: int,
              previous: dict[str, Any] | None) -> dict[str, Any]:
    sc = grid.scenario
    shared = search_baseline(sc)
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return {
        "scenario_name": sc.name,
        "scenario_file": source,
        "hash": grid.hash,
        "created": (previous or {}).get("created", now),
        "updated": now,
        "versions": versions(("ray",) if executor == "ray" else ()),
        # every commit that ran part of this folder, in order (a resumed run may add one)
        "code": _codes((previous or {}).get("code", [])),
        "device": sc.device,
        "numerics": _numerics_record(sc.numerics, sc.device, previous),
        "executor": executor,
        "jobs": jobs,
        "threads_per_cell": threads,
        "seeds": sc.seeds,
        "data": {"input_shape": list(grid.data.input_shape), "n_outputs": grid.data.n_outputs,
                 "task": grid.data.task, "n_train": grid.data.n_train,
                 "n_val": grid.data.n_val, "n_test": grid.data.n_test},
        "splits": {"train": grid.data.n_train, "validation": grid.data.n_val,
                   "test": grid.data.n_test, "validation_fraction": sc.dataset.validation,
                   "validation_seed": sc.dataset.seed,
                   "selection": "validation" if grid.data.n_val else "none",
                   "reported": "test"},
        "model": sc.model.model_dump(mode="json"),
        "evaluation_reps": sc.evaluation.n_reps,
        "lr_source": (("search" if sc.lr_search.baseline is None else
                       f"search on the {sc.lr_search.baseline} baseline")
                      if sc.lr_search is not None else
                      f"from {sc.resolve(sc.lr.from_)}" if isinstance(sc.lr, LRFrom)
                      else "given"),
        "lr_chosen": dict((previous or {}).get("lr_chosen", {})),
        "cells": [{"index": c.index, "id": c.id, "profile": c.variant.name,
                   "profile_label": c.variant.label, "sweep_field": c.variant.sweep_field,
                   "sweep_value": c.variant.sweep_value, "rule": c.rule.name,
                   "rule_label": c.rule_label, "baseline": c.baseline, "seed": c.seed,
                   "lr": c.lr if c.lr is not None else
                   (previous or {}).get("lr_chosen", {}).get(search_group(c, shared))}
                  for c in grid.cells],
        "skipped": grid.skipped,
        "cell_wall_s": dict((previous or {}).get("cell_wall_s", {})),
        "scenario": sc.model_dump(mode="json"),
        "profiles": {v.label: v.profile.model_dump(mode="json") for v in grid.variants},
    }


def _prepare(out: Path, grid: Grid, resume: bool, fresh: bool) -> dict[str, Any] | None:
    """Check the results folder against the run; returns the previous manifest to resume."""
    import json

    man_path = out / MANIFEST
    if fresh:
        for name in OUTPUTS:
            (out / name).unlink(missing_ok=True)
        return None
    previous = None
    if man_path.is_file():
        try:
            previous = json.loads(man_path.read_text())
        except (OSError, json.JSONDecodeError):
            raise ScenarioError(f"{man_path}: unreadable manifest; use --fresh to start "
                                "over") from None
    has_records = any((out / name).is_file() and (out / name).stat().st_size > 0
                      for name in (RECORDS, SEARCH))
    if not resume:
        if has_records:
            raise ScenarioError(f"{out} already holds results; pass --resume to finish or "
                                "reuse them, --fresh to start over, or another --out")
        return None
    if previous is None:
        if has_records:
            raise ScenarioError(f"{out}: records without a manifest; use --fresh")
        return None
    if previous.get("hash") != grid.hash:
        raise ScenarioError(
            f"{out}: holds results of a different scenario, device or profiles "
            f"(hash {str(previous.get('hash'))[:12]} ≠ {grid.hash[:12]}); use another --out "
            "or --fresh")
    return previous


def run_scenario(scenario: str | Path | Scenario, out: str | Path | None = None, *,
                 device: str | None = None, executor: Executor = "local",
                 jobs: int | None = None,
                 threads: int | None = None, resume: bool = False, fresh: bool = False,
                 verbose: bool = False, show_progress: bool = True,
                 ray_address: str | None = None,
                 source: str | None = None) -> RunReport:
    """Run every unfinished cell of ``scenario`` and record it under ``out``.

    Args:
        scenario: a YAML path or a ``Scenario``.
        out: results folder (default: the scenario's ``output``, else results/<name>).
        device: "cpu" or "cuda", overriding the scenario's.
        executor: "local" (processes) or "ray" (Ray tasks).
        jobs: cells in parallel (local: worker processes; ray: cells per GPU on CUDA, and
            the CPUs of a local Ray instance). Default: one per CPU core (at most one per
            cell) on CPU, 1 on CUDA.
        threads: torch CPU threads per cell (default: CPU cores // jobs, and the previous
            run's on resume). Same seeds and threads give the same numbers on CPU.
        resume: keep finished cells of ``out`` and run the others; ``fresh``: discard them.
        verbose: each cell's per-epoch lines on stderr (then progress prints plain lines).
        show_progress: one progress display on stderr (cells done/total, ETA, last result).

    Raises ``ScenarioError`` (and nothing else on purpose) before any training if the
    scenario or the results folder is unusable, or another run holds the folder (the run
    holds an exclusive lock on it from before it reads the folder until its records are
    final). A cell whose metrics come out NaN or infinite is recorded as diverged, with
    the metrics named in ``diverged_what``, never as done.
    """
    t0 = time.perf_counter()
    if isinstance(scenario, Scenario):
        sc, src = scenario, source or f"<scenario {scenario.name}>"
    else:
        sc, src = load_scenario(scenario), source or str(scenario)
    if executor not in ("local", "ray"):
        raise ScenarioError(f"executor must be local or ray, got {executor!r}")
    if jobs is not None and jobs < 1:
        raise ScenarioError(f"jobs must be ≥ 1, got {jobs}")
    grid = plan(sc, src, device, check_device=executor != "ray")
    if jobs is None:
        cores = os.cpu_count() or 1
        jobs = 1 if grid.scenario.device == "cuda" else max(1, min(cores, len(grid.cells)))
    folder = Path(out) if out is not None else Path(grid.scenario.output or
                                                    f"results/{grid.scenario.name}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ScenarioError(f"{folder}: cannot create the results folder: "
                            f"{err.strerror}") from None
    try:
        with folder_lock(folder):
            report = _run_locked(grid, folder, src, executor, jobs, threads, resume, fresh,
                                 verbose, ray_address, show_progress)
    except FolderBusy as err:
        raise ScenarioError(str(err)) from None
    report.wall_s = time.perf_counter() - t0
    if report.failed:
        sys.stderr.write(f"{len(report.failed)} cell(s) failed; rerun with --resume to retry "
                         "them\n")
    return report


def _run_locked(grid: Grid, folder: Path, src: str, executor: Executor, jobs: int,
                threads: int | None, resume: bool, fresh: bool, verbose: bool,
                ray_address: str | None, show_progress: bool = True) -> RunReport:
    """The run proper, while this process holds the results folder's lock."""
    previous = _prepare(folder, grid, resume, fresh)
    if threads is None:
        threads = int((previous or {}).get("threads_per_cell") or
                      max(1, (os.cpu_count() or 1) // jobs))
    store = RecordStore(folder)
    finished = store.recover() if previous is not None else {}
    manifest = _manifest(grid, src, executor, jobs, threads, previous)
    write_json(folder / MANIFEST, manifest)

    report = RunReport(folder, grid)
    todo = [c for c in grid.cells if c.id not in finished]
    report.reused = [c.id for c in grid.cells if c.id in finished]
    report.diverged = [c for c in report.reused if finished[c][-1].get("status") == "diverged"]
    chosen: dict[str, float] = {}
    tried: dict[str, list[dict[str, Any]]] = {}  # trials of searches cut short, by group
    if previous is not None:
        repair(folder)
        chosen = {g: float(rows[-1]["lr"]) for g, rows in read_search(folder).items()}
        tried = read_trials(folder)
    shared = search_baseline(grid.scenario)
    first: dict[str, Cell] = {}
    for c in grid.cells:
        first.setdefault(c.group, c)
    # cells wait for their group's η search only; every other cell is queued from the start
    waiting: dict[str, list[Cell]] = {}
    ready: list[Cell] = []
    for c in todo:
        g = search_group(c, shared)
        if c.lr is None and g not in chosen:
            waiting.setdefault(g, []).append(c)
        else:
            ready.append(c if c.lr is not None else dataclasses.replace(c, lr=chosen[g]))
    searches = {g: first[g] for g in waiting}  # one per group, on the group's first cell (seed)

    # every cell takes the recorded fast paths, whichever process runs it
    paths = ({k: bool(manifest["numerics"][k]) for k in numerics.NONE}
             if grid.scenario.numerics == "fast" else None)

    def job(c: Cell, search: bool = False) -> CellJob:
        # local searches append each trial as it ends (Ray workers may not see this folder)
        return CellJob(grid.scenario, c, len(grid.cells), grid.scenario.device, threads,
                       verbose, search,
                       search_file=str(folder / SEARCH) if search and executor != "ray" else None,
                       prior_trials=tuple(tried.get(c.group, ())) if search else (),
                       paths=paths)

    progress = GridProgress(len(grid.cells), len(report.reused),
                            enabled=show_progress or verbose, plain=verbose)
    n_par = min(jobs, max(1, len(todo) + len(searches)))
    where = (f"Ray ({ray_address or os.environ.get('RAY_ADDRESS') or 'local instance'})"
             if executor == "ray" else f"{n_par} local process(es)")
    progress.start(len(todo), f"{where}, {grid.scenario.device}, {threads} thread(s) each")

    def on_searched(res: CellResult) -> list[CellJob]:
        # rows on disk already: every trial of a local search (appended as it ended), the
        # recorded trials of an interrupted one
        on_disk = res.rows[:-1] if executor != "ray" else tried.get(res.cell_id, [])
        append_search(folder, [r for r in res.rows if r not in on_disk])
        chosen[res.cell_id] = float(res.rows[-1]["lr"])
        manifest["lr_chosen"][res.cell_id] = chosen[res.cell_id]
        for entry, c in zip(manifest["cells"], grid.cells, strict=True):
            if search_group(c, shared) == res.cell_id:
                entry["lr"] = chosen[res.cell_id]
        report.searched.append(res.cell_id)
        progress.line(f"[η search] {res.cell_id}: {res.summary} ({res.wall_s:.1f} s)")
        return [job(dataclasses.replace(c, lr=chosen[res.cell_id]))
                for c in waiting.pop(res.cell_id, [])]

    def on_cell(res: CellResult) -> list[CellJob]:
        status, summary = res.status, res.summary
        if status == "done":
            reason = mark_nonfinite(res.rows)  # never a "done" cell with NaN metrics
            if reason is not None:
                status, summary = "diverged", f"diverged: {reason}"
        store.append_cell(res.rows)
        report.ran.append(res.cell_id)
        if status == "diverged":
            report.diverged.append(res.cell_id)
        manifest["cell_wall_s"][res.cell_id] = round(res.wall_s, 3)
        # the manifest of a run in progress says how far it got (cell times, last update)
        manifest["updated"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        write_json(folder / MANIFEST, manifest)
        progress.cell_done(res.cell_id, summary)
        return []

    def on_done(res: CellResult) -> list[CellJob]:
        return on_searched(res) if res.status == "searched" else on_cell(res)

    def on_error(job: CellJob, message: str) -> None:
        what = job.cell.group if job.search else job.cell.id
        report.failed[what] = message
        manifest.setdefault("failed", {})[what] = message
        progress.line(f"{'η search' if job.search else 'cell'} {what} failed: {message}")

    try:
        if searches:
            progress.line(f"η search: {len(searches)} group(s) (profile × rule × baseline) "
                          "on the validation split, alongside the cells that need none")
        # searches first: each holds back its group's cells
        queue = [job(c, search=True) for c in searches.values()] + [job(c) for c in ready]
        if queue and executor == "ray":
            executors.run_ray(queue, jobs, on_done, on_error, ray_address)
        elif queue:
            executors.run_local(queue, n_par, on_done, on_error)
    finally:
        progress.close()
        manifest["updated"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        manifest["complete"] = report.complete
        write_json(folder / MANIFEST, manifest)
    store.finalize([c.id for c in grid.cells])
    return report
