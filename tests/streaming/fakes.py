"""Stand-ins for the I/O edges of the streaming core, for unit tests under trio's MockClock.

Mocked on purpose: these tests are about the session core's logic (lifecycle, policy, waits,
restarts) in virtual time, where a real ffmpeg (seconds of real CPU) cannot run. The real
encoder and real cuts are exercised end to end in tests/web with real ffmpeg as the client.
"""

from __future__ import annotations

import itertools
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

import trio

from hlstrio._config import Settings
from hlstrio.media import AudioInfo, MediaInfo, MediaItem, VideoInfo
from hlstrio.streaming._decision import Plan
from hlstrio.streaming._encoder import EncoderExited, ProcessHandle
from hlstrio.streaming._errors import CutError
from hlstrio.streaming._remux import RenditionCut, SessionSource
from hlstrio.streaming._timeline import Timeline

_pids = itertools.count(100_000)
T = TypeVar("T")


@dataclass
class FakeRun:
    """One fake encoder process: what it was asked to do, and what was done to it."""

    argv: list[str]
    start: int
    stop: int | None  # exclusive, from -t
    out_dir: Path
    pid: int = field(default_factory=lambda: next(_pids))
    signals: list[int] = field(default_factory=list)
    made: list[int] = field(default_factory=list)
    finished: bool = False
    cancelled: bool = False
    _continued: trio.Event = field(default_factory=trio.Event)

    @property
    def paused(self) -> bool:
        stops = self.signals.count(signal.SIGSTOP)
        return stops > self.signals.count(signal.SIGCONT)

    def send_signal(self, sig: int) -> None:
        self.signals.append(sig)
        if sig == signal.SIGCONT:
            self._continued.set()
            self._continued = trio.Event()


class FakeEncoder:
    """An EncoderRunner that behaves like `ffmpeg -f segment` on a fixed grid: it reads the
    start number and `-t` from the argv it is given, writes one small file per segment every
    `seconds_per_segment` of (mock) time, honours SIGSTOP/SIGCONT, and exits 0 after the last
    segment — or fails with EncoderExited after `fail_after` segments if asked to."""

    def __init__(
        self,
        segments: int,
        segment_seconds: float,
        *,
        seconds_per_segment: float = 0.25,
        fail_after: int | None = None,
    ) -> None:
        self.segments = segments
        self.segment_seconds = segment_seconds
        self.seconds_per_segment = seconds_per_segment
        self.fail_after = fail_after
        self.runs: list[FakeRun] = []
        self.started_at: list[float] = []

    def alive(self) -> list[FakeRun]:
        return [r for r in self.runs if not r.finished]

    async def __call__(
        self,
        argv: Sequence[str],
        on_segment: Callable[[int], Awaitable[None]],
        *,
        label: str,
        on_started: Callable[[ProcessHandle], None] | None = None,
    ) -> None:
        args = list(argv)
        start = int(args[args.index("-segment_start_number") + 1])
        stop = None
        if "-t" in args:
            length = float(args[args.index("-t") + 1])
            stop = start + round(length / self.segment_seconds)
        run = FakeRun(args, start, stop, Path(args[-1]).parent)
        self.runs.append(run)
        self.started_at.append(trio.current_time())
        if on_started is not None:
            on_started(run)
        try:
            end = min(stop if stop is not None else self.segments, self.segments)
            for index in range(start, end):
                await trio.sleep(self.seconds_per_segment)
                while run.paused:
                    await run._continued.wait()
                if self.fail_after is not None and len(run.made) >= self.fail_after:
                    raise EncoderExited("ffmpeg exited with status 1: fake failure")
                (run.out_dir / f"seg-{index}.ts").write_bytes(b"\x47" + bytes(187))
                run.made.append(index)
                await on_segment(index)
        except trio.Cancelled:
            run.cancelled = True
            raise
        finally:
            run.finished = True


class Hang(Exception):
    """Raised by a fake blocking call that stands for one that never returns."""


