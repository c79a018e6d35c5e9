"""The transcoder's run management in virtual time: a fake encoder, trio's MockClock.

Probe-then-seek, bursts of seeks, throttling, retries and idle, each as a scripted sequence of
segment requests against a Session whose video is encoded (so it has a Transcoder).
"""

from __future__ import annotations

import itertools
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from hlstrio._metrics import Metrics
from hlstrio.streaming import (
    Capabilities,
    EncoderGaveUp,
    SegmentMissing,
    SegmentNotReady,
    Session,
    SessionParams,
    StreamingContext,
    decide,
)
from hlstrio.streaming._policy import PROBE_SEGMENTS, RESTART_INTERVAL_SECONDS
from hlstrio.streaming._remux import SessionSource

from .fakes import FakeCuts, FakeEncoder, media_item, run_inline, settings

SECONDS = 120
SEGMENTS = SECONDS // 2  # 2 s grid


@dataclass
class Rig:
    session: Session
    encoder: FakeEncoder
    metrics: Metrics

    @property
    def transcoder(self) -> Any:
        assert self.session.transcoder is not None
        return self.session.transcoder

    async def get(self, index: int) -> bytes:
        return await self.session.segment("v", index)

    def counter(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, labels)
        assert value is not None, f"no sample {name} {labels}"
        return value


RigFactory = Callable[..., Any]
# Every test requests `autojump_clock`: pytest-trio runs the test under the clock it is given,
# and only a test's own arguments count (a fixture asking for it is not enough).


