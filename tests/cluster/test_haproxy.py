"""Three real hlstrio nodes behind real HAProxy (docs/cluster/haproxy.cfg) and real Redis.

ffmpeg is the player (`-re`: it reads at playback speed, so a node can die mid-stream); the
node serving it is SIGKILLed (no cleanup of its own). The player must still end with the
whole file, the dead node's encoders must die with it (its reaper) and its session dirs go
at its restart. The measured gap and the slowest answer after the kill are printed (`-s`).

The quick tests run in `nox -s tests`; the long ones (`full_only`) in `nox -s cluster`.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import coredis
import httpx
import pytest
import trio

from hlstrio._ffmpeg import ffmpeg_exe
from hlstrio.media import generate_clip

from ..support import decode, hls_client_argv, session_processes
from ._procs import Haproxy, Node, Redis
from .conftest import FULL, full_only

USERS = ("alice", "bob", "carol", "dave", "erin")
TOKENS = {user: f"{user}-token-{'0' * 16}" for user in USERS}
NODE_CONFIG = (
    "segment_seconds = 2\nmax_sessions_per_user = 2\nthrottle_ahead = 6\nwatch = false\n"
    + "".join(f'[users.{user}]\ntoken = "{token}"\n' for user, token in TOKENS.items())
)
FPS = 24  # generate_clip's frame rate
# The transcode clip is long only where the long tests run (it takes a while to make).
REMUX_SECONDS, TRANSCODE_SECONDS = 12, 30 if FULL else 4
SEGMENT_SECONDS = 2


@dataclass
class Cluster:
    redis: Redis
    nodes: list[Node]
    haproxy: Haproxy

    @property
    def url(self) -> str:
        return self.haproxy.url

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def heal(self) -> None:
        """Every process up and every node taken as up by HAProxy (a test may kill some)."""
        if not self.redis.running:
            self.redis.start()
        dead = [n for n in self.nodes if not n.running]
        for node in dead:
            node.launch()
        for node in dead:
            node.wait()
        self.wait_up({n.name for n in self.nodes})

    def wait_up(self, names: set[str], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.haproxy.up() != names or self.haproxy.up("hlstrio_api") != names:
            if time.monotonic() > deadline:
                raise AssertionError(f"HAProxy sees {self.haproxy.up()} up, not {names}")
            time.sleep(0.05)


@pytest.fixture(scope="module")
def cluster(
    redis_server: str, haproxy: str, ffmpeg: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    pytest.importorskip("coredis")
    root = tmp_path_factory.mktemp("cluster")
    media = root / "media"
    media.mkdir()
    size = {"width": 160, "height": 90}
    generate_clip(media / "remux.mp4", "h264_aac_mp4", ffmpeg=ffmpeg, seconds=REMUX_SECONDS, **size)
    generate_clip(
        media / "transcode.mkv", "hevc_opus_mkv", ffmpeg=ffmpeg, seconds=TRANSCODE_SECONDS, **size
    )
    generate_clip(media / "third.mp4", "h264_aac_mp4", ffmpeg=ffmpeg, seconds=2, **size)
    redis = Redis(root / "redis").start()
    nodes = [Node(f"node{i}", root / f"node{i}", media, redis.url, NODE_CONFIG) for i in (1, 2, 3)]
    proxy = None
    try:
        for node in nodes:
            node.launch()
        for node in nodes:
            node.wait()
        proxy = Haproxy(root / "haproxy", nodes).start()
        cluster = Cluster(redis, nodes, proxy)
        cluster.wait_up({n.name for n in nodes})
        yield cluster
    finally:
        for node in nodes:
            node.stop()
        if proxy is not None:
            proxy.stop()
        redis.stop()
    for node in nodes:
        assert session_processes(node.temp_dir) == [], f"{node.name} left ffmpeg running"
        left = list(node.temp_dir.iterdir()) if node.temp_dir.exists() else []
        assert left == [], f"{node.name} left session dirs: {left}"


@pytest.fixture
async def healthy(cluster: Cluster) -> Cluster:
    await trio.to_thread.run_sync(cluster.heal)
    return cluster


def client(cluster: Cluster, user: str, base: str | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base or cluster.url,
        timeout=30,
        headers={"Authorization": f"Bearer {TOKENS[user]}"},
    )


async def create(cluster: Cluster, user: str, path: str, expect: int = 201) -> dict[str, Any]:
    async with client(cluster, user) as http:
        items = (await http.get("/api/v1/media")).json()["items"]
        media_id = next(i["id"] for i in items if i["path"] == path)
        response = await http.post("/api/v1/sessions", json={"media_id": media_id})
    assert response.status_code == expect, response.text
    data: dict[str, Any] = response.json()
    return data


async def record_field(cluster: Cluster, session_id: str, field: str) -> str | None:
    """A field of the session's record in Redis (which node served it, holds its lease)."""
    async with coredis.Redis.from_url(cluster.redis.url, decode_responses=True) as redis:
        value: str | None = await redis.hget(f"hlstrio:s:{session_id}", field)
        return value


