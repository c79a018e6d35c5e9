"""hlstrio behind real nginx (Debian's package; .ci/run installs it) with docs/nginx.conf.

Without nginx these tests are skipped with the reason, or fail under CI (the `nginx` fixture,
tests/conftest.py).

nginx is started by the test on a free loopback port, in the foreground, with everything (pid,
logs, temp files) under tmp_path, and proxies to an hlstrio started with accel_redirect = true
(segment requests to its accel_listen endpoint, or to the main port when that is off).
ffmpeg plays a transcode stream through it to the end; the segment bytes come from nginx's
sendfile (hlstrio's /metrics counts them as "accel", not "direct").
"""

from __future__ import annotations

import getpass
import os
import signal
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio

from hlstrio.media import probe

from ..support import Harness, decode, play_with_ffmpeg
from .conftest import StartServer
from .test_metrics import scrape, value

DOCS_CONF = Path(__file__).resolve().parents[2] / "docs" / "nginx.conf"


def front_config(prefix: Path, port: int, upstream: str, segments: str, temp_dir: Path) -> str:
    """docs/nginx.conf with the four site values swapped, inside a self-contained main config."""
    site = DOCS_CONF.read_text()
    for old, new in (
        ("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{port};"),
        ("server 127.0.0.1:8000;", f"server {upstream};"),
        ("server 127.0.0.1:8001;", f"server {segments};"),
        ("alias /var/tmp/hlstrio/;", f"alias {temp_dir}/;"),
    ):
        assert site.count(old) == 1, f"docs/nginx.conf changed: {old!r}"
        site = site.replace(old, new)
    # As root, workers would drop to `nobody` and could not read the 0700 session dirs.
    user = f"user {getpass.getuser()};\n" if os.geteuid() == 0 else ""
    temp_paths = "".join(
        f"    {kind}_temp_path {prefix}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"{user}daemon off;\nworker_processes 1;\npid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/error.log warn;\nevents {{ worker_connections 256; }}\n"
        f"http {{\n    access_log {prefix}/access.log;\n{temp_paths}{site}\n}}\n"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _wait_for_port(process: trio.Process, port: int, log: Path) -> None:
    with trio.fail_after(10):
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"nginx exited: {log.read_text() if log.exists() else ''}")
            try:
                stream = await trio.open_tcp_stream("127.0.0.1", port)
            except OSError:
                await trio.sleep(0.02)
            else:
                await stream.aclose()
                return


