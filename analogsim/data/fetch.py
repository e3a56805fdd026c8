"""Optional download of the file-based sets, for machines with internet access.

Files come from the sets' official URLs, are checked against the official checksums, and are
written atomically (a temporary file in the target folder, then ``os.replace``) into the
user cache, where ``load`` finds them. Before any transfer the server (or proxy) is probed
with a short connect time-out, so an offline machine fails within seconds, with the manual
instructions, instead of hanging.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import tempfile
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from analogsim.data.locate import cache_root
from analogsim.errors import DataError


@dataclass(frozen=True)
class Remote:
    """Where a set's files are published and their checksums (``md5:…`` or ``sha256:…``)."""

    base_url: str
    files: dict[str, str]


REMOTES: dict[str, Remote] = {
    "fashion-mnist": Remote("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", {
        "train-images-idx3-ubyte.gz": "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "md5:25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "md5:bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "md5:bb300cfdad3c16e7a12a480ee83cd310",
    }),
    # The original site (yann.lecun.com/exdb/mnist) no longer serves reliably; same files.
    "mnist": Remote("https://ossci-datasets.s3.amazonaws.com/mnist/", {
        "train-images-idx3-ubyte.gz": "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "md5:d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "md5:9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "md5:ec29112dd5afa0611ce80d1b7f02629c",
    }),
    "cifar10": Remote("https://www.cs.toronto.edu/~kriz/", {
        "cifar-10-python.tar.gz": "md5:c58f30108f718f92721af3b95e74349a"}),
    "cifar100": Remote("https://www.cs.toronto.edu/~kriz/", {
        "cifar-100-python.tar.gz": "md5:eb9058c3a382ffc7106e4002c42a8d85"}),
}

CHUNK = 1 << 20


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file with ``hashlib`` algorithm ``algorithm``."""
    h = hashlib.new(algorithm)
    with path.open("rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _split_checksum(checksum: str) -> tuple[str, str]:
    algo, _, hexdigest = checksum.partition(":")
    if algo not in ("md5", "sha256") or not hexdigest:
        raise DataError(f"checksum must be 'md5:HEX' or 'sha256:HEX', got {checksum!r}")
    return algo, hexdigest.lower()


def _probe(url: str, timeout_s: float) -> None:
    """Resolve and connect to the host (or the proxy) serving ``url`` within ``timeout_s``.

    Name resolution runs in a daemon thread so that a stalled resolver cannot block longer
    than ``timeout_s`` either. Raises OSError with the reason.
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        pp = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = pp.hostname or "", pp.port or 80
    result: list[object] = []

    def resolve() -> None:
        try:
            result.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as err:
            result.append(err)

    worker = threading.Thread(target=resolve, daemon=True)
    worker.start()
    worker.join(timeout_s)
    if not result:
        raise OSError(f"resolving {host} took longer than {timeout_s:g} s")
    if isinstance(result[0], OSError):
        raise OSError(f"cannot resolve {host}: {result[0]}")
    addresses = result[0]
    assert isinstance(addresses, list) and addresses
    family, kind, proto, _, sockaddr = addresses[0]
    with socket.socket(family, kind, proto) as s:
        s.settimeout(timeout_s)
        s.connect(sockaddr)


def _fetch(url: str, dest: Path, checksum: str, timeout_s: float) -> None:
    """Stream ``url`` into a temporary file beside ``dest``, verify, then rename atomically."""
    algo, expected = _split_checksum(checksum)
    h = hashlib.new(algo)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, \
                urllib.request.urlopen(url, timeout=timeout_s) as response:
            for block in iter(lambda: response.read(CHUNK), b""):
                h.update(block)
                out.write(block)
        if h.hexdigest() != expected:
            raise DataError(f"{url}: {algo} {h.hexdigest()} does not match the expected "
                            f"{expected}; nothing was saved (corrupt transfer or wrong file)")
        os.replace(tmp, dest)
    except (OSError, urllib.error.URLError, http.client.HTTPException) as err:
        raise DataError(f"download of {url} failed: {err}") from err
    finally:
        tmp.unlink(missing_ok=True)


def download(name: str, root: str | os.PathLike[str] | None = None, *,
             base_url: str | None = None, timeout_s: float = 30.0,
             connect_timeout_s: float = 5.0, checksums: dict[str, str] | None = None) -> Path:
    """Download file-based set ``name`` into ``root`` (default: the user cache folder
    ``~/.cache/analogsim/NAME``) and return that folder.

    ``base_url`` replaces the official location (a mirror; files keep their names);
    ``checksums`` maps file names to ``md5:HEX``/``sha256:HEX`` to replace the official ones
    (for a mirror serving other files). Files already present with the right checksum are
    kept. ``timeout_s`` bounds each network read, ``connect_timeout_s`` the first contact.
    Raises DataError, carrying the manual instructions, when the server cannot be reached.
    """
    from analogsim.data.registry import canonical, how_to_get

    name = canonical(name)
    if name not in REMOTES:
        raise DataError(f"{name} is not downloaded: {how_to_get(name)}")
    remote = REMOTES[name]
    base = (base_url or remote.base_url).rstrip("/") + "/"
    if urlsplit(base).scheme not in ("http", "https") or not urlsplit(base).hostname:
        raise DataError(f"base_url must be an http:// or https:// URL, got {base_url!r}")
    sums = {**remote.files, **(checksums or {})}
    target = Path(root).expanduser() if root is not None else cache_root() / name
    todo = []
    for fname in remote.files:
        algo, expected = _split_checksum(sums[fname])
        dest = target / fname
        if not (dest.is_file() and file_digest(dest, algo) == expected):
            todo.append(fname)
    if not todo:
        return target
    try:
        _probe(base, connect_timeout_s)
    except OSError as err:
        raise DataError(f"cannot reach {base} ({err}); this machine looks offline. "
                        f"Get {name} by hand: {how_to_get(name, offer_download=False)}") from err
    target.mkdir(parents=True, exist_ok=True)
    for fname in todo:
        _fetch(base + fname, target / fname, sums[fname], timeout_s)
    return target
