"""RedisDirectory against a real redis-server: caps, reuse, leases, sync, restore, outages.

Two directories with different node names on one Redis stand for two nodes; everything they
agree on goes through Redis (Lua scripts), never through Python state they share.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import coredis
import pytest
import trio

from hlstrio._config import ClusterSettings
from hlstrio.cluster import (
    SYNC_ENDED,
    SYNC_LEASE_LOST,
    SYNC_LOST,
    SYNC_OK,
    SYNC_SERVED_ELSEWHERE,
    DirectoryUnavailable,
    SessionRecord,
    SyncEntry,
)
from hlstrio.cluster._redis import RedisDirectory
from hlstrio.streaming import CapExceeded

from ._procs import Redis

Events = list[tuple[str, str, str]]


def record(session_id: str, user: str = "alice", media: str = "m" * 24, **kw: Any) -> SessionRecord:
    values: dict[str, Any] = {
        "params": '{"mode":"auto"}',
        "transcodes": False,
        "node": "a",
        "created": 1.0,
        "last_access": 1.0,
        "state": "running",
        "snapshot": json.dumps({"mode": "remux", "master_url": f"/hls/{session_id}/master.m3u8"}),
        "live": json.dumps({"state": "running", "position": 0.0}),
    }
    values.update(kw)
    return SessionRecord(id=session_id, user=user, media_id=media, **values)


@asynccontextmanager
async def directories(
    redis: Redis, *names: str, ttl: float = 3600.0, caps: tuple[int, int, int] = (10, 4, 2)
) -> AsyncIterator[list[tuple[RedisDirectory, Events]]]:
    """One RedisDirectory per node name, each listening for the others' events."""
    async with trio.open_nursery() as nursery, AsyncExitStack() as stack:
        out = []
        for name in names:
            cluster = ClusterSettings(redis_url=redis.url, node=name, sync_interval=0.2)
            directory = RedisDirectory(
                cluster,
                session_ttl_seconds=ttl,
                max_sessions=caps[0],
                max_sessions_per_user=caps[1],
                max_transcodes=caps[2],
                cap_error=CapExceeded,
            )
            await stack.enter_async_context(directory.connected())
            events: Events = []
            await nursery.start(directory.listen, lambda *e, ev=events: ev.append(e))
            out.append((directory, events))
        yield out
        nursery.cancel_scope.cancel()


async def until(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)


async def test_caps_hold_across_nodes_under_concurrent_creates(redis: Redis) -> None:
    # max_sessions_per_user = 4: eight creates of one user, four on each of two nodes, at once.
    async with directories(redis, "a", "b") as [(a, _), (b, _)]:
        outcomes: list[str] = []

        async def create(directory: RedisDirectory, i: int) -> None:
            try:
                await directory.reserve(record(f"s{i}", media=f"{i:024d}"))
                outcomes.append("ok")
            except CapExceeded as exc:
                outcomes.append(exc.cap)

        async with trio.open_nursery() as nursery:
            for i in range(8):
                nursery.start_soon(create, a if i % 2 else b, i)
        assert sorted(outcomes) == ["max_sessions_per_user"] * 4 + ["ok"] * 4
        # Transcodes (2 in the cluster) and the global cap (10) count every user.
        await a.reserve(record("t1", user="bob", media="1" * 24, transcodes=True))
        await b.reserve(record("t2", user="bob", media="2" * 24, transcodes=True))
        with pytest.raises(CapExceeded) as info:
            await a.reserve(record("t3", user="carol", media="3" * 24, transcodes=True))
        assert info.value.cap == "max_transcodes"
        # Ending one frees its slot, on whichever node.
        assert await b.end("t1", "bob") is not None
        await a.reserve(record("t3", user="carol", media="3" * 24, transcodes=True))


async def test_same_params_reuse_other_params_replace_and_tell_every_node(redis: Redis) -> None:
    async with directories(redis, "a", "b") as [(a, events_a), (b, _)]:
        assert (await a.reserve(record("s1"))).reused is None
        again = await b.reserve(record("s2"))  # same user, media, params: the same session
        assert again.reused is not None and again.reused.id == "s1"
        other = await b.reserve(record("s3", params='{"mode":"transcode"}'))
        assert other.replaced == "s1" and other.reused is None
        assert await a.get("s1") is None and (await a.get("s3")) is not None
        await until(lambda: ("end", "s1", "") in events_a)
        # A failed session is replaced even with equal params (as on one node).
        await a.sync([SyncEntry("s3", None, '{"state":"failed"}', "failed", False)])
        replaced = await a.reserve(record("s4", params='{"mode":"transcode"}'))
        assert replaced.replaced == "s3"


async def test_records_are_the_owners_only(redis: Redis) -> None:
    async with directories(redis, "a") as [(a, _)]:
        await a.reserve(record("s1", user="alice"))
        assert await a.end("s1", "bob") is None  # bob may not end alice's session
        assert [r.id for r in await a.owned_by("alice")] == ["s1"]
        assert await a.owned_by("bob") == []
        found = await a.get("s1")
        assert found is not None and found.to_json()["master_url"] == "/hls/s1/master.m3u8"
        ended = await a.end("s1", "alice")
        assert ended is not None and await a.get("s1") is None


