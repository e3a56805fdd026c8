"""Flat result records and their crash-safe storage.

``records.jsonl`` holds one JSON object per line, every row with the same keys (``COLUMNS``).
A cell's rows are appended in one write followed by ``fsync``, and its last row is its
``kind: "cell"`` summary: a cell is complete exactly when that row is present. After a crash
``RecordStore.recover`` drops a torn last line and the rows of incomplete cells, so a resumed
run appends each cell exactly once. When the grid is complete the file is rewritten in grid
order (temporary file, ``fsync``, atomic rename), so a resumed run ends byte-identical to an
uninterrupted one.

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

import json
import math
import os
from collections.abc import Iterable, Sequence
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
    "diverged", "status", "diverged_at_step", "diverged_what",
)

RECORDS = "records.jsonl"
MANIFEST = "manifest.json"


def row(base: dict[str, Any], **values: Any) -> dict[str, Any]:
    """A full record: ``base`` and ``values`` over None for every column; non-finite floats
    become None (JSON has no NaN)."""
    out: dict[str, Any] = dict.fromkeys(COLUMNS)
    for key, value in {**base, **values}.items():
        if key not in out:
            raise KeyError(f"unknown record column {key!r}")
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        out[key] = value
    return out


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
    """Replace ``path`` with ``text``: temporary file, fsync, rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_json(path: Path, obj: Any) -> None:
    """``obj`` as indented JSON, atomically."""
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def parse_lines(text: str) -> tuple[list[dict[str, Any]], int]:
    """Records of every complete, valid line and the count of lines dropped (a torn tail)."""
    rows, dropped = [], 0
    lines = text.split("\n")
    tail = lines.pop()  # after the last newline: empty, or a torn write
    if tail.strip():
        dropped += 1
    for line in lines:
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
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
                complete[c] = rs[:ends[0] + 1]
                extra += len(rs) - ends[0] - 1
        if dropped or extra or len(complete) != len(by_cell):
            self._rewrite(r for rs in complete.values() for r in rs)
        return complete

    def append_cell(self, rows: Sequence[dict[str, Any]]) -> None:
        """Append one cell's rows (its summary last) in one write, then fsync."""
        if not rows or rows[-1]["kind"] != "cell":
            raise ValueError("a cell's rows must end with its kind='cell' summary")
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
