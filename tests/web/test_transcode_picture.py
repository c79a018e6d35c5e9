"""Issue parts 4 and 5 end to end: HDR to an SDR-only client is tone-mapped, interlaced
sources are deinterlaced when transcoded and keep their fields when copied.

Real server, real bundled ffmpeg; what the client receives is decoded with PyAV (colour
description, luma statistics) and measured with ffmpeg's `idet` (combing).
"""

from __future__ import annotations

import collections
import io
import math
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import m3u8
import pytest
import trio
from av.video.reformatter import ColorPrimaries, Colorspace, ColorTrc

from hlstrio.media._probe import probe
from hlstrio.streaming._encoder import EncodeJob, encoder_argv
from hlstrio.streaming._filters import TONEMAP_UNAVAILABLE, detect_filters
from hlstrio.streaming._timeline import fixed_grid

from ..media.conftest import pgs_subtitles
from ..support import Harness, span
from .conftest import StartServer

SECONDS = 2  # every clip; the interlaced H.264 one is twice as long (two encoded segments)
FPS = 25


def ffmpeg_run(ffmpeg: str, *args: str) -> None:
    cmd = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, f"{cmd}: {done.stderr[-2000:]}"


@dataclass(frozen=True)
class Clips:
    media: Path  # what the server serves
    sdr_reference: Path  # the PQ/HLG clips' picture as plain SDR H.264 (not served)


# testsrc2 graded into HDR the way a real HDR master is: SDR white placed at 203 cd/m2
# (ITU-R BT.2408 reference white, npl=203: zscale's linear 1.0), BT.2020 primaries, 10 bits.
# Merely *tagging* SDR code values as PQ would be a different picture (its whites ~5000 cd/m2).
SDR = "format=yuv420p,setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709:range=tv"
TESTSRC = "testsrc2=size=256x144:rate=25"
SDR_SOURCE = f"{TESTSRC},{SDR}"


def hdr_grade(transfer: str) -> str:
    return f"{SDR},zscale=t={transfer}:p=bt2020:m=bt2020nc:r=tv:npl=203,format=yuv420p10le"


def to_hdr(transfer: str) -> str:
    return f"{TESTSRC},{hdr_grade(transfer)}"


X265 = ["-c:v", "libx265", "-preset", "ultrafast", "-g", "25"]
# `gradients` (a smoothly moving colour field), not testsrc2: idet reads testsrc2's fine
# horizontal detail as combing even when it is progressive (95 of 100 frames "TFF"), while a
# progressive gradients clip is 100/100 "Progressive" and its woven fields 100/100 "TFF".
# Colours and seed fixed: its random ones are sometimes a near-flat field, where idet's
# line-difference ratios are noise (26 TFF + 23 BFF of 100 on a clean deinterlaced picture).
FIELDS = (
    "gradients=s=256x144:r=50:c0=black:c1=white:c2=red:c3=blue:nb_colors=4:speed=0.1:seed=1,"
    "interlace=scan={}:lowpass=0"  # 50 fields/s woven into 25 frames/s
)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory, ffmpeg: str) -> Clips:
    root = tmp_path_factory.mktemp("picture")
    media = root / "media"
    media.mkdir()
    two = ["-t", str(SECONDS)]
    reference = root / "sdr.mp4"
    ffmpeg_run(ffmpeg, "-f", "lavfi", "-i", SDR_SOURCE, *two, "-c:v", "libx264", str(reference))
    vui = "log-level=error:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc"
    ffmpeg_run(
        ffmpeg, "-f", "lavfi", "-i", to_hdr("smpte2084"), *two, *X265, "-x265-params", vui,
        str(media / "pq.mkv"),
    )  # fmt: skip
    # HLG said only by the container (Matroska Colour), not by the HEVC VUI: decoded frames
    # say "unspecified", so only the probe knows.
    untagged = root / "hlg_untagged.mkv"
    unspecified = "setparams=color_primaries=unknown:color_trc=unknown:colorspace=unknown"
    ffmpeg_run(
        ffmpeg, "-f", "lavfi", "-i", f"{to_hdr('arib-std-b67')},{unspecified}", *two, *X265,
        "-x265-params", "log-level=error", str(untagged),
    )  # fmt: skip
    ffmpeg_run(
        ffmpeg, "-i", str(untagged), "-c", "copy", "-color_trc", "arib-std-b67",
        "-color_primaries", "bt2020", "-colorspace", "bt2020nc", str(media / "hlg.mkv"),
    )  # fmt: skip
    # Interlaced: two fields per frame from two instants (50 fields/s -> 25 frames/s), coded
    # as interlaced (field DCT + field motion) with the field order flagged in the stream.
    interlaced_x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-flags",
                       "+ildct+ilme"]  # fmt: skip
    for name, order, seconds in (("tff.mkv", "tff", 2 * SECONDS), ("bff.mkv", "bff", SECONDS)):
        ffmpeg_run(
            ffmpeg, "-f", "lavfi", "-i", FIELDS.format(order), "-t", str(seconds),
            *interlaced_x264, "-x264opts", f"{order}=1", str(media / name),
        )  # fmt: skip
    # A DVD / TV recording: interlaced MPEG-2 (top field first) in MPEG-TS.
    ffmpeg_run(
        ffmpeg, "-f", "lavfi", "-i", FIELDS.format("tff"), *two, "-c:v", "mpeg2video",
        "-b:v", "1M", "-g", "12", "-flags", "+ildct+ilme", str(media / "dvd.ts"),
    )  # fmt: skip
    return Clips(media, reference)


