"""The capacity benches' load: N HLS players at real playback pace, in their own process.

    python -m bench._players hlstrio BASE_URL TOKENS_FILE N SECONDS [SESSION_JSON]
    python -m bench._players static URL[,URL...] N SECONDS
    python -m bench._players ffmpeg SOURCE OUT_DIR SEGMENTS_URL N SECONDS FFMPEG

hlstrio: a player creates its session (its own user; SESSION_JSON adds fields to the POST body,
e.g. `{"mode": "transcode"}`), reads the master playlist as a player does (the first variant's
media playlist and the DEFAULT=YES rendition of its AUDIO group), fetches both media playlists
and any EXT-X-MAP init segment, then every segment duration the next video segment *and* the
next audio segment, concurrently, as hls.js's two stream controllers do once the buffer is
full. Since renditions, the video segment carries no audio: a player that fetched only it
would be measuring half the work.

static: the client control. Every segment duration each player fetches all of the URLs
(nginx serving one video and one audio segment), to show whether the client is the limit.

ffmpeg: the old server's way for a source whose audio the client cannot take, emulated: each
player starts one ffmpeg (`-c:v copy -c:a aac -ac 2`, the segment muxer, readiness from its
stdout, exactly the pre-renditions argv shape) writing into OUT_DIR/p<i>/, waits for each
segment to be announced, fetches it from nginx (SEGMENTS_URL serves OUT_DIR) and pauses
(SIGSTOP) its ffmpeg once 60 s ahead of the player, continuing it within 30 s, as the old
throttle did. One muxed segment per segment duration: what that server sent.

Players start spread over one segment duration. Prints one JSON line: requests, errors,
segment latency percentiles (request sent -> last byte received; all segments, and per kind),
and this process's CPU seconds and its reaped children's (the ffmpeg processes).
"""

from __future__ import annotations

import json
import random
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import m3u8
import trio

SEGMENT_SECONDS = 6.0
SEGMENT_WAIT_SECONDS = 15.0  # the server's segment_wait: then a 503, an error for a player
THROTTLE_AHEAD_SECONDS = 60.0  # the old (and current) throttle: pause this far ahead...
RESUME_AHEAD_SECONDS = 30.0  # ... continue within this


class Tally:
    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = {}
        self.requests = 0
        self.errors: dict[str, int] = {}
        self.produced = 0  # ffmpeg players: segments their encoders made (played or not)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    def latency(self, kind: str, seconds: float) -> None:
        self.latencies.setdefault(kind, []).append(seconds)


async def _get(client: httpx.AsyncClient, url: str, tally: Tally, what: str) -> bytes | None:
    tally.requests += 1
    try:
        response = await client.get(url)
    except httpx.HTTPError as exc:
        tally.error(f"{what}: {type(exc).__name__}")
        return None
    if response.status_code != 200:
        tally.error(f"{what}: {response.status_code}")
        return None
    return response.content


async def _timed_get(client: httpx.AsyncClient, url: str, tally: Tally, kind: str) -> bytes | None:
    sent = time.perf_counter()
    body = await _get(client, url, tally, kind)
    if body:
        tally.latency(kind, time.perf_counter() - sent)
    return body


class Rendition:
    """A media playlist as a player uses it: segment URLs and the init segment's, if any."""

    def __init__(self, url: str, text: str) -> None:
        playlist = m3u8.loads(text)
        self.segments = [urljoin(url, s.uri) for s in playlist.segments]
        maps = playlist.segment_map or []
        self.init = urljoin(url, maps[0].uri) if maps and maps[0].uri else None


def master_renditions(master_url: str, text: str) -> tuple[str, str | None]:
    """(video playlist URL, default audio playlist URL or None) from a master playlist."""
    master = m3u8.loads(text)
    variant = master.playlists[0]
    video = urljoin(master_url, variant.uri)
    group = variant.stream_info.audio
    audio = next(
        (
            m.uri
            for m in master.media
            if m.type == "AUDIO" and m.group_id == group and m.default == "YES" and m.uri
        ),
        None,
    )
    return video, urljoin(master_url, audio) if audio else None


