"""`make_continuous` on real segments: time beside a byte copy, and bytes it adds per segment.

Time: one 6 s 720p segment (~2 MB) as hlstrio's remux makes it (PyAV's mpegts muxer, a fresh
muxer per segment, hlstrio's mux options) and one from ffmpeg's segment muxer (what the
transcoder runs; streams copied so the cut lands on the same keyframes), each beside
`bytes(bytearray(ts))` (one read and one write of every byte, the least any rewrite costs),
in alternating rounds; medians. Alternating, each side's ~2 MB result lands on pages the other
just gave back, so both include first-touch page faults, which dominate on a loaded machine
(back to back, without them, make_continuous takes ~0.5-1.5 ms on these segments).

Overhead: output bytes minus input bytes, mean over every segment of a 60 s clip, for video
segments from both producers and for audio-only segments (the AAC 128 kbit/s track alone, as
an alternate audio rendition, 2 s and 6 s). Baseline: the previous scheme (every PID, PAT,
PMT and SDT included, padded to whole cycles 0..15, PSI repeats dropped only where that met
a cycle), *computed* from each segment's packet counts by `_previous_scheme_added_bytes`
rather than run: the code is gone. That model was checked equal, segment by segment, to the
previous implementation's real output when the scheme changed.
"""

from __future__ import annotations

import io
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from hlstrio._ffmpeg import ffmpeg_exe
from hlstrio.streaming._continuity import CC_MODULUS, PACKET_BYTES, make_continuous
from hlstrio.streaming._mpegts import MUX_OPTIONS, TS_OFFSET

from ._common import Result, media

ROUNDS = 200
COMMAND = "nox -s bench -- continuity"
SEGMENT = 6.0
SHORT_SEGMENT = 2.0  # the clips' GOP; short audio segments (low-latency style renditions)


def _seconds(packet: Any) -> Fraction:
    return Fraction(packet.pts * packet.time_base)


def _pyav_segments(clip: Path, kind: str, seconds: float) -> list[bytes]:
    """Cut the clip's video (at keyframes, >= `seconds` apart) or audio (every `seconds`) into
    MPEG-TS segments with a fresh PyAV muxer each, as `_remux` and `_audio` do."""
    with av.open(str(clip)) as source:
        stream = source.streams.video[0] if kind == "video" else source.streams.audio[0]
        packets = [p for p in source.demux(stream) if p.size and p.pts is not None]
        groups: list[list[Any]] = []
        start: Fraction | None = None
        for packet in packets:  # decode order; a video keyframe opens a group
            t = _seconds(packet)
            opens = packet.is_keyframe if kind == "video" else True
            if start is None or (opens and t >= start + Fraction(seconds)):
                groups.append([])
                start = t
            groups[-1].append(packet)
        segments = []
        for group in groups:
            buffer = io.BytesIO()
            with av.open(buffer, "w", format="mpegts", options=MUX_OPTIONS) as out:
                out_stream = out.add_stream_from_template(stream)
                for packet in group:
                    offset = int(TS_OFFSET / packet.time_base)
                    packet.pts += offset
                    packet.dts += offset
                    packet.stream = out_stream
                    out.mux(packet)
            segments.append(buffer.getvalue())
    return segments