async def detected(ffmpeg: str) -> None:
    # What the server does once at start (see hlstrio/streaming/_filters.py), off the loop.
    await trio.to_thread.run_sync(detect_filters, ffmpeg)


async def video_bytes(server: Harness, session: dict[str, Any]) -> bytes:
    """Every segment of the video rendition, as a player fetches them, joined (MPEG-TS
    segments concatenate into one stream: RFC 8216 3.2)."""
    base = session["master_url"].replace("master.m3u8", "")  # the video is at the root
    master = m3u8.loads((await server.client.get(session["master_url"])).text)
    (uri,) = {p.uri for p in master.playlists}
    playlist = m3u8.loads((await server.client.get(base + uri)).text)
    parts = []
    for segment in playlist.segments:
        response = await server.client.get(base + segment.uri)
        assert response.status_code == 200, response.text
        parts.append(response.content)
    return b"".join(parts)


@dataclass(frozen=True)
class Luma:
    """Statistics of the 8-bit Y' samples of every frame (limited range: 16 black, 235 white)."""

    mean: float
    std: float  # contrast: how far the picture spreads from its mean
    p99: float  # the white level (the test pattern's brightest 1% of samples)


def luma(data: bytes | Path) -> Luma:
    counts: collections.Counter[int] = collections.Counter()
    with av.open(io.BytesIO(data) if isinstance(data, bytes) else str(data), "r") as container:
        for frame in container.decode(video=0):
            assert frame.format.name == "yuv420p", frame.format.name
            plane = frame.planes[0]
            raw = bytes(plane)
            for row in range(frame.height):
                counts.update(raw[row * plane.line_size : row * plane.line_size + frame.width])
    total = sum(counts.values())
    mean = sum(v * n for v, n in counts.items()) / total
    std = math.sqrt(sum(n * (v - mean) ** 2 for v, n in counts.items()) / total)
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= 0.99 * total:
            return Luma(mean, std, value)
    raise AssertionError("unreachable")


def colour(data: bytes) -> set[tuple[int, int, int, int]]:
    """(primaries, transfer, matrix, range) of every decoded frame."""
    with av.open(io.BytesIO(data), "r") as container:
        return {
            (int(f.color_primaries), int(f.color_trc), int(f.colorspace), int(f.color_range))
            for f in container.decode(video=0)
        }


BT709 = (int(ColorPrimaries.BT709), int(ColorTrc.BT709), int(Colorspace.ITU709), 1)  # 1: tv


async def idet(ffmpeg: str, data: bytes, tmp: Path) -> dict[str, int]:
    """ffmpeg's interlace detector on `data`: its "Multi frame detection" counts (it compares
    each frame's lines with its neighbours' to find combing; multi = with hysteresis)."""
    path = tmp / f"idet-{len(data)}.ts"
    path.write_bytes(data)
    argv = [ffmpeg, "-nostdin", "-hide_banner", "-i", str(path), "-vf", "idet", "-f", "null", "-"]
    done = await trio.run_process(argv, capture_stderr=True, check=True)
    # The last report is the final one (a reconfigured graph prints an empty one first).
    line = re.findall(r"Multi frame detection:(.*)", done.stderr.decode())[-1]
    return {key: int(value) for key, value in re.findall(r"(\w+):\s*(\d+)", line)}


