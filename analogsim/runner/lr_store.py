"""η search results of a results folder: ``lr_search.jsonl``.

One search per *group* — a profile variant × rule entry × baseline (a cell id without its
seed, e.g. ``pcm/danp-noisy``). Its rows are the records of ``records`` (same columns): one
``kind: "lr_trial"`` row per trial η (validation metrics at the trial's end; ``diverged`` for
a diverged trial), then one ``kind: "lr_choice"`` row with the chosen η. A group is complete
exactly when its choice row is present; rows are appended a group at a time with ``fsync``,
so a resumed run redoes only the searches that had not finished.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analogsim.runner.records import dumps, parse_lines

SEARCH = "lr_search.jsonl"


def group_of(cell_id: str) -> str:
    """The search group of a cell id (``pcm/danp-noisy/s0`` → ``pcm/danp-noisy``)."""
    return cell_id.rsplit("/", 1)[0]


def read_search(folder: str | Path) -> dict[str, list[dict[str, Any]]]:
    """Rows of every complete search in ``folder``, by group (its choice row last)."""
    path = Path(folder) / SEARCH
    if not path.is_file():
        return {}
    rows, _ = parse_lines(path.read_text(encoding="utf-8"))
    by: dict[str, list[dict[str, Any]]] = {}
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        g = group_of(r["cell"])
        by.setdefault(g, []).append(r)
        if r.get("kind") == "lr_choice" and g not in out:
            out[g] = by[g]
    return out


def chosen_lr(folder: str | Path) -> dict[str, float]:
    """The η each complete search of ``folder`` chose, by group."""
    return {g: float(rows[-1]["lr"]) for g, rows in read_search(folder).items()}


def append_search(folder: str | Path, rows: Sequence[dict[str, Any]]) -> None:
    """Append one group's search rows (its ``lr_choice`` row last) in one write, then fsync."""
    if not rows or rows[-1]["kind"] != "lr_choice":
        raise ValueError("a search's rows must end with its kind='lr_choice' row")
    with open(Path(folder) / SEARCH, "a", encoding="utf-8") as f:
        f.write("".join(dumps(r) + "\n" for r in rows))
        f.flush()
        os.fsync(f.fileno())
