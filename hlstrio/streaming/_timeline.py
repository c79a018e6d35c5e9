"""Segment timelines, pure: where each segment starts and how long it is.

The playlist is complete before any segment exists, so the timeline has to be exact in
advance: a transcode cuts on a fixed grid (keyframes are forced there), a remux or a video copy
can only cut at the source's keyframes, so its boundaries are chosen among them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True, slots=True)
class Segment:
    index: int
    start: float  # seconds, source time
    duration: float
    # Keyframe-cut timelines only: the video pts (stream time base) that opens this segment and
    # the one that opens the next (or the end of the video).
    start_pts: int | None = None
    end_pts: int | None = None


@dataclass(frozen=True, slots=True)
class Timeline:
    segments: tuple[Segment, ...]

    def __len__(self) -> int:
        return len(self.segments)

    def __getitem__(self, index: int) -> Segment:
        return self.segments[index]

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.segments)

    @property
    def target_duration(self) -> int:
        # RFC 8216: every EXTINF rounded to the nearest integer must be <= the target.
        return max(1, math.ceil(max((s.duration for s in self.segments), default=1.0) - 1e-3))

    def index_at(self, seconds: float) -> int:
        """The segment holding `seconds` of source time (clamped to the timeline)."""
        for segment in self.segments:
            if seconds < segment.start + segment.duration:
                return segment.index
        return len(self.segments) - 1


def fixed_grid(
    duration: float, seconds: float, frame_duration: float = 0.0, origin: float = 0.0
) -> Timeline:
    """Segments of `seconds` each, as a transcode with forced keyframes cuts them.

    A segment exists only if some frame starts in it, so the count comes from the start of
    the last frame, not from the container duration. Times are source times: they count from
    `origin`, the container's start time, like a keyframe timeline's.
    """
    if duration <= 0:
        raise ValueError("duration must be > 0")
    if frame_duration > 0:
        last_frame_start = max(0.0, duration - frame_duration)
        count = math.floor(last_frame_start / seconds + 1e-9) + 1
    else:
        count = max(1, math.ceil(duration / seconds - 1e-9))
    segments = []
    for i in range(count):
        start = i * seconds
        end = min(duration, start + seconds)
        segments.append(Segment(i, origin + start, end - start))
    return Timeline(tuple(segments))


def keyframe_timeline(
    keyframe_pts: Sequence[int], time_base: Fraction, end_pts: int, target_seconds: float
) -> Timeline:
    """Group keyframes into segments whose lengths come nearest to `target_seconds`.

    At each step the boundary is the keyframe whose distance from the segment start is nearest
    the target, preferring the later one on ties; a last stretch shorter than half the target
    is merged into the segment before it so the stream does not end on a sliver.
    """
    if not keyframe_pts:
        raise ValueError("no keyframes")
    target = Fraction(target_seconds)
    # The end of the video is a stop too (never a boundary), so the tail is cut like the rest.
    end = len(keyframe_pts)
    times = [p * time_base for p in keyframe_pts] + [end_pts * time_base]
    boundaries = [0]  # indexes into keyframe_pts
    candidate: int | None = None

    def cut(i: int) -> None:
        if i != end:
            boundaries.append(i)

    for i in range(1, len(times)):
        elapsed = times[i] - times[boundaries[-1]]
        if elapsed < target:
            candidate = i if i != end else candidate
            continue
        if candidate is not None:
            short = times[candidate] - times[boundaries[-1]]
            if target - short < elapsed - target and short >= target / 2:
                boundaries.append(candidate)
                # Re-evaluate this keyframe against the new segment start.
                candidate = i if times[i] - times[candidate] < target and i != end else None
                if candidate is None:
                    cut(i)
                continue
        cut(i)
        candidate = None
    end_time = end_pts * time_base
    if len(boundaries) > 1 and end_time - times[boundaries[-1]] < target / 2:
        boundaries.pop()
    segments = []
    for n, b in enumerate(boundaries):
        start_pts = keyframe_pts[b]
        stop_pts = keyframe_pts[boundaries[n + 1]] if n + 1 < len(boundaries) else end_pts
        segments.append(
            Segment(
                index=n,
                start=float(start_pts * time_base),
                duration=float((stop_pts - start_pts) * time_base),
                start_pts=start_pts,
                end_pts=stop_pts,
            )
        )
    return Timeline(tuple(segments))
