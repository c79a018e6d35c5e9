"""Keeping the library current: file system events, coalesced into few scans, one at a time.

Two things ask for a scan: the watcher (`watch_roots`: inotify through watchfiles, on any change
under a root) and an explicit rescan (POST /api/v1/library/rescan). Both go through one
`ScanScheduler`, so that:

- a burst of events (copying 50 files in) costs one scan: the scan waits until the roots have
  been quiet for `Debounce.quiet_seconds`, but never longer than `max_delay_seconds` after the
  first event, so a constant stream of changes is still scanned now and then;
- only one scan runs at a time, and events during a scan cost one more scan after it, however
  many arrive;
- a rescan skips the quiet wait, not the queue: it answers with a scan that *started* after it
  was asked for, so what it reports is the disk as it is now.

Why not `watchfiles.awatch`: it does work under trio (through anyio) if it is given a stop event
(without one, cancelling it waits out its 5 s Rust timeout and leaves the notify thread
running), but it builds the recursive inotify watch on the event loop (a directory walk: slow on
a big library) and cannot say when the watch is in place. So the same Rust watcher
(`RustNotify`, which awatch wraps) is driven here from trio worker threads, with a stop flag set
the moment the task is cancelled.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePath
from typing import Generic, TypeVar

import trio
from watchfiles._rust_notify import RustNotify

log = logging.getLogger("hlstrio.media.watch")

T = TypeVar("T")


class ScanFailed(Exception):
    """The scan a rescan waited for raised (the scheduler logged why) or was interrupted."""


@dataclass(frozen=True, slots=True)
class Debounce:
    """When a burst of events is scanned: pure timing, no I/O (unit-tested on its own)."""

    quiet_seconds: float  # scan once nothing has changed for this long...
    max_delay_seconds: float  # ...but at the latest this long after the first change

    def due(self, first_event: float, last_event: float) -> float:
        """The time to scan events seen from `first_event` to `last_event` (trio clock)."""
        return min(last_event + self.quiet_seconds, first_event + self.max_delay_seconds)


class _Round(Generic[T]):
    """The rescans waiting for one scan that has not started yet; all get its outcome."""

    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.result: T | None = None
        self.error: str | None = None


class ScanScheduler(Generic[T]):
    """Turns events and rescans into scans (see the module docstring). Lives in one trio run."""

    def __init__(self, scan: Callable[[], Awaitable[T]], debounce: Debounce) -> None:
        self._scan = scan
        self._debounce = debounce
        self._first_event: float | None = None  # something is pending since then
        self._last_event = 0.0
        self._urgent = False  # a rescan is waiting: no quiet period
        self._wake = trio.Event()  # set on every notify, so `run` re-reads the deadline
        self._next: _Round[T] = _Round()
        self._running = False
        self.scanning = False
        self.scans_started = 0

    @property
    def busy(self) -> bool:
        """A scan is running or due: the library may be about to change."""
        return self.scanning or self._first_event is not None

    def notify(self) -> None:
        """Something under the roots changed: scan after the quiet period (never blocks)."""
        now = trio.current_time()
        if self._first_event is None:
            self._first_event = now
        self._last_event = now
        self._wake.set()

    async def rescan(self) -> T:
        """Scan now (after a running scan, if any) and return what that scan found.

        Concurrent rescans share one scan. Raises ScanFailed if that scan raised."""
        if not self._running:
            raise RuntimeError("library updates are not running")
        waiting = self._next
        self._urgent = True
        self.notify()
        await waiting.done.wait()
        if waiting.error is not None:
            raise ScanFailed(waiting.error)
        assert waiting.result is not None
        return waiting.result

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Scan whenever one is due, until cancelled."""
        self._running = True
        task_status.started()
        try:
            while True:
                await self._until_due()
                current, self._next = self._next, _Round()
                self._first_event = None
                self._urgent = False
                self.scanning = True
                self.scans_started += 1
                try:
                    current.result = await self._scan()
                except Exception as exc:
                    # A bug in one scan must not stop the library from updating.
                    log.exception("library scan failed")
                    current.error = f"the library scan failed: {exc}"
                finally:
                    self.scanning = False
                    if current.result is None and current.error is None:
                        current.error = "the library scan was interrupted (shutting down)"
                    current.done.set()
        finally:
            self._running = False
            self._next.error = "library updates stopped (shutting down)"
            self._next.done.set()

    async def _until_due(self) -> None:
        while True:
            due = math.inf
            if self._first_event is not None:
                if self._urgent:
                    return
                due = self._debounce.due(self._first_event, self._last_event)
                if trio.current_time() >= due:
                    return
            self._wake = trio.Event()
            with trio.move_on_at(due):
                await self._wake.wait()


# --- the watcher ---------------------------------------------------------------------------

# watchfiles hands over a batch once the roots were quiet for _STEP_MS, at most _BATCH_MS after
# its first event; ScanScheduler does the real debouncing, so these stay short.
_STEP_MS = 50
_BATCH_MS = 300
# Without inotify (the watch limit reached, a file system without events): stat every file
# this often, in watchfiles' thread.
_POLL_DELAY_MS = 5000
# watch() also comes back after this long without a change: if the stop flag were ever missed,
# shutdown would wait this long, never hang on a thread trio cannot cancel.
_TIMEOUT_MS = 1000
# After the watch broke, wait this long before setting it up again; doubled while it keeps
# breaking soon after being set up, up to the cap.
_RETRY_SECONDS = 1.0
_RETRY_MAX_SECONDS = 60.0