async def encode_directly(ffmpeg: str, clip: Path, out: Path, **job: Any) -> bytes:
    """The server's own encoder command on `clip`, with some of the job changed: the same
    transcode a session makes, to see what a picture filter changes."""
    info = probe(clip)
    video = info.video
    assert video is not None
    timeline = fixed_grid(info.duration, 2.0, 1 / video.fps, origin=info.start_time)
    encode = EncodeJob(
        source=clip, video_index=video.index, timeline=timeline, source_start=info.start_time,
        width=video.width, height=video.height, bitrate=1_000_000, segment_seconds=2.0,
        source_video=video, filters=detect_filters(ffmpeg), **job,
    )  # fmt: skip
    out.mkdir()
    await trio.run_process(encoder_argv(ffmpeg, encode, out), capture_stdout=True)
    segments = sorted(out.glob("seg-*.ts"), key=lambda p: int(p.stem.split("-")[1]))
    return b"".join(p.read_bytes() for p in segments)


# --- 4. HDR to an SDR-only client ----------------------------------------------------------

# The physics behind the bounds. The clip is an SDR picture graded to HDR with its white at
# 203 cd/m2. Mapped correctly, linear light comes back with SDR white = 100 cd/m2 = 1.0 and
# the curve compresses only what is brighter (here: 100-203 cd/m2 into ~0.66-0.83), so the
# result must look like the SDR original: same mean, nearly the same contrast and white.
# Unmapped, the PQ code values are shown as BT.709 ones: PQ spends its code range on 0-10000
# cd/m2, so 203 cd/m2 white is code 0.58 (Y' ~143, not 235) and 1 cd/m2 black is 0.15 (lifted),
# a grey, flat picture (the washed-out one): its mean moves little, its contrast collapses.
# Measured (256x144, 50 frames, mean / std / 99th percentile): SDR original 118.2 / 57.5 /
# 210; PQ mapped 118.7 / 54.7 / 201; HLG mapped 118.5 / 54.9 / 202; unmapped 105.4 / 25.5 /
# 137. Hable instead of Möbius darkens the mid-tones too: 97.9 / 44.2 / 167, and fails here.


def assert_looks_like_the_sdr_original(got: Luma, original: Luma) -> None:
    assert abs(got.mean - original.mean) < 0.15 * original.mean, (got, original)
    assert got.std > 0.7 * original.std, (got, original)
    assert got.p99 > original.p99 - 25, (got, original)


async def test_pq_to_an_sdr_client_is_tone_mapped_to_bt709(
    start_server: StartServer, clips: Clips, ffmpeg: str
) -> None:
    await detected(ffmpeg)
    server = await start_server(media=(clips.media,))
    session = await server.create("pq.mkv")
    assert session["video_action"] == "encode"
    master = m3u8.loads((await server.client.get(session["master_url"])).text)
    # RFC 8216bis 4.4.6.2: VIDEO-RANGE absent means SDR; what is sent is SDR.
    assert {p.stream_info.video_range for p in master.playlists} <= {None, "SDR"}
    data = await video_bytes(server, session)
    # H.264 VUI colour description of every frame: BT.709 primaries, transfer and matrix,
    # limited range (the client must not read BT.2020/PQ code values).
    assert colour(data) == {BT709}
    assert_looks_like_the_sdr_original(luma(data), luma(clips.sdr_reference))


async def test_hlg_said_only_by_the_container_is_mapped(
    start_server: StartServer, clips: Clips, ffmpeg: str
) -> None:
    """The decoded frames say nothing; the probe read HLG from the Matroska Colour element.
    Without the probe's description zscale fails ("no path between colorspaces")."""
    await detected(ffmpeg)
    server = await start_server(media=(clips.media,))
    session = await server.create("hlg.mkv")
    assert session["video_action"] == "encode"
    data = await video_bytes(server, session)
    assert colour(data) == {BT709}
    assert_looks_like_the_sdr_original(luma(data), luma(clips.sdr_reference))


def without_zscale(directory: Path, ffmpeg: str) -> str:
    """The bundled ffmpeg, pretending to be a build without libzimg: `-filters` does not list
    zscale (everything else runs the real binary, exec'd so it keeps the encoder's argv)."""
    path = directory / "ffmpeg-without-zscale"
    path.write_text(
        "#!/bin/sh\n"
        f'case " $* " in *" -filters "*) "{ffmpeg}" "$@" | grep -vw zscale; exit 0;; esac\n'
        f'exec "{ffmpeg}" "$@"\n'
    )
    path.chmod(0o755)
    return str(path)