async def until(predicate: Any, timeout: float = 20.0) -> None:
    with trio.fail_after(timeout):
        while not await predicate():
            await trio.sleep(0.05)


def player_argv(cluster: Cluster, session: dict[str, Any], out: Path) -> list[str]:
    """The bundled ffmpeg as the HLS player, through HAProxy, at playback speed (-re)."""
    argv = hls_client_argv(ffmpeg_exe(), cluster.url + session["master_url"], out)
    argv.insert(argv.index("-i"), "-re")
    return argv


@dataclass
class Played:
    frames: int
    video_seconds: float
    audio_seconds: float
    largest_jump: float  # largest gap between consecutive video frames, s
    slowest_after_kill: float  # slowest segment answer through HAProxy after the kill, s


async def play_and_kill(
    cluster: Cluster, session: dict[str, Any], out: Path, *, check_encoder: bool
) -> tuple[Played, Node]:
    """ffmpeg plays `session` through HAProxy at 1x; once a quarter of it is written, the node
    serving it is SIGKILLed. Returns what the player got and the dead node."""
    import imageio_ffmpeg  # the bundled ffmpeg, as the player

    argv = hls_client_argv(
        imageio_ffmpeg.get_ffmpeg_exe(), cluster.url + session["master_url"], out
    )
    argv.insert(argv.index("-i"), "-re")
    seconds = session["duration"]
    result: list[Any] = []

    async def player() -> None:
        result.append(await trio.run_process(argv, capture_stderr=True, check=False))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(player)

        # Mid-stream: the player asked for this segment, and as many are still to come.
        half = f"/hls/{session['id']}/seg-{round(seconds / 2 / SEGMENT_SECONDS) - 1}.ts "

        async def halfway() -> bool:
            return half in _log_text(cluster, 0)

        await until(halfway, timeout=seconds + 30)
        victim = cluster.node(str(await record_field(cluster, session["id"], "seen")))
        if check_encoder:
            assert await record_field(cluster, session["id"], "lease") == victim.name
            encoders = session_processes(victim.temp_dir)
            assert encoders, "the serving node runs no encoder at the kill"
        log_from = _log_size(cluster)
        killed_at = time.monotonic()
        await trio.to_thread.run_sync(victim.kill)
    completed = result[0]
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")[-2000:]
    decoded = decode(out)
    played = Played(
        decoded.video_frames,
        decoded.video_seconds,
        decoded.audio_seconds,
        _largest_jump(out),
        _slowest_answer(cluster, log_from),
    )
    print(
        f"\ncluster failover ({session['mode']}): node {victim.name} killed "
        f"{time.monotonic() - killed_at:.1f} s before the player ended; {played}"
    )
    return played, victim


def _largest_jump(out: Path) -> float:
    import av

    with av.open(str(out)) as container:
        times = sorted(f.time for f in container.decode(video=0) if f.time is not None)
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def _log_size(cluster: Cluster) -> int:
    log = cluster.haproxy.root / "haproxy.log"
    return log.stat().st_size if log.exists() else 0


# httplog: ... TR/Tw/Tc/Tr/Ta status bytes ... "GET /hls/.../seg-N.ts HTTP/1.1"
_ANSWER = re.compile(r" -?\d+/-?\d+/-?\d+/-?\d+/(\d+) (\d{3}) .*\"GET /hls/\S+\.ts ")


def _log_text(cluster: Cluster, start: int) -> str:
    return (cluster.haproxy.root / "haproxy.log").read_bytes()[start:].decode(errors="replace")


def _slowest_answer(cluster: Cluster, start: int) -> float:
    text = _log_text(cluster, start)
    times = [int(m.group(1)) / 1000 for m in _ANSWER.finditer(text)]
    return max(times, default=0.0)


def assert_whole(played: Played, seconds: float) -> None:
    # Every frame of the source, on one timeline (RFC 8216 6.3.3: the client plays segments
    # in order; a lost or repeated segment would show as missing frames or a jump).
    assert played.frames == round(seconds * FPS), played
    assert played.largest_jump <= 1.5 / FPS, played
    assert abs(played.audio_seconds - seconds) < 0.2, played


async def dead_node_leaves_nothing(cluster: Cluster, victim: Node) -> None:
    """Its encoders die with it (the reaper); its session dirs go when it starts again."""
    with trio.fail_after(15):
        while session_processes(victim.temp_dir):
            await trio.sleep(0.05)
    await trio.to_thread.run_sync(victim.start)
    with trio.fail_after(15):
        while victim.temp_dir.exists() and list(victim.temp_dir.iterdir()):
            await trio.sleep(0.05)


# -- quick: in `nox -s tests` ---------------------------------------------------------------


