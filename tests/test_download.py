"""symzoo.data.download: fetch (resume, checksums, caching) and download (trust on first use) against a loopback
HTTP server."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from symzoo.data.download import ChecksumError, Downloaded, DownloadError, download, fetch, file_digest

SIZE = 300_000


@pytest.fixture
def payload(http_server) -> bytes:
    """Random bytes served as ``blob.bin``."""
    data = os.urandom(SIZE)
    (http_server.root / "blob.bin").write_bytes(data)
    return data


def digests(data: bytes) -> dict[str, str]:
    return {"md5": hashlib.md5(data).hexdigest(), "sha256": hashlib.sha256(data).hexdigest()}


def part_of(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def test_file_digest(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 7)  # several chunks
    path = tmp_path / "f"
    path.write_bytes(data)
    assert file_digest(path, "md5") == hashlib.md5(data).hexdigest()
    assert file_digest(path, "sha256") == hashlib.sha256(data).hexdigest()


def test_full_download(http_server, payload: bytes, tmp_path: Path) -> None:
    dest = tmp_path / "out" / "blob.bin"
    result = fetch(http_server.url("blob.bin"), dest, **digests(payload))
    assert result == dest
    assert dest.read_bytes() == payload
    assert not part_of(dest).exists()
    [request] = http_server.requests
    assert request.range is None and request.status == 200


def test_resume_after_cut(http_server, payload: bytes, tmp_path: Path) -> None:
    url, dest = http_server.url("blob.bin"), tmp_path / "blob.bin"
    http_server.cut_next(100_000)
    with pytest.raises(DownloadError, match=url):
        fetch(url, dest, sha256=digests(payload)["sha256"])
    assert not dest.exists()
    assert part_of(dest).read_bytes() == payload[:100_000]

    fetch(url, dest, sha256=digests(payload)["sha256"])
    assert dest.read_bytes() == payload
    assert not part_of(dest).exists()
    first, second = http_server.requests
    assert first.range is None
    assert (second.range, second.status) == ("bytes=100000-", 206)


def test_server_ignoring_range_restarts(http_server, payload: bytes, tmp_path: Path) -> None:
    url, dest = http_server.url("blob.bin"), tmp_path / "blob.bin"
    part_of(dest).write_bytes(b"stale bytes that are not a prefix of the file")
    http_server.ignore_range = True
    fetch(url, dest, md5=digests(payload)["md5"])
    assert dest.read_bytes() == payload
    [request] = http_server.requests
    assert request.range == f"bytes={len(b'stale bytes that are not a prefix of the file')}-"
    assert request.status == 200


def test_unsatisfiable_range_restarts(http_server, payload: bytes, tmp_path: Path) -> None:
    url, dest = http_server.url("blob.bin"), tmp_path / "blob.bin"
    part_of(dest).write_bytes(payload + b"junk")  # longer than the file: the server answers 416
    fetch(url, dest, md5=digests(payload)["md5"])
    assert dest.read_bytes() == payload
    assert [r.status for r in http_server.requests] == [416, 200]


def test_checksum_mismatch(http_server, payload: bytes, tmp_path: Path) -> None:
    url, dest = http_server.url("blob.bin"), tmp_path / "blob.bin"
    wrong = "0" * 32
    with pytest.raises(ChecksumError) as info:
        fetch(url, dest, md5=wrong)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert url in message and "md5" in message and wrong in message and digests(payload)["md5"] in message
    assert not dest.exists() and not part_of(dest).exists()


def test_existing_good_dest_makes_no_request(http_server, payload: bytes, tmp_path: Path) -> None:
    dest = tmp_path / "blob.bin"
    dest.write_bytes(payload)
    assert fetch(http_server.url("blob.bin"), dest, **digests(payload)) == dest
    assert fetch(http_server.url("blob.bin"), dest) == dest  # no checksum: existing file is trusted
    assert http_server.requests == []


def test_existing_bad_dest_is_downloaded_again(http_server, payload: bytes, tmp_path: Path) -> None:
    dest = tmp_path / "blob.bin"
    dest.write_bytes(b"corrupt")
    fetch(http_server.url("blob.bin"), dest, sha256=digests(payload)["sha256"])
    assert dest.read_bytes() == payload
    assert len(http_server.requests) == 1


def test_http_error_is_download_error(http_server, tmp_path: Path) -> None:
    url = http_server.url("missing.bin")
    with pytest.raises(DownloadError, match=f"{url}.*404"):
        fetch(url, tmp_path / "missing.bin")
    assert not (tmp_path / "missing.bin").exists()


def test_file_url(tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(data := os.urandom(5000))
    dest = tmp_path / "dest.bin"
    part_of(dest).write_bytes(b"leftover")  # file:// never resumes: the .part is overwritten
    fetch(source.as_uri(), dest, md5=digests(data)["md5"])
    assert dest.read_bytes() == data


def test_unsupported_scheme(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ftp"):
        fetch("ftp://example.org/x", tmp_path / "x")


# --- download: one helper for every source ----------------------------------------------------------------


def test_download_with_a_published_digest_is_fetch(http_server, payload: bytes, tmp_path: Path) -> None:
    dest = tmp_path / "cache" / "blob.bin"
    got = download(http_server.url("blob.bin"), dest, md5=digests(payload)["md5"])
    assert got == Downloaded(dest, None)
    assert [p.name for p in dest.parent.iterdir()] == ["blob.bin"]  # no record, no lock


def test_trust_on_first_use_records_and_verifies(http_server, payload: bytes, tmp_path: Path) -> None:
    url, dest = http_server.url("blob.bin"), tmp_path / "blob.bin"
    record = tmp_path / "blob.bin.sha256"
    sha256 = digests(payload)["sha256"]
    assert download(url, dest, trust_on_first_use=True) == Downloaded(dest, sha256)
    assert record.read_text() == f"{sha256}  blob.bin\n"
    assert download(url, dest, trust_on_first_use=True) == Downloaded(dest, sha256)
    assert len(http_server.requests) == 1  # verified against the record, not downloaded again

    (http_server.root / "blob.bin").write_bytes(b"changed upstream")
    dest.unlink()
    with pytest.raises(ChecksumError, match=r"blob\.bin.*recorded in"):
        download(url, dest, trust_on_first_use=True)
    assert not dest.exists() and record.read_text().startswith(sha256)


def test_trust_on_first_use_with_a_configured_sha256(http_server, payload: bytes, tmp_path: Path) -> None:
    url, dest = http_server.url("blob.bin"), tmp_path / "blob.bin"
    with pytest.raises(ChecksumError, match="configured sha256 " + "0" * 64):
        download(url, dest, sha256="0" * 64, trust_on_first_use=True)
    sha256 = digests(payload)["sha256"]
    assert download(url, dest, sha256=sha256, trust_on_first_use=True) == Downloaded(dest, sha256)
    assert not (tmp_path / "blob.bin.sha256").exists()  # a configured digest is not recorded


def test_bad_record_is_an_error(http_server, payload: bytes, tmp_path: Path) -> None:
    (tmp_path / "blob.bin.sha256").write_text("not a digest\n")
    with pytest.raises(ValueError, match="not a sha256 record"):
        download(http_server.url("blob.bin"), tmp_path / "blob.bin", trust_on_first_use=True)
    assert http_server.requests == []