async def test_without_zscale_hdr_plays_unmapped_and_washed_out(
    start_server: StartServer, clips: Clips, ffmpeg: str, tmp_path: Path
) -> None:
    """A system ffmpeg without zscale: the transcode still plays (it never asks for a filter
    the binary lacks), tagged SDR; it is the washed-out picture the mapping exists to avoid,
    which is also what shows the luma bounds above can fail."""
    limited = without_zscale(tmp_path, ffmpeg)
    support = await trio.to_thread.run_sync(detect_filters, limited)
    assert "zscale" not in support.names and not support.tone_mapping
    server = await start_server(media=(clips.media,), ffmpeg=limited)
    session = await server.create("pq.mkv")
    data = await video_bytes(server, session)
    assert colour(data) == {BT709}
    got, original = luma(data), luma(clips.sdr_reference)
    with pytest.raises(AssertionError):
        assert_looks_like_the_sdr_original(got, original)
    assert got.std < 0.5 * original.std and got.p99 < 160, (got, original)


async def test_without_zscale_the_session_reason_says_so(
    start_server: StartServer, clips: Clips, ffmpeg: str, tmp_path: Path
) -> None:
    limited = without_zscale(tmp_path, ffmpeg)
    await detected(limited)
    server = await start_server(media=(clips.media,), ffmpeg=limited)
    session = await server.create("pq.mkv")
    assert TONEMAP_UNAVAILABLE in session["reason"]


# --- 5. Interlaced sources -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clip", "mode", "order", "seconds"),
    [
        ("tff.mkv", "transcode", "TFF", 2 * SECONDS),  # 1080i-like H.264, copyable: forced
        ("bff.mkv", "transcode", "BFF", SECONDS),  # the other parity
        ("dvd.ts", "auto", "TFF", SECONDS),  # MPEG-2: no client takes it, always encoded
    ],
)
async def test_an_interlaced_transcode_is_progressive(
    start_server: StartServer,
    clips: Clips,
    ffmpeg: str,
    tmp_path: Path,
    clip: str,
    mode: str,
    order: str,
    seconds: int,
) -> None:
    await detected(ffmpeg)
    source = clips.media / clip
    assert (await idet(ffmpeg, source.read_bytes(), tmp_path))[order] >= seconds * FPS - 1
    server = await start_server(media=(clips.media,))
    session = await server.create(clip, mode=mode)
    assert session["video_action"] == "encode"
    data = await video_bytes(server, session)
    found = await idet(ffmpeg, data, tmp_path)
    # No combing left: not one frame reads as interlaced, all of them as progressive.
    assert (found["TFF"], found["BFF"], found["Progressive"]) == (0, 0, seconds * FPS), found
    # mode=send_frame: one frame per source frame (25i stays 25p, no doubled rate)...
    with av.open(io.BytesIO(data), "r") as container:
        frames = list(container.decode(video=0))
    assert len(frames) == seconds * FPS
    assert not any(f.interlaced_frame for f in frames)
    # ...on the fixed grid: segment n starts at n * 2 s + the 1.4 s MPEG-TS offset, exactly.
    if seconds > SECONDS:
        url = session["master_url"].replace("master.m3u8", "seg-1.ts")
        second = (await server.client.get(url)).content
        assert span(second).video_start == pytest.approx(2.0 + 1.4, abs=1e-6)
    # The same encoder command without the deinterlacer: the fields come out woven, and idet
    # sees them, so the zero above is a measurement, not a blind spot.
    woven = await encode_directly(ffmpeg, source, tmp_path / "woven", deinterlace=False)
    assert (await idet(ffmpeg, woven, tmp_path))[order] > seconds * FPS // 2


async def test_a_copied_interlaced_h264_keeps_its_fields(
    start_server: StartServer, clips: Clips, ffmpeg: str, tmp_path: Path
) -> None:
    server = await start_server(media=(clips.media,))
    session = await server.create("tff.mkv")
    assert session["video_action"] == "copy"
    url = session["master_url"].replace("master.m3u8", "seg-0.ts")
    segment = (await server.client.get(url)).content
    # The coded fields and their flags pass through the cut as they are: every decoded
    # picture is still an interlaced frame, top field first (read from the stream itself),
    # and idet still sees two instants per frame.
    with av.open(io.BytesIO(segment), "r") as container:
        frames = list(container.decode(video=0))
    assert frames and all(f.interlaced_frame for f in frames)
    copied = tmp_path / "seg-0.ts"
    copied.write_bytes(segment)
    video = probe(copied).video
    assert video is not None and (video.interlaced, video.field_order) == (True, "tt")
    found = await idet(ffmpeg, segment, tmp_path)
    assert found["TFF"] >= len(frames) - 1 and found["Progressive"] == 0, found


