"""The JSON API over real HTTP: library, session lifecycle, auth and ownership, bad input."""

from __future__ import annotations

import pytest

from ..support import Harness, session_processes
from .conftest import StartServer

ALICE = "alice-token-0123456789"
BOB = "bob-token-0123456789ab"


def assert_error(response: object, status: int, code: str | None = None) -> None:
    import httpx

    assert isinstance(response, httpx.Response)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code


async def test_healthz(start_server: StartServer) -> None:
    server = await start_server()
    response = await server.client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_library_lists_playable_files_and_skips_broken_ones(
    start_server: StartServer,
) -> None:
    server = await start_server()
    items = (await server.client.get("/api/v1/media")).json()["items"]
    paths = sorted(item["path"] for item in items)
    assert paths == ["h264_aac.mp4", "hevc_opus.mkv", "multi_track.mkv", "two_audio.mp4"]
    item = next(i for i in items if i["path"] == "h264_aac.mp4")
    assert set(item) == {
        *("id", "title", "path", "duration", "container", "video", "audio", "subtitles")
    }
    assert item["video"]["codec"] == "h264" and item["video"]["height"] == 180
    detail = await server.client.get(f"/api/v1/media/{item['id']}")
    assert detail.json() == item


async def test_media_ids_are_stable_across_restarts(start_server: StartServer) -> None:
    first = await start_server()
    second = await start_server()
    ids_a = {i["path"]: i["id"] for i in (await first.client.get("/api/v1/media")).json()["items"]}
    ids_b = {i["path"]: i["id"] for i in (await second.client.get("/api/v1/media")).json()["items"]}
    assert ids_a == ids_b


async def test_unknown_media(start_server: StartServer) -> None:
    server = await start_server()
    assert_error(await server.client.get("/api/v1/media/nope"), 404, "media_not_found")
    response = await server.client.post("/api/v1/sessions", json={"media_id": "nope"})
    assert_error(response, 404, "media_not_found")


async def test_session_reuse_and_replacement(start_server: StartServer) -> None:
    server = await start_server()
    first = await server.create("h264_aac.mp4")
    again = await server.create("h264_aac.mp4", expect=200)
    assert again["id"] == first["id"]

    replaced = await server.create("h264_aac.mp4", start=2.0)
    assert replaced["id"] != first["id"]
    assert_error(await server.client.get(f"/api/v1/sessions/{first['id']}"), 404)
    assert_error(await server.client.get(first["master_url"]), 404, "session_not_found")
    listed = (await server.client.get("/api/v1/sessions")).json()["items"]
    assert [s["id"] for s in listed] == [replaced["id"]]
    playlist = (await server.client.get(replaced["master_url"].replace("master", "index"))).text
    assert "#EXT-X-START:TIME-OFFSET=2.000" in playlist


async def test_replacing_a_transcode_kills_its_encoder(start_server: StartServer) -> None:
    server = await start_server()
    first = await server.create("hevc_opus.mkv")
    old = server.running.services.manager.lookup(first["id"])
    assert old is not None
    await server.create("hevc_opus.mkv", start=1.0)
    import trio

    with trio.fail_after(10):
        await old.finished.wait()
    assert old.temp_dir is not None and not old.temp_dir.exists()


async def test_bad_bodies_are_400(start_server: StartServer) -> None:
    server = await start_server()
    media_id = server.media_id("h264_aac.mp4")
    post = server.client.post
    headers = {"content-type": "application/json"}
    assert_error(
        await post("/api/v1/sessions", content=b"{not json", headers=headers), 400, "bad_json"
    )
    assert_error(await post("/api/v1/sessions", content=b"\xff\xfe", headers=headers), 400)
    assert_error(await post("/api/v1/sessions", json=[1, 2]), 400)
    assert_error(await post("/api/v1/sessions", json={}), 400)
    assert_error(await post("/api/v1/sessions", json={"media_id": 5}), 400)
    assert_error(await post("/api/v1/sessions", json={"media_id": media_id, "start": "x"}), 400)
    assert_error(await post("/api/v1/sessions", json={"media_id": media_id, "start": -1}), 400)
    assert_error(await post("/api/v1/sessions", json={"media_id": media_id, "start": 1e9}), 400)
    assert_error(await post("/api/v1/sessions", json={"media_id": media_id, "mode": "fast"}), 400)
    assert_error(await post("/api/v1/sessions", json={"media_id": media_id, "bogus": 1}), 400)
    assert_error(
        await post("/api/v1/sessions", json={"media_id": media_id, "capabilities": []}), 400
    )
    # An audio track the media does not have is a bad parameter, not unplayable media.
    assert_error(
        await post("/api/v1/sessions", json={"media_id": media_id, "audio": 99}),
        400,
        "unknown_audio",
    )
    assert_error(
        await post("/api/v1/sessions", json={"media_id": media_id, "audio": "xx"}),
        400,
        "unknown_audio",
    )
    assert_error(await post("/api/v1/sessions", json={"media_id": media_id, "audio": "1"}), 400)
    assert_error(
        await post("/api/v1/sessions", content=b"[" * 70_000 + b"]" * 70_000, headers=headers), 413
    )
    assert len(server.running.services.manager.registry) == 0


async def test_forced_remux_of_hevc_is_415(start_server: StartServer) -> None:
    server = await start_server()
    body = {"media_id": server.media_id("hevc_opus.mkv"), "mode": "remux"}
    assert_error(await server.client.post("/api/v1/sessions", json=body), 415, "cannot_remux")


