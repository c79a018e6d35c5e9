"""A small seeded soak in the suite: the same driver as `nox -s soak`, fewer operations.

A real server in a subprocess (so SIGKILLing its ffmpeg children and its SIGTERM stop are real),
two concurrent workers with their own users, ~200 create/play/seek/delete/abandon/kill
operations, the leak invariants checked between rounds through the API, /proc and the temp dir,
and nothing left once the server has stopped.
"""

from __future__ import annotations

from pathlib import Path

import trio

from soak._live import live_server
from soak._soak import SoakConfig, run_soak


def test_seeded_soak(media_dir: Path, long_media_dir: Path, tmp_path: Path) -> None:
    config = SoakConfig(ops=200, seed=4, workers=2, rounds=4, idle_timeout=1.0, session_ttl=2.0)
    media = [media_dir, long_media_dir]
    with live_server(tmp_path, media, config.server_settings(), config.users()) as server:
        report = trio.run(run_soak, server, config)
    print(report.summary())
    assert report.errors == []
    assert report.exit_code == 0
    assert sum(report.ops.values()) >= config.ops
    assert report.created >= 10 and report.checks >= config.rounds