async def test_interlaced_hdr_with_burnt_subtitles_runs_the_whole_graph(
    clips: Clips, ffmpeg: str, tmp_path: Path
) -> None:
    """Every picture filter at once, in one -filter_complex on the real binary: 10-bit PQ
    1080i-like H.264 with a PGS track -> deinterlace, tone map, overlay, scale."""
    sup = tmp_path / "sub.sup"
    sup.write_bytes(pgs_subtitles(256, 144))  # a 16x8 white box at (8, 8), 0.2-0.9 s, 1-1.8 s
    source = tmp_path / "hdr_interlaced.mkv"
    hdr_fields = f"{FIELDS.format('tff')},{hdr_grade('smpte2084')}"
    ffmpeg_run(
        ffmpeg, "-f", "lavfi", "-i", hdr_fields, "-i", str(sup), "-map", "0:v", "-map", "1:s",
        "-c:s", "copy", "-t", str(SECONDS), "-c:v", "libx264", "-preset", "ultrafast",
        "-flags", "+ildct+ilme", "-x264opts", "tff=1", "-color_primaries", "bt2020",
        "-color_trc", "smpte2084", "-colorspace", "bt2020nc", str(source),
    )  # fmt: skip
    info = probe(source)
    assert info.video is not None and info.video.interlaced and info.video.dynamic_range == "PQ"
    data = await encode_directly(
        ffmpeg, source, tmp_path / "out", deinterlace=True, tonemap=True,
        burn_subtitle=info.subtitles[0].index,
    )  # fmt: skip
    assert colour(data) == {BT709}
    found = await idet(ffmpeg, data, tmp_path)
    assert (found["TFF"], found["BFF"]) == (0, 0), found
    # The box is there while a cue is shown, and only then: against the same encode without
    # the overlay, its pixels differ inside the cues and nowhere outside them (a frame of
    # slack at each edge).
    plain = await encode_directly(
        ffmpeg, source, tmp_path / "plain", deinterlace=True, tonemap=True
    )  # fmt: skip
    with av.open(str(source), "r") as container:
        times = [float(p.pts * p.time_base) for p in container.demux(subtitles=0)
                 if p.pts is not None and p.time_base is not None]  # fmt: skip
    cues = list(zip(times[::2], times[1::2], strict=True))  # (shown, cleared) display sets
    assert len(cues) == 2
    for t, difference in box_difference(data, plain).items():
        inside = any(start + 0.05 < t < end - 0.05 for start, end in cues)
        outside = all(not start - 0.05 <= t <= end + 0.05 for start, end in cues)
        assert not inside or difference > 20, (t, difference, cues)
        assert not outside or difference < 5, (t, difference, cues)


def box_difference(a: bytes, b: bytes) -> dict[float, float]:
    """Mean |Y'a - Y'b| over the subtitle box (x 8-24, y 8-16), by source time of the frame."""

    def boxes(data: bytes) -> dict[float, bytes]:
        out = {}
        with av.open(io.BytesIO(data), "r") as container:
            for frame in container.decode(video=0):
                stride, raw = frame.planes[0].line_size, bytes(frame.planes[0])
                rows = (raw[y * stride + 8 : y * stride + 24] for y in range(8, 16))
                assert frame.time is not None
                out[round(frame.time - 1.4, 2)] = b"".join(rows)
        return out

    left, right = boxes(a), boxes(b)
    assert left.keys() == right.keys()
    return {
        t: sum(abs(x - y) for x, y in zip(left[t], right[t], strict=True)) / len(left[t])
        for t in left
    }


def test_the_bundled_ffmpeg_has_what_the_chains_use(ffmpeg: str) -> None:
    """Detection on the real binary (imageio-ffmpeg 9.0.2): everything, bwdif preferred."""
    support = detect_filters(ffmpeg)
    assert support.tone_mapping and support.deinterlacer == "bwdif"
    assert {"zscale", "tonemap", "bwdif", "yadif", "idet", "overlay"} <= support.names
    assert detect_filters(ffmpeg) is support  # once per path


def test_detection_of_a_binary_that_cannot_list_filters(tmp_path: Path) -> None:
    broken = tmp_path / "ffmpeg-broken"
    broken.write_text("#!/bin/sh\necho 'Unrecognized option' >&2\nexit 1\n")
    broken.chmod(0o755)
    assert detect_filters(str(broken)).names == frozenset()
    assert detect_filters(str(tmp_path / "missing")).names == frozenset()
