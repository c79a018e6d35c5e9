"""Spec-clean MPEG-TS from the real server (Apple HLS authoring 7.2: continuity counters
sequential across segments), for every kind of segment it sends: copied video, encoded video,
copied and in-process-encoded audio renditions.

Segments are fetched in shuffled order first (cut on demand in that order), then read in
playlist order: no continuity jump on any PID (tests/tsparse.py), and ffmpeg reading them
concatenated logs no continuity error and no corrupt packet.
"""

from __future__ import annotations

import random
from pathlib import Path

import m3u8
import pytest
import trio

from .. import tsparse
from .conftest import StartServer


async def rendition_segments(server: object, session: dict[str, object]) -> dict[str, list[bytes]]:
    """Every segment of every audio/video rendition, fetched in a shuffled order."""
    client = server.client  # type: ignore[attr-defined]
    master_url = str(session["master_url"])
    base = master_url.replace("master.m3u8", "")
    master = m3u8.loads((await client.get(master_url)).text)
    directories = {"": "index.m3u8"}
    for media in master.media:
        if media.type == "AUDIO":
            directories[media.uri.rsplit("/", 1)[0] + "/"] = media.uri.rsplit("/", 1)[1]
    wanted: list[tuple[str, int, str]] = []
    for directory, name in directories.items():
        playlist = m3u8.loads((await client.get(base + directory + name)).text)
        wanted += [(directory, i, s.uri) for i, s in enumerate(playlist.segments)]
    random.Random(7).shuffle(wanted)
    got: dict[str, dict[int, bytes]] = {d: {} for d in directories}
    for directory, index, uri in wanted:
        response = await client.get(base + directory + uri)
        assert response.status_code == 200, response.text
        got[directory][index] = response.content
    return {d: [segments[i] for i in sorted(segments)] for d, segments in got.items()}


@pytest.mark.parametrize(
    ("clip", "params"),
    [
        ("multi_track.mkv", {}),  # copied H.264, copied AAC, AC-3 encoded in-process
        ("hevc_opus.mkv", {}),  # encoded by ffmpeg (its segments normalised on disk)
    ],
)
async def test_counters_run_on_across_segments_cut_in_any_order(
    start_server: StartServer, ffmpeg: str, tmp_path: Path, clip: str, params: dict[str, object]
) -> None:
    server = await start_server()
    session = await server.create(clip, **params)
    renditions = await rendition_segments(server, session)
    assert len(renditions) >= 2
    for directory, segments in renditions.items():
        assert len(segments) >= 2
        # In playlist order: one stream, whatever order the segments were made in.
        assert tsparse.continuity_errors(segments) == [], directory
        # And read by ffmpeg as a demuxer would read the concatenation.
        joined = tmp_path / f"joined-{directory.strip('/') or 'video'}.ts"
        joined.write_bytes(b"".join(segments))
        result = await trio.run_process(
            [ffmpeg, "-nostdin", "-v", "warning", "-i", str(joined), "-f", "null", "-"],
            capture_stderr=True,
            check=False,
        )
        log = result.stderr.decode(errors="replace").lower()
        assert result.returncode == 0, log[-1000:]
        assert "continuity" not in log and "corrupt" not in log, log[-1000:]
