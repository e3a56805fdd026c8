"""Flat result records and their crash-safe storage.

``records.jsonl`` holds one JSON object per line, every row with the same keys (``COLUMNS``).
A cell's rows are appended in one write followed by ``fsync``, and its last row is its
``kind: "cell"`` summary, which carries ``cell_checksum``, a SHA-256 of the cell's other rows:
a cell is complete exactly when that row is present and its rows match the checksum. After a
crash (or a damaged file) ``RecordStore.recover`` drops torn lines and the rows of incomplete
or damaged cells, so a resumed run reruns those and appends each cell exactly once. When the
grid is complete the file is rewritten in grid order (temporary file, ``fsync``, atomic
rename), so a resumed run ends byte-identical to an uninterrupted one.

Kinds of rows:
- ``epoch``: learning-curve point (epoch 0 is the untrained network).
- ``inference``: evaluation at ``after_programming_s`` seconds after training ended.
- ``lr_trial`` / ``lr_choice``: a trial of the η search (validation metrics at its end) and
  the η it chose; these live in ``lr_search.jsonl`` (``lr_store``), not here.
- ``alignment``: angle (degrees) of the rule's update to BP's in ``layer``, mean ± s.e.m.
- ``cell``: the cell's summary (``status`` done or diverged, η used, final metrics).

Which split a number is on is in its column name: ``train_*`` (the training samples),
``val_*`` (the validation split carved from the training set; η and peak-epoch choices read
only these) and ``test_*`` (the test split, reported only).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

KINDS = ("epoch", "inference", "lr_trial", "lr_choice", "alignment", "cell")

#: Every record has these keys, in this order (None where not applicable).
COLUMNS = (
    "scenario", "cell", "cell_index", "kind",
    "profile", "profile_label", "sweep_field", "sweep_value",
    "rule", "rule_label", "baseline", "seed", "lr",
    "epoch", "step", "device_time_s", "after_programming_s", "since_programming_s",
    "train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy",
    "step_loss",
    "layer", "angle_deg", "angle_sem_deg",
    "diverged", "status", "diverged_at_step", "diverged_what", "cell_checksum",
)

#: Columns that hold measured numbers (a non-finite one marks its cell diverged).
METRICS = ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "step_loss",
           "angle_deg", "angle_sem_deg")

RECORDS = "records.jsonl"
MANIFEST = "manifest.json"
LOCK = ".lock"


class Record(dict[str, Any]):
    """A record row; ``nonfinite`` names the columns whose NaN/inf value was stored as None."""

    nonfinite: tuple[str, ...] = ()


def row(base: dict[str, Any], **values: Any) -> Record:
    """A full record: ``base`` and ``values`` over None for every column; non-finite floats
    become None (JSON has no NaN) and are listed in the record's ``nonfinite``."""
    out = Record(dict.fromkeys(COLUMNS))
    bad = []
    for key, value in {**base, **values}.items():
        if key not in out:
            raise KeyError(f"unknown record column {key!r}")
        if isinstance(value, float) and not math.isfinite(value):
            value = None
            bad.append(key)
        out[key] = value
    if bad:
        out.nonfinite = tuple(bad)
    return out


def mark_nonfinite(rows: Sequence[dict[str, Any]]) -> str | None:
    """If a row of a finished cell holds a NaN or infinite metric, mark the cell diverged in
    its summary row (``rows[-1]``): ``diverged_what`` names the metrics, ``diverged_at_step``
    the step of the first such row. Returns that reason, or None when every metric is finite.

    Input data and profiles are checked for non-finite values before a run, so what is left
    is a network whose outputs overflowed between the divergence guard's checks."""
    for r in rows:
        bad = [c for c in getattr(r, "nonfinite", ()) if c in METRICS]
        if bad:
            epoch = f" of epoch {r['epoch']}" if r.get("epoch") is not None else ""
            reason = f"non-finite {', '.join(bad)} in the {r['kind']} row{epoch}"
            rows[-1].update(status="diverged", diverged=True, diverged_at_step=r.get("step"),
                            diverged_what=f"non-finite {', '.join(bad)}")
            return reason
    return None


