"""``bench_convert``: the Small CNN Zoo conversion at a given size, its time and its peak memory.

A synthetic archive in the exact upstream format (:mod:`symzoo.sources.smallcnnzoo.synthetic`, ``runs`` runs x 9
checkpoints x 4,970 float32 columns; the upstream CIFAR-10 archive has 30,000 runs, 270,000 rows, 5.4 GB of
weights) is built in a temporary folder, its xz stream stored rather than compressed (LZMA compresses random
floats at a few MB/s on a CPU, an hour at full size; the extraction then measures the streaming, not the LZMA
decoding of the upstream archive, whose memory is bounded alike). It is then converted as the ``smallcnnzoo``
stage does (extraction of the members, the selected rows read and converted, filtered and split, the zoo
written) in a fresh child process, whose peak resident memory (``ru_maxrss``) is reported with the times.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from symzoo import config
from symzoo.bench.child import in_child
from symzoo.data.zoo import write_zoo
from symzoo.sources.smallcnnzoo import convert_archive, extract_archive
from symzoo.sources.smallcnnzoo.synthetic import CHECKPOINTS, layout_rows, make_small_cnn_zoo_archive
from symzoo.stages.smallcnnzoo import selection

OPTIONS = {"source": "smallcnnzoo", "archive": "cifar10", "dataset": "cifar10gs"}
"""The ``zoos`` entry converted (its defaults: step 86, ReLU, the default accuracy filter and split)."""

UPSTREAM_RUNS = 30_000
"""Runs of the upstream CIFAR-10 archive (x 9 checkpoints = 270,000 rows)."""


def _convert(archive: Path, cache: Path, out: Path) -> dict:
    """The stage's conversion of ``archive`` (default selection), timed in two parts."""
    options = config.validate(OPTIONS, "zoo_smallcnnzoo", where="bench convert")
    start = time.perf_counter()
    extract_archive(archive, cache)
    extracted = time.perf_counter()
    spec, params, models = convert_archive(archive, selection(options), cache)
    write_zoo(out, spec, params, models, meta={"dataset": options["dataset"], "source": {"kind": "bench"}})
    return {
        "extract_s": extracted - start,
        "convert_s": time.perf_counter() - extracted,
        "networks": len(params),
        "zoo_bytes": params.nbytes,
    }


def bench_convert(runs: int = UPSTREAM_RUNS, workdir: Path | None = None) -> dict:
    """Build an archive of ``runs`` runs in a temporary folder under ``workdir`` (default: the system's), convert
    it in a child process; return the sizes, ``build_s``, ``extract_s``, ``convert_s`` and the child's
    ``baseline_rss_bytes`` / ``peak_rss_bytes``. Needs about 3x the weights' size of free disk."""
    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs}")
    rows, columns = runs * len(CHECKPOINTS), layout_rows()[-1][2]
    with tempfile.TemporaryDirectory(dir=workdir, prefix="symzoo-bench-convert-") as tmp:
        archive = Path(tmp) / "upstream" / "cifar10.tar.xz"
        start = time.perf_counter()
        make_small_cnn_zoo_archive(archive, n_runs=runs, stored=True)
        build_s = time.perf_counter() - start
        timings, memory = in_child(_convert, archive, Path(tmp) / "cache", Path(tmp) / "zoo")
        return {
            "runs": runs,
            "rows": rows,
            "columns": columns,
            "weights_bytes": rows * columns * 4,
            "archive_bytes": archive.stat().st_size,
            "build_s": build_s,
            **timings,
            **memory,
        }
