"""Rows of a 2-d ``.npy`` file read by position, so that memory follows what is read, not the file's size.

``np.load(mmap_mode="r")`` followed by fancy indexing faults in whole pages of the map around every row it
touches, and those file-backed pages count towards the process's resident memory (5 GB for the Small CNN Zoo's
``weights.npy``). :class:`NpyRows` instead reads the header once and then each run of consecutive selected rows
with one positional read (``os.preadv``) into the output block: the process holds only the rows it asked for.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


class NpyRows:
    """A C-ordered 2-d ``.npy`` file opened for positional row reads (:meth:`read`); a context manager.

    Raises ValueError for a file that is not a readable 2-d C-ordered ``.npy`` array or is shorter than its
    header says.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with open(self.path, "rb") as f:
            try:
                version = np.lib.format.read_magic(f)
                read_header = _HEADER_READERS.get(version)
                if read_header is None:
                    raise ValueError(f"unsupported .npy format version {version}")
                shape, fortran_order, dtype = read_header(f)
            except (ValueError, OSError, EOFError, SyntaxError) as err:
                raise ValueError(f"{self.path}: not a readable .npy array ({err})") from err
            self.offset = f.tell()
        if fortran_order or len(shape) != 2:
            order = "Fortran" if fortran_order else "C"
            raise ValueError(f"{self.path}: expected a 2-d C-ordered array, got {order}-ordered shape {shape}")
        self.shape: tuple[int, int] = shape
        self.dtype: np.dtype = dtype
        self.row_bytes = shape[1] * dtype.itemsize
        size, needed = self.path.stat().st_size, self.offset + shape[0] * self.row_bytes
        if size < needed:
            raise ValueError(f"{self.path}: not a readable .npy array (truncated: {size} of {needed} bytes)")
        self._fd = os.open(self.path, os.O_RDONLY)

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, rows: np.ndarray) -> np.ndarray:
        """The rows ``rows`` (indices in increasing order) as an array (len(rows), columns) of the file's dtype.

        Each run of consecutive indices is one ``os.preadv`` straight into the output; no other byte of the file
        is read.
        """
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and (rows[0] < 0 or rows[-1] >= len(self) or np.any(np.diff(rows) <= 0)):
            raise ValueError(f"{self.path}: rows must be increasing indices below {len(self)}")
        out = np.empty((len(rows), self.shape[1]), dtype=self.dtype)
        if not len(rows):
            return out
        buffer = out.reshape(-1).view(np.uint8)
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        for start, stop in zip(np.r_[0, breaks], np.r_[breaks, len(rows)]):
            into = memoryview(buffer[start * self.row_bytes : stop * self.row_bytes])
            position = self.offset + int(rows[start]) * self.row_bytes
            while len(into):  # a read returns at most ~2 GiB on Linux: continue where it stopped
                done = os.preadv(self._fd, [into], position)
                if done == 0:
                    raise ValueError(f"{self.path}: short read at row {rows[start]} (the file changed while read)")
                into, position = into[done:], position + done
        return out

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> NpyRows:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