async def _rendition(
    client: httpx.AsyncClient, url: str, tally: Tally, what: str
) -> Rendition | None:
    text = await _get(client, url, tally, what)
    if text is None:
        return None
    rendition = Rendition(url, text.decode())
    if rendition.init is not None and await _get(client, rendition.init, tally, "init") is None:
        return None
    return rendition


async def hlstrio_player(
    client: httpx.AsyncClient,
    token: str,
    body: dict[str, Any],
    delay: float,
    end: float,
    tally: Tally,
) -> None:
    await trio.sleep(delay)
    auth = {"Authorization": f"Bearer {token}"}
    tally.requests += 1
    try:
        items = (await client.get("/api/v1/media", headers=auth)).json()["items"]
        created = await client.post(
            "/api/v1/sessions", json={"media_id": items[0]["id"], **body}, headers=auth
        )
    except httpx.HTTPError as exc:
        tally.error(f"create: {type(exc).__name__}")
        return
    if created.status_code != 201:
        tally.error(f"create: {created.status_code}")
        return
    session: dict[str, Any] = created.json()
    master_url = session["master_url"]
    try:
        master = await _get(client, master_url, tally, "master")
        if master is None:
            return
        video_url, audio_url = master_renditions(master_url, master.decode())
        video = await _rendition(client, video_url, tally, "index")
        audio = await _rendition(client, audio_url, tally, "audio index") if audio_url else None
        if video is None or (audio_url and audio is None):
            return
        if audio is not None and len(audio.segments) != len(video.segments):
            tally.error("audio and video segment counts differ")
        start = trio.current_time()
        for k, segment in enumerate(video.segments):
            due = start + k * SEGMENT_SECONDS
            if due >= end:
                break
            await trio.sleep_until(due)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_timed_get, client, segment, tally, "video")
                if audio is not None and k < len(audio.segments):
                    nursery.start_soon(_timed_get, client, audio.segments[k], tally, "audio")
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(30):
            await client.delete(f"/api/v1/sessions/{session['id']}", headers=auth)


async def static_player(
    client: httpx.AsyncClient, urls: list[str], delay: float, end: float, tally: Tally
) -> None:
    await trio.sleep(delay)
    due = trio.current_time()
    while due < end:
        await trio.sleep_until(due)
        async with trio.open_nursery() as nursery:
            for k, url in enumerate(urls):
                nursery.start_soon(_timed_get, client, url, tally, f"static {k}")
        due += SEGMENT_SECONDS


