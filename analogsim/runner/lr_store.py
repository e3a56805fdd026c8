"""η search results of a results folder: ``lr_search.jsonl``.

One search per *group* — a profile variant × rule entry × baseline (a cell id without its
seed, e.g. ``pcm/danp-noisy``). Its rows are the records of ``records`` (same columns): one
``kind: "lr_trial"`` row per trial η (validation metrics at the trial's end; ``diverged`` for
a diverged trial), then one ``kind: "lr_choice"`` row with the chosen η. A group is complete
exactly when its choice row is present. Every row is appended with ``fsync``: a local
search appends each trial as it ends (``append_trial``), so a resumed run redoes only the
searches that had not finished, and of those only the trials that had not (``read_trials``:
a trial is a deterministic run of its η, so its recorded result stands).
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


def read_trials(folder: str | Path) -> dict[str, list[dict[str, Any]]]:
    """The trial rows of every search of ``folder`` that has not finished, by group."""
    path = Path(folder) / SEARCH
    if not path.is_file():
        return {}
    rows, _ = parse_lines(path.read_text(encoding="utf-8"))
    done = {group_of(r["cell"]) for r in rows if r.get("kind") == "lr_choice"}
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        g = group_of(r["cell"])
        # a trial recorded twice (a worker outliving its killed parent) counts once
        if (r.get("kind") == "lr_trial" and g not in done
                and all(t["lr"] != r["lr"] for t in out.get(g, []))):
            out.setdefault(g, []).append(r)
    return out


def repair(folder: str | Path) -> None:
    """Cut a torn last line (an append cut short) off ``folder``'s search file, so that the
    next append starts on a line of its own."""
    path = Path(folder) / SEARCH
    if not path.is_file():
        return
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1
    if keep < len(data):
        with open(path, "r+b") as f:
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())


def chosen_lr(folder: str | Path) -> dict[str, float]:
    """The η each complete search of ``folder`` chose, by group."""
    return {g: float(rows[-1]["lr"]) for g, rows in read_search(folder).items()}


def _append(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write("".join(dumps(r) + "\n" for r in rows))
        f.flush()
        os.fsync(f.fileno())


def append_search(folder: str | Path, rows: Sequence[dict[str, Any]]) -> None:
    """Append the rest of one group's search rows (its ``lr_choice`` row last; trials the
    search appended itself left out) in one write, then fsync."""
    if not rows or rows[-1]["kind"] != "lr_choice":
        raise ValueError("a search's rows must end with its kind='lr_choice' row")
    _append(Path(folder) / SEARCH, rows)


def append_trial(path: str | Path, row: dict[str, Any]) -> None:
    """Append one finished trial's row to the search file ``path`` (one write, then fsync;
    searches of other groups may append to the same file at the same time)."""
    if row.get("kind") != "lr_trial":
        raise ValueError("append_trial takes kind='lr_trial' rows")
    _append(Path(path), [row])
