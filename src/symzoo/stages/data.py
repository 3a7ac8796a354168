"""Stage ``dataset``: an image set (8x8 digits, 5,000 MNIST digits, CIFAR-10-GS) as ``results/data/{dataset}.npz``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from symzoo.data.images import ImageSet, SplitSettings, save_image_set
from symzoo.sources.cifar import Cifar10Settings, cifar10_gs_image_set
from symzoo.sources.digits import digits_image_set
from symzoo.sources.mnist5k import mnist5k_image_set
from symzoo.stages import common

log = logging.getLogger(__name__)


def arguments(p: argparse.ArgumentParser) -> None:
    common.add_options(p, "dataset", "datasets.<name>")
    common.add_out(p, "output .npz (results/data/<name>.npz)")
    common.add_cache(p)


def main(args: argparse.Namespace) -> None:
    run(args.options, args.out, args.cache)
    log.info("wrote %s", args.out)


def build(options: dict, cache_dir: Path) -> ImageSet:
    """The image set of one validated ``datasets`` entry (the schema's ``dataset``, defaults filled in).

    Downloads (CIFAR-10) are cached in ``cache_dir``.
    """
    source = options["source"]
    if source in ("digits", "mnist5k"):  # the bundled sets: split by class
        split = SplitSettings(fractions=tuple(options["fractions"]), seed=options["seed"])
        return (digits_image_set if source == "digits" else mnist5k_image_set)(split)
    if source == "cifar10":
        settings = Cifar10Settings(url=options["url"], md5=options["md5"], resize=options["resize"])
        return cifar10_gs_image_set(settings, Path(cache_dir))
    raise ValueError(f"unknown image set source {source!r}; expected 'digits', 'mnist5k' or 'cifar10'")


def run(options: dict, out: Path, cache_dir: Path) -> Path:
    """Build the image set of ``options`` and write it atomically to ``out`` (nothing is written on error)."""
    save_image_set(out, build(options, cache_dir))
    return out
