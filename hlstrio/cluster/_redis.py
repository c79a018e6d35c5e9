"""The cluster's session directory in Redis, through coredis (anyio, so it runs under trio).

Why coredis: it is built on anyio, so under `trio.run` its connection pool and pub/sub run as
trio tasks in our own nursery tree (checked: scripts, pub/sub, reconnect after a Redis restart
and a stopped Redis timing out, all under trio 0.35 with coredis 6.9). redis-py's asyncio
client would need an asyncio loop beside trio's.

Every call is one round trip (a Lua script from `_lua.py`, or one command), bounded by
`op_timeout_seconds`; any failure to reach Redis is a `DirectoryUnavailable`, and the next
call simply tries again (the pool reconnects by itself), so a node recovers when Redis is back
without a restart. Pub/sub resubscribes by itself too; what it misses while reconnecting the
periodic sync catches up with.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import coredis
import trio
from coredis.exceptions import ConnectionError as RedisConnectionError
from coredis.exceptions import RedisError
from coredis.retry import ConstantRetryPolicy

from .._config import ClusterSettings
from . import _lua
from ._directory import (
    Adoption,
    DirectoryUnavailable,
    Ended,
    EventHandler,
    Reservation,
    SyncEntry,
)
from ._records import SessionRecord, pairs

log = logging.getLogger("hlstrio.cluster")

OP_TIMEOUT_SECONDS = 2.0  # one directory call, connect included, then it is "unavailable"
# A lease outlives this many sync intervals without renewal (a node renews at every sync).
LEASE_SYNCS = 5
HEARTBEAT_SYNCS = 3


class RedisDirectory:
    shared = True

    def __init__(
        self,
        cluster: ClusterSettings,
        *,
        session_ttl_seconds: float,
        max_sessions: int,
        max_sessions_per_user: int,
        max_transcodes: int,
        cap_error: type[Exception],
        op_timeout_seconds: float = OP_TIMEOUT_SECONDS,
    ) -> None:
        self.node = cluster.node
        self.advertise = cluster.advertise  # the server fills in its URL when "" (after bind)
        self._url = cluster.redis_url  # never logged: `_shown` is
        self._shown = cluster.redacted_url
        self._prefix = cluster.key_prefix + ":"
        self._channel = self._prefix + "ev"
        self._ttl_ms = max(1, math.ceil(session_ttl_seconds * 1000))
        self._lease_ms = math.ceil(LEASE_SYNCS * cluster.sync_interval * 1000)
        self._heartbeat_ms = math.ceil(HEARTBEAT_SYNCS * cluster.sync_interval * 1000)
        self._caps = [str(max_sessions), str(max_sessions_per_user), str(max_transcodes)]
        # The manager's CapExceeded(cap, limit): raised as is, so the API maps it as for one node.
        self._cap_error = cap_error
        self._timeout = op_timeout_seconds
        self._client: coredis.Redis[str] | None = None
        self._scripts: dict[str, Any] = {}
        self.available = True  # optimistic until a call fails; logged on each change

    # -- lifetime -------------------------------------------------------------------------
    @asynccontextmanager
    async def connected(self) -> AsyncIterator[RedisDirectory]:
        """Open the client (its pool's tasks run inside this context); connects lazily, so a
        Redis that is down now does not stop the node from starting."""
        client: coredis.Redis[str] = coredis.Redis.from_url(
            self._url,
            decode_responses=True,
            connect_timeout=min(1.0, self._timeout),
            stream_timeout=self._timeout,
            # Once, and only when the command could not be sent (a pooled connection that died
            # with a Redis restart): a script whose answer was lost is not run twice.
            retry_policy=ConstantRetryPolicy((RedisConnectionError,), retries=1, delay=0.01),
            verify_version=False,
        )
        async with client:
            self._client = client
            self._scripts = {
                name: client.register_script(getattr(_lua, name))
                for name in ("RESERVE", "ADOPT", "SYNC", "RESTORE", "END", "RELEASE", "OWNED")
            }
            log.info("session directory: %s (node %s)", self._shown, self.node)
            try:
                yield self
            finally:
                self._client = None

    async def _call(self, what: str, run: Any) -> Any:
        """One round trip, bounded; Redis unreachable (or too slow) -> DirectoryUnavailable."""
        if self._client is None:
            raise DirectoryUnavailable("the session directory is not connected")
        try:
            with trio.fail_after(self._timeout):
                result = await run
        except (RedisError, OSError, TimeoutError, trio.TooSlowError) as exc:
            # RedisError includes a script error: a bug, but the node still must not fall over.
            if self.available:
                log.warning(
                    "session directory %s unavailable (%s: %s): serving the sessions this node "
                    "holds, refusing new ones until it is back",
                    self._shown,
                    what,
                    type(exc).__name__,
                )
            self.available = False
            raise DirectoryUnavailable(
                f"the session directory is unavailable ({type(exc).__name__})"
            ) from None
        if not self.available:
            log.info("session directory %s is back", self._shown)
            self.available = True
        return result

    async def _script(self, name: str, args: Sequence[str]) -> Any:
        script = self._scripts[name]
        return await self._call(name.lower(), script(keys=[], args=[self._prefix, *args]))

    # -- the protocol ---------------------------------------------------------------------
    async def reserve(self, record: SessionRecord) -> Reservation:
        reply = await self._script("RESERVE", [str(self._ttl_ms), *self._caps, *record.to_fields()])
        kind = reply[0]
        if kind == "reuse":
            return Reservation(reused=SessionRecord.from_fields(pairs(reply[1])))
        if kind == "cap":
            raise self._cap_error(str(reply[1]), int(reply[2]))
        replaced = str(reply[1]) if len(reply) > 1 and reply[1] else None
        return Reservation(replaced=replaced)

    async def get(self, session_id: str) -> SessionRecord | None:
        client = self._client
        if client is None:
            raise DirectoryUnavailable("the session directory is not connected")
        fields = await self._call("get", client.hgetall(self._prefix + "s:" + session_id))
        return _record(dict(fields)) if fields else None

    async def owned_by(self, user: str) -> list[SessionRecord]:
        reply = await self._script("OWNED", [user])
        records = (_record(pairs(flat)) for flat in reply)
        return [r for r in records if r is not None]

    async def adopt(self, session_id: str, *, lease: bool) -> Adoption | None:
        reply = await self._script(
            "ADOPT", [session_id, self.node, "1" if lease else "0", str(self._lease_ms)]
        )
        if reply is None:
            return None
        record = _record(pairs(reply[0]))
        return None if record is None else Adoption(record, str(reply[1] or ""))

    async def end(self, session_id: str, user: str) -> Ended | None:
        reply = await self._script("END", [session_id, user])
        if reply is None:
            return None
        record = _record(pairs(reply[0]))
        return None if record is None else Ended(record, str(reply[1] or ""))

    async def release(self, session_id: str) -> None:
        await self._script("RELEASE", [session_id, self.node])

    async def sync(self, entries: Sequence[SyncEntry]) -> str:
        args = [
            self.node,
            str(self._lease_ms),
            str(self._ttl_ms),
            str(self._heartbeat_ms),
            self.advertise,
        ]
        for entry in entries:
            args += [
                entry.session_id,
                "" if entry.access is None else repr(entry.access),
                entry.live or "",
                entry.state,
                "1" if entry.held else "0",
            ]
        return str(await self._script("SYNC", args) or "")

    async def restore(self, record: SessionRecord) -> str:
        return str(await self._script("RESTORE", [str(self._ttl_ms), *record.to_fields()]))

    async def done(self, session_id: str) -> None:
        client = self._client
        if client is None:
            raise DirectoryUnavailable("the session directory is not connected")
        await self._call("done", client.publish(self._channel, f"done {session_id} {self.node}"))

    async def listen(
        self,
        on_event: EventHandler,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Subscribe to the event channel until cancelled. Reports started once subscribed, or
        after a second if Redis is not there (a node starts without Redis); what it misses
        while (re)connecting the periodic sync catches up with."""
        subscribed = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._subscribe_forever, on_event, subscribed)
            with trio.move_on_after(1.0):
                await subscribed.wait()
            task_status.started()

    async def _subscribe_forever(self, on_event: EventHandler, subscribed: trio.Event) -> None:
        while True:
            client = self._client
            if client is None:
                raise RuntimeError("listen() outside connected()")
            try:
                try:
                    async with client.pubsub(
                        channels=[self._channel], ignore_subscribe_messages=True
                    ) as pubsub:
                        subscribed.set()
                        async for message in pubsub:
                            _dispatch(str(message["data"]), self.node, on_event)
                except* anyio.ClosedResourceError:
                    # coredis 6.9 unsubscribes on a stream it already closed when the
                    # subscription is cancelled (shutdown): nothing is lost, drop it.
                    pass
            except Exception as exc:
                log.debug("event subscription lost (%s); resubscribing", type(exc).__name__)
            await trio.sleep(0.5)  # then subscribe again (coredis retries within, too)


def _dispatch(data: str, me: str, on_event: EventHandler) -> None:
    parts = data.split(" ")
    if len(parts) < 2:
        return
    kind, session_id, node = parts[0], parts[1], parts[2] if len(parts) > 2 else ""
    if node == me and kind != "end":
        return  # our own lease move or our own "done"
    try:
        on_event(kind, session_id, node)
    except Exception:
        log.exception("handling directory event %r", data[:80])


def _record(fields: dict[str, str]) -> SessionRecord | None:
    try:
        return SessionRecord.from_fields(fields)
    except (KeyError, ValueError):
        # Made by a node of another version, or damaged: as good as missing, said once here.
        log.warning("unreadable session record %r", fields.get("id", "?")[:8])
        return None