async def test_remux_player_survives_its_node_being_killed(
    healthy: Cluster, tmp_path: Path
) -> None:
    session = await create(healthy, "alice", "remux.mp4")
    assert session["mode"] == "remux"
    played, victim = await play_and_kill(healthy, session, tmp_path / "out.ts", check_encoder=False)
    assert_whole(played, REMUX_SECONDS)
    await dead_node_leaves_nothing(healthy, victim)


async def test_caps_delete_and_ownership_across_nodes_through_haproxy(healthy: Cluster) -> None:
    # API calls go round-robin: bob's creates land on different nodes; his cap (2) counts all.
    await create(healthy, "bob", "remux.mp4")
    await create(healthy, "bob", "transcode.mkv")
    for _ in healthy.nodes:  # refused on every node
        refused = await create(healthy, "bob", "third.mp4", expect=429)
        assert refused["error"]["code"] == "too_many_sessions"
    session = await create(healthy, "carol", "transcode.mkv")
    # Bob sees none of carol's sessions on any node, and cannot end them.
    for node in healthy.nodes:
        async with client(healthy, "bob", node.url) as http:
            assert (await http.get(f"/api/v1/sessions/{session['id']}")).status_code == 404
            assert (await http.delete(f"/api/v1/sessions/{session['id']}")).status_code == 404
            listed = (await http.get("/api/v1/sessions")).json()["items"]
            assert len(listed) == 2 and session["id"] not in {s["id"] for s in listed}
    async with client(healthy, "carol") as http:
        # Played through HAProxy: the node its id hashes to holds it and runs its encoder.
        segment = await http.get(session["master_url"].replace("master.m3u8", "seg-0.ts"))
        assert segment.status_code == 200 and segment.content[0] == 0x47
        holder = healthy.node(str(await record_field(healthy, session["id"], "lease")))
        # DELETE through a node that does not hold it: 204 once the holder's encoder is dead.
        other = next(n for n in healthy.nodes if n is not holder)
        async with client(healthy, "carol", other.url) as direct:
            deleted = await direct.delete(f"/api/v1/sessions/{session['id']}")
        assert deleted.status_code == 204
        assert session_processes(holder.temp_dir) == []
        gone = await http.get(session["master_url"].replace("master.m3u8", "seg-1.ts"))
        assert gone.status_code == 404
    for node in healthy.nodes:
        async with client(healthy, "carol", node.url) as http:
            assert (await http.get(f"/api/v1/sessions/{session['id']}")).status_code == 404


# -- long: in `nox -s cluster` ---------------------------------------------------------------


@full_only
async def test_transcode_player_survives_its_node_being_killed(
    healthy: Cluster, tmp_path: Path
) -> None:
    session = await create(healthy, "dave", "transcode.mkv")
    assert session["mode"] == "transcode"
    played, victim = await play_and_kill(healthy, session, tmp_path / "out.ts", check_encoder=True)
    assert_whole(played, TRANSCODE_SECONDS)
    await dead_node_leaves_nothing(healthy, victim)


@full_only
async def test_players_keep_playing_while_redis_is_down(healthy: Cluster, tmp_path: Path) -> None:
    import imageio_ffmpeg

    session = await create(healthy, "erin", "remux.mp4")
    out = tmp_path / "out.ts"
    argv = hls_client_argv(
        imageio_ffmpeg.get_ffmpeg_exe(), healthy.url + session["master_url"], out
    )
    argv.insert(argv.index("-i"), "-re")
    result: list[Any] = []

    async def player() -> None:
        result.append(await trio.run_process(argv, capture_stderr=True, check=False))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(player)

        async def started() -> bool:
            return bool(await record_field(healthy, session["id"], "seen")) and out.exists()

        await until(started)
        await trio.to_thread.run_sync(healthy.redis.stop)
        # New sessions: a clear 503 JSON, wherever they land.
        async with client(healthy, "bob") as http:
            items = (await http.get("/api/v1/media")).json()["items"]
            for _ in healthy.nodes:
                refused = await http.post("/api/v1/sessions", json={"media_id": items[0]["id"]})
                assert refused.status_code == 503, refused.text
                assert refused.json()["error"]["code"] == "directory_unavailable"
                assert refused.headers["Retry-After"]
        await trio.to_thread.run_sync(healthy.redis.start)  # empty: no persistence
        # The nodes reconnect by themselves: a new session works again, without restarts.
        async with client(healthy, "bob") as http:
            with trio.fail_after(20):
                while True:
                    again = await http.post("/api/v1/sessions", json={"media_id": items[0]["id"]})
                    if again.status_code == 201:
                        break
                    assert again.status_code == 503
                    await trio.sleep(0.1)
    completed = result[0]
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")[-2000:]
    decoded = decode(out)
    assert decoded.video_frames == REMUX_SECONDS * FPS
    # The player's session was restored by the node holding it: alice's DELETE works.
    async with client(healthy, "erin") as http:
        with trio.fail_after(10):
            while (await http.delete(f"/api/v1/sessions/{session['id']}")).status_code != 204:
                await trio.sleep(0.1)
