"""A remux Session in virtual time: cuts, cache, errors, idle, ttl, removal (fake cuts)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import m3u8
import pytest
import trio
from trio.testing import MockClock

from hlstrio.media import AudioInfo, MediaItem
from hlstrio.streaming import (
    Capabilities,
    CutFailed,
    MediaRemoved,
    SegmentNotFound,
    SegmentNotReady,
    Session,
    SessionEnded,
    SessionParams,
    StreamingContext,
    decide,
)
from hlstrio.streaming._remux import SessionSource

from .fakes import FakeCuts, media_item, run_inline, settings

Factory = Callable[..., Any]
# Every test requests `autojump_clock` itself (pytest-trio only looks at a test's arguments).


def build_session(
    context: StreamingContext,
    item: MediaItem,
    *,
    mode: str = "auto",
    on_end: Callable[[Session], object] = lambda _: None,
) -> Session:
    """A Session as the manager builds one (default capabilities), not yet running."""
    caps = Capabilities()
    return Session(
        context,
        session_id=mode[0] * 32,
        user="u",
        item=item,
        source=SessionSource(item.file, 0.0),
        params=SessionParams(item.id, 0.0, mode, None, caps),
        plan=decide(item.info, caps, mode),
        on_end=on_end,
    )


@pytest.fixture
async def new_session(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Factory]:
    made: list[tuple[Session, FakeCuts]] = []

    async def make(
        cuts: FakeCuts | None = None, audio: tuple[AudioInfo, ...] | None = None, **overrides: Any
    ) -> tuple[Session, FakeCuts, list[Session]]:
        fake = cuts or FakeCuts()
        context = StreamingContext.create(
            settings(tmp_path, **overrides), "ffmpeg", make_cuts=fake, run_blocking=run_inline
        )
        ended: list[Session] = []
        session = build_session(context, media_item(audio=audio), on_end=ended.append)
        await nursery.start(session.run)
        made.append((session, fake))
        return session, fake, ended

    yield make
    for session, _ in made:
        session.close()
        await session.finished.wait()


async def test_segments_are_cut_once_and_served_from_the_cache(
    new_session: Factory, autojump_clock: MockClock
) -> None:
    session, cuts, _ = await new_session()
    assert await session.segment("v", 3) == b"v-3"
    assert await session.segment("a1", 3) == b"a1-3"
    assert await session.segment("v", 3) == b"v-3"
    assert cuts.calls == {("v", 3): 1, ("a1", 3): 1}
    assert session.playhead.position == 3


async def test_concurrent_requests_for_one_segment_share_one_cut(
    new_session: Factory, autojump_clock: MockClock
) -> None:
    session, cuts, _ = await new_session()
    results: list[bytes] = []
    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(lambda: _append(results, session.segment("v", 7)))
    assert results == [b"v-7"] * 5
    assert cuts.calls == {("v", 7): 1}


async def test_a_slow_rendition_has_its_next_segment_cut_ahead(
    new_session: Factory, autojump_clock: MockClock
) -> None:
    # Encoded audio (read_ahead) is cut one segment ahead of what was served, so the player's
    # next request finds it made; the video (a cheap copy) is cut only when asked for.
    session, cuts, _ = await new_session(FakeCuts(read_ahead=frozenset({"a1"})))
    assert await session.segment("a1", 3) == b"a1-3"
    assert await session.segment("v", 3) == b"v-3"
    await trio.testing.wait_all_tasks_blocked()
    assert cuts.calls == {("a1", 3): 1, ("a1", 4): 1, ("v", 3): 1}
    assert await session.segment("a1", 4) == b"a1-4"  # made ahead: served from the cache
    await trio.testing.wait_all_tasks_blocked()
    assert (cuts.calls[("a1", 4)], cuts.calls[("a1", 5)]) == (1, 1)
    last = len(session.timeline) - 1
    assert await session.segment("a1", last) == f"a1-{last}".encode()
    await trio.testing.wait_all_tasks_blocked()
    assert ("a1", last + 1) not in cuts.calls  # nothing beyond the end
    assert sum(cuts.calls.values()) == 5  # a1 3, 4, 5 and the last; v 3


async def _append(results: list[bytes], awaitable: Any) -> None:
    results.append(await awaitable)


async def test_unknown_rendition_or_index_is_not_found(
    new_session: Factory, autojump_clock: MockClock
) -> None:
    session, _, _ = await new_session()
    with pytest.raises(SegmentNotFound):
        await session.segment("a9", 0)
    with pytest.raises(SegmentNotFound):
        await session.segment("v", len(session.timeline))
    with pytest.raises(SegmentNotFound):
        session.media("a9")


async def test_a_failed_cut_is_reported_and_other_renditions_still_play(
    new_session: Factory, autojump_clock: MockClock
) -> None:
    session, _, _ = await new_session(FakeCuts({"a1": "fail"}))
    with pytest.raises(CutFailed, match="fake"):
        await session.segment("a1", 0)
    assert await session.segment("v", 0) == b"v-0"
    assert session.state == "running"


async def test_a_bug_in_a_cut_fails_that_request_not_the_session(
    new_session: Factory, autojump_clock: MockClock
) -> None:
    session, _, _ = await new_session(FakeCuts({"a1": "bug"}))
    with pytest.raises(CutFailed, match="internal error"):
        await session.segment("a1", 0)
    assert await session.segment("v", 1) == b"v-1"
    assert not session.finished.is_set()


async def test_a_cut_that_never_finishes_is_503_after_segment_wait(
    new_session: Factory, autojump_clock: MockClock
) -> None:
    session, _, _ = await new_session(FakeCuts({"v": "hang"}), segment_wait=4.0)
    started = trio.current_time()
    with pytest.raises(SegmentNotReady):
        await session.segment("v", 0)
    assert trio.current_time() - started == pytest.approx(4.0)
    assert session.to_json()["waiting"] == 0


async def test_idle_drops_cached_cuts_and_ttl_ends_the_session(
    new_session: Factory, autojump_clock: MockClock
) -> None:
    session, cuts, ended = await new_session(idle_timeout=10.0, session_ttl=100.0)
    await session.segment("v", 0)
    await trio.sleep(11)
    assert session.state == "idle"
    assert await session.segment("v", 0) == b"v-0"  # cut again: the cache was dropped
    assert cuts.calls[("v", 0)] == 2
    assert session.state == "running"
    await trio.sleep(101)
    assert session.finished.is_set() and ended == [session]
    with pytest.raises(SessionEnded):
        await session.segment("v", 0)


async def test_a_waiting_request_keeps_the_session_alive(
    new_session: Factory, autojump_clock: MockClock
) -> None:
    session, _, _ = await new_session(
        FakeCuts({"v": "hang"}), idle_timeout=2.0, session_ttl=5.0, segment_wait=30.0
    )
    with pytest.raises(SegmentNotReady):
        await session.segment("v", 0)  # waits 30 s, far beyond idle and ttl
    assert not session.finished.is_set()


async def test_removed_media_answers_once_then_the_session_ends(
    new_session: Factory, autojump_clock: MockClock
) -> None:
    session, _, ended = await new_session()
    await session.segment("v", 0)
    session.media_removed("deleted from disk")
    assert session.state == "gone"
    with pytest.raises(MediaRemoved, match="deleted from disk"):
        await session.segment("v", 1)
    await session.finished.wait()
    assert ended == [session]


async def test_removed_media_nobody_asks_about_ends_idle_timeout_later(
    new_session: Factory, autojump_clock: MockClock
) -> None:
    session, _, ended = await new_session(idle_timeout=10.0, session_ttl=1000.0)
    await session.segment("v", 0)
    await trio.sleep(50)  # idle for long already
    removed_at = trio.current_time()
    session.media_removed("deleted from disk")
    await session.finished.wait()
    # Not at once (a paused player's next request still hears the 410), not at the ttl.
    assert trio.current_time() - removed_at == pytest.approx(10.0)
    assert ended == [session]


async def test_every_audio_track_is_a_rendition_on_the_video_timeline(
    new_session: Factory, autojump_clock: MockClock
) -> None:
    english = AudioInfo(1, "aac", 2, 48_000, "en", "mp4a.40.2", 128_000)
    french = AudioInfo(2, "ac3", 6, 48_000, "fr", "ac-3", 384_000)
    session, _, _ = await new_session(audio=(english, french))
    master = m3u8.loads(session.master())
    renditions = [(m.group_id, m.language, m.default, m.uri) for m in master.media]
    # Apple 9.6: a stereo AAC of every track; the AC-3 5.1 is encoded to it for this client.
    assert renditions == [
        ("aac", "en", "YES", "a1/index.m3u8"),
        ("aac", "fr", "NO", "a2s/index.m3u8"),
    ]
    video = m3u8.loads(session.media("v"))
    for rendition in ("a1", "a2s"):
        audio = m3u8.loads(session.media(rendition))
        assert [s.duration for s in audio.segments] == [s.duration for s in video.segments]
    assert await session.segment("a2s", 5) == b"a2s-5"


async def test_a_session_cancelled_while_its_dir_is_made_still_removes_it(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    # A shutdown right after a transcode's create: the cancel arrives while a worker thread
    # makes the session dir. The dir must still be known and removed (it once was left).
    async def slow_thread(fn: Callable[[], Any], limiter: Any = None) -> Any:
        result = fn()
        await trio.sleep(1)  # the thread's answer comes after the cancel
        return result

    temp = tmp_path / "sessions"
    context = StreamingContext.create(
        settings(tmp_path, temp_dir=temp), "ffmpeg", make_cuts=FakeCuts(), run_blocking=slow_thread
    )
    session = build_session(context, media_item(), mode="transcode")
    assert session.plan.transcodes
    with trio.move_on_after(0.5):
        await nursery.start(session.run)
    await session.finished.wait()
    assert list(temp.iterdir()) == []
