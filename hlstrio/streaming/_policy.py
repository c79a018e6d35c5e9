"""Encoder policy, pure: when to restart, pause, resume, and which segments to prune.

Kept apart from the process handling so each rule is a small function unit-tested without
ffmpeg, and the numbers it acts on (Jellyfin's 24 s seek gap, its 180 s throttle) are visible.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from ._timeline import Timeline


@dataclass(frozen=True, slots=True)
class EncoderView:
    """What policy needs to know of the current encoder run (None fields: no run)."""

    start: int  # first segment index of the run
    head: int  # last segment the run finished (start - 1 before the first)
    running: bool  # False once the process has ended


def segment_action(
    index: int, *, ready: bool, run: EncoderView | None, gap_segments: int
) -> Literal["serve", "wait", "start"]:
    """For a request of segment `index`: serve it, wait for the current run, or (re)start at it.

    A run that is alive and will reach `index` within `gap_segments` is waited for; anything
    the run has passed (pruned since), too far ahead, or with no live run starts an encoder at
    `index`.
    """
    if ready:
        return "serve"
    if run is None or not run.running:
        return "start"
    if index < run.start or index <= run.head or index > run.head + gap_segments:
        return "start"
    return "wait"


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
    ready: Iterable[int], timeline: Timeline, position: int, keep_behind: float
) -> list[int]:
    """Segments that end more than `keep_behind` seconds before the player's position."""
    cutoff = timeline[position].start - keep_behind
    return sorted(i for i in ready if timeline[i].start + timeline[i].duration <= cutoff)
