"""Encoder policy rules, pure."""

from __future__ import annotations

import pytest

from hlstrio.streaming._policy import (
    PROBE_SEGMENTS,
    Playhead,
    RunView,
    prunable,
    restart_delay,
    seconds_ahead,
    segment_action,
    throttle_action,
)
from hlstrio.streaming._timeline import fixed_grid

GRID = fixed_grid(60.0, 2.0)  # 30 segments of 2 s


@pytest.mark.parametrize(
    ("index", "ready", "main", "probe", "expected"),
    [
        (5, True, None, None, "serve"),
        (5, True, RunView(10, 20, True), None, "serve"),
        (5, False, None, None, "start"),  # no encoder (idle-stopped or never started)
        (5, False, RunView(0, 3, False), None, "start"),  # the run ended
        (5, False, RunView(0, 3, True), None, "wait"),  # next up
        (7, False, RunView(0, 3, True), None, "wait"),  # within the gap of 4
        (8, False, RunView(0, 3, True), None, "start"),  # beyond the gap: seek
        (5, False, RunView(10, 9, True), None, "start"),  # behind the run's start
        (5, False, RunView(0, 8, True), None, "start"),  # passed (then pruned)
        (10, False, RunView(10, 9, True), None, "wait"),  # a fresh run at 10
        # A probe of the first segments while the main run is elsewhere: a probe run beside it.
        (0, False, RunView(45, 44, True), None, "probe"),
        (1, False, RunView(45, 50, True), None, "probe"),
        (1, False, RunView(45, 50, True), RunView(0, -1, True, PROBE_SEGMENTS), "wait"),
        (0, False, RunView(45, 50, True), RunView(1, 0, True, PROBE_SEGMENTS), "probe"),
        # The main run covers them itself (it started there): wait for it.
        (1, False, RunView(0, 0, True), None, "wait"),
        # No main run at all (idle): the main run starts there, nothing to protect.
        (0, False, None, None, "start"),
        (0, False, RunView(45, 50, False), None, "start"),
        # A main run that finished the file before the probe came: still where the player is
        # (once, under load, a probe restarted it at 0 and the seek after it restarted again).
        (0, False, RunView(45, 59, False, None, finished=True), None, "probe"),
        # A probe run never reaches beyond its stop.
        (2, False, RunView(45, 50, True), RunView(0, -1, True, PROBE_SEGMENTS), "start"),
        # Beyond the probe window, far from the main run: a real seek.
        (PROBE_SEGMENTS, False, RunView(45, 50, True), None, "start"),
    ],
)
def test_segment_action(
    index: int, ready: bool, main: RunView | None, probe: RunView | None, expected: str
) -> None:
    assert segment_action(index, ready=ready, main=main, probe=probe, gap_segments=4) == expected


def test_restart_delay_bounds_starts_per_interval() -> None:
    assert restart_delay(10.0, None, 0.5) == 0.0
    assert restart_delay(10.0, 9.0, 0.5) == 0.0
    assert restart_delay(10.0, 9.8, 0.5) == pytest.approx(0.3)
    assert restart_delay(10.0, 10.0, 0.5) == 0.5


def test_playhead_request_and_seek() -> None:
    playhead = Playhead(3, 3)
    playhead.request(5)
    playhead.request(4)
    assert (playhead.position, playhead.furthest) == (4, 5)
    playhead.seek(2)  # a seek back: the throttle measures from where the player went
    assert (playhead.position, playhead.furthest) == (2, 2)


@pytest.mark.parametrize(
    ("ahead", "paused", "expected"),
    [(10, False, "keep"), (61, False, "pause"), (61, True, "keep"), (40, True, "keep"),
     (29.9, True, "resume"), (0, True, "resume"), (60, False, "keep")],
)  # fmt: skip
def test_throttle_hysteresis(ahead: float, paused: bool, expected: str) -> None:
    assert throttle_action(ahead, paused=paused, limit=60) == expected


def test_seconds_ahead() -> None:
    assert seconds_ahead(GRID, head=9, furthest_requested=0) == 20.0
    assert seconds_ahead(GRID, head=9, furthest_requested=5) == 10.0
    assert seconds_ahead(GRID, head=3, furthest_requested=5) == 0.0  # behind the player
    assert seconds_ahead(GRID, head=-1, furthest_requested=0) == 0.0


def test_prunable_keeps_the_window_behind_the_player_and_the_probe_segments() -> None:
    ready = [0, 1, 2, 3, 4, 5, 6, 12]
    # Position 6 starts at 12 s; keep 4 s behind: segments ending at <= 8 s go, but the first
    # PROBE_SEGMENTS stay for the next player's probe.
    assert prunable(ready, GRID, position=6, keep_behind=4.0) == [2, 3]
    assert prunable(ready, GRID, position=6, keep_behind=100.0) == []
    assert prunable(ready, GRID, position=0, keep_behind=0.0) == []
