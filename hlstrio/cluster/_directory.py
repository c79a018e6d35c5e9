"""The session directory: what the session manager asks beyond its own node's registry.

On every node a session is a trio task under its own cancel scope in that node's O(1)
registry; the directory only says which sessions exist in the cluster, enforces the caps over
all of them, and records which node runs a transcode's encoder (its lease). The manager always
looks in its registry first, so the directory is asked only at create and delete, on a local
miss, and in one batched sync per node every few seconds — never per segment.

Two implementations:
- `LocalDirectory`, the embedded default: this node's registry *is* the directory. Nothing
  exists beyond it (a miss is a miss), and the caps are the registry's, checked with no
  checkpoint between the check and the insert, exactly as before there was a directory.
- `RedisDirectory` (`_redis.py`): shared by the nodes of a cluster, atomic by Lua scripts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from ._records import SessionRecord


class DirectoryUnavailable(Exception):
    """Redis cannot be reached (or answered too late): no new sessions, no adoption; what a
    node already holds keeps playing."""


class NodeBusy(Exception):
    """This node already runs `node_max_transcodes` encoders and cannot take another session's
    encoder over; the player should retry (its session is fine)."""


@dataclass(frozen=True, slots=True)
class Reservation:
    """What the directory made of a create."""

    reused: SessionRecord | None = None  # the user's session with equal params: answer it
    replaced: str | None = None  # the id of the user's session for this media that it ended


@dataclass(frozen=True, slots=True)
class Adoption:
    record: SessionRecord
    previous: str = ""  # the node whose lease this node took over ("" none)


@dataclass(frozen=True, slots=True)
class Ended:
    record: SessionRecord
    wait_for: str = ""  # the node running its encoder: it says "done" once that is dead


@dataclass(frozen=True, slots=True)
class SyncEntry:
    """One session this node holds, as the sync reports it."""

    session_id: str
    access: float | None  # unix s of its last request, None: none since the last sync
    live: str | None  # JSON of its changing part, None: unchanged since the last sync
    state: str
    held: bool  # this node runs its encoder under the lease


# Statuses `sync` returns, one per entry.
SYNC_OK = "."
SYNC_ENDED = "g"  # ended elsewhere (DELETE, replaced): drop the local copy
SYNC_LEASE_LOST = "l"  # another node took the encoder over: drop the local copy
SYNC_LOST = "r"  # Redis lost the record (restart without persistence): restore it
SYNC_SERVED_ELSEWHERE = "o"  # another node served it last: an idle copy here may go

# Events between nodes: (kind, session id, node).
EVENT_END = "end"  # a session ended (DELETE, replaced): every copy goes
EVENT_LEASE = "lease"  # a node took a transcode's encoder over: the previous one stops its own
EVENT_DONE = "done"  # a node's copy of an ended session is gone (encoder dead, temp dir removed)
EventHandler = Callable[[str, str, str], None]


class Directory(Protocol):
    @property
    def shared(self) -> bool:
        """True when other nodes share it (cluster mode)."""
        ...

    @property
    def node(self) -> str: ...

    @property
    def available(self) -> bool:
        """Whether the last call reached the directory."""
        ...

    async def reserve(self, record: SessionRecord) -> Reservation:
        """Check the caps and register `record` as the user's session for its media, atomically,
        ending the one it replaces; or answer the user's existing session with equal params.
        Raises CapExceeded, DirectoryUnavailable."""
        ...

    async def get(self, session_id: str) -> SessionRecord | None: ...

    async def owned_by(self, user: str) -> list[SessionRecord]: ...

    async def adopt(self, session_id: str, *, lease: bool) -> Adoption | None:
        """The record of a session this node does not hold, taking its encoder's lease (if it
        transcodes and `lease`); None if there is no such session."""
        ...

    async def end(self, session_id: str, user: str) -> Ended | None:
        """End the session everywhere if it is `user`'s; None if there is none such."""
        ...

    async def release(self, session_id: str) -> None:
        """Give up this node's lease on the session's encoder (its local copy ended)."""
        ...

    async def sync(self, entries: Sequence[SyncEntry]) -> str:
        """Report the sessions this node holds; one status character per entry (SYNC_*)."""
        ...

    async def restore(self, record: SessionRecord) -> str:
        """Put back a record the directory lost; "ok", "ended" or "exists"."""
        ...

    async def done(self, session_id: str) -> None:
        """Tell the node that ended the session that this node's copy is gone."""
        ...

    async def listen(
        self,
        on_event: EventHandler,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Call `on_event(kind, session id, node)` for each event of other nodes, until
        cancelled, reconnecting by itself."""
        ...


class LocalRegistry(Protocol):
    """The part of the node's SessionRegistry the local directory uses."""

    def find(self, user: str, media_id: str) -> Any: ...

    def check_caps(self, user: str, *, transcodes: bool, replacing: Any = None) -> None: ...


class LocalDirectory:
    """The embedded default, for one node: its registry is the whole directory.

    Every method is a coroutine with no checkpoint in it, so a manager that calls `reserve`
    and then adds to its registry still does both with no other task in between.
    """

    shared = False
    available = True

    def __init__(self, registry: LocalRegistry, node: str = "local") -> None:
        self._registry = registry
        self.node = node

    async def reserve(self, record: SessionRecord) -> Reservation:
        existing = self._registry.find(record.user, record.media_id)
        self._registry.check_caps(record.user, transcodes=record.transcodes, replacing=existing)
        return Reservation()

    async def get(self, session_id: str) -> SessionRecord | None:
        return None  # nothing exists beyond the registry

    async def owned_by(self, user: str) -> list[SessionRecord]:
        return []

    async def adopt(self, session_id: str, *, lease: bool) -> Adoption | None:
        return None

    async def end(self, session_id: str, user: str) -> Ended | None:
        return None

    async def release(self, session_id: str) -> None:
        return None

    async def sync(self, entries: Sequence[SyncEntry]) -> str:
        return SYNC_OK * len(entries)

    async def restore(self, record: SessionRecord) -> str:
        return "exists"

    async def done(self, session_id: str) -> None:
        return None

    async def listen(
        self,
        on_event: EventHandler,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        task_status.started()  # no other nodes: no events
        await trio.sleep_forever()


# A retry hint for the 503s of an unavailable directory and a busy node.
RETRY_AFTER_SECONDS = 5
