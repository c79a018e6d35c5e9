"""Library-like media for the probe: many tracks, subtitles, HDR, interlacing, AV1/VP9, Cues.

Everything is generated once per test session from lavfi sources, tiny (160x90, 1-2 s), so
each test reads real files written by real muxers.
"""

from __future__ import annotations

import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

SRT = """1
00:00:00,200 --> 00:00:00,900
Hello

2
00:00:01,000 --> 00:00:01,800
World
"""

VIDEO = ["-f", "lavfi", "-i", "testsrc2=size=160x90:rate=24"]
X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "24"]
X265 = ["-c:v", "libx265", "-preset", "ultrafast", "-g", "24", "-pix_fmt", "yuv420p10le"]


def tone(hz: int) -> list[str]:
    return ["-f", "lavfi", "-i", f"sine=frequency={hz}:sample_rate=48000"]


def ffmpeg_run(ffmpeg: str, *args: str) -> None:
    cmd = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, f"{cmd}: {done.stderr[-2000:]}"


def pgs_subtitles(width: int = 160, height: int = 90) -> bytes:
    """A two-cue HDMV PGS (.sup) stream: ffmpeg cannot make bitmap subtitles from text, so
    the display sets are written by hand (composition, window, palette, object, end)."""

    def segment(pts90k: int, kind: int, payload: bytes) -> bytes:
        return b"PG" + struct.pack(">IIBH", pts90k, pts90k, kind, len(payload)) + payload

    w, h = 16, 8
    rle = b"".join(bytes([0, 0x80 | w, 1]) + b"\0\0" for _ in range(h))  # w pixels of colour 1
    out = bytearray()
    for start, end in ((0.2, 0.9), (1.0, 1.8)):
        t = int(start * 90000)
        pcs = struct.pack(">HHBHBBBB", width, height, 0x10, 0, 0x80, 0, 0, 1)
        pcs += struct.pack(">HBBHH", 0, 0, 0, 8, 8)
        wds = struct.pack(">BBHHHH", 1, 0, 8, 8, w, h)
        pds = struct.pack(">BB", 0, 0) + bytes([1, 235, 128, 128, 255])
        ods = struct.pack(">HBB", 0, 0, 0xC0) + (len(rle) + 4).to_bytes(3, "big")
        ods += struct.pack(">HH", w, h) + rle
        out += segment(t, 0x16, pcs) + segment(t, 0x17, wds) + segment(t, 0x14, pds)
        out += segment(t, 0x15, ods) + segment(t, 0x80, b"")
        t = int(end * 90000)
        clear = struct.pack(">HHBHBBBB", width, height, 0x10, 1, 0, 0, 0, 0)
        out += segment(t, 0x16, clear) + segment(t, 0x17, wds) + segment(t, 0x80, b"")
    return bytes(out)


@pytest.fixture(scope="session")
def tracks_dir(tmp_path_factory: pytest.TempPathFactory, ffmpeg: str) -> Path:
    """Files shaped like library rips. Treat as read-only: copy to modify."""
    root = tmp_path_factory.mktemp("tracks")
    srt, sup = root / "sub.srt", root / "sub.sup"
    srt.write_text(SRT)
    sup.write_bytes(pgs_subtitles())
    two_seconds = ["-t", "2"]

    # An MKV rip: stereo AAC dub, 5.1 AC-3 default, 5.1 E-AC-3 commentary; text subtitles
    # (SubRip forced, ASS for the hearing impaired, WebVTT) and bitmaps (PGS, VobSub).
    ffmpeg_run(
        ffmpeg,
        *VIDEO,
        *tone(440),
        *tone(550),
        *tone(660),
        *("-i", str(srt), "-i", str(srt), "-i", str(srt)),
        *("-fix_sub_duration", "-i", str(sup), "-fix_sub_duration", "-i", str(sup)),
        *("-map", "0:v", "-map", "1:a", "-map", "2:a", "-map", "3:a"),
        *("-map", "4:s", "-map", "5:s", "-map", "6:s", "-map", "7:s", "-map", "8:s"),
        *X264,
        *("-c:a:0", "aac", "-ac:a:0", "2", "-c:a:1", "ac3", "-ac:a:1", "6"),
        *("-c:a:2", "eac3", "-ac:a:2", "6"),
        *("-c:s:0", "srt", "-c:s:1", "ass", "-c:s:2", "webvtt", "-c:s:3", "copy"),
        *("-c:s:4", "dvdsub"),
        *("-metadata:s:a:0", "language=fre", "-metadata:s:a:0", "title=Français"),
        *("-metadata:s:a:1", "language=eng", "-metadata:s:a:1", "title=Surround"),
        *("-metadata:s:a:2", "language=ger"),
        *("-disposition:a:0", "0", "-disposition:a:1", "default", "-disposition:a:2", "comment"),
        *("-metadata:s:s:0", "language=eng", "-disposition:s:0", "forced"),
        *("-metadata:s:s:1", "language=fre", "-metadata:s:s:1", "title=SDH"),
        *("-disposition:s:1", "hearing_impaired"),
        *("-metadata:s:s:2", "language=pt-BR", "-disposition:s:2", "0"),
        *("-metadata:s:s:3", "language=ger", "-disposition:s:3", "0"),
        *("-metadata:s:s:4", "language=spa"),
        *two_seconds,
        str(root / "tracks.mkv"),
    )
    ffmpeg_run(
        ffmpeg,
        *VIDEO,
        *tone(440),
        *("-i", str(srt), "-map", "0:v", "-map", "1:a", "-map", "2:s"),
        *X264,
        *("-c:a", "aac", "-c:s", "mov_text", "-metadata:s:s:0", "language=jpn"),
        *two_seconds,
        str(root / "mov_text.mp4"),
    )
    for name, transfer in (("pq.mkv", "smpte2084"), ("hlg.mp4", "arib-std-b67")):
        params = f"log-level=error:colorprim=bt2020:transfer={transfer}:colormatrix=bt2020nc"
        ffmpeg_run(
            ffmpeg,
            *VIDEO,
            *X265,
            *("-x265-params", params, "-tag:v", "hvc1", "-t", "1"),
            str(root / name),
        )
    interlaced = ["-f", "lavfi", "-i", "testsrc2=size=160x96:rate=25", "-t", "1"]
    for name, field in (("tff.mkv", "tff"), ("bff.mkv", "bff"), ("tff.mp4", "tff")):
        ffmpeg_run(
            ffmpeg,
            *interlaced,
            *("-vf", f"setfield={field}", *X264, "-flags", "+ildct+ilme"),
            *("-x264opts", f"{field}=1"),
            str(root / name),
        )
    ffmpeg_run(ffmpeg, "-i", str(root / "tff.mkv"), "-c", "copy", str(root / "tff.ts"))
    pq = "setparams=color_primaries=bt2020:color_trc=smpte2084:colorspace=bt2020nc"
    hlg = "setparams=color_primaries=bt2020:color_trc=arib-std-b67:colorspace=bt2020nc"
    svt = ["-c:v", "libsvtav1", "-preset", "12", "-g", "24", "-svtav1-params", "lp=1"]
    vpx = ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-g", "24"]
    one = ["-t", "1"]
    ffmpeg_run(ffmpeg, *VIDEO, *tone(440), *svt, "-c:a", "flac", *one, str(root / "av1.mp4"))
    ffmpeg_run(
        ffmpeg,
        *VIDEO,
        *tone(440),
        *("-vf", f"{pq},format=yuv420p10le", *svt, "-c:a", "libopus", *one),
        str(root / "av1_pq.mkv"),
    )
    ffmpeg_run(ffmpeg, *VIDEO, *tone(440), *vpx, "-c:a", "libopus", *one, str(root / "vp9.webm"))
    ffmpeg_run(
        ffmpeg,
        *VIDEO,
        *tone(440),
        *("-vf", f"{hlg},format=yuv420p10le", *vpx, "-profile:v", "2"),
        *("-c:a", "flac", "-sample_fmt", "s32", *one),
        str(root / "vp9_hlg.mkv"),
    )
    return root


