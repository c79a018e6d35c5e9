"""Session bookkeeping with no I/O: who has which session, and may they have another.

Every operation is O(1) dict/counter work and never calls into a session, so a segment request
costs the same with one session registered or ten thousand (Mydia's lookup walked every
session's GenServer). The registry does not start or stop anything: the manager does, and
keeps the registry in step.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar


class Registrable(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def user(self) -> str: ...
    @property
    def media_id(self) -> str: ...
    @property
    def transcodes(self) -> bool: ...


S = TypeVar("S", bound=Registrable)


class CapExceeded(Exception):
    """A cap is full; `cap` names it (max_sessions, max_sessions_per_user, max_transcodes)."""

    def __init__(self, cap: str, limit: int) -> None:
        super().__init__(cap, limit)
        self.cap = cap
        self.limit = limit

    def __str__(self) -> str:
        return f"{self.cap} reached ({self.limit})"


class SessionRegistry(Generic[S]):
    def __init__(self, *, max_sessions: int, max_per_user: int, max_transcodes: int) -> None:
        self.max_sessions = max_sessions
        self.max_per_user = max_per_user
        self.max_transcodes = max_transcodes
        self._by_id: dict[str, S] = {}
        self._by_key: dict[tuple[str, str], str] = {}
        self._per_user: Counter[str] = Counter()
        self._transcodes = 0

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[S]:
        return iter(list(self._by_id.values()))

    @property
    def transcodes(self) -> int:
        return self._transcodes

    def lookup(self, session_id: str) -> S | None:
        return self._by_id.get(session_id)

    def lookup_owned(self, session_id: str, user: str) -> S | None:
        """Another user's session is indistinguishable from a missing one."""
        session = self._by_id.get(session_id)
        return session if session is not None and session.user == user else None

    def find(self, user: str, media_id: str) -> S | None:
        session_id = self._by_key.get((user, media_id))
        return None if session_id is None else self._by_id.get(session_id)

    def with_media(self, media_id: str) -> list[S]:
        # O(sessions); only a library change uses it, never the segment path.
        return [s for s in self._by_id.values() if s.media_id == media_id]

    def count_for(self, user: str) -> int:
        return self._per_user[user]

    def owned_by(self, user: str) -> list[S]:
        # O(sessions); only the listing endpoint uses it, never the segment path.
        return [s for s in self._by_id.values() if s.user == user]

    def check_caps(self, user: str, *, transcodes: bool, replacing: S | None = None) -> None:
        """Raise CapExceeded if adding a session (after removing `replacing`) breaks a cap."""
        total = len(self._by_id)
        mine = self._per_user[user]
        encoders = self._transcodes
        if replacing is not None:
            total -= 1
            mine -= 1 if replacing.user == user else 0
            encoders -= 1 if replacing.transcodes else 0
        if total >= self.max_sessions:
            raise CapExceeded("max_sessions", self.max_sessions)
        if mine >= self.max_per_user:
            raise CapExceeded("max_sessions_per_user", self.max_per_user)
        if transcodes and encoders >= self.max_transcodes:
            raise CapExceeded("max_transcodes", self.max_transcodes)

    def add(self, session: S) -> None:
        """Register a session; it becomes the user's session for its media."""
        if session.id in self._by_id:
            raise KeyError(f"duplicate session id {session.id}")
        self.check_caps(session.user, transcodes=session.transcodes)
        key = (session.user, session.media_id)
        previous = self._by_key.get(key)
        if previous is not None and previous in self._by_id:
            raise KeyError(f"user already has session {previous} for {session.media_id}")
        self._by_id[session.id] = session
        self._by_key[key] = session.id
        self._per_user[session.user] += 1
        self._transcodes += 1 if session.transcodes else 0

    def remove(self, session_id: str) -> S | None:
        """Forget a session; idempotent: DELETE and the session's own cleanup both call it."""
        session = self._by_id.pop(session_id, None)
        if session is None:
            return None
        key = (session.user, session.media_id)
        if self._by_key.get(key) == session_id:
            del self._by_key[key]
        self._per_user[session.user] -= 1
        if self._per_user[session.user] <= 0:
            del self._per_user[session.user]
        self._transcodes -= 1 if session.transcodes else 0
        return session
