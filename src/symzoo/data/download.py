"""Resumable, checksum-verified downloads.

:func:`download` is the one helper every source uses. It calls :func:`fetch`, which streams a URL into
``dest + ".part"``, resumes an interrupted ``.part`` with an HTTP ``Range`` request, verifies the given
digests and only then renames the file onto ``dest``, so ``dest`` is always either absent or complete and
verified. For files without a published digest, :func:`download` can also trust the first download: it
records its sha256 beside the file (``dest + ".sha256"``) and verifies every later use against the record,
under a lock (``dest + ".lock"``) so that concurrent jobs sharing a cache download it once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import logging
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
import urllib.response
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from symzoo.atomic import atomic_path

log = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 20
"""Bytes read (from the network or a file) per step."""

TIMEOUT_S = 60.0
"""Socket timeout of every request, in seconds."""

_Response = http.client.HTTPResponse | urllib.response.addinfourl
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class DownloadError(OSError):
    """A download failed (network or server error); the ``.part`` file is kept for a later resume."""


class ChecksumError(ValueError):
    """A downloaded file does not have the expected digest."""


def file_digest(path: Path, algorithm: str) -> str:
    """Return the hex digest of the file at ``path`` with a :mod:`hashlib` ``algorithm`` (e.g. "md5")."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Downloaded:
    """A downloaded, verified file and its sha256 (None when no sha256 was given or recorded)."""

    path: Path
    sha256: str | None


