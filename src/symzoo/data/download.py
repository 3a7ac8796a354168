"""Resumable, checksum-verified downloads.

:func:`fetch` streams a URL into ``dest + ".part"``, resumes an interrupted ``.part`` with an HTTP
``Range`` request, verifies the given digests and only then renames the file onto ``dest``, so
``dest`` is always either absent or complete and verified.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
import urllib.response
from pathlib import Path

from tqdm import tqdm

CHUNK_SIZE = 1 << 20
"""Bytes read (from the network or a file) per step."""

TIMEOUT_S = 60.0
"""Socket timeout of every request, in seconds."""

_Response = http.client.HTTPResponse | urllib.response.addinfourl
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


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
        raise DownloadError(f"{url}: download failed ({err!r}); partial data kept in {part}") from err


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
        raise DownloadError(f"{url}: connection closed after {received} of {length} bytes; partial data kept in {part}")
