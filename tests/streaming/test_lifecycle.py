"""The session and encoder-run state machines: every transition is a row of one table."""

from __future__ import annotations

import pytest

from hlstrio.streaming._lifecycle import (
    RUN_TRANSITIONS,
    SESSION_TRANSITIONS,
    LifecycleError,
    RunEvent,
    RunState,
    SessionEvent,
    SessionLifecycle,
    SessionState,
    run_transition,
)

S, E = SessionState, SessionEvent


def test_every_session_state_and_event_has_a_row() -> None:
    # The table is total: whatever happens in whatever state has a defined answer, so a late
    # event (a segment closing after idle, an encoder dying after close) can never crash.
    for state in S:
        for event in E:
            assert (state, event) in SESSION_TRANSITIONS, (state, event)


@pytest.mark.parametrize(
    ("events", "final"),
    [
        ([E.SEGMENT_READY], S.RUNNING),
        ([E.IDLE_TIMEOUT, E.REQUEST], S.RUNNING),
        ([E.SEGMENT_READY, E.IDLE_TIMEOUT, E.SEGMENT_READY], S.IDLE),
        ([E.ENCODER_FAILED, E.REQUEST, E.SEGMENT_READY, E.IDLE_TIMEOUT], S.FAILED),
        ([E.MEDIA_REMOVED, E.REQUEST, E.SEGMENT_READY], S.GONE),
        ([E.ENCODER_FAILED, E.MEDIA_REMOVED], S.GONE),
        ([E.CLOSE, E.REQUEST, E.ENCODER_FAILED, E.MEDIA_REMOVED], S.ENDED),
    ],
)
def test_session_paths(events: list[SessionEvent], final: SessionState) -> None:
    lifecycle = SessionLifecycle(S.STARTING)
    for event in events:
        lifecycle.handle(event, "why")
    assert lifecycle.state is final


def test_failure_reason_is_kept_from_the_transition_that_failed() -> None:
    lifecycle = SessionLifecycle(S.RUNNING)
    lifecycle.handle(E.ENCODER_FAILED, "ffmpeg exited with status 1")
    lifecycle.handle(E.ENCODER_FAILED, "a later one")  # sticky: the first cause stays
    assert lifecycle.failure == "ffmpeg exited with status 1"
    lifecycle.handle(E.MEDIA_REMOVED, "deleted")
    assert (lifecycle.state, lifecycle.failure) == (S.GONE, "deleted")


def test_remux_session_never_starts_or_fails_on_its_own() -> None:
    # A remux starts RUNNING; it only leaves RUNNING by idleness, removal or close.
    lifecycle = SessionLifecycle(S.RUNNING)
    lifecycle.handle(E.REQUEST)
    assert lifecycle.state is S.RUNNING


def test_run_transitions() -> None:
    state = RunState.RUNNING
    state = run_transition(state, RunEvent.PAUSE)
    assert state is RunState.PAUSED and state.alive
    state = run_transition(state, RunEvent.CANCELLED)
    assert state is RunState.STOPPED and not state.alive
    with pytest.raises(LifecycleError):
        run_transition(state, RunEvent.RESUME)  # a dead run cannot be continued
    with pytest.raises(LifecycleError):
        run_transition(RunState.RUNNING, RunEvent.RESUME)  # only a paused one can
    assert {s for s, _ in RUN_TRANSITIONS} == {RunState.RUNNING, RunState.PAUSED}
