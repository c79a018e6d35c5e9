"""P4: time to first segment after session create, as a player sees it (POST the session, GET
master, GET index, GET seg-0 to its last byte).

- remux (target <= 0.5 s); baseline: ffmpeg alone remuxing the same first segment with
  `-c copy` (what a spawn-per-session server pays at least).
- 720p transcode (target <= baseline + 0.2 s); baseline: ffmpeg alone, run with the exact argv
  hlstrio used (read from /proc), from spawn to its first closed segment on stdout.

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

from hlstrio._ffmpeg import ffmpeg_exe

from ._common import WORK, Result, media, server

TRIALS = 5


def _player_start(client: httpx.Client, media_id: str) -> tuple[float, str]:
    """Seconds from POST to seg-0's last byte; and the session id."""
    start = time.perf_counter()
    created = client.post("/api/v1/sessions", json={"media_id": media_id})
    assert created.status_code == 201, created.text
    session = created.json()
    master = session["master_url"]
    assert client.get(master).status_code == 200
    index = master.replace("master.m3u8", "index.m3u8")
    assert client.get(index).status_code == 200
    segment = client.get(index.replace("index.m3u8", "seg-0.ts"))
    assert segment.status_code == 200 and segment.content, segment.text
    return time.perf_counter() - start, session["id"]


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
    with (
        server(library, f'temp_dir = "{temp_dir}"\n') as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        items = {i["path"]: i for i in client.get("/api/v1/media").json()["items"]}
        remux_id, hevc_id = items[remux_clip.name]["id"], items[hevc_clip.name]["id"]
        first_duration = 6.0
        # Warm-up (not counted): imports, first thread spawns; and the encoder's exact argv.
        _, sid = _player_start(client, remux_id)
        client.delete(f"/api/v1/sessions/{sid}")
        created = client.post("/api/v1/sessions", json={"media_id": hevc_id})
        assert created.json()["mode"] == "transcode", created.text
        argv = _encoder_argv(temp_dir)
        client.delete(f"/api/v1/sessions/{created.json()['id']}")
        out_dir = WORK / "p4-ffmpeg"
        argv = [_relocate(a, temp_dir, out_dir) for a in argv]
        for _ in range(TRIALS):
            seconds, sid = _player_start(client, remux_id)
            hlstrio_remux.append(seconds)
            assert client.delete(f"/api/v1/sessions/{sid}").status_code == 204
            ffmpeg_remux.append(_ffmpeg_remux(remux_clip, first_duration, WORK / "p4-remux.ts"))
            seconds, sid = _player_start(client, hevc_id)
            hlstrio_transcode.append(seconds)
            assert client.delete(f"/api/v1/sessions/{sid}").status_code == 204
            ffmpeg_transcode.append(_ffmpeg_first_segment(argv, out_dir))
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
            figure="P4 time to first segment, remux 720p (POST -> seg-0 received)",
            value=h_remux,
            baseline=f_remux,
            unit="s (median of 5)",
            target="<= 0.5 s",
            command="nox -s bench -- startup",
            note="baseline: ffmpeg -c copy of the same 6 s to MPEG-TS, spawn to exit; "
            f"hlstrio range {min(hlstrio_remux):.3f}-{max(hlstrio_remux):.3f} s",
        ),
        Result(
            figure="P4 time to first segment, 720p HEVC -> H.264 transcode",
            value=h_tc,
            baseline=f_tc,
            unit="s (median of 5)",
            target=f"<= baseline + 0.2 s ({f_tc + 0.2:.2f} s); got +{h_tc - f_tc:.2f} s",
            command="nox -s bench -- startup",
            note="baseline: ffmpeg alone with hlstrio's exact argv, spawn to first segment "
            f"closed; ranges {spread} s",
        ),
    ]


def _relocate(arg: str, temp_dir: Path, out_dir: Path) -> str:
    """Point the segment output of hlstrio's argv at our own directory."""
    if arg.startswith(str(temp_dir)):
        return str(out_dir / Path(arg).name)
    return arg
