"""Two hlstrio nodes in this test's trio run, one real Redis between them, real HTTP to each.

What one node makes, the other adopts; caps, DELETE and ownership hold across them; a Redis
outage stops new sessions (503 JSON) but not the ones held, and both recover by themselves.
HAProxy and SIGKILL are in test_haproxy.py; here the nodes are addressed directly, so each
test says which node a request goes to.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from hlstrio._config import ClusterSettings, Settings
from hlstrio._server import RunningServer, serve
from hlstrio.streaming import SessionManager

from ..support import session_processes, wait_until
from ._procs import Redis

TOKENS = {"alice": "alice-token-0123456789", "bob": "bob-token-0123456789ab"}


@dataclasses.dataclass
class Node:
    name: str
    url: str
    running: RunningServer
    temp_dir: Path
    done: trio.Event

    @property
    def manager(self) -> SessionManager:
        return self.running.services.manager

    def client(self, user: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.url, timeout=30, headers={"Authorization": f"Bearer {TOKENS[user]}"}
        )

    def media_id(self, relpath: str) -> str:
        return next(i.id for i in self.running.services.library.items() if i.path == relpath)


StartNode = Callable[..., Awaitable[Node]]


@pytest.fixture
async def start_node(
    redis: Redis, media_dir: Path, tmp_path: Path, nursery: trio.Nursery
) -> AsyncIterator[StartNode]:
    nodes: list[Node] = []

    async def start(name: str, **overrides: Any) -> Node:
        temp_dir = tmp_path / name / "sessions"
        values: dict[str, Any] = {
            "media": (media_dir,),
            "port": 0,
            "temp_dir": temp_dir,
            "cache_dir": tmp_path / name / "cache",
            "segment_seconds": 2.0,
            "segment_wait": 10.0,
            "users": TOKENS,
            "watch": False,
            "cluster": ClusterSettings(redis_url=redis.url, node=name, sync_interval=0.2),
        }
        values.update(overrides)
        done = trio.Event()

        async def run(task_status: trio.TaskStatus[RunningServer]) -> None:
            try:
                await serve(Settings(**values), handle_signals=False, task_status=task_status)
            finally:
                done.set()

        running: RunningServer = await nursery.start(run)
        node = Node(name, running.url, running, temp_dir, done)
        nodes.append(node)
        return node

    yield start
    for node in nodes:
        node.running.shutdown.set()
    for node in nodes:
        with trio.fail_after(30):
            await node.done.wait()
        leftovers = list(node.temp_dir.iterdir()) if node.temp_dir.exists() else []
        assert leftovers == [], f"node {node.name} left session dirs: {leftovers}"
        assert session_processes(node.temp_dir) == [], f"node {node.name} left ffmpeg running"


async def create(node: Node, user: str, relpath: str, expect: int = 201, **body: Any) -> Any:
    body.setdefault("media_id", node.media_id(relpath))
    async with node.client(user) as client:
        response = await client.post("/api/v1/sessions", json=body)
    assert response.status_code == expect, response.text
    return response.json()


async def get(node: Node, path: str, user: str = "alice") -> httpx.Response:
    async with node.client(user) as client:
        return await client.get(path)


async def test_a_session_made_on_one_node_plays_on_another(start_node: StartNode) -> None:
    a, b = await start_node("a"), await start_node("b")
    session = await create(a, "alice", "h264_aac.mp4")
    assert session["mode"] == "remux"
    # Made on a, held by nobody yet: a node runs a session once its HLS requests arrive.
    assert a.manager.lookup(session["id"]) is None
    master = await get(b, session["master_url"])
    assert master.status_code == 200 and master.text.startswith("#EXTM3U")
    adopted = b.manager.lookup(session["id"])
    assert adopted is not None and adopted.user == "alice"
    # Adopted exactly as made: the same playlist on both nodes (a adopts it too now).
    index = session["master_url"].replace("master.m3u8", "index.m3u8")
    on_b, on_a = (await get(b, index)).text, (await get(a, index)).text
    assert on_a == on_b and "#EXT-X-ENDLIST" in on_a
    # RFC 8216 6.2.2: remux segments are stateless cuts: any node's bytes are the same.
    segment = session["master_url"].replace("master.m3u8", "seg-1.ts")
    seg_a, seg_b = await get(a, segment), await get(b, segment)
    assert seg_a.status_code == seg_b.status_code == 200
    assert seg_a.content == seg_b.content and seg_a.content[0] == 0x47  # TS sync byte
    # The API on either node knows it; last access comes back with the next sync.
    for node in (a, b):
        found = await get(node, f"/api/v1/sessions/{session['id']}")
        assert found.status_code == 200 and found.json()["id"] == session["id"]


async def test_caps_and_reuse_hold_across_nodes(start_node: StartNode) -> None:
    a = await start_node("a", max_sessions_per_user=2)
    b = await start_node("b", max_sessions_per_user=2)
    first = await create(a, "alice", "h264_aac.mp4")
    # Same user, media and params through the other node: the same session (200).
    again = await create(b, "alice", "h264_aac.mp4", expect=200)
    assert again["id"] == first["id"]
    await create(b, "alice", "two_audio.mp4")
    refused = await create(a, "alice", "multi_track.mkv", expect=429)
    assert refused["error"]["code"] == "too_many_sessions"
    await create(a, "bob", "multi_track.mkv")  # another user's slots are their own
    # Listing on either node shows alice's two, never bob's.
    for node in (a, b):
        listed = (await get(node, "/api/v1/sessions")).json()["items"]
        assert sorted(s["media_id"] for s in listed) == sorted(
            [a.media_id("h264_aac.mp4"), a.media_id("two_audio.mp4")]
        )


async def test_delete_through_another_node_ends_it_everywhere(start_node: StartNode) -> None:
    a, b = await start_node("a"), await start_node("b")
    session = await create(a, "alice", "hevc_opus.mkv")  # a transcode
    assert session["mode"] == "transcode"
    segment = session["master_url"].replace("master.m3u8", "seg-0.ts")
    served = await get(b, segment)
    assert served.status_code == 200 and served.content[0] == 0x47
    held = b.manager.lookup(session["id"])
    assert held is not None and held.transcoder is not None
    assert session_processes(b.temp_dir) or held.encoder_state == "stopped"
    # Bob cannot see or end it on any node: a 404 like a missing one.
    for node in (a, b):
        for method in ("GET", "DELETE"):
            async with node.client("bob") as client:
                response = await client.request(method, f"/api/v1/sessions/{session['id']}")
            assert response.status_code == 404, (node.name, method)
    async with a.client("alice") as client:
        response = await client.delete(f"/api/v1/sessions/{session['id']}")
    assert response.status_code == 204
    # 204 once the encoder on b is dead and its temp dir gone.
    assert b.manager.lookup(session["id"]) is None
    assert session_processes(b.temp_dir) == []
    assert not b.temp_dir.exists() or list(b.temp_dir.iterdir()) == []
    gone = await get(b, segment)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "session_not_found"


async def test_the_encoder_moves_with_the_player(start_node: StartNode) -> None:
    a, b = await start_node("a"), await start_node("b")
    session = await create(a, "alice", "hevc_opus.mkv")
    segment = session["master_url"].replace("master.m3u8", "seg-1.ts")
    assert (await get(b, segment)).status_code == 200
    on_b = b.manager.lookup(session["id"])
    assert on_b is not None
    # The player's requests now reach a (b was taken out of HAProxy, say): a takes it over at
    # the segment asked for, and b stops its encoder as soon as it hears.
    moved = await get(a, segment)
    assert moved.status_code == 200 and moved.content[0] == 0x47
    on_a = a.manager.lookup(session["id"])
    assert on_a is not None and on_a.start_index == 1
    await wait_until(lambda: b.manager.lookup(session["id"]) is None, timeout=10)
    with trio.fail_after(10):
        await on_b.finished.wait()
    assert session_processes(b.temp_dir) == []


async def test_a_node_without_the_media_answers_404_json(
    start_node: StartNode, tmp_path: Path
) -> None:
    a = await start_node("a")
    empty = tmp_path / "empty-library"
    empty.mkdir()
    b = await start_node("b", media=(empty,))
    session = await create(a, "alice", "h264_aac.mp4")
    response = await get(b, session["master_url"])
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "media_not_found"


async def test_redis_down_held_sessions_play_new_ones_503_then_recovery(
    start_node: StartNode, redis: Redis
) -> None:
    a, b = await start_node("a"), await start_node("b")
    playing = await create(a, "alice", "h264_aac.mp4")
    waiting = await create(a, "alice", "two_audio.mp4")  # made, not yet played anywhere
    seg = playing["master_url"].replace("master.m3u8", "seg-{}.ts")
    assert (await get(b, seg.format(0))).status_code == 200  # b holds it now
    redis.stop()
    # The held session plays on: a local hit never asks Redis.
    assert (await get(b, seg.format(1))).status_code == 200
    # A new session, or one this node would have to adopt: a clear 503 with Retry-After.
    refused = await create(a, "bob", "multi_track.mkv", expect=503)
    assert refused["error"]["code"] == "directory_unavailable"
    unknown = await get(a, seg.format(1))
    assert unknown.status_code == 503 and unknown.headers["Retry-After"]
    assert unknown.json()["error"]["code"] == "directory_unavailable"
    # Redis is back, empty (no persistence): no node restarts, b restores what it holds.
    redis.start()
    with trio.fail_after(15):
        while (await get(a, seg.format(2))).status_code != 200:
            await trio.sleep(0.1)
    await create(b, "bob", "multi_track.mkv")
    # The session made but never played was only in Redis: it is gone (README says so).
    lost = await get(b, waiting["master_url"])
    assert lost.status_code == 404
    # The restored one is whole again: alice can end it through a.
    async with a.client("alice") as client:
        assert (await client.delete(f"/api/v1/sessions/{playing['id']}")).status_code == 204
    await wait_until(lambda: b.manager.lookup(playing["id"]) is None, timeout=10)
