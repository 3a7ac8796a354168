"""The Small CNN Zoo (Unterthiner et al. 2020): download an archive and convert it to the zoo format.

An archive ``{archive}.tar.xz`` holds one folder with
- ``weights.npy``: one row per (run, checkpoint), the network's TensorFlow variables side by side;
- ``metrics.csv.gz``: row i describes weights row i (``config.*`` hyper-parameters, ``modeldir``, ``step``,
  train/test accuracy and loss);
- ``layout.csv``: one row per TensorFlow variable (``varname``, ``start_idx``, ``end_idx``, ``shape``), the
  column slice of ``weights.npy`` that holds it.

:mod:`.archive` downloads the archive and extracts its members into the cache, :mod:`.layout` reads
``layout.csv`` and turns TensorFlow's variables into torch's layout, :mod:`.convert` reads ``metrics.csv.gz``,
selects the rows (one checkpoint step, one activation) and converts them.
"""

from symzoo.sources.smallcnnzoo.archive import ARCHIVE_SIDES, ArchiveSource, download_archive, extract_archive
from symzoo.sources.smallcnnzoo.convert import Selection, convert_archive, read_archive

__all__ = [
    "ARCHIVE_SIDES",
    "ArchiveSource",
    "Selection",
    "convert_archive",
    "download_archive",
    "extract_archive",
    "read_archive",
]
