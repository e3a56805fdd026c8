"""``Dataset``: one split of one data set as float32 tensors plus what a model needs to know.

Also the preprocessing shared by every set: one-hot targets, flattening, and per-feature
standardisation with statistics taken from the train split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from analogsim.errors import DataError

TASKS = ("classification", "regression")


@dataclass(frozen=True, eq=False)
class Dataset:
    """One split of a data set.

    Attributes:
        name: registry name, e.g. ``"fashion-mnist"``.
        split: ``"train"`` or ``"test"``.
        x: inputs, float32, ``(N, D)`` when flattened, else ``(N, C, H, W)`` for images.
        y: targets, float32 ``(N, n_outputs)``: one-hot for classification, values for
            regression.
        labels: class indices, int64 ``(N,)``; ``None`` for regression.
        classes: class names in label order; ``None`` for regression.
        task: ``"classification"`` or ``"regression"``.
        source: where the data came from (folder, archive, package or generator and seed).
        image_shape: ``(C, H, W)`` of one image for image sets (also when ``x`` is flat),
            else ``None``.
        target_mean, target_std: for regression targets that were scaled per output,
            ``y_physical = y * target_std + target_mean`` (float32 ``(n_outputs,)``);
            ``None`` when ``y`` is unscaled.
        groups: int64 ``(N,)`` for sets whose rows come in dependent groups (the rows of one
            robot trajectory, 10 ms apart): a validation split carved from the training set
            takes whole groups; ``None`` when rows are independent samples.
    """

    name: str
    split: str
    x: torch.Tensor
    y: torch.Tensor
    labels: torch.Tensor | None
    classes: tuple[str, ...] | None
    task: str
    source: str
    image_shape: tuple[int, ...] | None = None
    target_mean: torch.Tensor | None = None
    target_std: torch.Tensor | None = None
    groups: torch.Tensor | None = None

    def __post_init__(self) -> None:
        n = self.x.shape[0]
        if self.groups is not None and (self.groups.dtype != torch.int64
                                        or self.groups.shape != (n,)):
            raise ValueError("groups must be int64 (N,)")
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.x.dtype != torch.float32 or self.y.dtype != torch.float32:
            raise ValueError("x and y must be float32")
        if self.y.ndim != 2 or self.y.shape[0] != n:
            raise ValueError(f"y must be (N, n_outputs) with N={n}, got {tuple(self.y.shape)}")
        if self.task == "classification":
            if self.labels is None or self.classes is None:
                raise ValueError("classification needs labels and classes")
            if self.labels.dtype != torch.int64 or self.labels.shape != (n,):
                raise ValueError("labels must be int64 (N,)")
            if len(self.classes) != self.y.shape[1]:
                raise ValueError("one-hot width must equal the number of classes")
        elif self.labels is not None or self.classes is not None:
            raise ValueError("regression sets have no labels or classes")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input as stored in ``x``, e.g. ``(784,)`` or ``(1, 28, 28)``."""
        return tuple(self.x.shape[1:])

    @property
    def n_outputs(self) -> int:
        """Width of ``y``: number of classes, or of regression outputs."""
        return int(self.y.shape[1])


@dataclass(frozen=True, eq=False)
class Raw:
    """What a set's loader hands the registry: numpy arrays before the shared preprocessing.

    ``x`` is float32 ``(N, *shape)`` (images ``(N, C, H, W)`` already scaled to [0, 1]);
    classification sets give ``labels`` (int64 ``(N,)``) and ``classes``, regression sets give
    ``targets`` (float32 ``(N, K)``) and, when those are scaled, ``target_mean``/``target_std``.
    """

    x: np.ndarray
    source: str
    labels: np.ndarray | None = None
    classes: tuple[str, ...] | None = None
    targets: np.ndarray | None = None
    image_shape: tuple[int, ...] | None = None
    target_mean: np.ndarray | None = None
    target_std: np.ndarray | None = None
    groups: np.ndarray | None = None  # int64 (N,): rows of one group are not independent


def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Float32 ``(N, n_classes)`` one-hot rows for int labels ``(N,)`` in ``[0, n_classes)``."""
    out = np.zeros((labels.shape[0], n_classes), dtype=np.float32)
    out[np.arange(labels.shape[0]), labels] = 1.0
    return out


def feature_stats(x: np.ndarray, chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std of ``x`` ``(N, ...)`` (float64, shape ``x.shape[1:]``).

    Two passes over row chunks in float64 (no full float64 copy of ``x``). Constant features
    get std 1, so standardising leaves them at 0 instead of dividing by 0.
    """
    flat = x.reshape(x.shape[0], -1)
    n = flat.shape[0]
    if n == 0:
        raise DataError("cannot standardise: the train split is empty")
    total = np.zeros(flat.shape[1])
    for s in range(0, n, chunk):
        total += flat[s:s + chunk].sum(axis=0, dtype=np.float64)
    mean = total / n
    sq = np.zeros(flat.shape[1])
    for s in range(0, n, chunk):
        sq += np.square(flat[s:s + chunk] - mean).sum(axis=0)
    std = np.sqrt(sq / n)
    std[std < 1e-12] = 1.0
    return mean.reshape(x.shape[1:]), std.reshape(x.shape[1:])


def apply_stats(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(x - mean) / std`` as float32 (computed in float32)."""
    return (x.astype(np.float32, copy=False) - mean.astype(np.float32)) / std.astype(np.float32)


def check_split(split: str) -> str:
    """The split name, or DataError if it is neither ``"train"`` nor ``"test"``."""
    if split not in ("train", "test"):
        raise DataError(f"split must be 'train' or 'test', got {split!r}")
    return split
