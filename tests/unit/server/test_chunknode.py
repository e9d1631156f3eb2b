"""Chunk server start-up rules that need no running cluster."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tessera.server.chunknode import run_chunkserver
from tessera.server.config import load_config
from tessera.server.node import NodeError


def test_refuses_a_public_address_without_a_cluster_key(tmp_path: Path) -> None:
    cfg = load_config(
        env={},
        flags={
            "server.listen": "0.0.0.0:0",
            "storage.disks": [str(tmp_path / "d0")],
            "meta.url": f"sqlite:///{tmp_path / 'meta.db'}",
        },
    )
    with pytest.raises(NodeError, match="without a cluster key"):
        asyncio.run(run_chunkserver(cfg))
    assert not (tmp_path / "d0").exists()  # refused before touching anything


def test_needs_the_metadata_database(tmp_path: Path) -> None:
    cfg = load_config(env={}, flags={"storage.disks": [str(tmp_path / "d0")]})
    with pytest.raises(NodeError, match="--meta"):
        asyncio.run(run_chunkserver(cfg))
