"""Cluster tests: real Redis and HAProxy (Debian's redis-server and haproxy; .ci/run installs
them), real hlstrio nodes. Without one of them these tests are skipped with the reason, or
fail under CI (CI=true), like the other system tools (tests/conftest.py).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._procs import HAPROXY, REDIS_SERVER, Redis

# `nox -s cluster` sets it: the longer end-to-end runs (transcode failover, Redis stopped
# mid-play) run only there; `nox -s tests` runs the quick ones.
FULL = os.environ.get("HLSTRIO_CLUSTER_TESTS", "") == "full"
full_only = pytest.mark.skipif(not FULL, reason="long cluster run: nox -s cluster")


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _require(path: str, package: str) -> str:
    if shutil.which(path) is None:
        reason = f"no {path} (apt-get install -y {package})"
        if _in_ci():
            pytest.fail(f"{reason}: .ci/run installs it, so in CI this is a failure")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def redis_server() -> str:
    return _require(REDIS_SERVER, "redis-server")


@pytest.fixture(scope="session")
def haproxy() -> str:
    return _require(HAPROXY, "haproxy")


@pytest.fixture
def redis(redis_server: str, tmp_path: Path) -> Iterator[Redis]:
    """A fresh redis-server of the test's own (no persistence), stopped after it."""
    pytest.importorskip("coredis") if not _in_ci() else None
    server = Redis(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()
