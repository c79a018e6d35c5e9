"""SessionManager in virtual time: reuse, replacement, caps, end, media removal (fakes)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from hlstrio.media import VerifiedFiles
from hlstrio.streaming import (
    Capabilities,
    CapExceeded,
    MediaRemoved,
    SessionManager,
    SessionParams,
)

from .fakes import FakeCuts, FakeEncoder, media_item, run_inline, settings

H264 = media_item()
HEVC = dataclasses.replace(media_item(video_codec="hevc"), id="h" * 24)


def params(item: Any, **kw: Any) -> SessionParams:
    values: dict[str, Any] = {"start": 0.0, "mode": "auto", "audio": None}
    values.update(kw)
    return SessionParams(media_id=item.id, capabilities=Capabilities(), **values)


@pytest.fixture
async def manager(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[SessionManager]:
    encoder = FakeEncoder(60, 2.0)
    manager = SessionManager(
        settings(tmp_path, max_sessions=3, max_sessions_per_user=2, max_transcodes=1),
        "ffmpeg",
        run_encoder=encoder,
        make_cuts=FakeCuts(),
        run_blocking=run_inline,
    )
    await nursery.start(manager.run)
    yield manager
    await manager.end_all()


async def test_same_params_reuse_other_params_replace(
    manager: SessionManager, autojump_clock: MockClock
) -> None:
    first, created = await manager.create("u", H264, params(H264), VerifiedFiles(H264.file, {}))
    again, created_again = await manager.create(
        "u", H264, params(H264), VerifiedFiles(H264.file, {})
    )
    assert created and not created_again and again is first
    other, created = await manager.create(
        "u", H264, params(H264, start=30.0), VerifiedFiles(H264.file, {})
    )
    assert created and other is not first
    await first.finished.wait()  # the replaced session ended
    assert manager.lookup(first.id) is None and manager.lookup(other.id) is other
    assert len(manager.registry) == 1


async def test_caps_are_checked_before_anything_starts(
    manager: SessionManager, autojump_clock: MockClock
) -> None:
    await manager.create("u", H264, params(H264), VerifiedFiles(H264.file, {}))
    await manager.create(
        "u", HEVC, params(HEVC), VerifiedFiles(HEVC.file, {})
    )  # a transcode: the one slot
    with pytest.raises(CapExceeded) as info:
        await manager.create("v", HEVC, params(HEVC), VerifiedFiles(HEVC.file, {}))
    assert info.value.cap == "max_transcodes"
    third = dataclasses.replace(H264, id="t" * 24)
    with pytest.raises(CapExceeded) as info:
        await manager.create("u", third, params(third), VerifiedFiles(third.file, {}))
    assert info.value.cap == "max_sessions_per_user"
    assert len(manager.registry) == 2


async def test_end_returns_once_the_session_is_cleaned_up(
    manager: SessionManager, autojump_clock: MockClock
) -> None:
    session, _ = await manager.create("u", HEVC, params(HEVC), VerifiedFiles(HEVC.file, {}))
    await session.segment("v", 0)
    assert session.temp_dir is not None and session.temp_dir.exists()
    await manager.end(session)
    assert session.finished.is_set() and not session.temp_dir.exists()
    assert manager.lookup(session.id) is None
    assert manager.registry.transcodes == 0


async def test_media_removal_reaches_every_session_of_that_file(
    manager: SessionManager, autojump_clock: MockClock
) -> None:
    mine, _ = await manager.create("u", H264, params(H264), VerifiedFiles(H264.file, {}))
    theirs, _ = await manager.create("v", H264, params(H264), VerifiedFiles(H264.file, {}))
    other, _ = await manager.create("v", HEVC, params(HEVC), VerifiedFiles(HEVC.file, {}))
    assert manager.media_removed(H264.id, "file deleted") == 2
    for session in (mine, theirs):
        with pytest.raises(MediaRemoved):
            await session.segment("v", 0)
        await session.finished.wait()
    assert await other.segment("v", 0)  # another file's session plays on
    # A new session of the removed file's id would be refused by the library (not here).
    assert [s.id for s in manager.registry] == [other.id]
