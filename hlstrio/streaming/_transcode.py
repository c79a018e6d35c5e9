"""A transcode session's segments: ffmpeg runs, restarts, throttling and pruning.

One run = one ffmpeg process writing into its own subdirectory (so a new run never rewrites a
file a client may be reading). The session asks `request(index)`; the policy in `_policy.py`
says serve, wait or (re)start; runs report each closed segment, which wakes the waiters.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import trio

from .._config import Settings
from .._metrics import Metrics
from .._reaper import Reaper
from ..media import MediaItem
from ._decision import Plan
from ._disk import DiskBudget
from ._encoder import EncoderFailed, encoder_argv, run_encoder, segment_filename
from ._policy import EncoderView, prunable, seconds_ahead, segment_action, throttle_action
from ._timeline import Timeline

log = logging.getLogger("hlstrio.transcode")


class SegmentMissing(Exception):
    """The encoder finished without making a segment the playlist lists."""


@dataclass(eq=False)
class _Run:
    number: int
    start: int
    directory: Path
    head: int = -1
    running: bool = True
    paused: bool = False
    exit_clean: bool = False
    started_at: float = 0.0
    process: trio.Process | None = None
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    done: trio.Event = field(default_factory=trio.Event)

    def view(self) -> EncoderView:
        return EncoderView(self.start, self.head, self.running)


class Transcoder:
    def __init__(
        self,
        *,
        label: str,
        owner: str,
        item: MediaItem,
        plan: Plan,
        timeline: Timeline,
        settings: Settings,
        ffmpeg: str,
        temp_dir: Path,
        nursery: trio.Nursery,
        disk: DiskBudget,
        reaper: Reaper | None,
        on_ready: Callable[[int], None],
        wake_all: Callable[[], None],
        on_failed: Callable[[str], None],
        on_disk_change: Callable[[], None],
        start_index: int,
        metrics: Metrics | None = None,
    ) -> None:
        self._label = label
        self._owner = owner
        self._item = item
        self._plan = plan
        self._timeline = timeline
        self._settings = settings
        self._ffmpeg = ffmpeg
        self._temp_dir = temp_dir
        self._nursery = nursery
        self._disk = disk
        self._reaper = reaper
        self._on_ready = on_ready
        self._wake_all = wake_all
        self._on_failed = on_failed
        self._on_disk_change = on_disk_change
        self._metrics = metrics
        self._paths: dict[int, Path] = {}
        self._run: _Run | None = None
        self._runs = 0
        self._failures = 0  # consecutive failed runs
        self._missing_from: int | None = None  # a clean run ended before this segment
        self.restarts = 0
        self.furthest_requested = start_index
        self.position = start_index
        self.gap_segments = max(1, math.ceil(settings.seek_gap / settings.segment_seconds))

    # -- state for the API ---------------------------------------------------------------
    @property
    def encoder_state(self) -> str:
        run = self._run
        if run is None or not run.running:
            return "stopped"
        return "paused" if run.paused else "running"

    @property
    def bytes_on_disk(self) -> int:
        return sum(self._disk_sizes().values())

    def _disk_sizes(self) -> dict[int, int]:
        sizes = {}
        for index, path in self._paths.items():
            with contextlib.suppress(OSError):
                sizes[index] = path.stat().st_size
        return sizes

    # -- the segment path ----------------------------------------------------------------
    def request(self, index: int) -> Path | None:
        """Path of a finished segment, or None after making sure a run will produce it."""
        self.position = index
        self.furthest_requested = max(self.furthest_requested, index)
        path = self._paths.get(index)
        if path is not None and not path.exists():  # pruned under us (disk budget)
            self._forget(index)
            path = None
        run = self._run
        action = segment_action(
            index,
            ready=path is not None,
            run=run.view() if run is not None else None,
            gap_segments=self.gap_segments,
        )
        if action == "start":
            if self._missing_from is not None and index >= self._missing_from:
                raise SegmentMissing(f"the encoder ended without segment {index}")
            # A seek (either way) moves the player: throttle against where it went.
            self.furthest_requested = index
            self.start(index)
        self._throttle()
        self._prune_behind()
        return path

    def start(self, index: int, reason: str = "seek") -> None:
        """Start a run at `index`, cancelling the current one (only the encoder's scope)."""
        previous = self._run
        if self._metrics is not None:
            if previous is None:
                self._metrics.encoder_started()
            else:
                self._metrics.encoder_restarted(reason if previous.running else "resume")
        if previous is not None and previous.running:
            previous.scope.cancel()
            self.restarts += 1
            log.info("%s: restarting encoder at segment %d", self._label, index)
        self._runs += 1
        run = _Run(self._runs, index, self._temp_dir / f"run-{self._runs}", head=index - 1)
        self._run = run
        self._nursery.start_soon(self._execute, run, previous)

    def stop(self) -> None:
        """Stop the encoder (idle): CPU freed, segments on disk kept."""
        if self._run is not None and self._run.running:
            self._run.scope.cancel()

    def prune(self, index: int) -> None:
        path = self._paths.get(index)
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink()
            self._forget(index)

    def is_behind(self, index: int) -> bool:
        return index < self.position

    # -- runs ----------------------------------------------------------------------------
    async def _execute(self, run: _Run, previous: _Run | None) -> None:
        if previous is not None:
            await previous.done.wait()  # its process is gone before ours starts
        info = self._item.info
        copy_timeline = self._plan.video == "copy"
        fps = info.video.fps if info.video is not None else 0.0
        argv = encoder_argv(
            self._ffmpeg,
            self._item.file,
            run.directory,
            self._plan,
            self._timeline,
            video_index=info.video.index if info.video is not None else None,
            source_start=info.start_time if copy_timeline else 0.0,
            frame_duration=1 / fps if fps > 0 else 0.0,
            segment_seconds=self._settings.segment_seconds,
            start_index=run.start,
        )

        def started(process: trio.Process) -> None:
            run.process = process
            run.started_at = trio.current_time()
            if self._reaper is not None:
                self._reaper.watch(process.pid, str(run.directory))

        try:
            with run.scope:
                await trio.to_thread.run_sync(lambda: run.directory.mkdir(parents=True))
                await run_encoder(
                    argv,
                    lambda index: self._segment_closed(run, index),
                    label=f"{self._label} run {run.number}",
                    on_started=started,
                )
                run.exit_clean = True
        except EncoderFailed as exc:
            self._run_failed(run, str(exc))
        finally:
            run.running = False
            if run.process is not None and self._reaper is not None:
                self._reaper.unwatch(run.process.pid)
            run.done.set()
        if run.exit_clean and self._run is run:
            self._failures = 0
            last = len(self._timeline) - 1
            if run.head < last:
                self._missing_from = run.head + 1
                # Waiters re-check and get SegmentMissing instead of waiting out the clock.
                self._wake_all()

    def _run_failed(self, run: _Run, message: str) -> None:
        log.error("%s: run %d failed: %s", self._label, run.number, message)
        if self._metrics is not None:
            self._metrics.encoder_failed()
        if self._run is not run:
            return
        self._failures += 1
        if self._failures <= self._settings.encoder_retries:
            # Restart at the segment it failed on; it may have been a transient fault.
            resume = max(run.head + 1, run.start)
            log.info("%s: retry %d at segment %d", self._label, self._failures, resume)
            self.start(resume, reason="retry")
        else:
            self._on_failed(message)

    def _segment_closed(self, run: _Run, index: int) -> None:
        run.head = index
        self._failures = 0
        path = run.directory / segment_filename(index)
        try:
            size = path.stat().st_size
        except OSError:
            return
        old = self._paths.get(index)
        if old is not None and old != path:
            with contextlib.suppress(OSError):
                old.unlink()
        self._paths[index] = path
        self._disk.add(self._owner, index, size)
        self._on_ready(index)
        if index == run.start and self._metrics is not None:
            self._metrics.encoder_first_segment(trio.current_time() - run.started_at)
        self._throttle()
        self._prune_behind()
        if self._disk.over_limit:
            self._on_disk_change()

    def _forget(self, index: int) -> None:
        self._paths.pop(index, None)
        self._disk.remove(self._owner, index)

    # -- throttling and pruning ----------------------------------------------------------
    def _throttle(self) -> None:
        run = self._run
        if run is None or not run.running or run.process is None:
            return
        ahead = seconds_ahead(self._timeline, run.head, self.furthest_requested)
        action = throttle_action(ahead, paused=run.paused, limit=self._settings.throttle_ahead)
        if action == "pause":
            with contextlib.suppress(ProcessLookupError):
                run.process.send_signal(signal.SIGSTOP)
                run.paused = True
                log.info("%s: encoder paused %.0f s ahead", self._label, ahead)
        elif action == "resume":
            with contextlib.suppress(ProcessLookupError):
                run.process.send_signal(signal.SIGCONT)
                run.paused = False
                log.info("%s: encoder resumed", self._label)

    def _prune_behind(self) -> None:
        old = prunable(self._paths, self._timeline, self.position, self._settings.keep_behind)
        for index in old:
            self.prune(index)

    def close(self) -> None:
        """Session end: forget every segment (the session removes the directory)."""
        for index in list(self._paths):
            self._disk.remove(self._owner, index)
        self._paths.clear()