async def test_hevc_capable_client_gets_the_video_copied_and_aac_made_in_process(
    start_server: StartServer,
) -> None:
    server = await start_server()
    caps = {"video_codecs": ["h264", "hevc"], "audio_codecs": ["aac"], "containers": ["fmp4"]}
    session = await server.create("hevc_opus.mkv", capabilities=caps)
    # The HEVC is copied (in fMP4: Apple 1.5), the Opus the client cannot decode becomes an
    # AAC rendition made in-process: no encoder process, so still a remux.
    assert (session["mode"], session["video_action"], session["audio_action"]) == (
        "remux",
        "copy",
        "encode",
    )
    assert session["container"] == "fmp4"


async def test_unknown_routes_and_methods_are_json(start_server: StartServer) -> None:
    server = await start_server()
    assert_error(await server.client.get("/nope"), 404, "not_found")
    assert_error(await server.client.put("/api/v1/sessions"), 405, "method_not_allowed")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/media/..%2F..%2Fetc%2Fpasswd",
        "/api/v1/media/%2e%2e",
        "/api/v1/media/..",
        "/api/v1/media//etc/passwd",
        "/api/v1/media/h264_aac.mp4",
        "/hls/..%2F..%2Fetc%2Fpasswd/master.m3u8",
        "/hls/x/seg-..%2F..%2Fetc%2Fpasswd.ts",
        "/hls/x/seg--1.ts",
        "/hls/x/seg-1e3.ts",
        "/hls/x/../../etc/passwd",
        "/hls/%00/master.m3u8",
    ],
)
async def test_traversal_never_serves_a_file(start_server: StartServer, path: str) -> None:
    server = await start_server()
    response = await server.client.get(path)
    assert response.status_code in (400, 404)
    assert response.headers["content-type"].startswith("application/json")
    assert b"root:" not in response.content


async def test_traversal_in_segment_names_of_a_live_session(start_server: StartServer) -> None:
    server = await start_server()
    session = await server.create("hevc_opus.mkv")
    base = session["master_url"].replace("master.m3u8", "")
    for name in [
        "seg-../../../etc/passwd",
        "seg-0.ts/../../x",
        "..%2Fseg-0.ts",
        "seg-99.ts",
        "seg-99999999999999999999999.ts",
        "seg-%30.ts%00",
    ]:
        response = await server.client.get(base + name)
        assert response.status_code == 404, name
        assert b"root:" not in response.content


async def test_caps_give_429(start_server: StartServer) -> None:
    server = await start_server(max_sessions_per_user=2, max_transcodes=1)
    await server.create("h264_aac.mp4")
    await server.create("hevc_opus.mkv")
    response = await server.client.post(
        "/api/v1/sessions", json={"media_id": server.media_id("two_audio.mp4")}
    )
    assert_error(response, 429, "too_many_sessions")
    assert "retry-after" in response.headers
    # Replacing one's own session does not count twice.
    await server.create("h264_aac.mp4", start=1.0)


async def test_transcode_cap_starts_no_ffmpeg(start_server: StartServer) -> None:
    server = await start_server(max_transcodes=1)
    await server.create("hevc_opus.mkv")
    body = {"media_id": server.media_id("two_audio.mp4"), "mode": "transcode"}
    assert_error(await server.client.post("/api/v1/sessions", json=body), 429)
    assert len(session_processes(server.temp_dir)) <= 1
    assert len(server.running.services.manager.registry) == 1


async def auth_server(start_server: StartServer) -> Harness:
    return await start_server(users={"alice": ALICE, "bob": BOB})


async def test_auth_required(start_server: StartServer) -> None:
    server = await auth_server(start_server)
    assert_error(await server.client.get("/api/v1/media"), 401, "unauthorized")
    bad = {"Authorization": "Bearer wrong-token-000000000"}
    assert_error(await server.client.get("/api/v1/media", headers=bad), 401)
    assert_error(await server.client.get("/api/v1/media", headers={"Authorization": ALICE}), 401)
    ok = await server.client.get("/api/v1/media", headers={"Authorization": f"Bearer {ALICE}"})
    assert ok.status_code == 200
    assert (await server.client.get("/healthz")).status_code == 200


async def test_other_users_session_is_a_404(start_server: StartServer) -> None:
    server = await auth_server(start_server)
    alice = {"Authorization": f"Bearer {ALICE}"}
    bob = {"Authorization": f"Bearer {BOB}"}
    server.headers = alice
    session = await server.create("h264_aac.mp4")
    sid = session["id"]
    assert (await server.client.get(f"/api/v1/sessions/{sid}", headers=alice)).status_code == 200
    assert_error(await server.client.get(f"/api/v1/sessions/{sid}", headers=bob), 404)
    assert_error(await server.client.delete(f"/api/v1/sessions/{sid}", headers=bob), 404)
    assert (await server.client.get("/api/v1/sessions", headers=bob)).json()["items"] == []
    # Bob's own session for the same media is his, not Alice's.
    server.headers = bob
    bobs = await server.create("h264_aac.mp4")
    assert bobs["id"] != sid
    # Still Alice's, still playing: HLS URLs are capability URLs and need no header.
    assert (await server.client.get(session["master_url"])).status_code == 200
    assert (await server.client.delete(f"/api/v1/sessions/{sid}", headers=alice)).status_code == 204


async def test_sessions_share_one_remux_cache(start_server: StartServer) -> None:
    server = await start_server()
    manager = server.running.services.manager
    for name in ("h264_aac.mp4", "two_audio.mp4"):
        session = await server.create(name)
        url = session["master_url"].replace("master.m3u8", "seg-0.ts")
        assert (await server.client.get(url)).status_code == 200
    # Both cuts live in the manager's one byte-capped cache, not in per-session ones.
    assert len(manager.context.cache) == 2
    assert manager.context.cache.bytes <= server.running.services.settings.remux_cache_bytes