def old_server_argv(source: str, out_dir: Path) -> list[str]:
    """The pre-renditions server's encoder for H.264 + audio the client cannot take: video
    copied, the chosen audio encoded to stereo AAC, one ffmpeg per session (its argv shape,
    from git history: segment muxer, readiness on stdout; cut at the source keyframes)."""
    return [
        *("ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "warning", "-nostats"),
        *("-i", source, "-map_metadata", "-1", "-map_chapters", "-1"),
        *("-map", "0:v:0", "-map", "0:a:0", "-c:v", "copy"),
        *("-c:a", "aac", "-b:a", "128000", "-ac", "2"),
        *("-f", "segment", "-segment_format", "mpegts"),
        *("-segment_time", f"{SEGMENT_SECONDS:g}", "-output_ts_offset", "10"),
        *("-segment_list", "pipe:1", "-segment_list_type", "csv"),
        str(out_dir / "seg-%d.ts"),
    ]


class OldSession:
    """What the old server kept per transcode session: segments announced, the throttle."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.closed = -1  # last segment ffmpeg announced
        self.requested = 0  # furthest segment the player asked for
        self.paused = False
        self.changed = trio.Event()

    def announce(self, index: int) -> None:
        self.closed = index
        self.changed.set()
        self.changed = trio.Event()
        ahead = (self.closed - self.requested) * SEGMENT_SECONDS
        if not self.paused and ahead >= THROTTLE_AHEAD_SECONDS:
            self.process.send_signal(signal.SIGSTOP)
            self.paused = True

    def request(self, index: int) -> None:
        self.requested = max(self.requested, index)
        ahead = (self.closed - self.requested) * SEGMENT_SECONDS
        if self.paused and ahead < RESUME_AHEAD_SECONDS:
            self.process.send_signal(signal.SIGCONT)
            self.paused = False

    async def wait_for(self, index: int) -> bool:
        with trio.move_on_after(SEGMENT_WAIT_SECONDS):
            while self.closed < index:
                if self.process.returncode is not None:
                    return False
                await self.changed.wait()
            return True
        return False


async def ffmpeg_player(
    client: httpx.AsyncClient,
    ffmpeg: str,
    source: str,
    out_dir: Path,
    segments_url: str,
    delay: float,
    end: float,
    tally: Tally,
) -> None:
    await trio.sleep(delay)
    out_dir.mkdir(parents=True, exist_ok=True)
    argv = old_server_argv(source, out_dir)
    argv[0] = ffmpeg
    tally.requests += 1  # the session create
    process = await trio.lowlevel.open_process(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    session = OldSession(process)
    start = trio.current_time()

    async def read_announcements() -> None:
        assert process.stdout is not None
        buffer = b""
        while chunk := await process.stdout.receive_some(4096):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                name = line.split(b",", 1)[0].decode()
                if name.startswith("seg-") and name.endswith(".ts"):
                    session.announce(int(name[4:-3]))
        await process.wait()
        session.changed.set()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_announcements)
            k = 0
            while (due := start + k * SEGMENT_SECONDS) < end:
                await trio.sleep_until(due)
                sent = time.perf_counter()
                session.request(k)
                if not await session.wait_for(k):
                    tally.requests += 1
                    tally.error("segment: not ready")
                elif await _get(client, f"{segments_url}/seg-{k}.ts", tally, "segment"):
                    tally.latency("muxed", time.perf_counter() - sent)
                k += 1
            nursery.cancel_scope.cancel()
    finally:
        tally.produced += session.closed + 1
        with trio.CancelScope(shield=True):
            process.send_signal(signal.SIGCONT)
            process.kill()
            await process.wait()


def _percentile(latencies: list[float], p: float) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else 0.0


async def main(argv: list[str]) -> dict[str, Any]:
    kind, rest = argv[0], argv[1:]
    tally = Tally()
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    rng = random.Random(7)
    players: list[Callable[..., Awaitable[None]]] = []
    base = ""
    if kind == "hlstrio":
        base, tokens_file, n, seconds = rest[0], rest[1], int(rest[2]), float(rest[3])
        body: dict[str, Any] = json.loads(rest[4]) if len(rest) > 4 else {}
        tokens = json.loads(Path(tokens_file).read_text())[:n]
        players = [partial(hlstrio_player, token=t, body=body, tally=tally) for t in tokens]
    elif kind == "static":
        urls, n, seconds = rest[0].split(","), int(rest[1]), float(rest[2])
        players = [partial(static_player, urls=urls, tally=tally)] * n
    elif kind == "ffmpeg":
        source, out_root, segments_url = rest[0], Path(rest[1]), rest[2]
        n, seconds = int(rest[3]), float(rest[4])
        ffmpeg = rest[5]
        players = [
            partial(
                ffmpeg_player,
                ffmpeg=ffmpeg,
                source=source,
                out_dir=out_root / f"p{i}",
                segments_url=f"{segments_url}/p{i}",
                tally=tally,
            )
            for i in range(n)
        ]
    else:
        raise SystemExit(f"unknown player kind {kind!r}")
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30.0) as client:
        end = trio.current_time() + seconds
        async with trio.open_nursery() as nursery:
            for play in players:
                delay = rng.uniform(0, SEGMENT_SECONDS)
                nursery.start_soon(partial(play, client, delay=delay, end=end))
    every = [x for xs in tally.latencies.values() for x in xs]
    self_usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "players": len(players),
        "requests": tally.requests,
        "segments": len(every),
        "by_kind": {
            k: {"segments": len(v), "p50": _percentile(v, 0.5), "p99": _percentile(v, 0.99)}
            for k, v in sorted(tally.latencies.items())
        },
        "errors": sum(tally.errors.values()),
        "error_kinds": tally.errors,
        "p50": _percentile(every, 0.50),
        "p99": _percentile(every, 0.99),
        "max": max(every, default=0.0),
        "produced_segments": tally.produced,
        "cpu_self": self_usage.ru_utime + self_usage.ru_stime,
        "cpu_children": children.ru_utime + children.ru_stime,
    }


if __name__ == "__main__":
    print(json.dumps(trio.run(main, sys.argv[1:])), flush=True)
