"""Encoder policy, pure: when to start, restart, probe, pause, resume, and what to prune.

Kept apart from the process handling so each rule is a small function unit-tested without
ffmpeg, and the numbers it acts on (Jellyfin's 24 s seek gap, its 180 s throttle) are visible.

Players that probe, then seek. libavformat-based players (ffmpeg, ffplay, mpv, Kodi, Infuse)
open a stream by reading its first segment(s) to learn the codecs, then jump to the start
position they were asked for; a browser player asked to start at 90% requests that segment
directly. Moving the one encoder back to segment 0 for a probe and forward again for the real
position costs two restarts (and a slow first segment each). So the first `PROBE_SEGMENTS`
segments are special: when the main encoder run is busy elsewhere, a request for one of them
gets a short *probe run* of its own beside the main run (ffmpeg with `-t`, exactly those
segments, then it exits), and the main run stays where the player really is. Probe segments
are never pruned (they are few and small), so a second probe is free.

Bursts of seeks. A user dragging a seek bar fires many far requests in a second. The main run
restarts at most once per `RESTART_INTERVAL_SECONDS`: a start asked for sooner is deferred to
the end of the interval and made at the *latest* position asked for in between, so a burst
ends with one encoder at the last position, and encoder starts per second stay bounded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from ._timeline import Timeline

PROBE_SEGMENTS = 2  # libavformat's probe reads the first segment, sometimes the second
RESTART_INTERVAL_SECONDS = 0.5


@dataclass(slots=True)
class Playhead:
    """Where the player is: the one place the session's position lives.

    `position` is the last media segment requested; `furthest` the furthest requested since
    the last seek, which is what the throttle measures the encoder's lead against.
    """

    position: int = 0
    furthest: int = 0

    def request(self, index: int) -> None:
        self.position = index
        self.furthest = max(self.furthest, index)

    def seek(self, index: int) -> None:
        self.position = self.furthest = index


@dataclass(frozen=True, slots=True)
class RunView:
    """What policy needs to know of an encoder run."""

    start: int  # first segment index of the run
    head: int  # last segment the run finished (start - 1 before the first)
    alive: bool  # False once the process has ended
    stop: int | None = None  # exclusive end for a probe run; None: to the end of the file
    finished: bool = False  # ended by itself, everything made (to the end of the file)

    def will_make(self, index: int, gap_segments: int) -> bool:
        """Alive, and `index` is ahead of its head within reach (and before its stop)."""
        if not self.alive or index < self.start or index <= self.head:
            return False
        if self.stop is not None:
            return index < self.stop
        return index <= self.head + gap_segments


Action = Literal["serve", "wait", "start", "probe"]


def segment_action(
    index: int,
    *,
    ready: bool,
    main: RunView | None,
    probe: RunView | None,
    gap_segments: int,
    probe_segments: int = PROBE_SEGMENTS,
) -> Action:
    """For a request of segment `index`: serve it, wait for a run, start the main run at it,
    or start a probe run for it (see the module docstring)."""
    if ready:
        return "serve"
    if main is not None and main.will_make(index, gap_segments):
        return "wait"
    if probe is not None and probe.will_make(index, gap_segments):
        return "wait"
    if index < probe_segments and main is not None and (main.alive or main.finished):
        # A main run that finished the file (a fast encode of a start near the end, done
        # before the player's probe came) still says where the player is: probe beside it.
        return "probe"
    return "start"


def restart_delay(now: float, last_start: float | None, interval: float) -> float:
    """Seconds to wait before the main run may start again (0: now)."""
    if last_start is None:
        return 0.0
    return max(0.0, last_start + interval - now)


def throttle_action(
    ahead_seconds: float, *, paused: bool, limit: float
) -> Literal["pause", "resume", "keep"]:
    """Pause beyond `limit` seconds ahead of the furthest request; resume within half of it."""
    if not paused and ahead_seconds > limit:
        return "pause"
    if paused and ahead_seconds < limit / 2:
        return "resume"
    return "keep"


def seconds_ahead(timeline: Timeline, head: int, furthest_requested: int) -> float:
    """How far the encoder's output reaches beyond the start of the furthest requested segment."""
    if head < 0 or head < furthest_requested:
        return 0.0
    end = timeline[head].start + timeline[head].duration
    return end - timeline[max(furthest_requested, 0)].start


def prunable(
    ready: Iterable[int],
    timeline: Timeline,
    position: int,
    keep_behind: float,
    probe_segments: int = PROBE_SEGMENTS,
) -> list[int]:
    """Segments that end more than `keep_behind` seconds before the player's position (never
    the probe segments)."""
    cutoff = timeline[position].start - keep_behind
    return sorted(
        i
        for i in ready
        if i >= probe_segments and timeline[i].start + timeline[i].duration <= cutoff
    )
