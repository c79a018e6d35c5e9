"""A real hlstrio server on a loopback port (port 0), driven over real HTTP.

The server runs in the test's own trio run (pytest-trio), so tests can also look at its
registry; clients reach it only through sockets. ffmpeg is the real bundled binary.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from hlstrio._config import Settings
from hlstrio._server import RunningServer, serve

from ..support import Harness, session_processes

StartServer = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def start_server(
    media_dir: Path, tmp_path: Path, nursery: trio.Nursery
) -> AsyncIterator[StartServer]:
    """Factory: `await start_server(**settings)`; shuts down gracefully and checks for leaks."""
    started: list[tuple[Harness, trio.Event]] = []
    temp_dir = tmp_path / "sessions"

    async def start(**overrides: Any) -> Harness:
        values: dict[str, Any] = {
            "media": (media_dir,),
            "port": 0,
            "temp_dir": temp_dir,
            "cache_dir": tmp_path / "cache",
            "segment_seconds": 2.0,
            "segment_wait": 10.0,
        }
        values.update(overrides)
        settings = Settings(**values)
        done = trio.Event()

        async def run(task_status: trio.TaskStatus[RunningServer]) -> None:
            try:
                await serve(settings, handle_signals=False, task_status=task_status)
            finally:
                done.set()

        running: RunningServer = await nursery.start(run)
        client = httpx.AsyncClient(base_url=running.url, timeout=30)
        harness = Harness(running.url, client, running, temp_dir)
        started.append((harness, done))
        return harness

    yield start

    for harness, done in started:
        await harness.client.aclose()
        harness.running.shutdown.set()
        with trio.fail_after(20):
            await done.wait()
    # Servers in one test share the temp dir: check once all of them have stopped.
    leftovers = list(temp_dir.iterdir()) if temp_dir.exists() else []
    assert leftovers == [], f"session temp dirs left after shutdown: {leftovers}"
    assert session_processes(temp_dir) == [], "ffmpeg left running after shutdown"
