"""GET /metrics: Prometheus text that parses, and counters that move with real traffic.

Also the contract of the segment fast path (web/_fast.py) that answers segment GETs in front of
Quart: same headers, same JSON errors, HEAD, and everything odd left to Quart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx
import m3u8
from prometheus_client.parser import text_string_to_metric_families

from ..support import fake_ffmpeg, play_with_ffmpeg, wait_until
from .conftest import StartServer

ALICE = "alice-token-0123456789"
AUTH = {"Authorization": f"Bearer {ALICE}"}

# The sample names each metric type exposes (prometheus text format), from its family name.
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}


@dataclass(frozen=True)
class Samples:
    """One scrape: every sample, and every sample name the exposed families declare."""

    values: dict[tuple[str, frozenset[tuple[str, str]]], float]
    declared: frozenset[str]


async def scrape(client: httpx.AsyncClient, headers: dict[str, str] | None = None) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["cache-control"] == "no-store"
    values: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    declared: set[str] = set()
    for family in text_string_to_metric_families(response.text):
        declared.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
        for sample in family.samples:
            values[sample.name, frozenset(sample.labels.items())] = sample.value
    return Samples(values, frozenset(declared))


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 only for a label combination nothing has counted yet.

    A metric the server does not expose, or labels its samples do not have, fail the test:
    a renamed metric or label must not read as 0.
    """
    assert name in samples.declared, f"/metrics has no {name}"
    key = (name, frozenset(labels.items()))
    if key in samples.values:
        return samples.values[key]
    label_sets = {frozenset(k for k, _ in lbls) for n, lbls in samples.values if n == name}
    assert not label_sets or frozenset(labels) in label_sets, (name, labels, label_sets)
    return 0.0


async def test_metrics_follow_a_played_stream(
    start_server: StartServer, ffmpeg: str, tmp_path: Path
) -> None:
    server = await start_server(users={"alice": ALICE})
    server.headers = AUTH
    client = server.client

    # Behind the same bearer tokens as /api/ when users are configured.
    denied = await client.get("/metrics")
    assert denied.status_code == 401
    assert denied.json()["error"]["code"] == "unauthorized"
    before = await scrape(client, AUTH)
    assert value(before, "hlstrio_http_errors_total", status="401", code="unauthorized") == 1
    assert value(before, "hlstrio_sessions", state="running") == 0

    session = await server.create("h264_aac.mp4")
    await play_with_ffmpeg(ffmpeg, server.url + session["master_url"], tmp_path / "out.ts")
    played = await scrape(client, AUTH)
    assert value(played, "hlstrio_sessions", state="running") == 1
    assert value(played, "hlstrio_encoders", state="running") == 0  # remux: no encoder
    assert value(played, "hlstrio_first_segment_seconds_count", mode="remux") == 1
    assert value(played, "hlstrio_http_request_duration_seconds_count", route="playlist") >= 2
    served = value(played, "hlstrio_http_request_duration_seconds_count", route="segment")
    media_url = session["master_url"].replace("master.m3u8", "index.m3u8")
    playlist = m3u8.loads((await client.get(media_url)).text)
    assert served >= len(playlist.segments)
    assert value(played, "hlstrio_segment_wait_seconds_count", mode="remux") == served
    assert value(played, "hlstrio_segment_bytes_total", via="accel") == 0

    # Exact deltas from our own requests: one per segment, their sizes, one wait each.
    sizes = []
    for segment in playlist.segments:
        response = await client.get(media_url.replace("index.m3u8", segment.uri))
        assert response.status_code == 200
        sizes.append(len(response.content))
    after = await scrape(client, AUTH)
    direct = value(after, "hlstrio_segment_bytes_total", via="direct")
    assert direct - value(played, "hlstrio_segment_bytes_total", via="direct") == sum(sizes)
    count = value(after, "hlstrio_http_request_duration_seconds_count", route="segment")
    assert count - served == len(sizes)
    assert value(after, "hlstrio_segment_wait_seconds_count", mode="remux") == count
    assert value(after, "hlstrio_first_segment_seconds_count", mode="remux") == 1  # once only
    name = "hlstrio_http_request_duration_seconds_bucket"
    assert value(after, name, route="segment", le="+Inf") == count

    # Errors by status and JSON code, from the fast path and from Quart routes alike.
    assert (await client.get("/hls/no-such-session/seg-0.ts")).status_code == 404
    assert (await client.get(media_url.replace("index.m3u8", "seg-999.ts"))).status_code == 404
    assert (await client.get("/api/v1/media/nope", headers=AUTH)).status_code == 404
    errors = await scrape(client, AUTH)
    assert value(errors, "hlstrio_http_errors_total", status="404", code="session_not_found") == 1
    assert value(errors, "hlstrio_http_errors_total", status="404", code="segment_not_found") == 1
    assert value(errors, "hlstrio_http_errors_total", status="404", code="media_not_found") == 1
    assert value(errors, "hlstrio_http_request_duration_seconds_count", route="metrics") == 4

    deleted = await client.delete(f"/api/v1/sessions/{session['id']}", headers=AUTH)
    assert deleted.status_code == 204, deleted.text
    gone = await scrape(client, AUTH)
    assert value(gone, "hlstrio_sessions", state="running") == 0


