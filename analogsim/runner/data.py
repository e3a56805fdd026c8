"""The runner's one door to data: ``analogsim.data.load`` plus the scenario's subsets.

Loaded splits are cached per process (keyed by the dataset spec), so cells that run one after
another in the same process load each set once.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from analogsim.config.scenario import DatasetSpec
from analogsim.data import Dataset, load
from analogsim.errors import DataError

_CACHE: dict[tuple[str, str, bool], tuple[Dataset, Dataset]] = {}


def _subset(ds: Dataset, n: int | None, seed: int, what: str) -> Dataset:
    """``n`` samples of ``ds`` drawn without replacement (seeded), in their original order."""
    if n is None or n == len(ds):
        return ds
    if n > len(ds):
        raise DataError(f"{what} = {n} exceeds the {len(ds)} samples of {ds.name} {ds.split}")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(ds), generator=g)[:n].sort().values
    return dataclasses.replace(ds, x=ds.x[idx], y=ds.y[idx],
                               labels=None if ds.labels is None else ds.labels[idx])


def load_splits(spec: DatasetSpec, folder: Path, flatten: bool) -> tuple[Dataset, Dataset]:
    """(train, test) of ``spec``; ``root`` relative to ``folder``; images kept
    (N, C, H, W) unless ``flatten``. Raises ``DataError``."""
    root = None if spec.root is None else str(folder / Path(spec.root).expanduser())
    key = (spec.model_dump_json(), str(root), flatten)
    if key not in _CACHE:
        kw = dict(flatten=flatten, standardize=spec.standardize, seed=spec.seed, **spec.options)
        train = load(spec.name, "train", root, **kw)  # type: ignore[arg-type]
        test = load(spec.name, "test", root, **kw)  # type: ignore[arg-type]
        _CACHE[key] = (_subset(train, spec.n_train, spec.seed, "dataset.n_train"),
                       _subset(test, spec.n_test, spec.seed + 1, "dataset.n_test"))
    return _CACHE[key]