async def test_the_encoder_lease_follows_the_player_and_the_old_owner_hears_it(
    redis: Redis,
) -> None:
    async with directories(redis, "a", "b") as [(a, events_a), (b, _)]:
        await a.reserve(record("t", transcodes=True))
        remux = record("r", media="1" * 24)
        await a.reserve(remux)
        first = await a.adopt("t", lease=True)
        assert first is not None and first.record.lease == "a" and first.previous == ""
        # A remux session has no lease: any node serves it.
        plain = await b.adopt("r", lease=True)
        assert plain is not None and plain.record.lease == ""
        # Node b gets the player's requests now (a died, or HAProxy moved them): it takes over.
        moved = await b.adopt("t", lease=True)
        assert moved is not None and moved.record.lease == "b" and moved.previous == "a"
        assert moved.record.epoch == first.record.epoch + 1
        await until(lambda: ("lease", "t", "b") in events_a)
        # a's next sync says so too (it may have missed the event).
        assert await a.sync([SyncEntry("t", 2.0, None, "running", True)]) == SYNC_LEASE_LOST
        assert await b.sync([SyncEntry("t", 2.0, None, "running", True)]) == SYNC_OK
        # A node at its own encoder cap reads the record without taking the lease.
        kept = await a.adopt("t", lease=False)
        assert kept is not None and kept.record.lease == "b"
        # DELETE through a: the node to wait for is b, which runs the encoder.
        ended = await a.end("t", "alice")
        assert ended is not None and ended.wait_for == "b"


async def test_sync_says_what_happened_to_each_session(redis: Redis) -> None:
    async with directories(redis, "a", "b") as [(a, _), (b, _)]:
        for sid, media in (("s1", "1"), ("s2", "2"), ("s3", "3")):
            await a.reserve(record(sid, media=media * 24))
        await b.end("s2", "alice")
        await b.adopt("s3", lease=False)
        statuses = await a.sync(
            [
                SyncEntry("s1", 5.0, '{"position":12.0,"state":"running"}', "running", False),
                SyncEntry("s2", 5.0, None, "running", False),  # ended elsewhere
                SyncEntry("s3", None, None, "running", False),  # b served it since
                SyncEntry("s4", 5.0, None, "running", False),  # never heard of: lost
            ]
        )
        assert statuses == SYNC_OK + SYNC_ENDED + SYNC_SERVED_ELSEWHERE + SYNC_LOST
        s1 = await b.get("s1")
        assert s1 is not None and s1.last_access == 5.0 and s1.to_json()["position"] == 12.0


async def test_a_redis_restart_without_data_is_survived_by_restoring(redis: Redis) -> None:
    async with directories(redis, "a") as [(a, _)]:
        kept = record("s1", transcodes=True, lease="a")
        await a.reserve(kept)
        redis.stop()
        with trio.fail_after(5), pytest.raises(DirectoryUnavailable):
            await a.get("s1")
        assert not a.available
        redis.start()  # same port, empty: a restart without persistence
        # The same client reconnects by itself; the node sees the record is lost, not ended.
        assert await a.sync([SyncEntry("s1", 9.0, None, "running", True)]) == SYNC_LOST
        assert a.available
        assert await a.restore(kept) == "ok"
        assert await a.sync([SyncEntry("s1", 9.0, None, "running", True)]) == SYNC_OK
        restored = await a.get("s1")
        assert restored is not None and restored.lease == "a"
        # Caps count it again: the restored session holds the user's and the encoder's slots.
        with pytest.raises(CapExceeded):
            for i in range(4):
                await a.reserve(record(f"x{i}", media=f"{i:024d}"))
        # An ended session is never brought back.
        await a.end("s1", "alice")
        assert await a.restore(kept) == "ended"


async def test_an_expired_record_frees_its_slots(redis: Redis) -> None:
    # session_ttl 0.3 s and one session per user: the second waits for the first to expire.
    async with directories(redis, "a", ttl=0.3, caps=(10, 1, 2)) as [(a, _)]:
        await a.reserve(record("s1"))
        with pytest.raises(CapExceeded):
            await a.reserve(record("s2", media="2" * 24))
        with trio.fail_after(5):
            while True:
                try:
                    await a.reserve(record("s2", media="2" * 24))
                    break
                except CapExceeded:
                    await trio.sleep(0.05)
        assert await a.get("s1") is None


async def test_a_stopped_redis_times_out_instead_of_hanging(redis: Redis) -> None:
    import signal

    async with directories(redis, "a") as [(a, _)]:
        assert redis.process is not None
        redis.process.send_signal(signal.SIGSTOP)
        try:
            with trio.fail_after(10), pytest.raises(DirectoryUnavailable):
                await a.reserve(record("s1"))
        finally:
            redis.process.send_signal(signal.SIGCONT)
        await until(lambda: True)
        with trio.fail_after(10):
            while True:
                try:
                    await a.reserve(record("s2", media="2" * 24))
                    break
                except DirectoryUnavailable:
                    await trio.sleep(0.05)


async def test_coredis_runs_under_trio_with_scripts_and_pubsub(redis: Redis) -> None:
    """The ground the directory stands on: coredis (anyio) inside trio.run."""
    async with coredis.Redis.from_url(redis.url, decode_responses=True) as client:
        script = client.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        assert await script(keys=["k"], args=[2]) == 2
        async with client.pubsub(channels=["c"], ignore_subscribe_messages=True) as pubsub:
            await client.publish("c", "hello")
            with trio.fail_after(5):
                message = await pubsub.__anext__()
            assert message["data"] == "hello"