@pytest.fixture(scope="session")
def cues_dir(tmp_path_factory: pytest.TempPathFactory, ffmpeg: str) -> Path:
    """A minute of tiny H.264/AAC in Matroska with B-frames and a keyframe a second: 60 cues.

    `cues.mkv` as ffmpeg writes it (Cues after the clusters); `live.mkv` the same streams
    written to a pipe (no Cues, as a live recording); `void_cue.mkv` with the second CuePoint
    overwritten by an EBML Void element (cues that miss a keyframe).
    """
    root = tmp_path_factory.mktemp("cues")
    cues = root / "cues.mkv"
    ffmpeg_run(
        ffmpeg,
        *("-f", "lavfi", "-i", "testsrc2=size=64x36:rate=24"),
        *tone(440),
        *("-c:v", "libx264", "-preset", "veryfast", "-g", "24", "-c:a", "aac", "-b:a", "32k"),
        *("-t", "60"),
        str(cues),
    )
    with open(root / "live.mkv", "wb") as out:
        argv = [ffmpeg, "-nostdin", "-loglevel", "error", "-i", str(cues), "-c", "copy"]
        subprocess.run([*argv, "-f", "matroska", "pipe:1"], check=True, stdout=out)
    data = bytearray(cues.read_bytes())
    points = list(cue_points(bytes(data)))
    _, start, end = points[1]
    data[start:end] = ebml_void(end - start)
    (root / "void_cue.mkv").write_bytes(bytes(data))
    return root


# --- a little EBML, enough to find CuePoints (Matroska spec: IDs and sizes are VINTs) --------

SEGMENT, CUES, CUE_POINT = 0x18538067, 0x1C53BB6B, 0xBB


def _vint(data: bytes, pos: int, *, keep_marker: bool) -> tuple[int, int]:
    first = data[pos]
    length = 9 - first.bit_length()
    value = first if keep_marker else first & (0xFF >> length)
    for b in data[pos + 1 : pos + length]:
        value = (value << 8) | b
    return value, length


def ebml_elements(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(id, element start, payload start, payload end) of the elements in data[start:end]."""
    pos = start
    while pos < end:
        element_id, id_len = _vint(data, pos, keep_marker=True)
        size, size_len = _vint(data, pos + id_len, keep_marker=False)
        payload = pos + id_len + size_len
        yield element_id, pos, payload, min(payload + size, end)
        pos = payload + size


def cue_points(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(0, start, end) byte ranges of every CuePoint element in a Matroska file."""
    for element_id, _, payload, end in ebml_elements(data, 0, len(data)):
        if element_id != SEGMENT:
            continue
        for child, _, child_payload, child_end in ebml_elements(data, payload, end):
            if child == CUES:
                for point, point_start, _, point_end in ebml_elements(
                    data, child_payload, child_end
                ):
                    if point == CUE_POINT:
                        yield 0, point_start, point_end


def ebml_void(total: int) -> bytes:
    """A Void element (ID 0xEC) of exactly `total` bytes, an 8-byte size field included."""
    size = total - 1 - 8
    return b"\xec" + (size | (1 << 56)).to_bytes(8, "big") + bytes(size)