@contextlib.contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """An exclusive lock (flock) on ``lock_path``: concurrent jobs sharing a cache take turns."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def download(
    url: str,
    dest: Path,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    trust_on_first_use: bool = False,
    desc: str | None = None,
) -> Downloaded:
    """Download ``url`` to ``dest`` (or reuse a verified ``dest``); the one download helper of every source.

    Without ``trust_on_first_use`` this is :func:`fetch` with the given digests (a file with a published
    digest, like CIFAR-10's md5). With it (a file without one, like a Small CNN Zoo archive), a given
    ``sha256`` is verified as usual; without one, the sha256 of the first download is recorded in
    ``dest + ".sha256"`` and every later use is verified against the record. Then the whole call holds an
    exclusive lock on ``dest + ".lock"``, so that concurrent jobs sharing the cache download the file once
    and record it once. A mismatch raises :class:`ChecksumError` saying which digest it broke.
    """
    dest = Path(dest)
    if not trust_on_first_use:
        return Downloaded(fetch(url, dest, md5=md5, sha256=sha256, desc=desc), sha256.lower() if sha256 else None)
    if md5 is not None:
        raise ValueError("download: trust on first use records a sha256; give sha256, not md5")
    with locked(dest.with_name(dest.name + ".lock")):
        return _download_on_first_use(url, dest, sha256, desc or dest.name)


def _download_on_first_use(url: str, dest: Path, sha256: str | None, desc: str) -> Downloaded:
    """:func:`download` with ``trust_on_first_use``, inside the lock."""
    record = dest.with_name(dest.name + ".sha256")
    if sha256:
        configured = sha256.lower()
        try:
            fetch(url, dest, sha256=configured, desc=desc)
        except ChecksumError as err:
            raise ChecksumError(f"{dest}: sha256 does not match the configured sha256 {configured} ({err})") from err
        return Downloaded(dest, configured)
    if record.is_file():
        recorded = (record.read_text().split() or [""])[0].lower()
        if not _SHA256.fullmatch(recorded):
            raise ValueError(f"{record}: not a sha256 record (delete it to record the archive's digest again)")
        try:
            fetch(url, dest, sha256=recorded, desc=desc)
        except ChecksumError as err:
            raise ChecksumError(
                f"{dest}: sha256 does not match {recorded}, recorded in {record} when it was first downloaded "
                f"({err}); if the archive changed upstream on purpose, delete {record} and {dest}"
            ) from err
        return Downloaded(dest, recorded)
    fetch(url, dest, desc=desc)
    digest = file_digest(dest, "sha256")
    with atomic_path(record) as tmp:
        tmp.write_text(f"{digest}  {dest.name}\n")
    log.info("recorded sha256 %s of %s in %s (trust on first use)", digest, dest, record)
    return Downloaded(dest, digest)


def forget(dest: Path) -> None:
    """Remove a downloaded file and its first-use sha256 record, so the next :func:`download` fetches and records
    it afresh (for a file found corrupt after its digest was trusted on first use)."""
    for path in (dest, dest.with_name(dest.name + ".sha256"), dest.with_name(dest.name + ".part")):
        path.unlink(missing_ok=True)


def fetch(
    url: str,
    dest: Path,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    desc: str | None = None,
) -> Path:
    """Download ``url`` (http, https or file) to ``dest`` and return ``dest``.

    An existing ``dest`` whose digests match (or any existing ``dest`` when no digest is given) is
    returned without network access; one that does not match is deleted and downloaded again.
    The data goes to ``dest + ".part"`` first; an existing ``.part`` is resumed with a ``Range``
    request (restarted when the server answers with the whole file). A network error raises
    :class:`DownloadError` and keeps the ``.part``; a digest mismatch deletes it and raises
    :class:`ChecksumError`. ``desc`` labels the progress bar (default: the file name).
    """
    dest = Path(dest)
    expected = {name: value.lower() for name, value in (("md5", md5), ("sha256", sha256)) if value}
    if dest.exists():
        if _mismatch(dest, expected) is None:
            return dest
        dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    _download(url, part, desc or dest.name)
    if (mismatch := _mismatch(part, expected)) is not None:
        part.unlink()
        algorithm, want, got = mismatch
        raise ChecksumError(f"{url}: {algorithm} mismatch: expected {want}, got {got}")
    os.replace(part, dest)
    return dest


def _mismatch(path: Path, expected: dict[str, str]) -> tuple[str, str, str] | None:
    """Return ``(algorithm, expected, actual)`` for the first digest of ``path`` that differs, else None."""
    for algorithm, want in expected.items():
        got = file_digest(path, algorithm)
        if got != want:
            return algorithm, want, got
    return None


def _download(url: str, part: Path, desc: str) -> None:
    """Stream ``url`` into ``part``, resuming it when it exists and the URL is http(s)."""
    if "://" not in url:  # a local path (relative to the working directory), e.g. archives built for the tests
        url = Path(url).resolve().as_uri()
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https", "file"):
        raise ValueError(f"{url}: unsupported URL scheme {scheme!r} (http, https or file)")
    offset = part.stat().st_size if scheme != "file" and part.exists() else 0
    request = urllib.request.Request(url)
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            if offset and response.status == 206:
                start, _ = _content_range(response)
                if start != offset:  # not the continuation we asked for: the .part can't be trusted
                    part.unlink()
                    raise DownloadError(f"{url}: asked for bytes {offset}- but the answer starts at {start}")
            else:
                offset = 0  # no resume: the server sends the whole file
            _stream(url, response, part, offset, desc)
    except DownloadError:
        raise
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # the .part is not a prefix the server can continue: restart
            part.unlink()
            _download(url, part, desc)
            return
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from err
    except (OSError, http.client.HTTPException) as err:
        raise DownloadError(f"{url}: download failed ({err!r}){_kept(part)}") from err


def _kept(part: Path) -> str:
    """What a failed download leaves, for its error message: a resumable ``.part``, or nothing."""
    if part.is_file() and part.stat().st_size:
        return f"; partial data kept in {part} (the next run resumes it)"
    part.unlink(missing_ok=True)
    return ""


def _content_range(response: _Response) -> tuple[int | None, int | None]:
    """The first byte and the total size of a ``Content-Range: bytes a-b/total`` header (None: unknown)."""
    match = _CONTENT_RANGE.fullmatch((response.headers.get("Content-Range") or "").strip())
    if match is None:
        return None, None
    return int(match.group(1)), None if match.group(3) == "*" else int(match.group(3))


def _stream(url: str, response: _Response, part: Path, offset: int, desc: str) -> None:
    """Write ``response``'s body to ``part`` (appending after ``offset`` bytes) with a progress bar."""
    length = response.headers.get("Content-Length")
    length = int(length) if length is not None else None
    total = _content_range(response)[1] or (offset + length if length is not None else None)
    received = 0
    with (
        open(part, "ab" if offset else "wb") as f,
        tqdm(total=total, initial=offset, desc=desc, unit="B", unit_scale=True, file=sys.stderr) as bar,
    ):
        while chunk := response.read(CHUNK_SIZE):
            f.write(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    if length is not None and received != length:
        raise DownloadError(f"{url}: connection closed after {received} of {length} bytes{_kept(part)}")
