"""SessionManager: owns the nursery every session runs in, and the registry that finds them.

The nursery is opened around the HTTP server, not per request: a request handler only looks a
session up, and a session outlives the request that created it.

Beyond one node, the manager asks a session directory (`hlstrio.cluster`) what its registry
does not know: the caps over all nodes at create, a session's record on a local miss (which it
then *adopts*: builds exactly as create does, registers and runs here), and who runs a
transcode's encoder (a lease). The registry is always asked first, so a segment request on the
node that holds its session costs what it did on one node. With the default `LocalDirectory`
the registry is the whole directory and nothing here behaves differently from one node.
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
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import trio

from .._config import Settings
from .._metrics import Metrics
from .._reaper import Reaper, cmdline, kill_all_using
from ..cluster import (
    EVENT_DONE,
    EVENT_END,
    EVENT_LEASE,
    SYNC_ENDED,
    SYNC_LEASE_LOST,
    SYNC_LOST,
    SYNC_SERVED_ELSEWHERE,
    Directory,
    DirectoryUnavailable,
    LocalDirectory,
    NodeBusy,
    SessionRecord,
    SyncEntry,
)
from ..media import MediaGone, MediaItem, VerifiedFiles
from ._context import BlockingRunner, CutsFactory, StreamingContext, in_worker_thread
from ._decision import Capabilities, Plan, choose_audio, decide
from ._encoder import EncoderRunner, run_encoder
from ._errors import MediaRemoved, SessionEnded
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


class SessionView(Protocol):
    """What the API answers about a session: a live one here, or a record from the directory."""

    @property
    def id(self) -> str: ...
    @property
    def created_at(self) -> float: ...
    def to_json(self) -> dict[str, object]: ...


class MediaSource(Protocol):
    """The library, as adoption uses it (`hlstrio.media.Library`)."""

    def get(self, media_id: str) -> MediaItem | None: ...
    def verify_files(self, item: MediaItem) -> VerifiedFiles: ...


# In cluster mode the caps are the directory's (over every node); the registry keeps only the
# node's own encoder cap.
_UNBOUNDED = 2**31
# The Session answer's fields a sync reports (the rest is fixed when the session is made).
LIVE_FIELDS = ("state", "position", "encoder", "waiting")
# How long DELETE waits for the node running the encoder to say its copy is gone.
DONE_WAIT_SECONDS = 10.0


@dataclasses.dataclass(eq=False)
class _Flight:
    """One adoption in progress: concurrent requests for the same session wait for it."""

    done: trio.Event = dataclasses.field(default_factory=trio.Event)
    session: Session | None = None
    error: Exception | None = None


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
        directory: Directory | None = None,
        library: MediaSource | None = None,
    ) -> None:
        """`directory`: a shared one (cluster mode), else this node's registry is the directory;
        `library`: where adoption finds a record's media (needed in cluster mode)."""
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
        shared = directory is not None and directory.shared
        if shared:
            cluster = settings.cluster
            node_cap = cluster.node_max_transcodes if cluster is not None else None
            self.registry: SessionRegistry[Session] = SessionRegistry(
                max_sessions=_UNBOUNDED,
                max_per_user=_UNBOUNDED,
                max_transcodes=settings.max_transcodes if node_cap is None else node_cap,
            )
        else:
            self.registry = SessionRegistry(
                max_sessions=settings.max_sessions,
                max_per_user=settings.max_sessions_per_user,
                max_transcodes=settings.max_transcodes,
            )
        self.directory: Directory = (
            LocalDirectory(self.registry) if directory is None else directory
        )
        self._library = library
        self._sync_seconds = settings.cluster.sync_interval if settings.cluster else 2.0
        self._adopting: dict[str, _Flight] = {}
        self._leases: set[str] = set()  # sessions whose encoder this node runs under the lease
        self._reported: dict[str, tuple[float, str]] = {}  # id -> (access, live) last synced
        self._done_waiters: dict[str, trio.Event] = {}  # DELETEs waiting for the owner's "done"
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
            if self.directory.shared:
                await nursery.start(self.directory.listen, self._on_event)
                nursery.start_soon(self._sync_forever)
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None

    def lookup(self, session_id: str) -> Session | None:
        """This node's registry only: O(1), no I/O."""
        return self.registry.lookup(session_id)

    async def session_for(self, session_id: str, *, resume_at: int | None = None) -> Session | None:
        """The session to serve a request with: this node's own, else (cluster mode) adopted
        from its directory record, with a transcode's encoder started at `resume_at` (the
        segment asked for). None if there is no such session anywhere.

        A local hit is the registry lookup and nothing else (no checkpoint, no I/O); only a
        miss costs a directory round trip. Raises DirectoryUnavailable, NodeBusy, MediaGone
        (this node's library has no such media), MediaRemoved (its file is not usable here),
        CapExceeded, DiskFull, and what deciding the plan raises.
        """
        session = self.registry.lookup(session_id)
        if session is not None or not self.directory.shared:
            return session
        flight = self._adopting.get(session_id)
        if flight is None:
            if self._nursery is None:
                raise RuntimeError("session manager is not running")
            flight = self._adopting[session_id] = _Flight()
            # In the manager's nursery, not the request's: a player that hangs up while its
            # session is being adopted leaves no half-adopted session behind.
            self._nursery.start_soon(self._adopt_flight, session_id, resume_at, flight)
        await flight.done.wait()
        if flight.error is not None:
            raise flight.error
        return flight.session

    async def open(
        self, user: str, item: MediaItem, params: SessionParams, files: VerifiedFiles
    ) -> tuple[SessionView, bool]:
        """The API's create: on one node `create`; in a cluster, the record only (caps,
        reuse and replacement decided by the directory in one atomic step), and the session
        starts on the node that gets its first HLS request, which is the node HAProxy routes
        the session's URLs to (so a transcode's encoder never starts twice)."""
        if not self.directory.shared:
            return await self.create(user, item, params, files)
        params = self._normalized(item, params)
        plan = self._plan(item, params, files)
        session = self._build(new_session_id(), user, item, params, plan, files)
        reservation = await self.directory.reserve(self._record_of(session))
        if reservation.reused is not None:
            local = self.registry.lookup(reservation.reused.id)
            if local is not None:
                local.touch()
                return local, False
            return reservation.reused, False
        if reservation.replaced is not None:
            self._drop_copy(reservation.replaced)
        log.info("session %s: %s of %s recorded", session.id[:8], plan.mode, item.path)
        return session, True

    async def find_owned(self, session_id: str, user: str) -> SessionView | None:
        """GET: the user's session, held here or (cluster) anywhere; another user's is None."""
        local = self.registry.lookup_owned(session_id, user)
        if local is not None or not self.directory.shared:
            return local
        record = await self.directory.get(session_id)
        return record if record is not None and record.user == user else None

    async def owned_by(self, user: str) -> list[SessionView]:
        """The user's sessions, oldest first; a live copy here wins over its record."""
        views: dict[str, SessionView] = {r.id: r for r in await self.directory.owned_by(user)}
        views.update((s.id, s) for s in self.registry.owned_by(user))
        return sorted(views.values(), key=lambda v: v.created_at)

    async def end_owned(self, session_id: str, user: str) -> bool:
        """DELETE: end the user's session everywhere and wait until its encoder is dead and its
        temp dir gone, here or (cluster) on the node running it; False if there is none."""
        local = self.registry.lookup_owned(session_id, user)
        if not self.directory.shared:
            if local is None:
                return False
            await self.end(local)
            return True
        done = self._done_waiters[session_id] = trio.Event()
        try:
            ended = await self.directory.end(session_id, user)
            if ended is None and local is None:
                return False
            if local is not None:
                await self.end(local)
            owner = ended.wait_for if ended is not None else ""
            if owner and owner != self.directory.node:
                with trio.move_on_after(DONE_WAIT_SECONDS) as waited:
                    await done.wait()
                if waited.cancelled_caught:
                    log.warning(
                        "session %s: node %s did not confirm its encoder stopped; it stops at "
                        "its next sync at the latest",
                        session_id[:8],
                        owner,
                    )
            return True
        finally:
            if self._done_waiters.get(session_id) is done:
                del self._done_waiters[session_id]

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
        if self.directory.shared:
            raise RuntimeError("in cluster mode sessions are made by open() and adopted")
        params = self._normalized(item, params)
        existing = self.registry.find(user, item.id)
        if (
            existing is not None
            and existing.params == params
            and existing.lifecycle.state in _REUSABLE
        ):
            existing.touch()
            return existing, False
        plan = self._plan(item, params, files)
        # The local directory checks the registry's caps, and neither it nor anything below
        # reaches a checkpoint before `registry.add`.
        claim = SessionRecord(
            id="",
            user=user,
            media_id=item.id,
            params="",
            transcodes=plan.transcodes,
            node=self.directory.node,
            created=0.0,
            last_access=0.0,
            state="",
        )
        await self.directory.reserve(claim)
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
        session = self._build(new_session_id(), user, item, params, plan, files)
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
        self._reported.pop(session.id, None)
        if session.id in self._leases:
            self._leases.discard(session.id)
            if self._nursery is not None:
                # Ended here (idle ttl, media gone, shutdown): the record says nobody runs it.
                self._nursery.start_soon(self._release, session.id)

    # -- building a session: create and adoption alike ------------------------------------
    @staticmethod
    def _normalized(item: MediaItem, params: SessionParams) -> SessionParams:
        # "fra", its stream index, or nothing when it is the file's default: one choice.
        track = choose_audio(item.info, params.audio)
        return dataclasses.replace(params, audio=track.index if track is not None else None)

    @staticmethod
    def _plan(item: MediaItem, params: SessionParams, files: VerifiedFiles) -> Plan:
        usable = tuple(s for s in item.sidecars if s.id in files.sidecars)
        return decide(
            item.info,
            params.capabilities,
            params.mode,
            params.audio,
            subtitle=params.subtitle,
            sidecars=usable,
        )

    def _build(
        self,
        session_id: str,
        user: str,
        item: MediaItem,
        params: SessionParams,
        plan: Plan,
        files: VerifiedFiles,
    ) -> Session:
        """A Session, not yet running (nothing is opened or started until `run`)."""
        return Session(
            self.context,
            session_id=session_id,
            user=user,
            item=item,
            source=SessionSource(files.media, item.info.start_time, files.sidecars),
            params=params,
            plan=plan,
            on_end=self._forget,
        )

    def _record_of(self, session: Session) -> SessionRecord:
        answer = session.to_json()
        return SessionRecord(
            id=session.id,
            user=session.user,
            media_id=session.media_id,
            params=params_to_json(session.params),
            transcodes=session.transcodes,
            node=self.directory.node,
            created=session.created_at,
            last_access=session.last_access,
            state=session.state,
            snapshot=_compact({k: v for k, v in answer.items() if k not in LIVE_FIELDS}),
            live=_compact({k: answer[k] for k in LIVE_FIELDS}),
            lease=self.directory.node if session.id in self._leases else "",
        )

    # -- adoption (cluster mode) ----------------------------------------------------------
    async def _adopt_flight(self, session_id: str, resume_at: int | None, flight: _Flight) -> None:
        try:
            flight.session = await self._adopt(session_id, resume_at)
        except Exception as exc:
            flight.error = exc
        finally:
            del self._adopting[session_id]
            flight.done.set()

    async def _adopt(self, session_id: str, resume_at: int | None) -> Session | None:
        node = self.directory.node
        room = self.registry.transcodes < self.registry.max_transcodes
        adoption = await self.directory.adopt(session_id, lease=room)
        if adoption is None:
            return None
        record = adoption.record
        leased = record.transcodes and record.lease == node
        if record.transcodes and not leased:
            raise NodeBusy(
                f"this node runs {self.registry.transcodes} encoders (node_max_transcodes)"
            )
        try:
            session = await self._rebuild(record)
            if leased:
                self.enforce_disk()
                if self.disk.over_limit:
                    raise DiskFull(
                        f"transcode segments use {self.disk.total} bytes, above temp_max_bytes "
                        f"({self.disk.limit}) on this node"
                    )
            if resume_at is not None and 0 < resume_at < len(session.timeline):
                # The resume-after-idle path: the encoder starts where the player is.
                session.start_index = resume_at
                session.playhead.seek(resume_at)
            stale = self.registry.find(record.user, record.media_id)
            if stale is not None and stale.id != record.id:
                # The directory says this one is the user's session for the media now.
                self._drop_copy(stale.id)
            self.registry.add(session)
            if leased:
                self._leases.add(session.id)
            assert self._nursery is not None
            try:
                await self._nursery.start(session.run)
            except BaseException:
                self.registry.remove(session.id)
                raise
        except BaseException:
            if leased:
                self._leases.discard(session_id)
                with trio.CancelScope(shield=True):
                    await self._release(session_id)
            raise
        took = f", encoder taken over from node {adoption.previous}" if adoption.previous else ""
        log.info(
            "session %s: adopted (%s, made on node %s)%s",
            session_id[:8],
            session.plan.mode,
            record.node,
            took,
        )
        return session

    async def _rebuild(self, record: SessionRecord) -> Session:
        """The session a record describes, as create built it: media re-verified and the plan
        decided here (this node's ffmpeg and filters)."""
        library = self._library
        item = library.get(record.media_id) if library is not None else None
        if library is None or item is None:
            raise MediaGone(f"this node's library has no media {record.media_id}")
        try:
            files = await self.context.run_blocking(partial(library.verify_files, item))
        except MediaGone as exc:
            raise MediaRemoved(f"not usable on this node: {exc}") from None
        try:
            params = params_from_json(record.params)
        except (ValueError, KeyError, TypeError):
            raise SessionEnded("the session was made by an incompatible hlstrio") from None
        plan = self._plan(item, params, files)
        session = self._build(record.id, record.user, item, params, plan, files)
        session.created_at = record.created
        return session

    async def _release(self, session_id: str) -> None:
        with trio.move_on_after(2), contextlib.suppress(DirectoryUnavailable):
            await self.directory.release(session_id)

    def _drop_copy(self, session_id: str, *, announce: bool = False) -> None:
        """End this node's copy of a session (it ended or moved elsewhere); `announce`: tell the
        node waiting on a DELETE once the encoder is dead and the temp dir gone."""
        session = self.registry.remove(session_id)
        held = session_id in self._leases
        self._leases.discard(session_id)
        if session is None:
            return
        session.close()
        if announce and held and self._nursery is not None:
            self._nursery.start_soon(self._announce_done, session)

    async def _announce_done(self, session: Session) -> None:
        await session.finished.wait()
        with trio.move_on_after(2), contextlib.suppress(DirectoryUnavailable):
            await self.directory.done(session.id)

    def _on_event(self, kind: str, session_id: str, node: str) -> None:
        """Another node ended a session, took its encoder over, or confirmed its copy is gone."""
        if kind == EVENT_DONE:
            waiter = self._done_waiters.get(session_id)
            if waiter is not None:
                waiter.set()
        elif kind == EVENT_END:
            self._drop_copy(session_id, announce=True)
        elif kind == EVENT_LEASE and node != self.directory.node:
            self._drop_copy(session_id)

    # -- the periodic sync (cluster mode) -------------------------------------------------
    async def _sync_forever(self) -> None:
        while True:
            await trio.sleep(self._sync_seconds)  # the period, not a wait for a condition
            with contextlib.suppress(DirectoryUnavailable):  # logged once by the directory
                await self.sync_once()

    async def sync_once(self) -> None:
        """One batched round trip: last access and state of every session held here, lease
        renewals; then act on what the directory says (ended elsewhere, encoder moved, record
        lost, a stale idle copy)."""
        sessions = list(self.registry)
        entries: list[SyncEntry] = []
        sent: list[tuple[float, str]] = []
        for session in sessions:
            access, live = self._reported.get(session.id, (-1.0, ""))
            answer = session.to_json()
            now_live = _compact({k: answer[k] for k in LIVE_FIELDS})
            entries.append(
                SyncEntry(
                    session.id,
                    session.last_access if session.last_access != access else None,
                    now_live if now_live != live else None,
                    session.state,
                    session.id in self._leases,
                )
            )
            sent.append((session.last_access, now_live))
        statuses = await self.directory.sync(entries)
        idle = self.settings.idle_timeout
        lost: list[Session] = []
        for session, status, reported in zip(sessions, statuses, sent, strict=False):
            if status == SYNC_ENDED:
                self._drop_copy(session.id, announce=True)
            elif status == SYNC_LEASE_LOST:
                log.info("session %s: its encoder moved to another node", session.id[:8])
                self._drop_copy(session.id)
            elif status == SYNC_LOST:
                lost.append(session)
            else:
                self._reported[session.id] = reported
                stale = time.time() - session.last_access > idle
                if status == SYNC_SERVED_ELSEWHERE and stale and session.id not in self._leases:
                    # Players went to another node (this one was down, say): memory freed.
                    self._drop_copy(session.id)
        await self._restore(lost)

    async def _restore(self, sessions: Sequence[Session]) -> None:
        if sessions:
            log.warning("directory lost %d session record(s) held here: restoring", len(sessions))
        for session in sessions:
            if self.registry.lookup(session.id) is not session:
                continue
            # With this node's lease, if it runs the encoder (renewed by the next sync).
            if await self.directory.restore(self._record_of(session)) == "ended":
                self._drop_copy(session.id, announce=True)
            self._reported.pop(session.id, None)  # report everything at the next sync

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


def params_to_json(params: SessionParams) -> str:
    """Canonical JSON of a session's parameters: equal params give equal text (the directory
    compares the text to reuse a session), and any node can rebuild them from it."""
    data: dict[str, Any] = {}
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        if isinstance(value, Capabilities):
            value = {c.name: _plain(getattr(value, c.name)) for c in dataclasses.fields(value)}
        data[f.name] = _plain(value)
    return _compact(data)


def params_from_json(text: str) -> SessionParams:
    """The inverse of params_to_json; ValueError/KeyError/TypeError for text this version cannot
    honour (an unknown field)."""
    data = json.loads(text)
    default = Capabilities()
    caps = data["capabilities"]
    names = {f.name for f in dataclasses.fields(Capabilities)}
    if set(caps) - names or set(data) - {f.name for f in dataclasses.fields(SessionParams)}:
        raise ValueError("unknown session parameters")
    values: dict[str, Any] = {}
    for name, value in caps.items():
        kind = type(getattr(default, name))
        values[name] = kind(value) if kind in (frozenset, tuple) else value
    return SessionParams(**{**data, "capabilities": Capabilities(**values)})


def _plain(value: Any) -> Any:
    if isinstance(value, frozenset):
        return sorted(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _compact(data: object) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


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
