"""P4: time to first segment after session create, as a player sees it: POST the session, GET
the master playlist, then the video rendition's and the default audio rendition's media
playlists and first segments concurrently, to the last byte of the later one (since
renditions, the video segment has no audio: a player cannot start on it alone).

- remux (target <= 0.5 s); baseline: ffmpeg alone remuxing the same first segment with
  `-c copy` (what a spawn-per-session server pays at least).
- 720p HEVC/Opus transcode (target <= baseline + 0.2 s): the video from hlstrio's ffmpeg, the
  audio (Opus -> AAC) encoded in-process beside it; baseline: ffmpeg alone, run with the exact
  argv hlstrio used (read from /proc: video only now), from spawn to its first closed segment
  on stdout.

Trials alternate hlstrio / ffmpeg; each hlstrio trial creates a fresh session and deletes it.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path

import httpx
import trio

from hlstrio._ffmpeg import ffmpeg_exe

from ._common import WORK, Result, media, server
from ._players import Rendition, master_renditions

TRIALS = 5


async def _start(url: str, media_id: str) -> tuple[float, float, float, str]:
    """A player's start: POST, master, both media playlists, then the first video and the
    first audio segment concurrently (hls.js's two stream controllers). Seconds from POST to
    the last byte of the later one; and to each; and the session id."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        start = time.perf_counter()
        created = await client.post("/api/v1/sessions", json={"media_id": media_id})
        assert created.status_code == 201, created.text
        session = created.json()
        master = await client.get(session["master_url"])
        assert master.status_code == 200
        video_url, audio_url = master_renditions(session["master_url"], master.text)
        assert audio_url is not None, master.text  # both clips have audio
        done: dict[str, float] = {}

        async def first_segment(kind: str, playlist_url: str) -> None:
            playlist = await client.get(playlist_url)
            assert playlist.status_code == 200
            rendition = Rendition(playlist_url, playlist.text)
            if rendition.init is not None:
                assert (await client.get(rendition.init)).status_code == 200
            segment = await client.get(rendition.segments[0])
            assert segment.status_code == 200 and segment.content, segment.text
            done[kind] = time.perf_counter() - start

        async with trio.open_nursery() as nursery:
            nursery.start_soon(first_segment, "video", video_url)
            nursery.start_soon(first_segment, "audio", audio_url)
        return max(done.values()), done["video"], done["audio"], session["id"]


def _player_start(url: str, media_id: str) -> tuple[float, float, float, str]:
    return trio.run(_start, url, media_id)


def _encoder_argv(temp_dir: Path, timeout: float = 10.0) -> list[str]:
    """The argv of the live ffmpeg writing under temp_dir (the one hlstrio started)."""
    needle = str(temp_dir).encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if needle in cmdline and b"ffmpeg" in cmdline.split(b"\0", 1)[0]:
                return [part.decode() for part in cmdline.rstrip(b"\0").split(b"\0")]
        time.sleep(0.01)
    raise RuntimeError("hlstrio's ffmpeg not found")


def _ffmpeg_first_segment(argv: list[str], out_dir: Path) -> float:
    """Run ffmpeg alone; seconds from spawn to the first segment it reports closed."""
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    start = time.perf_counter()
    process = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # -segment_list pipe:1 prints each closed segment
        elapsed = time.perf_counter() - start
        if not line:
            raise RuntimeError(f"ffmpeg reported no segment: {argv}")
        return elapsed
    finally:
        process.kill()
        process.wait()


def _ffmpeg_remux(clip: Path, seconds: float, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [
            *(ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-i", str(clip)),
            *("-t", f"{seconds}", "-map", "0:v", "-map", "0:a", "-c", "copy"),
            *("-f", "mpegts", str(out)),
        ],
        check=True,
    )
    return time.perf_counter() - start


def run() -> list[Result]:
    remux_clip = media("p1/clip-720p.mp4", "h264_aac_mp4", 12, 1280, 720)
    hevc_clip = media("p4/hevc-720p.mkv", "hevc_opus_mkv", 20, 1280, 720)
    library = WORK / "p4-library"
    library.mkdir(parents=True, exist_ok=True)
    for clip in (remux_clip, hevc_clip):
        copy = library / clip.name
        if not copy.exists():
            shutil.copyfile(clip, copy)
    temp_dir = WORK / "p4-sessions"
    hlstrio_remux: list[float] = []
    hlstrio_transcode: list[float] = []
    ffmpeg_remux: list[float] = []
    ffmpeg_transcode: list[float] = []
    parts: dict[str, list[tuple[float, float]]] = {"remux": [], "transcode": []}
    with (
        server(library, f'temp_dir = "{temp_dir}"\n') as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        items = {i["path"]: i for i in client.get("/api/v1/media").json()["items"]}
        remux_id, hevc_id = items[remux_clip.name]["id"], items[hevc_clip.name]["id"]
        first_duration = 6.0
        # Warm-up (not counted): imports, first thread spawns; and the encoder's exact argv.
        *_, sid = _player_start(url, remux_id)
        client.delete(f"/api/v1/sessions/{sid}")
        created = client.post("/api/v1/sessions", json={"media_id": hevc_id})
        assert created.json()["mode"] == "transcode", created.text
        argv = _encoder_argv(temp_dir)
        client.delete(f"/api/v1/sessions/{created.json()['id']}")
        out_dir = WORK / "p4-ffmpeg"
        argv = [_relocate(a, temp_dir, out_dir) for a in argv]
        for _ in range(TRIALS):
            seconds, video_s, audio_s, sid = _player_start(url, remux_id)
            hlstrio_remux.append(seconds)
            parts["remux"].append((video_s, audio_s))
            assert client.delete(f"/api/v1/sessions/{sid}").status_code == 204
            ffmpeg_remux.append(_ffmpeg_remux(remux_clip, first_duration, WORK / "p4-remux.ts"))
            seconds, video_s, audio_s, sid = _player_start(url, hevc_id)
            hlstrio_transcode.append(seconds)
            parts["transcode"].append((video_s, audio_s))
            assert client.delete(f"/api/v1/sessions/{sid}").status_code == 204
            ffmpeg_transcode.append(_ffmpeg_first_segment(argv, out_dir))

    def split(kind: str) -> str:
        video = statistics.median(v for v, _ in parts[kind])
        audio = statistics.median(a for _, a in parts[kind])
        return f"medians: video seg-0 at {video:.3f} s, audio seg-0 at {audio:.3f} s"

    h_remux, f_remux = statistics.median(hlstrio_remux), statistics.median(ffmpeg_remux)
    h_tc, f_tc = statistics.median(hlstrio_transcode), statistics.median(ffmpeg_transcode)
    spread = "; ".join(
        f"{name} {min(xs):.3f}-{max(xs):.3f}"
        for name, xs in (
            ("hlstrio", hlstrio_transcode),
            ("ffmpeg", ffmpeg_transcode),
        )
    )
    return [
        Result(
            figure="P4 time to first segment, remux 720p (POST -> video + audio seg-0 received)",
            value=h_remux,
            baseline=f_remux,
            unit="s (median of 5)",
            target="<= 0.5 s",
            command="nox -s bench -- startup",
            note="video + audio rendition (AAC copied); baseline: ffmpeg -c copy of the same "
            f"6 s (video + audio) to MPEG-TS, spawn to exit; {split('remux')}; "
            f"hlstrio range {min(hlstrio_remux):.3f}-{max(hlstrio_remux):.3f} s",
        ),
        Result(
            figure="P4 time to first segment, 720p HEVC -> H.264 transcode (video + audio)",
            value=h_tc,
            baseline=f_tc,
            unit="s (median of 5)",
            target=f"<= baseline + 0.2 s ({f_tc + 0.2:.2f} s); got +{h_tc - f_tc:.2f} s",
            command="nox -s bench -- startup",
            note="video from ffmpeg + audio rendition (Opus -> AAC in-process); baseline: "
            "ffmpeg alone with hlstrio's exact argv (video only), spawn to first segment "
            f"closed; {split('transcode')}; ranges {spread} s",
        ),
    ]


def _relocate(arg: str, temp_dir: Path, out_dir: Path) -> str:
    """Point the segment output of hlstrio's argv at our own directory."""
    if arg.startswith(str(temp_dir)):
        return str(out_dir / Path(arg).name)
    return arg
