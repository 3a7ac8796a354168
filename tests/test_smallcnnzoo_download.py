"""Small CNN Zoo download: trust on first use (the sha256 recorded beside the archive), a configured sha256,
reuse of the download and of the extracted members, and concurrent builds sharing one cache."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from symzoo.data.download import ChecksumError, file_digest
from symzoo.data.zoo import read_zoo
from symzoo.sources.smallcnnzoo import ArchiveSource, download_archive
from symzoo.sources.smallcnnzoo import archive as archive_module
from tests.fixtures.smallcnnzoo import ZOO_FILES, build_small_cnn_zoo, make_small_cnn_zoo_archive


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default fixture archive: 12 runs (relu, tanh alternating) x 9 checkpoints."""
    path = tmp_path_factory.mktemp("upstream") / "cifar10.tar.xz"
    make_small_cnn_zoo_archive(path)
    return path


def test_download_records_sha256_and_reuses_the_archive(tmp_path: Path, archive: Path, http_server) -> None:
    (http_server.root / "cifar10.tar.xz").write_bytes(archive.read_bytes())
    options = {
        "archive": "cifar10",
        "dataset": "cifar10gs",
        "url": http_server.url("cifar10.tar.xz"),
        "min_accuracy": 0.0,
    }
    cache = tmp_path / "cache"
    first = read_zoo(build_small_cnn_zoo(options, tmp_path / "zoo1", cache))
    digest = file_digest(archive, "sha256")
    assert (cache / "cifar10.tar.xz.sha256").read_text().split()[0] == digest
    assert first.meta["source"]["sha256"] == digest and first.meta["source"]["url"] == options["url"]
    assert len(http_server.requests) == 1

    second = read_zoo(build_small_cnn_zoo(options, tmp_path / "zoo2", cache))
    assert len(http_server.requests) == 1  # verified against the record, not downloaded again
    assert np.array_equal(first.params, second.params)

    # The second build reused the extracted members instead of decompressing the archive again.
    def no_tar(*args: object, **kwargs: object) -> None:
        raise AssertionError("archive extracted again")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(archive_module.tarfile, "open", no_tar)
        build_small_cnn_zoo(options, tmp_path / "zoo3", cache)


ZOO_ACTIVATIONS = ("relu", "tanh")
"""The Small CNN Zoo's two activations."""


def test_concurrent_builds_share_one_download(tmp_path: Path, archive: Path, http_server) -> None:
    """Two jobs (the relu and the tanh zoo) starting together download and extract the archive once."""
    (http_server.root / "cifar10.tar.xz").write_bytes(archive.read_bytes())
    url = http_server.url("cifar10.tar.xz")
    options = {"archive": "cifar10", "dataset": "cifar10gs", "url": url, "min_accuracy": 0.0}
    jobs = [({**options, "activation": a}, tmp_path / a, tmp_path / "cache") for a in ZOO_ACTIVATIONS]
    with ThreadPoolExecutor(2) as pool:
        zoos = [read_zoo(out) for out in pool.map(lambda job: build_small_cnn_zoo(*job), jobs)]
    assert len(http_server.requests) == 1
    assert [z.spec.activation for z in zoos] == list(ZOO_ACTIVATIONS) and all(len(z) == 6 for z in zoos)


def test_changed_archive_fails_against_the_recorded_sha256(tmp_path: Path, archive: Path, http_server) -> None:
    served = http_server.root / "cifar10.tar.xz"
    served.write_bytes(archive.read_bytes())
    options = {"archive": "cifar10", "dataset": "cifar10gs", "url": http_server.url("cifar10.tar.xz")}
    cache = tmp_path / "cache"
    source = ArchiveSource("cifar10", options["url"], sha256=None)
    assert download_archive(source, cache).path == cache / "cifar10.tar.xz"

    make_small_cnn_zoo_archive(served, seed=1)  # upstream changed; the local copy is gone
    (cache / "cifar10.tar.xz").unlink()
    with pytest.raises(ChecksumError, match=r"cifar10\.tar\.xz.*recorded"):
        build_small_cnn_zoo(options, tmp_path / "zoo", cache)
    assert not (tmp_path / "zoo").exists() or not any((tmp_path / "zoo").iterdir())
    assert not (cache / "cifar10.tar.xz").exists()


def test_wrong_configured_sha256(tmp_path: Path, archive: Path, http_server) -> None:
    (http_server.root / "cifar10.tar.xz").write_bytes(archive.read_bytes())
    options = {"archive": "cifar10", "dataset": "d", "url": http_server.url("cifar10.tar.xz"), "sha256": "0" * 64}
    out = tmp_path / "zoo"
    with pytest.raises(ChecksumError, match=r"cifar10\.tar\.xz"):
        build_small_cnn_zoo(options, out, tmp_path / "cache")
    assert not any((out / name).exists() for name in ZOO_FILES)
    assert not (tmp_path / "cache" / "cifar10.tar.xz").exists()

    right = {**options, "sha256": file_digest(archive, "sha256")}
    build_small_cnn_zoo(right, out, tmp_path / "cache")
    assert all((out / name).is_file() for name in ZOO_FILES)
