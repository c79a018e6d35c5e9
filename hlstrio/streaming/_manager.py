"""SessionManager: owns the nursery every session runs in, and the registry that finds them.

The nursery is opened around the HTTP server, not per request: a request handler only looks a
session up, and a session outlives the request that created it.
"""

from __future__ import annotations

import logging
import secrets

import trio

from .._config import Settings
from ..media import MediaItem
from ._decision import decide
from ._registry import SessionRegistry
from ._session import Session, SessionParams

log = logging.getLogger("hlstrio.manager")


def new_session_id() -> str:
    """192 random bits, URL-safe: the id is the credential of the HLS capability URLs."""
    return secrets.token_urlsafe(24)


class SessionManager:
    def __init__(self, settings: Settings, ffmpeg: str) -> None:
        self.settings = settings
        self.ffmpeg = ffmpeg
        self.registry: SessionRegistry[Session] = SessionRegistry(
            max_sessions=settings.max_sessions,
            max_per_user=settings.max_sessions_per_user,
            max_transcodes=settings.max_transcodes,
        )
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold the session nursery open until cancelled; cancelling it ends every session."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None

    def lookup(self, session_id: str) -> Session | None:
        return self.registry.lookup(session_id)

    async def create(
        self, user: str, item: MediaItem, params: SessionParams
    ) -> tuple[Session, bool]:
        """Return (session, created). Same params reuse; other params replace the old session.

        Caps are checked and the registry updated with no await in between, so two concurrent
        creates cannot both take the last slot.
        """
        if self._nursery is None:
            raise RuntimeError("session manager is not running")
        existing = self.registry.find(user, item.id)
        if existing is not None and existing.params == params and existing.state != "failed":
            existing.touch()
            return existing, False
        plan = decide(item.info, params.capabilities, params.mode, params.audio)
        self.registry.check_caps(user, transcodes=plan.transcodes, replacing=existing)
        if existing is not None:
            self.registry.remove(existing.id)
            existing.close()
        session = Session(
            session_id=new_session_id(),
            user=user,
            item=item,
            params=params,
            plan=plan,
            settings=self.settings,
            ffmpeg=self.ffmpeg,
            on_end=self._forget,
        )
        self.registry.add(session)
        try:
            await self._nursery.start(session.run)
        except BaseException:
            self.registry.remove(session.id)
            raise
        return session, True

    async def end(self, session: Session) -> None:
        """End a session and wait until its encoder is gone and its temp dir removed."""
        self.registry.remove(session.id)
        session.close()
        await session.finished.wait()

    async def end_all(self) -> None:
        sessions = list(self.registry)
        for session in sessions:
            session.close()
        for session in sessions:
            await session.finished.wait()

    def _forget(self, session: Session) -> None:
        self.registry.remove(session.id)
