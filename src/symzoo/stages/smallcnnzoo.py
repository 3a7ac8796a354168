"""Stage ``smallcnnzoo``: a Small CNN Zoo archive, downloaded and converted, as the zoo ``results/zoo/{zoo}/``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from symzoo.data.download import forget
from symzoo.data.zoo import ARCH, MODELS, PARAMS, write_zoo
from symzoo.sources.smallcnnzoo import ArchiveSource, Selection, convert_archive, download_archive
from symzoo.sources.smallcnnzoo.archive import CorruptArchiveError
from symzoo.stages import common

log = logging.getLogger(__name__)


def arguments(p: argparse.ArgumentParser) -> None:
    common.add_options(p, "zoo_smallcnnzoo", "zoos.<name>")
    common.add_out(p, "zoo directory (results/zoo/<name>)")
    common.add_cache(p)


def main(args: argparse.Namespace) -> None:
    run(args.options, args.out, args.cache)
    log.info("wrote %s", args.out)


def archive_source(options: dict) -> ArchiveSource:
    """Which archive a validated ``zoos`` entry (the schema's ``zoo_smallcnnzoo``) downloads, and its check."""
    return ArchiveSource(name=options["archive"], url=options["url"], sha256=options["sha256"])


def selection(options: dict) -> Selection:
    """Which networks of the archive a validated ``zoos`` entry keeps, and how it splits them."""
    return Selection(
        step=int(options["step"]),
        activation=options["activation"],
        min_accuracy=float(options["min_accuracy"]),
        fractions=tuple(options["fractions"]),
        seed=int(options["seed"]),
    )


def run(options: dict, out_dir: Path, cache_dir: Path) -> Path:
    """Download, convert, filter and split the archive of ``options`` into the zoo ``out_dir``.

    The archive and its extracted members are cached in ``cache_dir``. On any error no zoo file is left in
    ``out_dir``.
    """
    out_dir, cache_dir = Path(out_dir), Path(cache_dir)
    source, chosen = archive_source(options), selection(options)
    downloaded = download_archive(source, cache_dir)
    try:
        spec, params, models = convert_archive(downloaded.path, chosen, cache_dir)
    except CorruptArchiveError as err:
        if source.sha256 is not None:  # it matched the published digest: downloading again cannot help
            raise
        # Its digest was only recorded on first use, so the record may vouch for a broken download (a truncated
        # transfer, a server fault since fixed): forget both and download once more.
        log.warning("%s; its sha256 was recorded on first use: deleting it and its record, downloading again", err)
        forget(downloaded.path)
        downloaded = download_archive(source, cache_dir)
        try:
            spec, params, models = convert_archive(downloaded.path, chosen, cache_dir)
        except CorruptArchiveError as again:
            forget(downloaded.path)
            raise CorruptArchiveError(
                f"{again}; downloaded twice from {source.resolved_url}, corrupt both times (both copies deleted): "
                "the server sends a broken file"
            ) from again
    meta = {
        "dataset": options["dataset"],
        "source": {
            "kind": "smallcnnzoo",
            "archive": source.name,
            "url": source.resolved_url,
            "sha256": downloaded.sha256,
            "step": chosen.step,
        },
    }
    try:
        return write_zoo(out_dir, spec, params, models, meta=meta)
    except BaseException:
        for name in (PARAMS, MODELS, ARCH):  # a half-written zoo is worse than none
            (out_dir / name).unlink(missing_ok=True)
        raise
