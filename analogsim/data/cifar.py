"""CIFAR-10 / CIFAR-100 "python version" batches, from a folder or the official tar.gz.

The batches are Python pickles, and unpickling runs whatever callables a file names. They
are therefore read with ``SafeUnpickler``, which admits only the globals that the official
files use to rebuild numpy arrays; anything else (``os.system``, ``builtins.eval``, …) is
refused with DataError before it can run.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from analogsim.data.locate import Blob, folders, read_blobs
from analogsim.errors import DataError


@dataclass(frozen=True)
class Layout:
    """File names of one CIFAR variant, as in the official archive."""

    archive: str
    subdir: str
    train: tuple[str, ...]
    test: str
    meta: str
    label_key: bytes
    names_key: bytes
    n_classes: int


LAYOUTS: dict[str, Layout] = {
    "cifar10": Layout("cifar-10-python.tar.gz", "cifar-10-batches-py",
                      tuple(f"data_batch_{k}" for k in range(1, 6)), "test_batch",
                      "batches.meta", b"labels", b"label_names", 10),
    "cifar100": Layout("cifar-100-python.tar.gz", "cifar-100-python", ("train",), "test",
                       "meta", b"fine_labels", b"fine_label_names", 100),
}

IMAGE_SHAPE = (3, 32, 32)


def _allowed_globals() -> dict[tuple[str, str], Any]:
    try:  # numpy >= 2 (old pickles name numpy.core, which numpy 2 only keeps as a shim)
        from numpy._core import multiarray
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray  # type: ignore[no-redef]
    return {
        ("numpy.core.multiarray", "_reconstruct"): multiarray._reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): multiarray._reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy's array-reconstruction globals.

    ``label`` names the file in errors. Objects are decoded with ``encoding="bytes"``, as the
    official (Python 2) batches need: their string keys come back as ``bytes``.
    """

    ALLOWED = _allowed_globals()

    def __init__(self, data: bytes, label: str) -> None:
        super().__init__(io.BytesIO(data), encoding="bytes")
        self.label = label

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise DataError(f"{self.label}: refused to unpickle global {module}.{name} "
                            "(not a CIFAR batch; the file may be malicious)") from None

    def persistent_load(self, pid: Any) -> Any:
        raise DataError(f"{self.label}: refused persistent id in pickle")


def unpickle(data: bytes, label: str) -> dict[bytes, Any]:
    """The dict stored in one batch/meta pickle, via ``SafeUnpickler``, keys as bytes."""
    try:
        obj = SafeUnpickler(data, label).load()
    except DataError:
        raise
    except Exception as err:  # any parse failure of untrusted bytes is a data error
        raise DataError(f"{label}: not a readable pickle ({type(err).__name__}: {err}); "
                        "truncated or corrupt, delete it and obtain it again") from err
    if not isinstance(obj, dict):
        raise DataError(f"{label}: expected a dict, found {type(obj).__name__}")
    # Python 2 strings decode to bytes; accept str keys too (batches re-pickled by Python 3).
    return {k.encode() if isinstance(k, str) else k: v for k, v in obj.items()}


@dataclass(frozen=True)
class CifarFiles:
    """Where one complete CIFAR copy lies and its batch/meta files."""

    where: str
    train: tuple[Blob, ...]
    test: Blob
    meta: Blob


def _in_folder(folder: Path, lay: Layout) -> CifarFiles | None:
    names = (*lay.train, lay.test, lay.meta)
    if not all((folder / n).is_file() for n in names):
        return None
    return CifarFiles(f"{folder} (pickle batches)", tuple(Blob(folder / n) for n in lay.train),
                      Blob(folder / lay.test), Blob(folder / lay.meta))


def _in_archive(archive: Path, lay: Layout) -> CifarFiles:
    def m(n: str) -> Blob:
        return Blob(archive, f"{lay.subdir}/{n}")

    return CifarFiles(f"{archive} (official tar.gz)", tuple(m(n) for n in lay.train),
                      m(lay.test), m(lay.meta))


def find(place: Path, name: str) -> CifarFiles | None:
    """The first complete copy of ``name`` in ``place`` (a folder or the archive), or None.

    In each of ``place`` and ``place/name`` looks for the batches directly, in the official
    subfolder (``cifar-10-batches-py`` / ``cifar-100-python``), then for the official archive.
    """
    lay = LAYOUTS[name]
    if place.is_file() and place.name.endswith((".tar.gz", ".tgz")):
        return _in_archive(place, lay)
    for folder in folders(place, name):
        hit = _in_folder(folder, lay) or _in_folder(folder / lay.subdir, lay)
        if hit is None and (folder / lay.archive).is_file():
            hit = _in_archive(folder / lay.archive, lay)
        if hit is not None:
            return hit
    return None


def _batch(obj: dict[bytes, Any], lay: Layout, label: str) -> tuple[np.ndarray, np.ndarray]:
    data, labels = obj.get(b"data"), obj.get(lay.label_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != int(np.prod(IMAGE_SHAPE)):
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{label}: 'data' must be uint8 (N, 3072), got {got}")
    try:
        lab = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        lab = np.empty(0, dtype=np.int64)
    if lab.shape != (data.shape[0],):
        raise DataError(f"{label}: '{lay.label_key.decode()}' must hold {data.shape[0]} ints")
    if lab.size and (lab.min() < 0 or lab.max() >= lay.n_classes):
        raise DataError(f"{label}: labels outside 0..{lay.n_classes - 1}")
    return data.reshape(-1, *IMAGE_SHAPE), lab


def load_split(found: CifarFiles, name: str, split: str
               ) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Images uint8 ``(N, 3, 32, 32)``, labels int64 ``(N,)`` and class names of a split."""
    lay = LAYOUTS[name]
    blobs = [*(found.train if split == "train" else (found.test,)), found.meta]
    raw = read_blobs(blobs)
    parts = [_batch(unpickle(r, b.label), lay, b.label) for r, b in zip(raw[:-1], blobs[:-1])]
    meta = unpickle(raw[-1], found.meta.label)
    names = meta.get(lay.names_key)
    if not isinstance(names, list) or len(names) != lay.n_classes \
            or not all(isinstance(n, bytes | str) for n in names):
        raise DataError(f"{found.meta.label}: '{lay.names_key.decode()}' must list "
                        f"{lay.n_classes} class names")
    classes = tuple(n.decode("utf-8") if isinstance(n, bytes) else n for n in names)
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            classes)