def checksum(rows: Iterable[dict[str, Any]]) -> str:
    """SHA-256 (hex, first 16 digits) of ``rows`` as written, one JSON line each."""
    h = hashlib.sha256()
    for r in rows:
        h.update((dumps(r) + "\n").encode("utf-8"))
    return h.hexdigest()[:16]


def dumps(record: dict[str, Any]) -> str:
    """One JSON line (no trailing newline)."""
    return json.dumps(record, allow_nan=False, separators=(", ", ": "))


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``: a temporary file of a unique name, fsync, rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
    try:
        with open(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def write_json(path: Path, obj: Any) -> None:
    """``obj`` as indented JSON, atomically."""
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def parse_lines(text: str) -> tuple[list[dict[str, Any]], int]:
    """Records (JSON objects) of every complete, valid line and the count of lines dropped
    (a torn tail, a damaged line)."""
    rows, dropped = [], 0
    lines = text.split("\n")
    tail = lines.pop()  # after the last newline: empty, or a torn write
    if tail.strip():
        dropped += 1
    for line in lines:
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if isinstance(row, dict):
            rows.append(row)
        else:
            dropped += 1
    return rows, dropped


def read_records(folder: str | Path) -> list[dict[str, Any]]:
    """Every complete record of ``folder/records.jsonl`` (a torn last line is ignored)."""
    path = Path(folder) / RECORDS
    if not path.is_file():
        return []
    return parse_lines(path.read_text(encoding="utf-8"))[0]


class RecordStore:
    """``records.jsonl`` of one results folder; a single writer (the run's coordinator)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / RECORDS

    def recover(self) -> dict[str, list[dict[str, Any]]]:
        """Rows of every complete cell, by cell id; rewrites the file without torn lines or
        incomplete cells when it holds any."""
        if not self.path.is_file():
            return {}
        rows, dropped = parse_lines(self.path.read_text(encoding="utf-8"))
        by_cell: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            by_cell.setdefault(r["cell"], []).append(r)
        complete, extra = {}, 0
        for c, rs in by_cell.items():
            ends = [i for i, r in enumerate(rs) if r.get("kind") == "cell"]
            if ends:  # a cell's rows end at its first summary; anything after is a duplicate
                cell = rs[:ends[0] + 1]
                extra += len(rs) - ends[0] - 1
                if cell[-1].get("cell_checksum") == checksum(cell[:-1]):
                    complete[c] = cell  # else a row is missing or damaged: the cell reruns
        if dropped or extra or len(complete) != len(by_cell):
            self._rewrite(r for rs in complete.values() for r in rs)
        return complete

    def append_cell(self, rows: Sequence[dict[str, Any]]) -> None:
        """Append one cell's rows (its summary last) in one write, then fsync."""
        if not rows or rows[-1]["kind"] != "cell":
            raise ValueError("a cell's rows must end with its kind='cell' summary")
        rows[-1]["cell_checksum"] = checksum(rows[:-1])
        text = "".join(dumps(r) + "\n" for r in rows)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    def finalize(self, order: Sequence[str]) -> None:
        """Rewrite the file with the cells in ``order`` (the grid's), atomically."""
        by_cell = self.recover()
        self._rewrite(r for c in order if c in by_cell for r in by_cell[c])

    def _rewrite(self, rows: Iterable[dict[str, Any]]) -> None:
        write_atomic(self.path, "".join(dumps(r) + "\n" for r in rows))


class FolderBusy(Exception):
    """Another process holds the results folder; ``pid`` is its process id (None: unknown)."""

    def __init__(self, folder: Path, pid: int | None) -> None:
        super().__init__(f"{folder}: another run (PID {pid if pid is not None else 'unknown'}) "
                         "is using this results folder; wait for it to finish or use another "
                         "--out")
        self.pid = pid


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (its ``.lock`` file, holding this PID) for the
    ``with`` block; raises ``FolderBusy`` at once when another process holds it. The kernel
    drops the lock when the holder dies, so a killed run never leaves the folder locked."""
    import fcntl

    path = folder / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            raise FolderBusy(folder, int(text) if text.isdigit() else None) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
