"""scikit-learn's 8×8 handwritten digits (1797 images, shipped with scikit-learn, offline)."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

#: The fixed split: 360 test images stratified by class, with this seed, 1437 for training.
N_TEST = 360
SPLIT_SEED = 0
IMAGE_SHAPE = (1, 8, 8)
CLASSES = tuple(str(k) for k in range(10))
SOURCE = "scikit-learn sklearn.datasets.load_digits (bundled)"


def load_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images float32 ``(N, 1, 8, 8)`` in [0, 1] (grey levels 0..16 divided by 16) and
    int64 labels ``(N,)`` of the fixed stratified split (1437 train / 360 test)."""
    bunch = load_digits()
    x = (bunch.data.astype(np.float32) / 16.0).reshape(-1, *IMAGE_SHAPE)
    y = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=N_TEST, stratify=y,
                                              random_state=SPLIT_SEED)
    return (x_tr, y_tr) if split == "train" else (x_te, y_te)
