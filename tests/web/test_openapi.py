"""The checked-in OpenAPI spec stays true: routes <-> paths, and live answers <-> schemas."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import m3u8
import trio

from hlstrio.web import create_app
from hlstrio.web._openapi import load_spec

from ..support import fake_ffmpeg, wait_until
from ._spec import check_response, operation, spec
from .conftest import StartServer

ALICE = "alice-token-0123456789"
AUTH = {"Authorization": f"Bearer {ALICE}"}
REPO = Path(__file__).resolve().parents[2]
# Answered by the ASGI layer in front of Quart (web/_fast.py), so not in the url_map; each is
# requested live below, so this list cannot go stale silently.
OUTSIDE_QUART = {("/metrics", "get")}


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_spec_is_well_formed() -> None:
    document = spec()
    assert document["openapi"].startswith("3.1.")
    for schema in document["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)  # raises on a malformed schema
    for ref in _refs(document):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[1] in document["components"]["schemas"], ref
    operation_ids = [
        op["operationId"]
        for item in document["paths"].values()
        for method, op in item.items()
        if method != "parameters"
    ]
    assert len(operation_ids) == len(set(operation_ids))
    for template, item in document["paths"].items():
        declared = {p["name"] for p in item.get("parameters", []) if p["in"] == "path"}
        assert declared == set(re.findall(r"\{([^}]+)\}", template)), template


def test_spec_ships_as_package_data() -> None:
    # A wheel install must carry the file, not only an editable checkout.
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "openapi.json" in pyproject["tool"]["setuptools"]["package-data"]["hlstrio.web"]


async def test_every_route_is_described_and_every_description_is_a_route(
    start_server: StartServer,
) -> None:
    server = await start_server()
    app = create_app(server.running.services)
    routes = set()
    for rule in app.url_map.iter_rules():
        template = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        for method in rule.methods or ():
            if method not in ("HEAD", "OPTIONS"):  # added by Quart to every GET route / rule
                routes.add((template, method.lower()))
    described = {
        (template, method)
        for template, item in spec()["paths"].items()
        for method in item
        if method != "parameters"
    }
    for template, method in OUTSIDE_QUART:
        response = await server.client.request(method, template)
        assert response.status_code == 200, (template, response.status_code)
        routes.add((template, method))
    assert routes - described == set(), "routes missing from openapi.json"
    assert described - routes == set(), "openapi.json describes routes the app does not have"


async def test_openapi_json_is_served(start_server: StartServer) -> None:
    server = await start_server()
    response = await server.client.get("/openapi.json")
    check_response(response)
    assert response.json() == load_spec()


async def test_live_responses_match_the_spec(start_server: StartServer) -> None:
    """A tour of every operation and most documented statuses, each answer checked against its
    schema and against the status this very request must get."""
    server = await start_server(users={"alice": ALICE}, max_sessions_per_user=2)
    client = server.client
    seen: set[tuple[str, str, int]] = set()

    async def call(status: int, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await client.request(method, path, **kwargs)
        assert response.status_code == status, (method, path, response.status_code, response.text)
        op = check_response(response)
        seen.add((op.template, op.method, response.status_code))
        return response

    await call(200, "GET", "/healthz")
    await call(401, "GET", "/api/v1/media")
    items = (await call(200, "GET", "/api/v1/media", headers=AUTH)).json()["items"]
    by_path = {item["path"]: item["id"] for item in items}
    remux_id, transcode_id = by_path["h264_aac.mp4"], by_path["hevc_opus.mkv"]
    await call(200, "GET", f"/api/v1/media/{remux_id}", headers=AUTH)
    await call(404, "GET", "/api/v1/media/nope", headers=AUTH)
    await call(404, "GET", "/api/v1/media/nope/poster.jpg", headers=AUTH)
    await call(400, "GET", f"/api/v1/media/{remux_id}/poster.jpg?w=7", headers=AUTH)
    await call(401, "GET", "/api/v1/media/nope/poster.jpg")

    post = "/api/v1/sessions"
    remux = await call(201, "POST", post, json={"media_id": remux_id}, headers=AUTH)
    assert remux.headers["location"].endswith(remux.json()["id"])
    again = await call(200, "POST", post, json={"media_id": remux_id}, headers=AUTH)
    assert again.json()["id"] == remux.json()["id"]  # same user, media, parameters: reused
    transcode = await call(201, "POST", post, json={"media_id": transcode_id}, headers=AUTH)
    assert transcode.json()["mode"] == "transcode"
    await call(429, "POST", post, json={"media_id": by_path["two_audio.mp4"]}, headers=AUTH)
    for body in (b"{", b"[]", b'{"media_id": "x", "nope": 1}', b'{"media_id": 3}'):
        await call(400, "POST", post, content=body, headers=AUTH)
    await call(404, "POST", post, json={"media_id": "nope"}, headers=AUTH)
    await call(413, "POST", post, content=b" " * (65 * 1024), headers=AUTH)
    hevc_copy = {"media_id": transcode_id, "mode": "remux"}  # for a client with H.264 only
    await call(415, "POST", post, json=hevc_copy, headers=AUTH)
    await call(401, "POST", post, json={"media_id": "x"})

    await call(200, "GET", post, headers=AUTH)
    await call(401, "GET", post)
    for session in (remux.json(), transcode.json()):
        sid, master = session["id"], session["master_url"]
        await call(200, "GET", f"/api/v1/sessions/{sid}", headers=AUTH)
        await call(200, "GET", master)
        await call(200, "GET", master.replace("master", "index"))
        await call(200, "GET", master.replace("master.m3u8", "seg-0.ts"))
        await call(404, "GET", master.replace("master.m3u8", "seg-999.ts"))
        # Renditions the master playlist names (RFC 8216 4.3.4.1 EXT-X-MEDIA URI): each one's
        # playlist and first segment, relative to that playlist.
        renditions = m3u8.loads((await client.get(master)).text).media
        for rendition in (r for r in renditions if r.uri):
            playlist_url = master.replace("master.m3u8", rendition.uri)
            playlist = m3u8.loads((await call(200, "GET", playlist_url)).text)
            directory = playlist_url.rsplit("/", 1)[0]
            await call(200, "GET", f"{directory}/{playlist.segments[0].uri}")
            await call(404, "GET", f"{directory}/seg-999.ts")
        await call(404, "GET", master.replace("master.m3u8", "nope/index.m3u8"))
    await call(401, "POST", "/api/v1/library/rescan")
    await call(200, "POST", "/api/v1/library/rescan", headers=AUTH)
    await call(404, "GET", "/api/v1/sessions/nope", headers=AUTH)
    await call(404, "GET", "/hls/nope/master.m3u8")
    await call(404, "GET", "/hls/nope/index.m3u8")
    await call(404, "GET", "/hls/nope/seg-0.ts")
    await call(204, "DELETE", f"/api/v1/sessions/{remux.json()['id']}", headers=AUTH)
    await call(404, "DELETE", f"/api/v1/sessions/{remux.json()['id']}", headers=AUTH)
    # fMP4 (init.mp4 and .m4s, video and audio renditions) and trick play, on a remux.
    fmp4 = {"media_id": remux_id, "capabilities": {"containers": ["fmp4"]}}
    master = (await call(201, "POST", post, json=fmp4, headers=AUTH)).json()["master_url"]
    base = master.replace("master.m3u8", "")
    await call(200, "GET", base + "init.mp4")
    await call(200, "GET", base + "seg-0.m4s")
    await call(404, "GET", base + "seg-999.m4s")
    (audio,) = [m for m in m3u8.loads((await client.get(master)).text).media]
    audio_dir = base + audio.uri.rsplit("/", 1)[0] + "/"
    await call(200, "GET", audio_dir + "init.mp4")
    await call(200, "GET", audio_dir + "seg-0.m4s")
    await call(200, "GET", base + "iframes.m3u8")
    await call(200, "GET", base + "iframe-0.m4s")
    await call(404, "GET", base + "iframe-0.ts")  # this session's I-frames are fMP4
    await call(200, "GET", base + "thumbs.vtt")
    await call(200, "GET", base + "thumb-0.jpg")
    await call(404, "GET", base + "thumb-999.jpg")
    # Other parameters, same media: a new session replaces the fMP4 one.
    ts = (await call(201, "POST", post, json={"media_id": remux_id}, headers=AUTH)).json()
    await call(200, "GET", ts["master_url"].replace("master.m3u8", "iframe-0.ts"))
    await call(204, "DELETE", f"/api/v1/sessions/{ts['id']}", headers=AUTH)
    # Subtitle renditions (WebVTT segments), on a file that has them.
    subtitled = {"media_id": by_path["multi_track.mkv"]}
    master = (await call(201, "POST", post, json=subtitled, headers=AUTH)).json()["master_url"]
    media = m3u8.loads((await client.get(master)).text).media
    subtitles = [m for m in media if m.type == "SUBTITLES"]
    assert subtitles
    for rendition in subtitles:
        playlist_url = master.replace("master.m3u8", rendition.uri)
        playlist = m3u8.loads((await call(200, "GET", playlist_url)).text)
        directory = playlist_url.rsplit("/", 1)[0]
        await call(200, "GET", f"{directory}/{playlist.segments[0].uri}")
        await call(404, "GET", f"{directory}/seg-999.vtt")
    await call(401, "DELETE", "/api/v1/sessions/x")

    for page in ("/", "/play/x", "/sessions"):
        await call(200, "GET", page)
    await call(404, "GET", "/assets/nope.js")
    await call(200, "GET", "/openapi.json")
    await call(401, "GET", "/metrics")
    await call(200, "GET", "/metrics", headers=AUTH)

    # Every operation was exercised at least once.
    exercised = {(template, method) for template, method, _ in seen}
    for template, item in spec()["paths"].items():
        for method in item:
            if method != "parameters":
                assert (template, method) in exercised, (template, method)


async def test_failure_answers_match_the_spec(start_server: StartServer, tmp_path: Path) -> None:
    """502 (encoder failed) and 503 + Retry-After (segment not ready) as documented."""
    crash = await start_server(ffmpeg=fake_ffmpeg(tmp_path, "crash"))
    session = await crash.create("hevc_opus.mkv")
    failed = crash.running.services.manager.lookup(session["id"])
    assert failed is not None
    seg0 = session["master_url"].replace("master.m3u8", "seg-0.ts")
    await crash.client.get(seg0)  # starts the doomed encoder
    # The encoder may be restarted a few times first; then every request is a 502.
    await wait_until(lambda: failed.state == "failed", timeout=20)
    response = await crash.client.get(seg0)
    check_response(response)
    assert response.status_code == 502
    check_response(await crash.client.get(session["master_url"]))

    stuck = await start_server(ffmpeg=fake_ffmpeg(tmp_path, "stuck"), segment_wait=0.3)
    session = await stuck.create("hevc_opus.mkv")
    response = await stuck.client.get(session["master_url"].replace("master.m3u8", "seg-0.ts"))
    assert response.status_code == 503
    check_response(response)
    assert operation("GET", "/hls/x/seg-0.ts").template == "/hls/{session_id}/seg-{index}.ts"
    with trio.fail_after(10):
        assert (await stuck.client.delete(f"/api/v1/sessions/{session['id']}")).status_code == 204