def _ffmpeg_segments(clip: Path, seconds: float) -> list[bytes]:
    """The clip's video through ffmpeg's segment muxer (`-f segment -segment_format mpegts`,
    as the transcoder runs it), copied."""
    with tempfile.TemporaryDirectory(prefix="continuity-") as tmp:
        subprocess.run(
            [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(clip),
             "-map", "0:v", "-c", "copy", "-f", "segment", "-segment_format", "mpegts",
             "-segment_time", f"{seconds}", str(Path(tmp) / "seg-%d.ts")],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        files = sorted(Path(tmp).glob("seg-*.ts"), key=lambda f: int(f.stem.split("-")[1]))
        return [f.read_bytes() for f in files]


def _previous_scheme_added_bytes(ts: bytes) -> int:
    """Bytes the previous scheme added to `ts` (negative: removed), from its packet counts.

    That scheme gave every PID a multiple of 16 payload packets: `need` = -count mod 16 more,
    split from PES packets or repeated PSI packets; except that a PSI PID with at least
    16 + (16 - need) packets, 16 - need of which repeat the packet before them on the PID
    (a whole-sections unit start equal but for its counter), lost those instead.
    """
    counts: dict[int, int] = {}
    repeats: dict[int, int] = {}
    pes: dict[int, bool] = {}
    last: dict[int, bytes] = {}
    for p in range(0, len(ts), PACKET_BYTES):
        packet = ts[p : p + PACKET_BYTES]
        pid = (packet[1] & 0x1F) << 8 | packet[2]
        if pid == 0x1FFF or not packet[3] & 0x10:
            continue
        start = 5 + packet[4] if packet[3] & 0x20 else 4
        if packet[1] & 0x40 and pid not in pes:
            pes[pid] = pid != 0 and packet[start : start + 3] == b"\x00\x00\x01"
        counts[pid] = counts.get(pid, 0) + 1
        body = packet[1:3] + bytes((packet[3] & 0xF0,)) + packet[4:]
        whole = bool(packet[1] & 0x40) and packet[start] == 0
        if whole and last.get(pid) == body:
            repeats[pid] = repeats.get(pid, 0) + 1
        last[pid] = body
    added = 0
    for pid, count in counts.items():
        need = -count % CC_MODULUS
        surplus = CC_MODULUS - need
        psi = not pes.get(pid, True)
        if need and psi and count - surplus >= CC_MODULUS and repeats.get(pid, 0) >= surplus:
            added -= surplus
        else:
            added += need
    return added * PACKET_BYTES


def _added_bytes(segments: list[bytes]) -> tuple[float, float]:
    """(mean bytes make_continuous adds, mean bytes the previous scheme added) per segment."""
    now = [len(make_continuous(ts, k)) - len(ts) for k, ts in enumerate(segments)]
    before = [_previous_scheme_added_bytes(ts) for ts in segments]
    return statistics.fmean(now), statistics.fmean(before)


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def _timed(fn: Callable[[], bytes]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _time_against_copy(ts: bytes) -> tuple[float, float]:
    """Median ms of make_continuous(ts) and of a byte copy of ts, in alternating rounds."""

    def normalise() -> bytes:
        return make_continuous(ts, 1)

    def copy() -> bytes:
        return bytes(bytearray(ts))

    sides: dict[Callable[[], bytes], list[float]] = {normalise: [], copy: []}
    for fn in sides:
        fn()
    for _ in range(ROUNDS):
        for fn, samples in sides.items():
            samples.append(_timed(fn))
    return _median_ms(sides[normalise]), _median_ms(sides[copy])


def run() -> list[Result]:
    big = media("p1/clip-720p.mp4", "h264_aac_mp4", 12, 1280, 720)  # shared with segments
    long = media("continuity/clip-60s-108p.mp4", "h264_aac_mp4", 60, 192, 108)
    timed_inputs = {
        "PyAV remux": _pyav_segments(big, "video", SEGMENT)[1],
        "ffmpeg segment muxer": _ffmpeg_segments(big, SEGMENT)[1],
    }
    results = []
    for label, ts in timed_inputs.items():
        normalise_ms, copy_ms = _time_against_copy(ts)
        results.append(
            Result(
                f"make_continuous, {label} segment",
                normalise_ms,
                copy_ms,
                "ms median; baseline: bytes(bytearray(ts)) of the same segment",
                "<= 2 x copy",
                COMMAND,
                f"{len(ts) / 1e6:.2f} MB, {len(ts) // PACKET_BYTES} packets: 6 s of a "
                f"1280x720 H.264 clip, video only, {ROUNDS} rounds",
            )
        )
    overheads = {
        f"video {SEGMENT:g} s, PyAV remux": _pyav_segments(long, "video", SEGMENT),
        f"video {SEGMENT:g} s, ffmpeg segment muxer": _ffmpeg_segments(long, SEGMENT),
        f"audio-only {SEGMENT:g} s, AAC 128 kbit/s": _pyav_segments(long, "audio", SEGMENT),
        f"audio-only {SHORT_SEGMENT:g} s, AAC 128 kbit/s": _pyav_segments(
            long, "audio", SHORT_SEGMENT
        ),
    }
    for label, segments in overheads.items():
        now, before = _added_bytes(segments)
        mean_size = statistics.fmean(len(ts) for ts in segments)
        results.append(
            Result(
                f"bytes added per segment, {label}",
                now,
                before,
                "bytes, mean; baseline: previous scheme (computed, see bench/continuity.py)",
                "< baseline",
                COMMAND,
                f"{len(segments)} segments of a 60 s clip, {mean_size / 1e3:.1f} KB each: "
                f"{100 * now / mean_size:+.1f}% now, {100 * before / mean_size:+.1f}% before",
            )
        )
    return results
