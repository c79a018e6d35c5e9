"""A library that stays current while the server runs: real files, real watcher, real HTTP.

Files are added, rewritten and removed under a root of a running server; the listing follows
(waited on with a deadline, never a blind sleep), and sessions of a file that left or changed
answer their next request with a 410 `media_removed` JSON error, then 404, with nothing left
behind (no ffmpeg, no session dir). Rescans over HTTP share the watcher's machinery.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from hlstrio.media import generate_clip

from ..support import Harness, session_processes, wait_until
from ._spec import check_response
from .conftest import StartServer

ALICE = "alice-token-0123456789"
AUTH = {"Authorization": f"Bearer {ALICE}"}
DEADLINE_SECONDS = 20.0  # generous: two loaded cores; the wait ends as soon as it holds


@pytest.fixture
def library(tmp_path: Path, media_dir: Path) -> Path:
    root = tmp_path / "library"
    root.mkdir()
    shutil.copyfile(media_dir / "h264_aac.mp4", root / "clip.mp4")  # remuxed, 6 s
    shutil.copyfile(media_dir / "hevc_opus.mkv", root / "hevc.mkv")  # transcoded, 4 s
    return root


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = DEADLINE_SECONDS
) -> None:
    """Poll an async condition until it holds, failing after `timeout` seconds."""
    with trio.fail_after(timeout):
        while not await check():
            await trio.sleep(0.05)


async def listing(server: Harness) -> dict[str, dict[str, Any]]:
    response = await server.client.get("/api/v1/media", headers=server.headers)
    assert response.status_code == 200, response.text
    return {item["path"]: item for item in response.json()["items"]}


async def settled(server: Harness) -> None:
    """Wait out scans already due (the start-up catch-up scan), so counts start clean."""
    library = server.running.services.library
    await wait_until(lambda: not library.updating, timeout=DEADLINE_SECONDS)


def replace_atomically(source: Path, target: Path) -> None:
    """Rewrite `target` the way rsync and most tools do: a hidden temp file, then a rename."""
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def segment_url(session: dict[str, Any], index: int) -> str:
    return str(session["master_url"]).replace("master.m3u8", f"seg-{index}.ts")


async def assert_removed_then_gone(server: Harness, session: dict[str, Any], reason: str) -> None:
    """A session whose file left answers once with 410 media_removed (saying why), then the
    session no longer exists (404)."""
    first = await server.client.get(segment_url(session, 1))
    assert first.status_code == 410, (first.status_code, first.text[:200])
    check_response(first)
    error = first.json()["error"]
    assert error["code"] == "media_removed"
    assert reason in error["message"]
    again = await server.client.get(segment_url(session, 1))
    assert again.status_code == 404, again.text
    assert again.json()["error"]["code"] == "session_not_found"


async def test_files_appear_and_changed_files_are_probed_again(
    start_server: StartServer, library: Path, media_dir: Path
) -> None:
    server = await start_server(media=(library,), watch_debounce=0.2)
    await settled(server)
    assert set(await listing(server)) == {"clip.mp4", "hevc.mkv"}

    (library / "Shows").mkdir()
    shutil.copyfile(media_dir / "two_audio.mp4", library / "Shows" / "new.mp4")

    async def new_is_listed() -> bool:
        return "Shows/new.mp4" in await listing(server)

    await eventually(new_is_listed)
    created = await server.create("Shows/new.mp4")
    assert (await server.client.get(segment_url(created, 0))).status_code == 200

    # Rewrite clip.mp4 (6 s) with other content (4 s) while a session plays it.
    old = (await listing(server))["clip.mp4"]
    assert round(old["duration"]) == 6
    session = await server.create("clip.mp4")
    assert (await server.client.get(segment_url(session, 0))).status_code == 200
    replace_atomically(media_dir / "two_audio.mp4", library / "clip.mp4")

    async def reprobed() -> bool:
        item = (await listing(server)).get("clip.mp4")
        return item is not None and round(item["duration"]) == 4

    await eventually(reprobed)
    now = (await listing(server))["clip.mp4"]
    assert now["id"] == old["id"]  # same path, same id: links to it keep working
    assert len(now["audio"]) == 2  # the new file's tracks
    # Its segments were cut by the keyframe index of the old file: it cannot go on.
    await assert_removed_then_gone(server, session, "keyframe index")
    fresh = await server.create("clip.mp4")
    assert round(fresh["duration"]) == 4
    assert (await server.client.get(segment_url(fresh, 0))).status_code == 200
    # A session of an untouched file plays on.
    assert (await server.client.get(segment_url(created, 1))).status_code == 200


async def test_removed_files_end_their_remux_and_transcode_sessions(
    start_server: StartServer, library: Path, long_media_dir: Path
) -> None:
    shutil.copyfile(long_media_dir / "long_hevc.mkv", library / "long.mkv")
    # A small throttle keeps the 2-minute encode paused, alive, when the file goes.
    server = await start_server(media=(library,), watch_debounce=0.2, throttle_ahead=6.0)
    await settled(server)
    remux = await server.create("clip.mp4")
    transcode = await server.create("long.mkv")
    assert transcode["mode"] == "transcode" and remux["mode"] == "remux"
    for session in (remux, transcode):
        assert (await server.client.get(segment_url(session, 0))).status_code == 200
    assert session_processes(server.temp_dir), "the encoder should be running"
    assert list(server.temp_dir.iterdir()), "the transcode session should have its dir"

    (library / "clip.mp4").unlink()
    (library / "long.mkv").unlink()

    async def both_gone() -> bool:
        return not {"clip.mp4", "long.mkv"} & set(await listing(server))

    await eventually(both_gone)
    # Freed when the file left, before any request: the encoder first.
    await wait_until(lambda: session_processes(server.temp_dir) == [], timeout=DEADLINE_SECONDS)
    for session in (remux, transcode):
        await assert_removed_then_gone(server, session, "removed from the library")
    # Ended (the 410 said so once): cleanup finishes in the session's own task.
    registry = server.running.services.manager.registry
    await wait_until(lambda: len(registry) == 0, timeout=DEADLINE_SECONDS)
    await wait_until(lambda: list(server.temp_dir.iterdir()) == [], timeout=DEADLINE_SECONDS)
    assert set(await listing(server)) == {"hevc.mkv"}


async def test_a_burst_of_copies_is_one_scan(
    start_server: StartServer, library: Path, tmp_path: Path, ffmpeg: str
) -> None:
    clip = generate_clip(
        tmp_path / "tiny.mp4", "h264_aac_mp4", ffmpeg=ffmpeg, seconds=1, width=64, height=36
    )
    server = await start_server(media=(library,), watch_debounce=1.0)
    await settled(server)
    lib = server.running.services.library
    before = lib.scans

    def copy_fifty() -> None:
        # Paced like a real copy of bigger files (~1.5 s in all): longer than watchfiles
        # groups events by itself, so only the debounce can make this one scan.
        (library / "burst").mkdir()
        for n in range(50):
            shutil.copyfile(clip, library / "burst" / f"clip {n:02}.mp4")
            time.sleep(0.03)

    await trio.to_thread.run_sync(copy_fifty)

    async def all_listed() -> bool:
        return len(await listing(server)) == 52

    await eventually(all_listed)
    await settled(server)
    scans = lib.scans - before
    assert 1 <= scans <= 2, f"50 copies cost {scans} scans"


async def test_rescan_endpoint(start_server: StartServer, library: Path, media_dir: Path) -> None:
    server = await start_server(media=(library,), watch=False, users={"alice": ALICE})
    server.headers.update(AUTH)
    before = await listing(server)
    shutil.copyfile(media_dir / "two_audio.mp4", library / "added.mp4")
    replace_atomically(media_dir / "two_audio.mp4", library / "clip.mp4")
    (library / "hevc.mkv").unlink()

    denied = await server.client.post("/api/v1/library/rescan")
    assert denied.status_code == 401
    check_response(denied)
    # Not watched: nothing changed on its own (the rescan below is what finds all three).
    assert await listing(server) == before

    response = await server.client.post("/api/v1/library/rescan", headers=AUTH)
    assert response.status_code == 200, response.text
    check_response(response)
    assert response.json() == {
        "added": 1,
        "changed": 1,
        "removed": 1,
        "subtitles_changed": 0,
        "items": 2,
    }
    now = await listing(server)
    assert set(now) == {"added.mp4", "clip.mp4"}
    assert round(now["clip.mp4"]["duration"]) == 4

    # Concurrent rescans share scans; none reports a change the other already took.
    results: list[dict[str, int]] = []

    async def rescan() -> None:
        answer = await server.client.post("/api/v1/library/rescan", headers=AUTH)
        results.append(answer.json())

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(rescan)
    assert [r["added"] + r["changed"] + r["removed"] for r in results] == [0] * 5
    assert server.running.services.library.scans <= 1 + 1 + 5


async def test_the_watch_survives_a_name_that_is_not_utf8(
    start_server: StartServer, library: Path, media_dir: Path
) -> None:
    """watchfiles cannot decode such a name and its watch raises: the server must not stop,
    and the watch, set up again, still sees later changes."""
    server = await start_server(media=(library,), watch_debounce=0.2)
    await settled(server)
    raw = os.path.join(os.fsencode(library), b"caf\xe9.mp4")
    with open(raw, "wb") as f:
        f.write((media_dir / "two_audio.mp4").read_bytes())

    async def latin_is_listed() -> bool:
        return "caf\ufffd.mp4" in await listing(server)  # the catch-up scan found it

    await eventually(latin_is_listed)
    shutil.copyfile(media_dir / "two_audio.mp4", library / "later.mp4")

    async def later_is_listed() -> bool:
        return "later.mp4" in await listing(server)

    await eventually(later_is_listed)


def _watcher_threads() -> list[str]:
    """Names of this process's threads that belong to watchfiles' Rust watcher."""
    names = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/comm") as f:
                names.append(f.read().strip())
        except OSError:
            continue
    return [n for n in names if n.startswith("notify-rs")]


async def test_the_watcher_stops_with_the_server(start_server: StartServer, library: Path) -> None:
    # An earlier test's watcher thread ends shortly after its server did: wait for that, so
    # the count below is this server's (a thread that never ends fails here too).
    await wait_until(lambda: _watcher_threads() == [], timeout=DEADLINE_SECONDS)
    server = await start_server(media=(library,))
    assert _watcher_threads() != []  # inotify, watched from its own thread
    server.running.shutdown.set()
    # Shutdown cancels the watch: its thread ends, no worker is left blocked in it.
    await wait_until(lambda: _watcher_threads() == [], timeout=DEADLINE_SECONDS)


@pytest.mark.parametrize("rewritten", [False, True], ids=["unchanged", "rewritten"])
async def test_a_rescan_while_a_session_is_made_fails_it_only_if_the_file_changed(
    start_server: StartServer,
    library: Path,
    media_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    rewritten: bool,
) -> None:
    # Every scan builds new item objects; only another version of the file may fail a create
    # that a scan overtook (the seeded soak once hit the false "changed" on an unchanged file).
    server = await start_server(media=(library,), watch=False)
    lib = server.running.services.library
    media_id = server.media_id("clip.mp4")
    verify = lib.verify_files

    def verify_then_rescan(item: Any) -> Any:
        files = verify(item)
        if rewritten:
            os.utime(library / "clip.mp4", ns=(1, 1))  # another version: mtime differs
        trio.from_thread.run(lib.rescan)  # published while the create awaits this thread
        return files

    monkeypatch.setattr(lib, "verify_files", verify_then_rescan)
    response = await server.client.post("/api/v1/sessions", json={"media_id": media_id})
    if rewritten:
        assert response.status_code == 404, response.text
        assert "changed while the session was being made" in response.json()["error"]["message"]
    else:
        assert response.status_code == 201, response.text
    check_response(response)
    assert lib.get(media_id) is not None