@pytest.fixture
async def rig(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[RigFactory]:
    sessions: list[Session] = []

    async def make(start: float = 0.0, encoder: FakeEncoder | None = None, **overrides: Any) -> Rig:
        fake = encoder or FakeEncoder(SEGMENTS, 2.0)
        metrics = Metrics()
        context = StreamingContext.create(
            settings(tmp_path, **overrides),
            "ffmpeg",
            metrics=metrics,
            run_encoder=fake,
            make_cuts=FakeCuts(),
            run_blocking=run_inline,
        )
        item = media_item(video_codec="hevc", seconds=SECONDS)
        caps = Capabilities()  # no HEVC: the video is encoded
        plan = decide(item.info, caps)
        assert plan.transcodes
        session = Session(
            context,
            session_id="s" * 32,
            user="u",
            item=item,
            source=SessionSource(item.file, 0.0),
            params=SessionParams(item.id, start, "auto", None, caps),
            plan=plan,
            on_end=lambda s: None,
        )
        await nursery.start(session.run)
        sessions.append(session)
        return Rig(session, fake, metrics)

    yield make
    for session in sessions:
        session.close()
        await session.finished.wait()


async def test_first_run_starts_at_the_start_position(
    rig: RigFactory, autojump_clock: MockClock
) -> None:
    r = await rig(start=61.0)
    assert await r.get(30) == b"\x47" + bytes(187)
    (run,) = r.encoder.runs
    assert run.start == 30 and run.stop is None
    assert r.transcoder.restarts == 0


async def test_probe_of_the_first_segments_does_not_move_the_main_run(
    rig: RigFactory, autojump_clock: MockClock
) -> None:
    # A libavformat player asked to start at 90%: it reads segments 0 and 1 to probe, then
    # jumps to its position. The main run stays at 45 all along; the probe gets a short run.
    r = await rig(start=90.0)
    await r.get(0)
    await r.get(1)
    for index in range(45, 48):
        await r.get(index)
    main, probe = r.encoder.runs
    assert (main.start, main.stop, main.cancelled) == (45, None, False)
    assert (probe.start, probe.stop) == (0, PROBE_SEGMENTS)
    assert probe.made == [0, 1] and probe.finished  # a one-off: it exited after its segments
    assert r.transcoder.restarts == 0
    assert r.counter("hlstrio_encoder_probe_runs_total") == 1
    assert r.counter("hlstrio_encoder_starts_total") == 1
    # A second probe (another player, or a retry) is free: the probe segments are kept.
    await r.get(0)
    assert len(r.encoder.runs) == 2


async def test_probe_then_seek_from_the_start_restarts_once(
    rig: RigFactory, autojump_clock: MockClock
) -> None:
    r = await rig()
    await r.get(0)
    await r.get(1)  # made by the main run, which started at 0
    await r.get(45)
    await r.get(46)
    assert [run.start for run in r.encoder.runs] == [0, 45]
    assert r.transcoder.restarts == 1
    assert r.counter("hlstrio_encoder_restarts_total", reason="seek") == 1


async def test_a_burst_of_seeks_ends_with_one_encoder_at_the_last_position(
    rig: RigFactory, autojump_clock: MockClock
) -> None:
    r = await rig()
    await r.get(0)
    await trio.sleep(1.0)  # the first run is past its restart interval
    targets = [10, 15, 20, 25, 30, 35, 40, 45, 50, 55]
    async with trio.open_nursery() as burst:
        for target in targets:
            # A scrubbing player abandons each request when it fires the next one.
            burst.start_soon(_abandoned_get, r, target, 2.0)
            await trio.sleep(0.05)
        assert await r.get(55)  # the last position plays
        alive = r.encoder.alive()
        assert [run.start for run in alive] == [55]
    # Starts are bounded by the restart interval, not by the number of seeks.
    starts = r.encoder.started_at
    assert all(b - a >= RESTART_INTERVAL_SECONDS - 1e-9 for a, b in itertools.pairwise(starts))
    # The first run, one immediate restart (20 is beyond the seek gap), one deferred to 55.
    assert [run.start for run in r.encoder.runs] == [0, 20, 55]


async def _abandoned_get(r: Rig, index: int, seconds: float) -> None:
    with trio.move_on_after(seconds):
        await r.get(index)


async def test_throttle_pauses_far_ahead_and_continues_when_the_player_comes(
    rig: RigFactory, autojump_clock: MockClock
) -> None:
    r = await rig(throttle_ahead=8.0)
    await r.get(0)
    main = r.encoder.runs[0]
    # With nobody asking beyond segment 0, it stops just past 8 s of output.
    while not main.paused:
        await trio.sleep(0.1)
    assert main.signals == [signal.SIGSTOP]
    head = r.transcoder._main.head
    await trio.sleep(10)
    assert r.transcoder._main.head == head  # nothing made while stopped
    assert r.session.encoder_state == "paused"
    await r.get(head)  # the player reaches it: continue (hysteresis: within half the limit)
    assert main.signals == [signal.SIGSTOP, signal.SIGCONT]
    await r.get(head + 2)
    assert r.transcoder.restarts == 0


async def test_a_crashing_encoder_is_retried_then_the_session_fails(
    rig: RigFactory, autojump_clock: MockClock
) -> None:
    r = await rig(encoder=FakeEncoder(SEGMENTS, 2.0, fail_after=0), encoder_retries=2)
    with pytest.raises(EncoderGaveUp, match="fake failure"):
        await r.get(0)
    assert len(r.encoder.runs) == 3  # the first run and two retries
    assert r.session.state == "failed"
    assert r.counter("hlstrio_encoder_failures_total") == 3
    assert r.counter("hlstrio_encoder_restarts_total", reason="retry") == 2
    with pytest.raises(EncoderGaveUp):
        await r.get(5)


async def test_a_run_that_ends_early_makes_missing_segments_an_error(
    rig: RigFactory, autojump_clock: MockClock
) -> None:
    # The encoder exits cleanly two segments before the playlist's end.
    r = await rig(encoder=FakeEncoder(SEGMENTS - 2, 2.0, seconds_per_segment=0.01))
    await r.get(SEGMENTS - 4)  # a near seek: the same run makes it
    await r.get(SEGMENTS - 3)
    with pytest.raises(SegmentMissing):
        await r.get(SEGMENTS - 1)


async def test_idle_stops_the_encoder_and_a_request_resumes_where_asked(
    rig: RigFactory, autojump_clock: MockClock
) -> None:
    r = await rig(idle_timeout=5.0)
    await r.get(0)
    await trio.sleep(6)
    assert r.session.state == "idle"
    assert r.encoder.alive() == [] and r.encoder.runs[0].cancelled
    assert r.session.encoder_state == "stopped"
    await r.get(20)
    assert r.session.state == "running"
    assert [run.start for run in r.encoder.runs] == [0, 20]
    assert r.counter("hlstrio_encoder_restarts_total", reason="resume") == 1


async def test_a_segment_not_made_in_time_is_503_and_leaves_no_waiter(
    rig: RigFactory, autojump_clock: MockClock
) -> None:
    slow = FakeEncoder(SEGMENTS, 2.0, seconds_per_segment=100.0)
    r = await rig(encoder=slow, segment_wait=3.0)
    with pytest.raises(SegmentNotReady) as info:
        await r.get(0)
    assert info.value.retry_after_seconds == 2
    assert r.session._waiters == {} and r.session.to_json()["waiting"] == 0
