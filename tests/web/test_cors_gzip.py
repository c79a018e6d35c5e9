"""CORS for players on other origins, and gzip-compressed playlists, over real HTTP."""

from __future__ import annotations

import gzip

import m3u8

from .conftest import StartServer

UI = "http://127.0.0.1:9999"  # a host app's UI, configured in cors_origins
ELSEWHERE = "http://evil.example"


async def test_hls_urls_answer_any_origin(start_server: StartServer) -> None:
    server = await start_server()
    session = await server.create("h264_aac.mp4")
    master = session["master_url"]
    for path in (
        master,
        master.replace("master", "index"),
        master.replace("master.m3u8", "seg-0.ts"),
    ):
        response = await server.client.get(path, headers={"Origin": ELSEWHERE})
        assert response.status_code == 200
        # Capability URLs, no cookies: readable from any page (a Chromecast receiver, Shaka...).
        assert response.headers["access-control-allow-origin"] == "*"
    # Errors too, so a page can read why.
    missing = await server.client.get("/hls/nope/seg-0.ts", headers={"Origin": ELSEWHERE})
    assert missing.status_code == 404
    assert missing.headers["access-control-allow-origin"] == "*"
    # A preflight (a player that sends Range) is answered without touching the session.
    preflight = await server.client.options(
        master,
        headers={
            "Origin": ELSEWHERE,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "range",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "range" in preflight.headers["access-control-allow-headers"].lower()


async def test_the_api_answers_only_configured_origins(start_server: StartServer) -> None:
    token = "alice-token-0123456789"
    server = await start_server(cors_origins=(UI,), users={"alice": token})
    auth = {"Authorization": f"Bearer {token}"}
    preflight = await server.client.options(
        "/api/v1/sessions",
        headers={
            "Origin": UI,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == UI
    allowed = {
        h.strip().lower() for h in preflight.headers["access-control-allow-headers"].split(",")
    }
    assert {"authorization", "content-type"} <= allowed
    assert "POST" in preflight.headers["access-control-allow-methods"]
    listed = await server.client.get("/api/v1/media", headers={"Origin": UI, **auth})
    assert listed.status_code == 200
    assert listed.headers["access-control-allow-origin"] == UI
    assert "Origin" in listed.headers["vary"]
    denied = await server.client.get("/api/v1/media", headers={"Origin": UI})
    assert denied.status_code == 401  # no token: an error the page can read
    assert denied.headers["access-control-allow-origin"] == UI

    refused = await server.client.options(
        "/api/v1/sessions",
        headers={"Origin": ELSEWHERE, "Access-Control-Request-Method": "POST"},
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "cors_origin_not_allowed"
    other = await server.client.get("/api/v1/media", headers={"Origin": ELSEWHERE, **auth})
    assert "access-control-allow-origin" not in other.headers  # the browser withholds it


async def test_no_cors_origins_means_no_cross_origin_api(start_server: StartServer) -> None:
    server = await start_server()
    response = await server.client.get("/api/v1/media", headers={"Origin": UI})
    assert response.status_code == 200 and "access-control-allow-origin" not in response.headers


async def test_playlists_are_gzipped_for_clients_that_accept_it_segments_never(
    start_server: StartServer,
) -> None:
    server = await start_server()
    session = await server.create("h264_aac.mp4")
    media_url = session["master_url"].replace("master", "index")
    plain = await server.client.get(media_url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.headers["vary"] == "Accept-Encoding"
    # Apple HLS authoring 10.1: playlists compressed with gzip when the client takes it.
    stream = server.client.build_request("GET", media_url, headers={"Accept-Encoding": "gzip"})
    raw = await server.client.send(stream, stream=True)
    sent = b"".join([chunk async for chunk in raw.aiter_raw()])  # the bytes on the wire
    await raw.aclose()
    assert raw.headers["content-encoding"] == "gzip"
    assert len(sent) == int(raw.headers["content-length"]) < len(plain.content)
    assert gzip.decompress(sent) == plain.content
    assert m3u8.loads(gzip.decompress(sent).decode()).is_endlist
    refused = await server.client.get(media_url, headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers
    segment = await server.client.get(
        session["master_url"].replace("master.m3u8", "seg-0.ts"),
        headers={"Accept-Encoding": "gzip"},
    )
    assert segment.status_code == 200 and "content-encoding" not in segment.headers
