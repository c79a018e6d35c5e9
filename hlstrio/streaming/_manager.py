"""SessionManager: owns the nursery every session runs in, and the registry that finds them.

The nursery is opened around the HTTP server, not per request: a request handler only looks a
session up, and a session outlives the request that created it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import secrets
import shutil
import tempfile
from functools import partial
from pathlib import Path

import trio

from .._config import Settings
from .._metrics import Metrics
from .._reaper import Reaper, cmdline, kill_all_using
from ..media import MediaItem, VerifiedFiles
from ._context import BlockingRunner, CutsFactory, StreamingContext, in_worker_thread
from ._decision import choose_audio, decide
from ._encoder import EncoderRunner, run_encoder
from ._filters import FilterSupport
from ._lifecycle import SessionState
from ._registry import SessionRegistry
from ._remux import SessionSource, renditions
from ._session import MARKER_FILE, SESSION_DIR_PREFIX, Session, SessionParams

log = logging.getLogger("hlstrio.manager")


def new_session_id() -> str:
    """192 random bits, URL-safe: the id is the credential of the HLS capability URLs."""
    return secrets.token_urlsafe(24)


# A failed session (or one whose media is gone) is replaced, not handed out again.
_REUSABLE = frozenset({SessionState.STARTING, SessionState.RUNNING, SessionState.IDLE})


class DiskFull(Exception):
    """Transcode segments fill `temp_max_bytes` even after pruning what players have passed."""


class SessionManager:
    def __init__(
        self,
        settings: Settings,
        ffmpeg: str,
        *,
        reaper: Reaper | None = None,
        metrics: Metrics | None = None,
        run_encoder: EncoderRunner = run_encoder,
        make_cuts: CutsFactory = renditions,
        run_blocking: BlockingRunner = in_worker_thread,
        filters: FilterSupport | None = None,
    ) -> None:
        self.settings = settings
        # Built once, here; every session and transcoder shares it.
        self.context = StreamingContext.create(
            settings,
            ffmpeg,
            metrics=metrics,
            reaper=reaper,
            run_encoder=run_encoder,
            make_cuts=make_cuts,
            run_blocking=run_blocking,
            filters=filters,
            on_disk_pressure=self.enforce_disk,
        )
        self.disk = self.context.disk
        self.registry: SessionRegistry[Session] = SessionRegistry(
            max_sessions=settings.max_sessions,
            max_per_user=settings.max_sessions_per_user,
            max_transcodes=settings.max_transcodes,
        )
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold the session nursery open until cancelled; cancelling it ends every session."""
        removed = await self.context.run_blocking(
            partial(remove_stale_session_dirs, self.temp_parent)
        )
        if removed:
            log.info("removed %d session dir(s) left by a previous run", removed)
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
        self, user: str, item: MediaItem, params: SessionParams, files: VerifiedFiles
    ) -> tuple[Session, bool]:
        """Return (session, created). Same params reuse; other params replace the old session.

        `files` is what to open: the library's just-verified paths of `item` and of its usable
        sidecar subtitles.

        Caps are checked and the registry updated with no await in between, so two concurrent
        creates cannot both take the last slot.
        """
        if self._nursery is None:
            raise RuntimeError("session manager is not running")
        # "fra", its stream index, or nothing when it is the file's default: one choice.
        track = choose_audio(item.info, params.audio)
        params = dataclasses.replace(params, audio=track.index if track is not None else None)
        existing = self.registry.find(user, item.id)
        if (
            existing is not None
            and existing.params == params
            and existing.lifecycle.state in _REUSABLE
        ):
            existing.touch()
            return existing, False
        usable = tuple(s for s in item.sidecars if s.id in files.sidecars)
        plan = decide(
            item.info,
            params.capabilities,
            params.mode,
            params.audio,
            subtitle=params.subtitle,
            sidecars=usable,
        )
        self.registry.check_caps(user, transcodes=plan.transcodes, replacing=existing)
        if plan.transcodes:
            self.enforce_disk()
            if self.disk.over_limit:
                raise DiskFull(
                    f"transcode segments use {self.disk.total} bytes, above temp_max_bytes "
                    f"({self.disk.limit}); try again when a session ends"
                )
        if existing is not None:
            self.registry.remove(existing.id)
            existing.close()
        session = Session(
            self.context,
            session_id=new_session_id(),
            user=user,
            item=item,
            source=SessionSource(files.media, item.info.start_time, files.sidecars),
            params=params,
            plan=plan,
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

    def media_removed(self, media_id: str, reason: str) -> int:
        """The library lost a file: its sessions free their resources now and answer 410 on
        their next request. Returns how many sessions were told."""
        told = 0
        for session in self.registry.with_media(media_id):
            session.media_removed(reason)
            told += 1
        return told

    def _forget(self, session: Session) -> None:
        self.registry.remove(session.id)

    @property
    def temp_parent(self) -> Path:
        return self.settings.temp_dir or Path(tempfile.gettempdir())

    def enforce_disk(self) -> None:
        """Over `temp_max_bytes`: prune segments players have passed, oldest first, any session.

        Segments still ahead of a player are kept (throttling bounds them); if those alone
        exceed the limit, new transcodes are refused (507) until sessions end.
        """
        if not self.disk.over_limit:
            return
        for owner, index in self.disk.oldest():
            session = self.registry.lookup(owner)
            transcoder = session.transcoder if session is not None else None
            if transcoder is None:
                self.disk.remove(owner, index)
            elif transcoder.is_behind(index):
                transcoder.prune(index)
            if not self.disk.over_limit:
                return


def remove_stale_session_dirs(parent: Path) -> int:
    """Remove session dirs whose marker names a server process that no longer runs.

    Only dirs with our prefix *and* marker are candidates, and a live hlstrio process keeps
    its own: a temp dir shared with other programs or other servers is safe.
    """
    removed = 0
    try:
        entries = list(parent.iterdir())
    except OSError:
        return 0
    for path in entries:
        if not path.name.startswith(SESSION_DIR_PREFIX) or not path.is_dir():
            continue
        try:
            marker = json.loads((path / MARKER_FILE).read_text())
            pid = int(marker["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if pid == os.getpid() or _is_live_hlstrio(pid):
            continue
        # An encoder the dead server started in its last instant, before its watchdog heard
        # of it, may still be writing here: it goes first.
        kill_all_using(str(path).encode())
        with contextlib.suppress(OSError):
            shutil.rmtree(path)
            removed += 1
    return removed


def _is_live_hlstrio(pid: int) -> bool:
    return b"hlstrio" in cmdline(pid)
