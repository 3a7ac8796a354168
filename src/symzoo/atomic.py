"""Atomic file writes: every output appears whole or not at all."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; rename it onto ``dest`` when the block succeeds.

    On any exception the temporary file is removed and ``dest`` is left untouched, so a crashed
    or killed writer never leaves a partial output behind (the rename is atomic on POSIX).
    The temporary name keeps ``dest``'s suffix, so libraries that dispatch on it still work. The file gets the
    mode a plain ``open`` would give it (0666 less the umask), not ``mkstemp``'s owner-only 0600, so a shared
    ``results/`` stays readable by the lab. A full disk or a missing permission is an error naming ``dest``.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=f".tmp{''.join(dest.suffixes)}", dir=dest.parent)
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, dest)
    except OSError as err:
        tmp_path.unlink(missing_ok=True)
        if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS) and str(dest) not in str(err):
            raise OSError(err.errno, f"writing {dest}: {os.strerror(err.errno)}") from err
        raise
    except RuntimeError as err:
        tmp_path.unlink(missing_ok=True)
        if "inline_container" in str(err) or "PytorchStreamWriter" in str(err):  # torch.save: a failed write
            raise OSError(errno.EIO, f"writing {dest}: the write failed (disk full?): {err}") from err
        raise
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask (read by setting and restoring it: there is no getter)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
