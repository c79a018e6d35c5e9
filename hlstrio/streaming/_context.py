"""The one context every session, transcoder and cut shares, built once by the manager.

Before this existed, Session and Transcoder took 14-17 keyword arguments each and re-created
defaults for the ones a caller left out — which is how a falsy empty cache once made every
session build a private one. Now there is one value, made in one place (`create`), with nothing
optional inside it: what a test wants different (a fake encoder runner, a small cache) it
passes to `create`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

import trio

from .._config import Settings
from .._metrics import Metrics
from .._reaper import Reaper
from ._cache import SegmentCache
from ._decision import Plan
from ._disk import DiskBudget
from ._encoder import EncoderRunner, run_encoder
from ._filters import FilterSupport
from ._remux import RenditionCut, SessionSource, renditions
from ._timeline import Timeline

CutsFactory = Callable[[SessionSource, Plan, Timeline], Mapping[str, RenditionCut]]
T = TypeVar("T")


class BlockingRunner(Protocol):
    """How blocking work (file I/O, in-process cuts) leaves the event loop."""

    async def __call__(
        self, fn: Callable[[], T], *, limiter: trio.CapacityLimiter | None = None
    ) -> T: ...


async def in_worker_thread(
    fn: Callable[[], T], *, limiter: trio.CapacityLimiter | None = None
) -> T:
    """The production BlockingRunner: a trio worker thread. A cancelled caller abandons the
    thread (it finishes on its own; its result is dropped) instead of waiting for it."""
    return await trio.to_thread.run_sync(fn, abandon_on_cancel=True, limiter=limiter)


# In-process cuts hold the GIL (PyAV demux/mux/encode): more threads than cores only slow
# each other down (trio's default 40 gave p99 13 s at 200 players).
CUT_THREADS = 2


def _nothing() -> None:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamingContext:
    settings: Settings
    ffmpeg: str
    metrics: Metrics
    reaper: Reaper | None  # kills encoders if the server is SIGKILLed
    disk: DiskBudget  # transcode segment bytes on disk, all sessions
    cache: SegmentCache  # recently cut in-process segments, all sessions
    cut_limiter: trio.CapacityLimiter  # worker threads for in-process cuts
    run_encoder: EncoderRunner  # the encoder process (tests: a fake with the same contract)
    make_cuts: CutsFactory  # the in-process cut of each rendition (tests: fakes)
    # Worker threads; tests run blocking work inline, so virtual time (MockClock) never jumps
    # while a real thread runs.
    run_blocking: BlockingRunner
    # What this ffmpeg's filter set can do (tone mapping, deinterlacing); None: never asked, so
    # only built-in filters are used (_filters.detect_filters runs once at server start).
    filters: FilterSupport | None
    # Called when transcode segments go over temp_max_bytes (the manager prunes across sessions).
    on_disk_pressure: Callable[[], None]

    @classmethod
    def create(
        cls,
        settings: Settings,
        ffmpeg: str,
        *,
        metrics: Metrics | None = None,
        reaper: Reaper | None = None,
        run_encoder: EncoderRunner = run_encoder,
        make_cuts: CutsFactory = renditions,
        run_blocking: BlockingRunner = in_worker_thread,
        filters: FilterSupport | None = None,
        on_disk_pressure: Callable[[], None] = _nothing,
    ) -> StreamingContext:
        return cls(
            settings=settings,
            ffmpeg=ffmpeg,
            metrics=Metrics() if metrics is None else metrics,
            reaper=reaper,
            disk=DiskBudget(settings.temp_max_bytes),
            cache=SegmentCache(settings.remux_cache_bytes),
            cut_limiter=trio.CapacityLimiter(CUT_THREADS),
            run_encoder=run_encoder,
            make_cuts=make_cuts,
            run_blocking=run_blocking,
            filters=filters,
            on_disk_pressure=on_disk_pressure,
        )
