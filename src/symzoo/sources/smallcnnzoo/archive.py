"""A Small CNN Zoo archive: its download (trust on first use) and the extraction of its three members.

An archive ``{archive}.tar.xz`` holds one folder with ``weights.npy``, ``metrics.csv.gz`` and ``layout.csv``
(see :mod:`symzoo.sources.smallcnnzoo`). ``weights.npy`` (about 5 GB for CIFAR-10) is stream-extracted once
into the cache, so that it can be memory-mapped.
"""

from __future__ import annotations

import json
import logging
import lzma
import sys
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from tqdm import tqdm

from symzoo.atomic import atomic_path
from symzoo.data.download import Downloaded, download, locked

log = logging.getLogger(__name__)

ARCHIVE_URL = "https://storage.googleapis.com/gresearch/smallcnnzoo-dataset/{archive}.tar.xz"
ARCHIVE_SIDES = {"cifar10": 32, "svhn_cropped": 32, "mnist": 28, "fashion_mnist": 28}
"""Input side length (pixels) of each archive's images."""

WEIGHTS, METRICS, LAYOUT = "weights.npy", "metrics.csv.gz", "layout.csv"
MEMBERS = (WEIGHTS, METRICS, LAYOUT)

_STAMP = ".extracted.json"
_COPY_CHUNK = 1 << 20


@dataclass(frozen=True)
class ArchiveSource:
    """Which archive (``name``, a key of :data:`ARCHIVE_SIDES`), from where (``url``; None: the upstream
    bucket) and its expected ``sha256`` (None: recorded on the first download, verified after)."""

    name: str
    url: str | None
    sha256: str | None

    @property
    def resolved_url(self) -> str:
        """The URL the archive is downloaded from."""
        return self.url or ARCHIVE_URL.format(archive=self.name)


@dataclass(frozen=True)
class Extracted:
    """The members of the archive file ``archive`` (named ``name``, e.g. "cifar10") extracted into ``folder``;
    ``members`` maps each member's file name to its name inside the archive (for error messages), ``side`` is
    the input side length of its images."""

    archive: Path
    name: str
    folder: Path
    members: dict[str, str]
    side: int

    def path(self, member: str) -> Path:
        """The extracted file of ``member`` (one of :data:`MEMBERS`)."""
        return self.folder / member

    def where(self, member: str) -> str:
        """``member`` inside the archive, for error messages: ``{archive}: {folder}/{member}``."""
        return f"{self.archive}: {self.members[member]}"


def download_archive(source: ArchiveSource, cache_dir: Path) -> Downloaded:
    """Download the archive to ``cache_dir/{name}.tar.xz`` (or reuse it) and verify it; return it with its sha256.

    With ``source.sha256`` the archive must have that digest; without it the digest of the first download is
    recorded in ``{name}.tar.xz.sha256`` and every later use is verified against the record (trust on first
    use). A mismatch raises :class:`~symzoo.data.download.ChecksumError`.
    """
    dest = Path(cache_dir) / f"{source.name}.tar.xz"
    return download(source.resolved_url, dest, sha256=source.sha256, trust_on_first_use=True, desc=dest.name)


def extract_archive(path: Path, cache_dir: Path) -> Extracted:
    """Extract the members of the archive ``path`` into ``cache_dir/{archive}/`` (once per archive version).

    Concurrent jobs sharing the cache take turns (a lock beside the folder). The input side length comes
    from the archive's file name, else from the name of its folder; an unknown archive raises ValueError.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"smallcnnzoo: no archive {path}")
    name = _archive_stem(path)
    folder = Path(cache_dir) / name
    with locked(folder.with_name(folder.name + ".extract.lock")):
        members = _extract(path, folder)
    side = ARCHIVE_SIDES.get(name)
    if side is None:
        top = PurePosixPath(members[WEIGHTS]).parts[0]
        side = ARCHIVE_SIDES.get(top)
    if side is None:
        raise ValueError(f"{path}: unknown archive {name!r}, expected one of {sorted(ARCHIVE_SIDES)}")
    return Extracted(path, name, folder, members, side)


def _archive_stem(path: Path) -> str:
    name = path.name
    for suffix in (".tar.xz", ".txz", ".tar"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


class CorruptArchiveError(ValueError):
    """The archive cannot be read to its end (truncated, damaged): its bytes, not its format, are wrong."""


def _stamp_of(path: Path) -> dict:
    stat = path.stat()
    return {"archive": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _extract(path: Path, folder: Path) -> dict[str, str]:
    """Stream-extract the three members of ``path`` into ``folder`` unless the stamp says they are there.

    Returns the members' names inside the archive. The archive is read in a single pass (tar streaming
    mode), so its large ``weights.npy`` is never held in memory.
    """
    stamp_path = folder / _STAMP
    stamp = _stamp_of(path)
    if stamp_path.is_file() and all((folder / m).is_file() for m in MEMBERS):
        try:
            previous = json.loads(stamp_path.read_text())
        except json.JSONDecodeError:
            previous = None
        if isinstance(previous, dict) and {k: previous.get(k) for k in stamp} == stamp:
            log.info("using %s extracted before into %s", path, folder)
            return previous.get("members", {m: m for m in MEMBERS})
    stamp_path.unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    found: dict[str, str] = {}
    try:
        with lzma.open(path, "rb") as xz, tarfile.open(fileobj=xz, mode="r|") as tar:
            for member in tar:
                base = PurePosixPath(member.name).name
                if base not in MEMBERS:
                    continue
                if base in found:
                    raise ValueError(f"{path}: two members named {base} ({found[base]}, {member.name})")
                if not member.isfile():
                    raise ValueError(f"{path}: member {member.name} is not a regular file")
                found[base] = member.name
                source = tar.extractfile(member)
                assert source is not None  # a regular file always has data
                _copy(source, folder / base, member)
            while xz.read(_COPY_CHUNK):  # read to the end: the xz decoder verifies the whole stream
                pass
        missing = [m for m in MEMBERS if m not in found]
        if missing:
            raise ValueError(f"{path}: archive has no member {missing[0]} (found {sorted(found.values())})")
    except BaseException as err:
        for member in MEMBERS:  # members of an archive that failed its check are not to be trusted
            (folder / member).unlink(missing_ok=True)
        if isinstance(err, tarfile.TarError | lzma.LZMAError | EOFError | zlib.error):
            raise CorruptArchiveError(f"{path}: corrupt or unreadable archive, not a complete tar.xz ({err})") from err
        raise
    with atomic_path(stamp_path) as tmp:
        tmp.write_text(json.dumps({**stamp, "members": found}, indent=2) + "\n")
    return found


def _copy(source: IO[bytes], dest: Path, member: tarfile.TarInfo) -> None:
    """Copy one member's data from the tar stream ``source`` to ``dest`` (atomically, checking its size)."""
    base = dest.name
    with (
        atomic_path(dest) as tmp,
        open(tmp, "wb") as out,
        tqdm(
            total=member.size,
            desc=f"extract {base}",
            unit="B",
            unit_scale=True,
            file=sys.stderr,
            disable=None if member.size >= (64 << 20) else True,
        ) as bar,
    ):
        while chunk := source.read(_COPY_CHUNK):
            out.write(chunk)
            bar.update(len(chunk))
        if out.tell() != member.size:
            raise tarfile.ReadError(f"{member.name}: {out.tell()} of {member.size} bytes")