async def run_inline(fn: Callable[[], T], *, limiter: trio.CapacityLimiter | None = None) -> T:
    """A BlockingRunner for virtual time: blocking work runs inline (a real thread would let
    the MockClock jump past deadlines while it runs); a `Hang` blocks until cancelled."""
    await trio.lowlevel.checkpoint()
    try:
        return fn()
    except Hang:
        await trio.sleep_forever()
        raise AssertionError("unreachable") from None


@dataclass
class FakeCuts:
    """A `make_cuts` for the context: every in-process rendition cuts to b"<rendition>-<index>",
    or, per rendition, "fail" (CutError), "bug" (any other exception) or "hang" (never
    returns; with `run_inline`).
    `calls` counts cuts made, per (rendition, index); renditions in `read_ahead` are marked
    as slow to cut (encoded audio), so a session cuts their next segment ahead."""

    behaviour: Mapping[str, str] = field(default_factory=dict)
    calls: dict[tuple[str, int], int] = field(default_factory=dict)
    read_ahead: frozenset[str] = frozenset()

    def __call__(
        self, source: SessionSource, plan: Plan, timeline: Timeline
    ) -> dict[str, RenditionCut]:
        return self.make(source.media, plan, timeline)

    def make(self, path: Path, plan: Plan, timeline: Timeline) -> dict[str, RenditionCut]:
        ids = [a.rendition for a in plan.audio]
        if plan.video is not None and plan.video.action == "copy":
            ids.append("v")

        def cut_for(rendition: str) -> Callable[[int], bytes]:
            def cut(index: int) -> bytes:
                key = (rendition, index)
                self.calls[key] = self.calls.get(key, 0) + 1
                what = self.behaviour.get(rendition)
                if what == "fail":
                    raise CutError(f"cannot read {path.name}: fake")
                if what == "hang":
                    raise Hang
                if what == "bug":
                    raise RuntimeError("a bug in a cut")
                return f"{rendition}-{index}".encode()

            return cut

        return {
            r: RenditionCut(
                "video" if r == "v" else "audio", "ts", cut_for(r), read_ahead=r in self.read_ahead
            )
            for r in ids
        }


TB = Fraction(1, 1000)


def media_item(
    *,
    video_codec: str = "h264",
    seconds: int = 120,
    gop_seconds: int = 2,
    audio: Sequence[AudioInfo] | None = None,
) -> MediaItem:
    """A hand-built library item: 24 fps video with a keyframe every `gop_seconds`."""
    keyframes = tuple(range(0, seconds * 1000, gop_seconds * 1000))
    video = VideoInfo(
        index=0,
        codec=video_codec,
        width=1280,
        height=720,
        fps=24.0,
        hls_codec="avc1.64001f" if video_codec == "h264" else "hvc1.1.6.L93.90",
        bit_rate=None,
    )
    tracks = (
        tuple(audio)
        if audio is not None
        else (
            AudioInfo(
                index=1,
                codec="aac",
                channels=2,
                sample_rate=48_000,
                language="en",
                hls_codec="mp4a.40.2",
                bit_rate=128_000,
            ),
        )
    )
    info = MediaInfo(
        container="matroska",
        duration=float(seconds),
        size=seconds * 250_000,
        video=video,
        audio=tracks,
        keyframe_pts=keyframes,
        gop_bytes=tuple(500_000 for _ in keyframes),
        video_time_base=TB,
        video_start_pts=0,
        video_end_pts=seconds * 1000,
    )
    return MediaItem(
        id="m" * 24,
        title="Fake",
        path="fake.mkv",
        root=Path("/nonexistent"),
        file=Path("/nonexistent/fake.mkv"),
        info=info,
    )


def settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "temp_dir": tmp_path / "sessions",
        "cache_dir": tmp_path / "cache",
        "segment_seconds": 2.0,
        "segment_wait": 10.0,
        "idle_timeout": 1000.0,
        "session_ttl": 10_000.0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]
