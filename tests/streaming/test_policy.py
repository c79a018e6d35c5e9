"""Encoder policy rules, pure."""

from __future__ import annotations

import pytest

from hlstrio.streaming._policy import (
    EncoderView,
    prunable,
    seconds_ahead,
    segment_action,
    throttle_action,
)
from hlstrio.streaming._timeline import fixed_grid

GRID = fixed_grid(60.0, 2.0)  # 30 segments of 2 s


@pytest.mark.parametrize(
    ("index", "ready", "run", "expected"),
    [
        (5, True, None, "serve"),
        (5, True, EncoderView(10, 20, True), "serve"),
        (5, False, None, "start"),  # no encoder (idle-stopped or never started)
        (5, False, EncoderView(0, 3, False), "start"),  # the run ended
        (5, False, EncoderView(0, 3, True), "wait"),  # next up
        (7, False, EncoderView(0, 3, True), "wait"),  # within the gap of 4
        (8, False, EncoderView(0, 3, True), "start"),  # beyond the gap: seek
        (2, False, EncoderView(5, 8, True), "start"),  # behind the run's start
        (2, False, EncoderView(0, 8, True), "start"),  # passed (then pruned)
        (10, False, EncoderView(10, 9, True), "wait"),  # a fresh run at 10
    ],
)
def test_segment_action(index: int, ready: bool, run: EncoderView | None, expected: str) -> None:
    assert segment_action(index, ready=ready, run=run, gap_segments=4) == expected


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


def test_prunable_keeps_the_window_behind_the_player() -> None:
    ready = [0, 1, 2, 3, 4, 5, 6, 12]
    # Position 6 starts at 12 s; keep 4 s behind: segments ending at <= 8 s go.
    assert prunable(ready, GRID, position=6, keep_behind=4.0) == [0, 1, 2, 3]
    assert prunable(ready, GRID, position=6, keep_behind=100.0) == []
    assert prunable(ready, GRID, position=0, keep_behind=0.0) == []
