"""Resume state of long training jobs: one versioned, fingerprinted file format and one policy.

A checkpoint is ``{"kind", "version", "fingerprint", "state"}`` written atomically with ``torch.save``
(plain tensors, numbers, strings, lists and dicts: readable with ``weights_only=True``). ``kind`` names the
writer (``"zoo"``, ``"autoencoder"``), ``version`` its state layout, ``fingerprint`` everything the state
depends on (settings, inputs' digests).

The policy, the same for every job: a checkpoint that belongs to this run is resumed; one that does not (not
readable, another kind or version, another fingerprint: the config or the inputs changed since it was
written) is removed with a warning that names the file and the reason, and the job starts afresh. A
pipeline reruns a job precisely because something changed, so a stale checkpoint must never stop it, and
never be resumed.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from symzoo.atomic import atomic_path

log = logging.getLogger(__name__)


def digest(parts: Iterable[bytes | str]) -> str:
    """sha256 of a sequence of byte strings (strings are UTF-8 encoded): for fingerprints of large inputs."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
    return h.hexdigest()


def save(path: str | os.PathLike, kind: str, version: int, fingerprint: dict[str, Any], state: dict[str, Any]) -> None:
    """Write a checkpoint atomically: a reader sees the previous file or this one, never a part."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save({"kind": kind, "version": version, "fingerprint": fingerprint, "state": state}, f)


def load(path: str | os.PathLike, kind: str, version: int, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    """The state saved at ``path`` if it belongs to this run, else None (a stale file is removed, with a warning)."""
    path = Path(path)
    if not path.is_file():
        return None
    reason = None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several error types for a truncated or foreign file
        reason = f"not a readable checkpoint ({err})"
    else:
        if not isinstance(saved, dict) or saved.get("kind") != kind:
            reason = f"not a {kind} checkpoint"
        elif saved.get("version") != version:
            reason = f"checkpoint version {saved.get('version')!r}, this code writes {version}"
        elif saved.get("fingerprint") != fingerprint:
            changed = sorted(
                k for k in {*fingerprint, *saved["fingerprint"]} if saved["fingerprint"].get(k) != fingerprint.get(k)
            )
            reason = f"written for other {', '.join(changed)}"
    if reason is not None:
        log.warning("%s: %s; removed, starting afresh", path, reason)
        path.unlink(missing_ok=True)
        return None
    return saved["state"]
