"""A transcode session's encoded video: ffmpeg runs, restarts, probe runs, throttling, pruning.

One run = one ffmpeg process writing into its own subdirectory (so a new run never rewrites a
file a client may be reading). The session asks `request(index)`; the policy in `_policy.py`
says serve, wait, start the main run there, or make a short probe run beside it (players that
probe the first segments before seeking: see `_policy`'s docstring); runs report each closed
segment, which wakes the waiters. Every closed segment is made spec-clean (continuous TS
counters, `_continuity`) before it is announced, so the file on disk is what clients get, also
through nginx's sendfile.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Literal, Protocol

import trio

from ._context import StreamingContext
from ._encoder import EncodeJob, EncoderExited, ProcessHandle, encoder_argv
from ._errors import SegmentMissing
from ._lifecycle import RunEvent, RunState, run_transition
from ._mpegts import spec_clean
from ._playlist import ENCODER_SEGMENT_PATTERN
from ._policy import (
    PROBE_SEGMENTS,
    RESTART_INTERVAL_SECONDS,
    Playhead,
    RunView,
    prunable,
    restart_delay,
    seconds_ahead,
    segment_action,
    throttle_action,
)

log = logging.getLogger("hlstrio.transcode")


class TranscoderEvents(Protocol):
    """What the transcoder tells its session."""

    def segment_ready(self, index: int) -> None: ...
    def encoder_failed(self, message: str) -> None: ...
    def wake_waiters(self) -> None: ...


RunKind = Literal["main", "probe"]


@dataclass(eq=False)
class _Run:
    number: int
    kind: RunKind
    start: int
    stop: int | None  # exclusive; None = to the end
    directory: Path
    head: int = -1
    state: RunState = RunState.RUNNING
    started_at: float = 0.0
    process: ProcessHandle | None = None
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    done: trio.Event = field(default_factory=trio.Event)

    def view(self) -> RunView:
        finished = self.state is RunState.FINISHED
        return RunView(self.start, self.head, self.state.alive, self.stop, finished)

    def handle(self, event: RunEvent) -> None:
        self.state = run_transition(self.state, event)


class Transcoder:
    def __init__(
        self,
        context: StreamingContext,
        job: EncodeJob,
        *,
        label: str,
        owner: str,
        temp_dir: Path,
        nursery: trio.Nursery,
        playhead: Playhead,
        events: TranscoderEvents,
    ) -> None:
        self._context = context
        self._settings = context.settings
        self._job = job
        self._timeline = job.timeline
        self._label = label
        self._owner = owner
        self._temp_dir = temp_dir
        self._nursery = nursery
        self._playhead = playhead
        self._events = events
        self._paths: dict[int, Path] = {}
        self._main: _Run | None = None
        self._probe: _Run | None = None
        self._runs = 0
        self._failures = 0  # consecutive failed runs
        self._missing_from: int | None = None  # a clean main run ended before this segment
        self._last_main_start: float | None = None
        self._pending_main: int | None = None  # a deferred main start (see _policy)
        self.restarts = 0
        self.gap_segments = max(
            1, math.ceil(self._settings.seek_gap / self._settings.segment_seconds)
        )

    # -- state for the API ---------------------------------------------------------------
    @property
    def encoder_state(self) -> str:
        """The main run: "running" | "paused" | "stopped"."""
        run = self._main
        if run is None or not run.state.alive:
            return "stopped"
        return run.state.value

    @property
    def runs_started(self) -> int:
        return self._runs

    def alive_runs(self) -> list[RunKind]:
        return [r.kind for r in (self._main, self._probe) if r is not None and r.state.alive]

    # -- the segment path ----------------------------------------------------------------
    def request(self, index: int) -> Path | None:
        """Path of a finished segment, or None after making sure a run will produce it."""
        path = self._paths.get(index)
        if path is not None and not path.exists():  # pruned under us (disk budget)
            self._forget(index)
            path = None
        action = segment_action(
            index,
            ready=path is not None,
            main=self._main.view() if self._main is not None else None,
            probe=self._probe.view() if self._probe is not None else None,
            gap_segments=self.gap_segments,
        )
        if action == "start":
            if self._missing_from is not None and index >= self._missing_from:
                raise SegmentMissing(f"the encoder ended without segment {index}")
            # A seek (either way) moves the player: throttle against where it went.
            self._playhead.seek(index)
            self._start_main_soon(index)
        elif action == "probe":
            self._start_probe(index)
        self._throttle()
        self._prune_behind()
        return path

    def start(self, index: int) -> None:
        """The session's first run, at its start position."""
        self._start_main(index, "start")

    def stop(self) -> None:
        """Stop the encoder (idle): CPU freed, segments on disk kept."""
        self._pending_main = None
        for run in (self._main, self._probe):
            if run is not None and run.state.alive:
                run.scope.cancel()

    def prune(self, index: int) -> None:
        path = self._paths.get(index)
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink()
            self._forget(index)

    def is_behind(self, index: int) -> bool:
        return index < self._playhead.position

    # -- starting runs -------------------------------------------------------------------
    def _start_main_soon(self, index: int) -> None:
        """Start the main run at `index` now, or at the end of the restart interval at the
        latest position asked for by then (bursts of seeks make one run, not one each)."""
        delay = restart_delay(trio.current_time(), self._last_main_start, RESTART_INTERVAL_SECONDS)
        if delay <= 0:
            self._start_main(index, "seek")
            return
        first = self._pending_main is None
        self._pending_main = index
        if first:
            self._nursery.start_soon(self._deferred_main, delay)

    async def _deferred_main(self, delay: float) -> None:
        await trio.sleep(delay)
        index, self._pending_main = self._pending_main, None
        if index is None:
            return  # stopped meanwhile (idle)
        main = self._main.view() if self._main is not None else None
        if index in self._paths or (main is not None and main.will_make(index, self.gap_segments)):
            return
        self._start_main(index, "seek")

    def _start_main(self, index: int, reason: str) -> None:
        previous = self._main
        metrics = self._context.metrics
        if previous is None:
            metrics.encoder_started()
        else:
            # A new run after the last one ended by itself (idle, done) is a resume.
            alive = previous.state.alive
            metrics.encoder_restarted(reason if alive or reason == "retry" else "resume")
        if previous is not None and previous.state.alive:
            previous.scope.cancel()
            self.restarts += 1
            log.info("%s: restarting encoder at segment %d", self._label, index)
        self._last_main_start = trio.current_time()
        self._main = self._new_run("main", index, None)
        self._nursery.start_soon(self._execute, self._main, previous)

    def _start_probe(self, index: int) -> None:
        previous = self._probe
        if previous is not None and previous.state.alive:
            previous.scope.cancel()
        self._context.metrics.encoder_probe()
        log.info("%s: probe run for segments %d-%d", self._label, index, PROBE_SEGMENTS - 1)
        self._probe = self._new_run("probe", index, PROBE_SEGMENTS)
        self._nursery.start_soon(self._execute, self._probe, previous)

    def _new_run(self, kind: RunKind, start: int, stop: int | None) -> _Run:
        self._runs += 1
        directory = self._temp_dir / f"run-{self._runs}"
        return _Run(self._runs, kind, start, stop, directory, head=start - 1)

    # -- runs ----------------------------------------------------------------------------
    async def _execute(self, run: _Run, previous: _Run | None) -> None:
        if previous is not None:
            await previous.done.wait()  # its process is gone before ours starts
        argv = encoder_argv(self._context.ffmpeg, self._job, run.directory, run.start, run.stop)
        reaper = self._context.reaper

        def started(process: ProcessHandle) -> None:
            run.process = process
            run.started_at = trio.current_time()
            if reaper is not None:
                reaper.watch(process.pid, str(run.directory))

        failure: str | None = None
        try:
            with run.scope:
                await self._context.run_blocking(lambda: run.directory.mkdir(parents=True))
                await self._context.run_encoder(
                    argv,
                    lambda index: self._segment_closed(run, index),
                    label=f"{self._label} run {run.number}",
                    on_started=started,
                )
                run.handle(RunEvent.EXITED_OK)
        except EncoderExited as exc:
            run.handle(RunEvent.EXITED_ERROR)
            failure = str(exc)
        finally:
            if run.state.alive:
                run.handle(RunEvent.CANCELLED)
            if run.process is not None and reaper is not None:
                reaper.unwatch(run.process.pid)
            run.done.set()
        if failure is not None:
            self._run_failed(run, failure)
        elif run.state is RunState.FINISHED and run is self._main:
            self._failures = 0
            last = len(self._timeline) - 1
            if run.head < last:
                self._missing_from = run.head + 1
                # Waiters re-check and get SegmentMissing instead of waiting out the clock.
                self._events.wake_waiters()

    def _run_failed(self, run: _Run, message: str) -> None:
        log.error("%s: run %d failed: %s", self._label, run.number, message)
        self._context.metrics.encoder_failed()
        if run is not self._main and run is not self._probe:
            return
        self._failures += 1
        if self._failures > self._settings.encoder_retries:
            self._events.encoder_failed(message)
        elif run is self._main:
            # Restart at the segment it failed on; it may have been a transient fault.
            resume = max(run.head + 1, run.start)
            log.info("%s: retry %d at segment %d", self._label, self._failures, resume)
            self._start_main(resume, "retry")
        else:
            self._events.wake_waiters()  # their next look starts another probe run

    async def _segment_closed(self, run: _Run, index: int) -> None:
        path = run.directory / (ENCODER_SEGMENT_PATTERN % index)
        try:
            size = await self._context.run_blocking(partial(_finish_segment_file, path, index))
        except OSError:
            return
        run.head = index
        self._failures = 0
        old = self._paths.get(index)
        if old is not None and old != path:
            with contextlib.suppress(OSError):
                old.unlink()
        self._paths[index] = path
        self._context.disk.add(self._owner, index, size)
        self._events.segment_ready(index)
        if index == run.start:
            self._context.metrics.encoder_first_segment(trio.current_time() - run.started_at)
        self._throttle()
        self._prune_behind()
        if self._context.disk.over_limit:
            self._context.on_disk_pressure()

    def _forget(self, index: int) -> None:
        self._paths.pop(index, None)
        self._context.disk.remove(self._owner, index)

    # -- throttling and pruning ----------------------------------------------------------
    def _throttle(self) -> None:
        run = self._main
        if run is None or not run.state.alive or run.process is None:
            return
        ahead = seconds_ahead(self._timeline, run.head, self._playhead.furthest)
        paused = run.state is RunState.PAUSED
        action = throttle_action(ahead, paused=paused, limit=self._settings.throttle_ahead)
        if action == "pause":
            with contextlib.suppress(ProcessLookupError):
                run.process.send_signal(signal.SIGSTOP)
                run.handle(RunEvent.PAUSE)
                log.info("%s: encoder paused %.0f s ahead", self._label, ahead)
        elif action == "resume":
            with contextlib.suppress(ProcessLookupError):
                run.process.send_signal(signal.SIGCONT)
                run.handle(RunEvent.RESUME)
                log.info("%s: encoder resumed", self._label)

    def _prune_behind(self) -> None:
        old = prunable(
            self._paths, self._timeline, self._playhead.position, self._settings.keep_behind
        )
        for index in old:
            self.prune(index)

    def close(self) -> None:
        """Session end: forget every segment (the session removes the directory)."""
        for index in list(self._paths):
            self._context.disk.remove(self._owner, index)
        self._paths.clear()


def _finish_segment_file(path: Path, index: int) -> int:
    """Make a closed ffmpeg segment spec-clean in place (continuous TS counters, `_remux.
    spec_clean`); its size in bytes. Blocking. The new file replaces the old by rename, so a
    reader (nginx's sendfile included) sees one or the other, never half of each."""
    data = path.read_bytes()
    clean = spec_clean(data, index)
    if clean is not data:
        partial_path = path.with_name(path.name + ".part")
        partial_path.write_bytes(clean)
        os.replace(partial_path, path)
    return len(clean)