def is_relevant(path: str, roots: Sequence[Path], ignore: Sequence[Path]) -> bool:
    """Whether a change at `path` can change the library (pure: names only, no stat).

    Hidden names are skipped by the scan, so changes there are ignored (editors' swap files,
    partial downloads like `.movie.mkv.part`); so are the server's own directories (session
    segments, the probe cache) if they live under a root. Anything else, directories included
    (a renamed folder of films), may matter: a scan that finds nothing new costs a walk and
    a stat per file, never a probe.
    """
    changed = PurePath(path)
    if any(changed.is_relative_to(own) for own in ignore):
        return False
    for root in roots:
        if changed.is_relative_to(root):
            return not any(part.startswith(".") for part in changed.relative_to(root).parts)
    return True  # outside every root (a root itself renamed?): scan to be safe


async def watch_roots(
    roots: Sequence[Path],
    on_change: Callable[[], object],
    *,
    ignore: Sequence[Path] = (),
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Call `on_change()` after every relevant change under `roots`, until cancelled.

    `task_status.started()` comes once the watch is in place: a change after it is seen. If
    inotify cannot be used, the roots are polled instead; if even that fails, the watcher
    logs an error and ends (POST /api/v1/library/rescan still works).
    """
    watched, skip = await trio.to_thread.run_sync(partial(_resolve, roots, ignore))
    if not watched:
        log.warning("no library root exists: not watching for changes")
        task_status.started()
        return
    relevant = partial(is_relevant, roots=watched, ignore=skip)
    polling = False
    started = False
    retry = _RETRY_SECONDS
    while True:
        try:
            notify = await trio.to_thread.run_sync(partial(_open, watched, polling))
        except (OSError, RuntimeError) as exc:
            if not polling:
                log.warning("cannot watch the library with inotify (%s): polling instead", exc)
                polling = True
                continue
            log.error("cannot watch the library (%s): it changes only on a rescan", exc)
            if not started:
                task_status.started()
            return
        since = trio.current_time()
        try:
            if started:
                on_change()  # changes while the watch was down were missed
            else:
                log.info("watching %d library root(s) for changes", len(watched))
                task_status.started()
                started = True
            await _pump(notify, on_change, relevant)
            return
        except Exception as exc:
            # Never fatal to the server: the watch is set up again, and the scan after that
            # catches up with what it missed.
            if trio.current_time() - since > _RETRY_MAX_SECONDS:
                retry = _RETRY_SECONDS  # it had been working: a new problem
            log.warning("library watch failed (%s); setting it up again in %.0f s", exc, retry)
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(notify.close)  # stops watchfiles' thread
        await trio.sleep(retry)
        retry = min(2 * retry, _RETRY_MAX_SECONDS)


def _resolve(roots: Sequence[Path], ignore: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """The roots that exist, and the ignored directories inside them, resolved (blocking).

    An ignored directory that holds a root (the system temp dir, a library under /tmp) is
    dropped: ignoring it would ignore the whole root."""
    watched: list[Path] = []
    for root in roots:
        try:
            resolved = root.resolve(strict=True)
        except (OSError, RuntimeError):
            continue
        if resolved.is_dir() and resolved not in watched:
            watched.append(resolved)
    inside = [
        own
        for own in (p.resolve() for p in ignore)
        if any(own != root and own.is_relative_to(root) for root in watched)
    ]
    return watched, inside


def _open(roots: Sequence[Path], polling: bool) -> RustNotify:
    """Start watchfiles' watcher thread on the roots (blocking: inotify walks the tree)."""
    return RustNotify([str(r) for r in roots], False, polling, _POLL_DELAY_MS, True, False)


async def _pump(
    notify: RustNotify, on_change: Callable[[], object], relevant: Callable[[str], bool]
) -> None:
    # A worker thread blocks in notify.watch(); trio cannot interrupt it, so cancellation
    # sets `stop`, which watch() checks every _STEP_MS, and the thread comes back at once.
    stop = threading.Event()
    # The thread is held for the server's whole life: its own limiter, not the default one.
    limiter = trio.CapacityLimiter(1)

    async def stop_when_cancelled() -> None:
        try:
            await trio.sleep_forever()
        finally:
            stop.set()

    failure: Exception | None = None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(stop_when_cancelled)
        try:
            while True:
                changes = await trio.to_thread.run_sync(
                    notify.watch, _BATCH_MS, _STEP_MS, _TIMEOUT_MS, stop, limiter=limiter
                )
                if changes == "stop":  # only after cancellation
                    break
                if isinstance(changes, set) and any(relevant(path) for _, path in changes):
                    on_change()
        except Exception as exc:
            # Raised after the nursery, not through it (which would wrap it in a group).
            # One cause: a file name that is not UTF-8 ("Unable to decode path").
            failure = exc
        nursery.cancel_scope.cancel()
    if failure is not None:
        raise failure
