"""Stage ``pairs``: disjoint pairs of the best test-split networks of a zoo (``results/merge/{zoo}/pairs.parquet``)."""

from __future__ import annotations

import logging
from pathlib import Path

from symzoo.atomic import atomic_path
from symzoo.data.zoo import read_models, read_task
from symzoo.merge.interpolate import select_pairs

log = logging.getLogger(__name__)


def run(zoo_dir: Path, n_pairs: int, top: int, seed: int, out: Path) -> Path:
    pairs = select_pairs(read_models(zoo_dir), n_pairs, top, seed, read_task(zoo_dir))
    with atomic_path(out) as tmp:
        pairs.write_parquet(tmp)
    log.info("wrote %d pairs to %s", len(pairs), out)
    return out
