"""Segment timelines: the fixed grid of a transcode and the keyframe cuts of a remux."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hlstrio.streaming import Segment, Timeline, fixed_grid, keyframe_timeline

TB_MP4 = Fraction(1, 12800)  # mp4 at 25 fps: 512 ticks a frame
TB_TS = Fraction(1, 90000)  # MPEG-TS


def pts(seconds: float | Fraction, time_base: Fraction = TB_TS) -> int:
    exact = Fraction(str(seconds)) if isinstance(seconds, float) else Fraction(seconds)
    value = exact / time_base
    assert value.denominator == 1, "test pts must be exact"
    return int(value)


def starts(timeline: Timeline) -> list[float]:
    return [s.start for s in timeline.segments]


def durations(timeline: Timeline) -> list[float]:
    return [s.duration for s in timeline.segments]


def check_keyframe_invariants(
    timeline: Timeline, keyframes: list[int], time_base: Fraction, end_pts: int
) -> None:
    segs = timeline.segments
    assert len(segs) >= 1
    assert [s.index for s in segs] == list(range(len(segs)))
    assert segs[0].start_pts == keyframes[0]
    assert segs[-1].end_pts == end_pts
    kf = set(keyframes)
    for a, b in itertools.pairwise(segs):
        assert a.end_pts == b.start_pts
    for s in segs:
        assert s.start_pts in kf
        assert s.start_pts is not None and s.end_pts is not None
        assert s.end_pts > s.start_pts
        assert s.start == float(s.start_pts * time_base)
        assert s.duration == float((s.end_pts - s.start_pts) * time_base)
    assert timeline.duration == pytest.approx(float((end_pts - keyframes[0]) * time_base))


# --- fixed grid --------------------------------------------------------------------------------


def test_fixed_grid_exact_multiple_at_24fps() -> None:
    t = fixed_grid(12.0, 6.0, 1 / 24)
    assert len(t) == 2
    assert starts(t) == [0.0, 6.0]
    assert durations(t) == [6.0, 6.0]
    assert t.duration == 12.0
    assert t.target_duration == 6
    assert all(s.start_pts is None and s.end_pts is None for s in t.segments)


def test_fixed_grid_last_frame_on_a_boundary_opens_a_segment() -> None:
    # 301 frames at 25 fps: the last one starts at exactly 12.0 s.
    t = fixed_grid(12.04, 6.0, 1 / 25)
    assert len(t) == 3
    assert starts(t) == [0.0, 6.0, 12.0]
    assert durations(t)[:2] == [6.0, 6.0]
    assert durations(t)[2] == pytest.approx(0.04)
    assert t.duration == pytest.approx(12.04)
    assert t.target_duration == 6


def test_fixed_grid_last_frame_just_before_a_boundary() -> None:
    # 300 frames at 25 fps: the last starts at 11.96 s, inside segment 1.
    t = fixed_grid(12.0, 6.0, 1 / 25)
    assert len(t) == 2
    assert durations(t) == [6.0, 6.0]


def test_fixed_grid_partial_last_segment() -> None:
    t = fixed_grid(6.5, 6.0)
    assert len(t) == 2
    assert starts(t) == [0.0, 6.0]
    assert durations(t) == [6.0, 0.5]
    assert t.duration == 6.5
    assert t.target_duration == 6
    t = fixed_grid(6.5, 6.0, 1 / 30)
    assert len(t) == 2
    assert durations(t) == [6.0, 0.5]


def test_fixed_grid_shorter_than_one_segment() -> None:
    t = fixed_grid(3.0, 6.0, 1 / 25)
    assert len(t) == 1
    assert t[0] == Segment(0, 0.0, 3.0)
    assert t.target_duration == 3
    t = fixed_grid(0.2, 6.0)
    assert len(t) == 1
    assert t.target_duration == 1  # never 0


def test_fixed_grid_single_frame_longer_than_video() -> None:
    t = fixed_grid(0.01, 6.0, 1 / 24)
    assert len(t) == 1
    assert t[0].duration == 0.01


@pytest.mark.parametrize(
    ("duration", "seconds", "fps", "count"),
    [
        (60.0, 6.0, 25, 10),
        (60.04, 6.0, 25, 11),
        (59.0, 6.0, 25, 10),
        (10.0, 2.0, 30, 5),
        (10.0 + 1 / 30, 2.0, 30, 6),
        (5.0, 10.0, 24, 1),
        (3600.0, 6.0, 24, 600),
    ],
)
def test_fixed_grid_counts(duration: float, seconds: float, fps: int, count: int) -> None:
    t = fixed_grid(duration, seconds, 1 / fps)
    assert len(t) == count
    assert all(d == seconds for d in durations(t)[:-1])
    assert 0 < t[-1].duration <= seconds
    assert t.duration == pytest.approx(duration)
    assert [s.index for s in t.segments] == list(range(count))


@pytest.mark.parametrize(
    ("duration", "seconds", "fps", "count"),
    [
        (8.04, 2.0, 25, 5),  # frame 200 starts at exactly 8.0 s
        (8.04, 4.0, 25, 3),
        (2.0 + 1 / 24, 2.0, 24, 2),  # frame 48 starts at exactly 2.0 s
        (32.0 + 1 / 24, 4.0, 24, 9),
        (2.0 + 1 / 30, 2.0, 30, 2),
    ],
)
def test_fixed_grid_last_frame_on_boundary_despite_float_rounding(
    duration: float, seconds: float, fps: int, count: int
) -> None:
    # duration - 1/fps lands a hair below the boundary in floating point; the frame still
    # starts on it (ffmpeg forces a keyframe there and opens a segment), so the playlist
    # must list that segment and the durations must add up to the whole video.
    t = fixed_grid(duration, seconds, 1 / fps)
    assert len(t) == count
    assert t.duration == pytest.approx(duration)


def test_fixed_grid_without_frame_duration_has_no_empty_segment() -> None:
    # Audio-only media (no fps) of exactly two segments: there is nothing after 12.0 s, so a
    # third, zero-length segment would be listed that the encoder never produces.
    t = fixed_grid(12.0, 6.0)
    assert durations(t) == [6.0, 6.0]
    t = fixed_grid(18.0, 6.0, 0.0)
    assert len(t) == 3
    assert all(d > 0 for d in durations(t))


@pytest.mark.parametrize("duration", [0.0, -1.0])
def test_fixed_grid_rejects_empty_duration(duration: float) -> None:
    with pytest.raises(ValueError, match="duration"):
        fixed_grid(duration, 6.0, 1 / 25)


def test_fixed_grid_index_at() -> None:
    t = fixed_grid(12.04, 6.0, 1 / 25)
    assert t.index_at(0.0) == 0
    assert t.index_at(5.999) == 0
    assert t.index_at(6.0) == 1
    assert t.index_at(11.999) == 1
    assert t.index_at(12.0) == 2
    assert t.index_at(12.04) == 2  # the very end clamps to the last segment
    assert t.index_at(1e9) == 2
    assert t.index_at(-5.0) == 0


@settings(max_examples=300, deadline=None, database=None)
@example(frames=201, fps=25, seconds=2.0)  # last frame at 8.0 s, computed as 7.999999999999999
@given(
    frames=st.integers(min_value=1, max_value=20_000),
    fps=st.sampled_from([24, 25, 30, 50, 60]),
    seconds=st.sampled_from([1.0, 2.0, 4.0, 6.0, 10.0]),
)
def test_fixed_grid_property(frames: int, fps: int, seconds: float) -> None:
    duration = frames / fps
    t = fixed_grid(duration, seconds, 1 / fps)
    # One segment per grid cell in which some frame starts (exact arithmetic).
    last_frame_start = Fraction(frames - 1, fps)
    assert len(t) == math.floor(last_frame_start / Fraction(seconds)) + 1
    assert [s.index for s in t.segments] == list(range(len(t)))
    for i, s in enumerate(t.segments):
        assert s.start == i * seconds
    assert all(d == seconds for d in durations(t)[:-1])
    assert 0 < t[-1].duration <= seconds
    assert t.duration == pytest.approx(duration)
    assert t.target_duration == max(1, math.ceil(max(durations(t)) - 1e-3))
    assert t.target_duration >= max(math.floor(d + 0.5) for d in durations(t))


# --- target duration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lengths", "target"),
    [
        ([6.0, 6.0], 6),
        ([6.0004, 2.0], 6),  # rounds to 6: a target of 7 would be needlessly large
        ([6.4], 7),
        ([6.5], 7),
        ([5.2, 9.9, 3.0], 10),
        ([0.3], 1),
    ],
)
def test_target_duration(lengths: list[float], target: int) -> None:
    segs = []
    start = 0.0
    for i, d in enumerate(lengths):
        segs.append(Segment(i, start, d))
        start += d
    t = Timeline(tuple(segs))
    assert t.target_duration == target
    assert all(math.floor(d + 0.5) <= t.target_duration for d in lengths)


# --- keyframe timeline -------------------------------------------------------------------------


def test_regular_two_second_gops_make_six_second_segments() -> None:
    kf = [pts(2 * k, TB_MP4) for k in range(30)]
    end = pts(60, TB_MP4)
    t = keyframe_timeline(kf, TB_MP4, end, 6.0)
    assert len(t) == 10
    assert durations(t) == [6.0] * 10
    assert starts(t) == [6.0 * i for i in range(10)]
    assert [s.start_pts for s in t.segments] == [pts(6 * i, TB_MP4) for i in range(10)]
    assert t.target_duration == 6
    check_keyframe_invariants(t, kf, TB_MP4, end)


def test_irregular_keyframes_nearest_to_target() -> None:
    seconds = [0, 5.5, 8, 11, 12.5, 18, 19, 25]
    kf = [pts(s) for s in seconds]
    end = pts(27)
    t = keyframe_timeline(kf, TB_TS, end, 6.0)
    # 5.5 (0.5 short) beats 8 (2 over); from 5.5: 11 (0.5 short) beats 12.5 (1 over);
    # from 11: 18 (1 over) beats 12.5 (4.5 short); from 18: 25 (1 over) beats 19, but
    # 25 -> 27 is a 2 s tail, shorter than half the target, so it is merged.
    assert starts(t) == [0.0, 5.5, 11.0, 18.0]
    assert durations(t) == [5.5, 5.5, 7.0, 9.0]
    assert t.target_duration == 9
    check_keyframe_invariants(t, kf, TB_TS, end)


def test_tie_prefers_the_later_keyframe() -> None:
    # From 0: 5 and 7 are both 1 s from the target of 6.
    kf = [pts(s) for s in (0, 5, 7, 13, 20)]
    end = pts(26)
    t = keyframe_timeline(kf, TB_TS, end, 6.0)
    assert starts(t) == [0.0, 7.0, 13.0, 20.0]
    assert durations(t) == [7.0, 6.0, 7.0, 6.0]
    check_keyframe_invariants(t, kf, TB_TS, end)


def test_nearer_earlier_keyframe_wins() -> None:
    kf = [pts(s) for s in (0, 5.9, 6.5, 12)]
    end = pts(18)
    t = keyframe_timeline(kf, TB_TS, end, 6.0)
    # 5.9 is 0.1 short, 6.5 is 0.5 over -> 5.9; then from 5.9: 12 (6.1) beats 6.5 (0.6).
    assert starts(t) == [0.0, 5.9, 12.0]
    check_keyframe_invariants(t, kf, TB_TS, end)


def test_earlier_keyframe_shorter_than_half_target_is_not_used() -> None:
    # 2.9 s is nearer 6 than 9.2 s is, but a 2.9 s segment would be under half the target.
    kf = [pts(s) for s in (0, 2.9, 9.2)]
    end = pts(15)
    t = keyframe_timeline(kf, TB_TS, end, 6.0)
    assert starts(t) == [0.0, 9.2]
    assert durations(t) == [9.2, pytest.approx(5.8)]
    check_keyframe_invariants(t, kf, TB_TS, end)


def test_sparse_keyframes_give_gop_length_segments() -> None:
    kf = [pts(10 * k, TB_MP4) for k in range(6)]
    end = pts(60, TB_MP4)
    t = keyframe_timeline(kf, TB_MP4, end, 6.0)
    assert durations(t) == [10.0] * 6
    assert t.target_duration == 10
    check_keyframe_invariants(t, kf, TB_MP4, end)


def test_short_tail_is_merged_into_previous_segment() -> None:
    kf = [pts(2 * k) for k in range(7)]  # 0, 2, ..., 12
    end = pts(14)
    t = keyframe_timeline(kf, TB_TS, end, 6.0)
    assert starts(t) == [0.0, 6.0]
    assert durations(t) == [6.0, 8.0]
    assert t[-1].start_pts == pts(6)
    assert t[-1].end_pts == end
    check_keyframe_invariants(t, kf, TB_TS, end)


def test_tail_of_exactly_half_target_is_kept() -> None:
    kf = [pts(2 * k) for k in range(7)]
    end = pts(15)
    t = keyframe_timeline(kf, TB_TS, end, 6.0)
    assert starts(t) == [0.0, 6.0, 12.0]
    assert durations(t) == [6.0, 6.0, 3.0]
    check_keyframe_invariants(t, kf, TB_TS, end)


def test_long_tail_is_cut_at_its_keyframes() -> None:
    # Keyframes every 2 s up to 58 s, then one 8 s GOP to the end at 66 s. From the boundary
    # at 54 s the keyframe at 58 s (2 s short of the target) is nearer than the end of the
    # video (6 s over), so the end must count as the next candidate: [54, 58) + [58, 66),
    # not one 12 s segment that also inflates EXT-X-TARGETDURATION.
    kf = [pts(2 * k) for k in range(30)]  # 0, 2, ..., 58
    end = pts(66)
    t = keyframe_timeline(kf, TB_TS, end, 6.0)
    check_keyframe_invariants(t, kf, TB_TS, end)
    assert starts(t)[-2:] == [54.0, 58.0]
    assert durations(t)[-2:] == [4.0, 8.0]
    assert t.target_duration == 8


def test_tail_ending_nearer_the_target_than_its_keyframes_stays_whole() -> None:
    # Same keyframes, end at 60.5 s: the end (6.5 s from 54) beats 58 s (4 s), no extra cut.
    kf = [pts(2 * k) for k in range(30)]
    end = pts(60.5)
    t = keyframe_timeline(kf, TB_TS, end, 6.0)
    check_keyframe_invariants(t, kf, TB_TS, end)
    assert starts(t)[-1] == 54.0
    assert durations(t)[-1] == 6.5


def test_single_keyframe_is_one_segment() -> None:
    kf = [pts(0, TB_MP4)]
    end = pts(42, TB_MP4)
    t = keyframe_timeline(kf, TB_MP4, end, 6.0)
    assert len(t) == 1
    assert t[0] == Segment(0, 0.0, 42.0, 0, end)
    assert t.target_duration == 42


def test_video_shorter_than_half_target() -> None:
    kf = [pts(0), pts(1)]
    end = pts(2)
    t = keyframe_timeline(kf, TB_TS, end, 6.0)
    assert len(t) == 1
    assert t[0].duration == 2.0
    check_keyframe_invariants(t, kf, TB_TS, end)


def test_nonzero_first_keyframe() -> None:
    # MPEG-TS sources usually start at 1.4 s (126000 ticks); the first segment starts there.
    offset = 126_000
    kf = [offset + pts(2 * k) for k in range(10)]
    end = offset + pts(20)
    t = keyframe_timeline(kf, TB_TS, end, 6.0)
    assert t[0].start == 1.4
    assert t[0].start_pts == offset
    assert starts(t) == [pytest.approx(1.4 + x) for x in (0, 6, 12)]
    assert durations(t) == [pytest.approx(x) for x in (6.0, 6.0, 8.0)]
    assert t.duration == pytest.approx(20.0)
    check_keyframe_invariants(t, kf, TB_TS, end)
    assert t.index_at(0.0) == 0
    assert t.index_at(7.39) == 0
    assert t.index_at(7.4 + 1e-9) == 1
    assert t.index_at(13.4 + 1e-9) == 2
    assert t.index_at(99.0) == 2


def test_ntsc_time_base() -> None:
    tb = Fraction(1001, 30000)  # one tick per frame at 29.97 fps
    kf = list(range(0, 3000, 60))  # a keyframe every 60 frames (~2.002 s)
    end = 3000
    t = keyframe_timeline(kf, tb, end, 6.0)
    check_keyframe_invariants(t, kf, tb, end)
    # 180 frames = 6.006 s is the nearest to 6 s.
    assert all(s.end_pts - s.start_pts == 180 for s in t.segments[:-1])  # type: ignore[operator]


def test_keyframe_index_at_boundaries() -> None:
    kf = [pts(2 * k, TB_MP4) for k in range(30)]
    t = keyframe_timeline(kf, TB_MP4, pts(60, TB_MP4), 6.0)
    assert t.index_at(0.0) == 0
    assert t.index_at(5.99) == 0
    assert t.index_at(6.0) == 1
    assert t.index_at(30.0) == 5
    assert t.index_at(59.99) == 9
    assert t.index_at(60.0) == 9
    for s in t.segments:
        assert t.index_at(s.start) == s.index
        assert t.index_at(s.start + s.duration / 2) == s.index


def test_no_keyframes_is_an_error() -> None:
    with pytest.raises(ValueError, match="no keyframes"):
        keyframe_timeline([], TB_TS, 1000, 6.0)


@pytest.mark.parametrize("target", [2.0, 4.0, 6.0, 10.0])
def test_durations_sum_to_video_length(target: float) -> None:
    kf = [pts(s) for s in (0, 1.5, 3.25, 7, 8, 13.5, 14, 21, 22.5, 30, 31, 39.5)]
    end = pts(44)
    t = keyframe_timeline(kf, TB_TS, end, target)
    check_keyframe_invariants(t, kf, TB_TS, end)
    assert t.duration == pytest.approx(44.0)


# --- property ----------------------------------------------------------------------------------


@st.composite
def keyframe_cases(draw: st.DrawFn) -> tuple[list[int], Fraction, int, float]:
    time_base = draw(st.sampled_from([TB_MP4, TB_TS, Fraction(1, 1000), Fraction(1001, 30000)]))
    ticks_per_second = int(1 / time_base) or 1
    first = draw(st.integers(min_value=0, max_value=10 * ticks_per_second))
    gaps = draw(st.lists(st.integers(min_value=1, max_value=15 * ticks_per_second), max_size=60))
    keyframes = [first]
    for gap in gaps:
        keyframes.append(keyframes[-1] + gap)
    end = keyframes[-1] + draw(st.integers(min_value=1, max_value=15 * ticks_per_second))
    target = draw(st.sampled_from([1.0, 2.0, 4.0, 6.0, 10.0]))
    return keyframes, time_base, end, target


@settings(max_examples=400, deadline=None, database=None)
@given(keyframe_cases())
def test_keyframe_timeline_properties(case: tuple[list[int], Fraction, int, float]) -> None:
    keyframes, time_base, end, target_seconds = case
    t = keyframe_timeline(keyframes, time_base, end, target_seconds)
    check_keyframe_invariants(t, keyframes, time_base, end)
    target = Fraction(target_seconds)
    segs = t.segments
    lengths = [(s.end_pts - s.start_pts) * time_base for s in segs]  # type: ignore[operator]
    total = (end - keyframes[0]) * time_base
    assert sum(lengths) == total
    # No sliver: a segment shorter than half the target only when it is the whole video.
    if len(segs) > 1:
        assert all(length >= target / 2 for length in lengths)
    else:
        assert lengths[0] == total
    # Every cut (but the end of the video) is the keyframe nearest the target among those
    # that leave at least half a target; ties go to the later one.
    times = {k: k * time_base for k in keyframes}
    for seg in segs[:-1]:
        assert seg.start_pts is not None and seg.end_pts is not None
        begin = times[seg.start_pts]
        eligible = [k for k in keyframes if times[k] - begin >= target / 2]
        best = min(eligible, key=lambda k: (abs(times[k] - begin - target), -k))
        assert seg.end_pts == best
    # The playlist's target duration covers every segment.
    assert all(math.floor(float(length) + 0.5) <= t.target_duration for length in lengths)
