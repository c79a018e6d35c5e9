"""Session and encoder-run lifecycles, pure: one enum and one transition table each.

Like h11's state machines, every transition that can happen is a row in a table, so what a
session does when, say, an encoder fails while it is idle is read off one place instead of
being spread over flags (`_idle`, `_closed`, `failure`, `running`, `paused`) that have to be
kept consistent by hand. A (state, event) pair that is not in a table is a bug in the caller
and raises `LifecycleError`; pairs that must be tolerated (a segment that closes just after the
encoder was stopped for idleness) are listed explicitly as self-transitions.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping


class LifecycleError(RuntimeError):
    """An event that the current state does not allow: a programming error, not bad input."""


class SessionState(enum.Enum):
    STARTING = "starting"  # a transcode whose encoder has not made a segment yet
    RUNNING = "running"
    IDLE = "idle"  # nobody asked for `idle_timeout`: encoder stopped, cut cache dropped
    FAILED = "failed"  # the encoder gave up after its retries; requests get a 502
    GONE = "gone"  # the media file was removed from the library; requests get a 410
    ENDED = "ended"  # cancelled and cleaned up; the id is no longer valid


class SessionEvent(enum.Enum):
    SEGMENT_READY = enum.auto()
    REQUEST = enum.auto()  # a client asked for a playlist or a segment
    IDLE_TIMEOUT = enum.auto()
    ENCODER_FAILED = enum.auto()
    MEDIA_REMOVED = enum.auto()
    CLOSE = enum.auto()


_S, _E = SessionState, SessionEvent

SESSION_TRANSITIONS: Mapping[tuple[SessionState, SessionEvent], SessionState] = {
    (_S.STARTING, _E.SEGMENT_READY): _S.RUNNING,
    (_S.STARTING, _E.REQUEST): _S.STARTING,
    (_S.STARTING, _E.IDLE_TIMEOUT): _S.IDLE,
    (_S.STARTING, _E.ENCODER_FAILED): _S.FAILED,
    (_S.RUNNING, _E.SEGMENT_READY): _S.RUNNING,
    (_S.RUNNING, _E.REQUEST): _S.RUNNING,
    (_S.RUNNING, _E.IDLE_TIMEOUT): _S.IDLE,
    (_S.RUNNING, _E.ENCODER_FAILED): _S.FAILED,
    # A run may close a segment in the moment after it was told to stop.
    (_S.IDLE, _E.SEGMENT_READY): _S.IDLE,
    (_S.IDLE, _E.REQUEST): _S.RUNNING,
    (_S.IDLE, _E.IDLE_TIMEOUT): _S.IDLE,
    (_S.IDLE, _E.ENCODER_FAILED): _S.FAILED,
    # Failed and gone are sticky until the session ends; late events change nothing.
    (_S.FAILED, _E.SEGMENT_READY): _S.FAILED,
    (_S.FAILED, _E.REQUEST): _S.FAILED,
    (_S.FAILED, _E.IDLE_TIMEOUT): _S.FAILED,
    (_S.FAILED, _E.ENCODER_FAILED): _S.FAILED,
    **{(_S.GONE, event): _S.GONE for event in _E if event is not _E.CLOSE},
    **{(state, _E.MEDIA_REMOVED): _S.GONE for state in (_S.STARTING, _S.RUNNING, _S.IDLE)},
    (_S.FAILED, _E.MEDIA_REMOVED): _S.GONE,
    **{(state, _E.CLOSE): _S.ENDED for state in _S},
    # Cleanup of an ended session may still hear from its encoder: ignored.
    **{(_S.ENDED, event): _S.ENDED for event in _E},
}


class SessionLifecycle:
    """The one place a session's state lives; `failure` says why it is FAILED or GONE."""

    __slots__ = ("failure", "state")

    def __init__(self, initial: SessionState) -> None:
        self.state = initial
        self.failure: str | None = None

    def handle(self, event: SessionEvent, detail: str | None = None) -> SessionState:
        try:
            new = SESSION_TRANSITIONS[(self.state, event)]
        except KeyError:
            raise LifecycleError(
                f"session: {event.name} is not allowed in {self.state.name}"
            ) from None
        if new is not self.state and new in (SessionState.FAILED, SessionState.GONE):
            self.failure = detail
        self.state = new
        return new


class RunState(enum.Enum):
    """One ffmpeg process of a transcode (a "run")."""

    RUNNING = "running"
    PAUSED = "paused"  # SIGSTOPped by the throttle
    FINISHED = "finished"  # exited 0: made everything it was asked for
    FAILED = "failed"  # exited non-zero
    STOPPED = "stopped"  # cancelled: seek elsewhere, idle, session end

    @property
    def alive(self) -> bool:
        return self in (RunState.RUNNING, RunState.PAUSED)


class RunEvent(enum.Enum):
    PAUSE = enum.auto()
    RESUME = enum.auto()
    EXITED_OK = enum.auto()
    EXITED_ERROR = enum.auto()
    CANCELLED = enum.auto()


_R, _RE = RunState, RunEvent

RUN_TRANSITIONS: Mapping[tuple[RunState, RunEvent], RunState] = {
    (_R.RUNNING, _RE.PAUSE): _R.PAUSED,
    (_R.PAUSED, _RE.RESUME): _R.RUNNING,
    **{(state, _RE.EXITED_OK): _R.FINISHED for state in (_R.RUNNING, _R.PAUSED)},
    **{(state, _RE.EXITED_ERROR): _R.FAILED for state in (_R.RUNNING, _R.PAUSED)},
    **{(state, _RE.CANCELLED): _R.STOPPED for state in (_R.RUNNING, _R.PAUSED)},
}


def run_transition(state: RunState, event: RunEvent) -> RunState:
    try:
        return RUN_TRANSITIONS[(state, event)]
    except KeyError:
        raise LifecycleError(f"encoder run: {event.name} is not allowed in {state.name}") from None
