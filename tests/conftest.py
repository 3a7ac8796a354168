"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.http import LoopbackServer


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[LoopbackServer]:
    """A loopback HTTP server serving the (initially empty) directory ``http_server.root``."""
    root = tmp_path / "www"
    root.mkdir()
    with LoopbackServer(root) as server:
        yield server
