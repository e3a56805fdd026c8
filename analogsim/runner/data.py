"""The runner's one door to data: ``analogsim.data.load``, the scenario's subsets and the
validation split carved from the training set.

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

_CACHE: dict[tuple[str, str, bool], tuple[Dataset, Dataset | None, Dataset]] = {}


def _take(ds: Dataset, idx: torch.Tensor, split: str) -> Dataset:
    return dataclasses.replace(ds, x=ds.x[idx], y=ds.y[idx], split=split,
                               labels=None if ds.labels is None else ds.labels[idx],
                               groups=None if ds.groups is None else ds.groups[idx])


def carve_validation(train: Dataset, fraction: float, seed: int
                     ) -> tuple[Dataset, Dataset | None]:
    """(train without the validation samples, validation split): ``round(fraction · N)``
    train samples drawn without replacement (seeded), each part in its original order.
    A set with row ``groups`` (robot trajectories) gives whole groups to validation, drawn in
    a seeded order until they hold ``round(fraction · N)`` rows or more: a validation row
    never has a neighbour of its trajectory in training — unless whole groups would leave no
    training rows (a set of one trajectory), where rows are drawn as for independent samples.
    ``fraction`` 0 gives (train, None)."""
    n_val = round(fraction * len(train))
    if fraction == 0:
        return train, None
    g = torch.Generator().manual_seed(seed)
    perm = None
    if train.groups is not None and 1 <= n_val < len(train):
        ids, counts = torch.unique(train.groups, return_counts=True)
        order = torch.randperm(len(ids), generator=g)
        taken = int(torch.searchsorted(counts[order].cumsum(0), n_val)) + 1
        in_val = torch.isin(train.groups, ids[order[:taken]])
        if int(in_val.sum()) < len(train):
            n_val = int(in_val.sum())
            perm = torch.cat((in_val.nonzero().flatten(), (~in_val).nonzero().flatten()))
    if perm is None:
        perm = torch.randperm(len(train), generator=g)
    if not 1 <= n_val < len(train):
        raise DataError(f"dataset.validation = {fraction} leaves no validation or no training "
                        f"samples of the {len(train)} in {train.name} {train.split}")
    return (_take(train, perm[n_val:].sort().values, train.split),
            _take(train, perm[:n_val].sort().values, "validation"))


def _subset(ds: Dataset, n: int | None, seed: int, what: str) -> Dataset:
    """``n`` samples of ``ds`` drawn without replacement (seeded), in their original order."""
    if n is None or n == len(ds):
        return ds
    if n > len(ds):
        raise DataError(f"{what} = {n} exceeds the {len(ds)} samples of {ds.name} {ds.split}")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(ds), generator=g)[:n].sort().values
    return _take(ds, idx, ds.split)


def load_splits(spec: DatasetSpec, folder: Path, flatten: bool
                ) -> tuple[Dataset, Dataset | None, Dataset]:
    """(train, validation or None, test) of ``spec``; ``root`` relative to ``folder``; images
    kept (N, C, H, W) unless ``flatten``. The validation split is ``spec.validation`` of the
    (subset) train split, seeded by ``spec.seed``; it is never trained on. Raises
    ``DataError``."""
    root = None if spec.root is None else str(folder / Path(spec.root).expanduser())
    key = (spec.model_dump_json(), str(root), flatten)
    if key not in _CACHE:
        kw = dict(flatten=flatten, standardize=spec.standardize, seed=spec.seed, **spec.options)
        train = load(spec.name, "train", root, **kw)  # type: ignore[arg-type]
        test = load(spec.name, "test", root, **kw)  # type: ignore[arg-type]
        train = _subset(train, spec.n_train, spec.seed, "dataset.n_train")
        train, val = carve_validation(train, spec.validation, spec.seed + 2)
        _CACHE[key] = (train, val, _subset(test, spec.n_test, spec.seed + 1, "dataset.n_test"))
    return _CACHE[key]