@asynccontextmanager
async def nginx_front(server: Harness, prefix: Path, nginx: str) -> AsyncIterator[str]:
    """Real nginx (the binary `nginx`) in front of `server`; yields its base URL; stops it
    gracefully after."""
    prefix.mkdir()
    port = _free_port()
    conf = prefix / "nginx.conf"
    main = server.url.removeprefix("http://")
    segments = (server.running.accel_url or server.url).removeprefix("http://")
    conf.write_text(front_config(prefix, port, main, segments, server.temp_dir))
    log = prefix / "startup.log"
    process = await trio.lowlevel.open_process(
        [nginx, "-p", str(prefix), "-c", str(conf), "-e", str(log)],
        stdin=None,
    )
    try:
        await _wait_for_port(process, port, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                process.send_signal(signal.SIGQUIT)  # graceful: let in-flight answers finish
                with trio.move_on_after(10):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                    await process.wait()


async def test_transcode_plays_through_nginx_with_x_accel_redirect(
    nginx: str, start_server: StartServer, media_dir: Path, ffmpeg: str, tmp_path: Path
) -> None:
    server = await start_server(accel_redirect=True, accel_listen="127.0.0.1:0")
    assert server.running.accel_url is not None
    async with (
        nginx_front(server, tmp_path / "nginx", nginx) as front,
        httpx.AsyncClient(base_url=front, timeout=30) as client,
    ):
        # The API passes through nginx unchanged.
        media_id = server.media_id("hevc_opus.mkv")
        created = await client.post("/api/v1/sessions", json={"media_id": media_id})
        assert created.status_code == 201, created.text
        session = created.json()
        assert session["mode"] == "transcode"

        out = await play_with_ffmpeg(ffmpeg, front + session["master_url"], tmp_path / "out.ts")
        played = decode(out)
        source = probe(media_dir / "hevc_opus.mkv")
        assert played.video_seconds == pytest.approx(source.duration, abs=0.5)
        assert played.audio_seconds == pytest.approx(source.duration, abs=0.5)

        # hlstrio itself answers a header naming the file; nginx sends the file.
        segment = session["master_url"].replace("master.m3u8", "seg-0.ts")
        upstream = await server.client.get(server.running.accel_url + segment)
        assert upstream.status_code == 200 and upstream.content == b""
        accel = upstream.headers["x-accel-redirect"]
        assert accel.startswith("/_hlstrio/") and accel.endswith("/seg-0.ts")
        on_disk = (server.temp_dir / accel.removeprefix("/_hlstrio/")).read_bytes()
        through = await client.get(segment)
        assert through.status_code == 200
        assert through.content == on_disk
        assert through.headers["content-type"] == "video/mp2t"
        assert through.headers["cache-control"] == "private, max-age=3600"
        assert "x-accel-redirect" not in through.headers

        # The internal location is not reachable from outside.
        assert (await client.get(accel)).status_code == 404
        # hlstrio's JSON errors pass through as they are.
        missing = await client.get("/hls/no-such-session/seg-0.ts")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "session_not_found"

        samples = await scrape(client)
        assert value(samples, "hlstrio_segment_bytes_total", via="accel") >= len(on_disk)
        # Only the encoded video is on disk; the audio rendition is cut in-process, so hlstrio
        # sends exactly its bytes itself (ffmpeg fetched each audio segment once).
        (audio,) = [r for r in session["renditions"] if r["type"] == "audio"]
        audio_base = session["master_url"].replace("master.m3u8", f"{audio['id']}/")
        audio_playlist = (await client.get(audio_base + "index.m3u8")).text
        audio_bytes = 0
        for name in (line for line in audio_playlist.splitlines() if line.startswith("seg-")):
            audio_bytes += len((await server.client.get(audio_base + name)).content)
        assert value(samples, "hlstrio_segment_bytes_total", via="direct") == audio_bytes
        assert value(samples, "hlstrio_first_segment_seconds_count", mode="transcode") == 1
        # Every segment went through the lean endpoint and was timed there.
        playlist = (await client.get(session["master_url"].replace("master", "index"))).text
        count = value(samples, "hlstrio_http_request_duration_seconds_count", route="segment")
        assert count >= playlist.count("seg-") + 2


async def test_remux_segments_are_relayed_through_nginx(
    nginx: str, start_server: StartServer, tmp_path: Path
) -> None:
    # Remux segments exist only in memory: hlstrio sends the bytes, nginx relays them. No
    # accel_listen here: nginx sends segment requests to the main port (the documented fallback).
    server = await start_server(accel_redirect=True)
    async with (
        nginx_front(server, tmp_path / "nginx", nginx) as front,
        httpx.AsyncClient(base_url=front, timeout=30) as client,
    ):
        session = await server.create("h264_aac.mp4")
        assert session["mode"] == "remux"
        segment = session["master_url"].replace("master.m3u8", "seg-1.ts")
        direct = await server.client.get(segment)
        assert direct.status_code == 200 and "x-accel-redirect" not in direct.headers
        through = await client.get(segment)
        assert through.status_code == 200
        assert through.content == direct.content
        assert through.headers["content-type"] == "video/mp2t"
        playlist = await client.get(session["master_url"])
        assert playlist.headers["content-type"].startswith("application/vnd.apple.mpegurl")
        samples = await scrape(client)
        assert value(samples, "hlstrio_segment_bytes_total", via="direct") == 2 * len(
            direct.content
        )
        assert value(samples, "hlstrio_segment_bytes_total", via="accel") == 0


async def test_the_segment_endpoint_for_nginx_answers_like_the_main_port(
    start_server: StartServer,
) -> None:
    server = await start_server(accel_listen="127.0.0.1:0")
    assert server.running.accel_url is not None
    session = await server.create("h264_aac.mp4")
    segment = session["master_url"].replace("master.m3u8", "seg-1.ts")
    async with httpx.AsyncClient(base_url=server.running.accel_url, timeout=30) as lean:
        main = await server.client.get(segment)
        for _ in range(3):  # keep-alive: several answers on one connection
            got = await lean.get(segment)
            assert got.status_code == 200
            assert got.content == main.content
            for name in ("content-type", "cache-control", "content-length"):
                assert got.headers[name] == main.headers[name], name
        head = await lean.head(segment)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == main.headers["content-length"]
        # Errors: the same JSON bodies and codes as the main port.
        for path in ("/hls/nope/seg-1.ts", segment.replace("seg-1", "seg-999")):
            lean_error, main_error = await lean.get(path), await server.client.get(path)
            assert lean_error.status_code == main_error.status_code == 404
            assert lean_error.json() == main_error.json()
            assert lean_error.headers["cache-control"] == "no-store"
        # It serves segments only.
        for method, path in (("GET", session["master_url"]), ("POST", segment), ("GET", "/x")):
            other = await lean.request(method, path)
            assert other.status_code == 404
            assert other.json()["error"]["code"] == "not_found"
        # A request it cannot parse ends the connection; the next one is served.
        with pytest.raises(httpx.HTTPError):
            await lean.get(segment, headers={"x-big": "x" * 70_000})
        assert (await lean.get(segment)).status_code == 200