async def test_metrics_show_a_waiting_transcode(start_server: StartServer, tmp_path: Path) -> None:
    # An encoder that never writes a segment: the session stays "starting", requests time out.
    server = await start_server(ffmpeg=fake_ffmpeg(tmp_path, "stuck"), segment_wait=0.3)
    session = await server.create("hevc_opus.mkv")
    assert session["mode"] == "transcode"
    registry = server.running.services.manager.registry
    await wait_until(lambda: all(s.encoder_state == "running" for s in registry))
    samples = await scrape(server.client)
    assert value(samples, "hlstrio_sessions", state="starting") == 1
    assert value(samples, "hlstrio_encoders", state="running") == 1
    assert value(samples, "hlstrio_encoders", state="paused") == 0

    segment = session["master_url"].replace("master.m3u8", "seg-0.ts")
    response = await server.client.get(segment)
    assert response.status_code == 503 and response.headers["retry-after"]
    assert response.json()["error"]["code"] == "segment_not_ready"
    samples = await scrape(server.client)
    assert value(samples, "hlstrio_http_errors_total", status="503", code="segment_not_ready") == 1
    assert value(samples, "hlstrio_first_segment_seconds_count", mode="transcode") == 0


async def test_metrics_can_be_turned_off(start_server: StartServer) -> None:
    server = await start_server(metrics=False)
    response = await server.client.get("/metrics")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    session = await server.create("h264_aac.mp4")
    segment = await server.client.get(session["master_url"].replace("master.m3u8", "seg-0.ts"))
    assert segment.status_code == 200 and segment.content


async def test_segment_fast_path_keeps_the_contract(start_server: StartServer) -> None:
    server = await start_server()
    session = await server.create("h264_aac.mp4")
    base = session["master_url"].replace("master.m3u8", "")
    got = await server.client.get(base + "seg-1.ts")
    assert got.status_code == 200
    assert got.headers["content-type"] == "video/mp2t"
    assert got.headers["cache-control"] == "private, max-age=3600"
    assert int(got.headers["content-length"]) == len(got.content) > 0

    head = await server.client.head(base + "seg-1.ts")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == got.headers["content-length"]

    # Leading zeros name the same segment, as Quart's route did.
    assert (await server.client.get(base + "seg-001.ts")).content == got.content

    # What the fast path does not take, Quart answers, with the same JSON errors.
    post = await server.client.post(base + "seg-1.ts")
    assert post.status_code == 405 and post.json()["error"]["code"] == "method_not_allowed"
    for odd in ("seg-\u0661.ts", "seg-1234567890.ts", "seg-x.ts", "seg-.ts"):
        response = await server.client.get(base + odd)
        assert response.status_code == 404, odd
        assert response.headers["content-type"] == "application/json", odd
    missing = await server.client.get("/hls/nope/seg-1.ts")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/json"
    assert missing.headers["cache-control"] == "no-store"
    assert missing.json() == {
        "error": {"code": "session_not_found", "message": "unknown or ended session"}
    }


async def test_encoder_metrics_count_starts_retries_failures_and_seeks(
    start_server: StartServer, tmp_path: Path, long_media_dir: Path
) -> None:
    crashing = await start_server(ffmpeg=fake_ffmpeg(tmp_path, "crash"), encoder_retries=2)
    session = await crashing.create("hevc_opus.mkv")
    seg = session["master_url"].replace("master.m3u8", "seg-0.ts")
    assert (await crashing.client.get(seg)).status_code == 502
    samples = await scrape(crashing.client)
    assert value(samples, "hlstrio_encoder_starts_total") == 1
    assert value(samples, "hlstrio_encoder_failures_total") == 3  # first run + two retries
    assert value(samples, "hlstrio_encoder_restarts_total", reason="retry") == 2

    real = await start_server(media=(long_media_dir,), segment_seconds=2.0)
    session = await real.create("long_hevc.mkv")
    base = session["master_url"].replace("master.m3u8", "")
    assert (await real.client.get(base + "seg-0.ts")).status_code == 200
    assert (await real.client.get(base + "seg-40.ts")).status_code == 200  # a far seek
    samples = await scrape(real.client)
    assert value(samples, "hlstrio_encoder_restarts_total", reason="seek") == 1
    assert value(samples, "hlstrio_encoder_first_segment_seconds_count") == 2
    assert value(samples, "hlstrio_encoder_failures_total") == 0


async def test_metrics_other_methods_are_405(start_server: StartServer) -> None:
    server = await start_server()
    for method in ("POST", "PUT", "TRACE", "DELETE"):
        response = await server.client.request(method, "/metrics")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, HEAD"
        assert response.json()["error"]["code"] == "method_not_allowed"
