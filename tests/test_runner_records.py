"""Records: flat rows, crash-safe appends, recovery from torn writes, canonical order."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from analogsim.runner.records import COLUMNS, RecordStore, read_records, row


def cell_rows(cell: str, n: int, status: str = "done") -> list[dict]:
    base = {"scenario": "t", "cell": cell}
    rows = [row(base, kind="epoch", epoch=e, test_accuracy=0.1 * e) for e in range(n)]
    return rows + [row(base, kind="cell", status=status)]


def test_row_has_every_column_and_no_nan() -> None:
    r = row({"cell": "a"}, kind="epoch", test_loss=math.nan, train_loss=math.inf, epoch=3)
    assert tuple(r) == COLUMNS
    assert r["test_loss"] is None and r["train_loss"] is None and r["epoch"] == 3
    with pytest.raises(KeyError, match="colour"):
        row({}, colour="red")


def test_append_then_read_back(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    store.append_cell(cell_rows("a", 3))
    store.append_cell(cell_rows("b", 2, "diverged"))
    rows = read_records(tmp_path)
    assert [r["cell"] for r in rows] == ["a"] * 4 + ["b"] * 3
    assert rows[2]["test_accuracy"] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="summary"):
        store.append_cell(cell_rows("c", 2)[:-1])


def test_recover_drops_torn_line_and_incomplete_cells(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    store.append_cell(cell_rows("a", 2))
    store.append_cell(cell_rows("b", 2))
    partial = cell_rows("c", 3)[:2]  # killed before its summary row
    with open(store.path, "a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in partial))
        f.write(json.dumps(cell_rows("d", 1)[0])[:37])  # torn mid-line
    done = store.recover()
    assert sorted(done) == ["a", "b"]
    text = store.path.read_text()
    assert text.endswith("\n") and len(text.splitlines()) == 6
    assert all(json.loads(line)["cell"] in ("a", "b") for line in text.splitlines())


def test_recover_keeps_one_copy_of_a_cell(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    store.append_cell(cell_rows("a", 2))
    store.append_cell(cell_rows("a", 2))
    assert len(store.recover()["a"]) == 3
    assert len(read_records(tmp_path)) == 3


def test_finalize_orders_cells_like_the_grid(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    for c in ("c", "a", "b"):
        store.append_cell(cell_rows(c, 1))
    store.finalize(["a", "b", "c"])
    assert [r["cell"] for r in read_records(tmp_path)] == ["a", "a", "b", "b", "c", "c"]
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed away
