"""MPEG-TS continuity counters across independently made segments.

Apple HLS Authoring Specification for Apple Devices, rule 7.2: the continuity counters of a
stream's MPEG-TS segments must run on from one segment to the next. ISO/IEC 13818-1 2.4.3.3:
the 4-bit continuity_counter of a PID goes up by one per packet with payload and stays put on
adaptation-only packets. hlstrio cuts segments on demand in any order, so
`make_continuous(ts, k)` makes every PES PID of segment k start at 0 and end at 15, and PAT and
PMT one packet with counter k mod 16 (more, 1 mod 16 of them, only when a table changes or
spans packets); the SDT goes (see its module docstring). These tests check that on segments
from hlstrio's producers (PyAV's mpegts muxer for remux cuts and audio-only renditions,
ffmpeg's segment muxer for transcodes), against ffmpeg and PyAV as demuxers, and on synthetic
streams.
"""

from __future__ import annotations

import io
import itertools
import random
import re
import subprocess
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hlstrio.media import generate_clip
from hlstrio.streaming._continuity import (
    MAX_ADDED_PACKETS_PER_PID,
    PACKET_BYTES,
    ContinuityError,
    _normalise,
    make_continuous,
)
from tests import tsparse
from tests.tsparse import NULL_PID, PAT_PID, SDT_PID, Packet, parse_packets

SEGMENT_SECONDS = 2  # the clip's GOP (48 frames at 24 fps): one segment per keyframe
# hlstrio's remux mux options (PAT/PMT/SDT rarely repeated) and timestamp shift (B-frame DTS > 0).
PYAV_MUX_OPTIONS = {"pat_period": "3600", "sdt_period": "3600"}
TS_OFFSET = Fraction(14, 10)
# What ffmpeg's mpegts demuxer logs for a counter jump, and for the PES packet it then drops.
FFMPEG_PROBLEMS = ("Continuity check failed", "Packet corrupt", "corrupt input packet")


# -- producers --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, ffmpeg: str) -> Path:
    """6 s of H.264 (B-frames, keyframe every 2 s) + AAC 128 kbit/s: three segments."""
    dest = tmp_path_factory.mktemp("continuity") / "clip.mp4"
    return generate_clip(dest, "h264_aac_mp4", ffmpeg=ffmpeg, seconds=6, width=192, height=108)


def _pyav_segments(clip: Path, kinds: tuple[str, ...]) -> list[bytes]:
    """Cut at every video keyframe and mux each GOP's streams of `kinds` (its audio: the audio
    of its time span) into its own MPEG-TS in memory with PyAV, as hlstrio's remux and audio
    renditions do: a fresh muxer per segment."""

    def seconds(packet: Any) -> Fraction:
        assert packet.pts is not None and packet.time_base is not None
        return Fraction(packet.pts * packet.time_base)

    with av.open(str(clip)) as source:
        video, audio = source.streams.video[0], source.streams.audio[0]
        packets = [p for p in source.demux(video, audio) if p.size and p.pts is not None]
        starts = [seconds(p) for p in packets if p.stream.index == video.index and p.is_keyframe]
        groups: list[list[Any]] = [[] for _ in starts]
        k = -1
        for packet in packets:  # video in decode order: a keyframe opens the next group
            if packet.stream.index == video.index:
                k += bool(packet.is_keyframe)
                groups[k].append(packet)
            else:
                t = seconds(packet)
                groups[max(i for i, s in enumerate(starts) if s <= t or i == 0)].append(packet)
        wanted = {s.index for s in (video, audio) if s.type in kinds}
        segments = []
        for group in groups:
            buffer = io.BytesIO()
            with av.open(buffer, "w", format="mpegts", options=PYAV_MUX_OPTIONS) as out:
                streams = {i: out.add_stream_from_template(source.streams[i]) for i in wanted}
                for packet in sorted(group, key=lambda p: p.dts * p.time_base):
                    if packet.stream.index not in wanted:
                        continue
                    offset = int(TS_OFFSET / packet.time_base)
                    packet.pts += offset
                    packet.dts += offset
                    packet.stream = streams[packet.stream.index]
                    out.mux(packet)
            segments.append(buffer.getvalue())
    return segments


def _ffmpeg_segments(clip: Path, ffmpeg: str, out_dir: Path) -> list[bytes]:
    """ffmpeg's segment muxer as hlstrio's transcoder runs it (`-f segment -segment_format
    mpegts`), with copied streams so the cut lands on the clip's keyframes."""
    out_dir.mkdir()
    subprocess.run(
        [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(clip),
         "-map", "0", "-c", "copy", "-f", "segment", "-segment_format", "mpegts",
         "-segment_time", str(SEGMENT_SECONDS), str(out_dir / "seg-%d.ts")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    files = sorted(out_dir.glob("seg-*.ts"), key=lambda f: int(f.stem.split("-")[1]))
    return [f.read_bytes() for f in files]


@pytest.fixture(scope="module", params=["pyav", "ffmpeg", "pyav-audio-only"])
def raw_segments(
    request: pytest.FixtureRequest,
    clip: Path,
    ffmpeg: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> list[bytes]:
    if request.param == "pyav":
        segments = _pyav_segments(clip, ("video", "audio"))
    elif request.param == "pyav-audio-only":  # an alternate audio rendition (RFC 8216 4.3.4.1)
        segments = _pyav_segments(clip, ("audio",))
    else:
        segments = _ffmpeg_segments(clip, ffmpeg, tmp_path_factory.mktemp("ff") / "segments")
    assert len(segments) >= 3
    return segments


@pytest.fixture(scope="module", params=[0, 14])
def first_index(request: pytest.FixtureRequest) -> int:
    """Index of the first raw segment: 0, and 14 so that 15 -> 16 (counter 15 -> 0) is crossed."""
    index: int = request.param
    return index


@pytest.fixture(scope="module")
def segments(raw_segments: list[bytes], first_index: int) -> list[bytes]:
    """The segments normalised with their indexes, made in a shuffled order (as on demand)."""
    order = random.Random(72).sample(range(len(raw_segments)), len(raw_segments))
    made = {k: make_continuous(raw_segments[k], first_index + k) for k in order}
    return [made[k] for k in range(len(raw_segments))]


# -- helpers ------------------------------------------------------------------------------------


def payload_counters(packets: list[Packet]) -> dict[int, list[int]]:
    """Counters of each PID's payload packets (duplicates included), null packets left out."""
    out: dict[int, list[int]] = {}
    for p in packets:
        if p.pid != NULL_PID and p.has_payload:
            out.setdefault(p.pid, []).append(p.cc)
    return out


def psi_pids(packets: list[Packet]) -> set[int]:
    """PAT and the PMT PIDs it names (program_number 0 names the network PID instead)."""
    pmts = {
        pid
        for section in tsparse.sections(packets, PAT_PID)
        for number, pid in tsparse.parse_pat(section).items()
        if number
    }
    return {PAT_PID} | (pmts & tsparse.pids(packets))


def assert_counter_rules(ts: bytes, index: int) -> None:
    """The state 7.2 needs to hold whatever segment comes next, with no jump inside: PAT and
    PMT PIDs run 1 (mod 16) packets from index mod 16 to index mod 16; every other PID starts
    at 0, ends at 15; adaptation-only packets before a PID's first payload packet carry the
    counter before its first one."""
    packets = parse_packets(ts)
    assert tsparse.continuity_errors([packets]) == []
    psi = psi_pids(packets)
    first: dict[int, int] = {}
    for pid, ccs in payload_counters(packets).items():
        distinct = len(tsparse.payload_packets(packets, pid))
        first[pid] = index % 16 if pid in psi else 0
        last = first[pid] if pid in psi else 15
        assert ccs[0] == first[pid], f"PID {pid:#x} starts at {ccs[0]}"
        assert ccs[-1] == last, f"PID {pid:#x} ends at {ccs[-1]}"
        assert distinct % 16 == (1 if pid in psi else 0), f"PID {pid:#x}: {distinct} packets"
    seen: set[int] = set()
    for p in packets:
        if p.has_payload:
            seen.add(p.pid)
        elif p.pid not in seen:  # a PID without payload packets (PCR only): 15 throughout
            assert p.cc == (first.get(p.pid, 0) - 1) % 16, f"PID {p.pid:#x}: {p.cc}"


def stream_content(ts: bytes, *, without_sdt: bool = False) -> dict[str, Any]:
    """What a decoder takes from a segment: PES (stream_id, PTS, DTS, bytes) per PID, PCRs,
    and the tables per PSI PID (repeats folded); `without_sdt`: as if PID 0x0011 were absent."""
    packets = parse_packets(ts)
    if without_sdt:
        packets = [p for p in packets if p.pid != SDT_PID]
    units = tsparse.pes_units(packets)
    tables = {
        pid: tsparse.distinct_sections(packets, pid)
        for pid in tsparse.pids(packets)
        if pid not in units
    }
    return {
        "pes": {
            pid: [(u.stream_id, u.pts, u.dts, u.data) for u in us] for pid, us in units.items()
        },
        "pcr": tsparse.pcrs(packets),
        "tables": tables,
        "null_packets": sum(p.pid == NULL_PID for p in packets),
    }


def payload_packet_counts(ts: bytes) -> dict[int, int]:
    return {pid: len(ccs) for pid, ccs in payload_counters(parse_packets(ts)).items()}


def psi_jumps_only(segments: list[bytes]) -> list[tsparse.ContinuityJump]:
    """The continuity jumps of a concatenation, asserting that none is on a PES PID."""
    errors = tsparse.continuity_errors(segments)
    psi = psi_pids(parse_packets(segments[0]))
    assert [str(e) for e in errors if e.pid not in psi] == []
    return errors


# -- real segments ----------------------------------------------------------------------------


def test_pes_pids_run_whole_cycles_and_psi_is_one_packet_numbered_by_the_index(
    raw_segments: list[bytes], segments: list[bytes], first_index: int
) -> None:
    """Apple 7.2 without state: each PES PID of segment k runs 0..15 a whole number of times;
    PAT and PMT are one packet each with counter k mod 16 (the muxers' repeats dropped); the
    SDT (0x0011) is gone and nothing else is."""
    raw_packets = parse_packets(raw_segments[0])
    raw_pids = tsparse.pids(raw_packets)
    assert {PAT_PID, SDT_PID} <= raw_pids
    for k, ts in enumerate(segments):
        index = first_index + k
        packets = parse_packets(ts)
        assert len(ts) % PACKET_BYTES == 0
        assert tsparse.pids(packets) == raw_pids - {SDT_PID}
        assert_counter_rules(ts, index)
        psi = psi_pids(packets)
        assert len(psi) == 2  # PAT + one PMT
        for pid in psi:
            assert [p.cc for p in packets if p.pid == pid] == [index % 16], f"PID {pid:#x}"
    # The raw segments are not like this (so the checks above can fail): PSI repeated (ffmpeg)
    # or numbered from 0 whatever the index, and PES PIDs ending anywhere.
    assert any(
        ccs[-1] != 15 for ts in raw_segments for ccs in payload_counters(parse_packets(ts)).values()
    )


def test_consecutive_segments_join_whatever_order_they_were_made_in(
    raw_segments: list[bytes], segments: list[bytes], first_index: int
) -> None:
    """Apple 7.2 for segments made on demand: made in any order (each with its own index),
    segment k+1 runs on from k on every PID, across 15 -> 16 too; so does k after k (a
    re-fetch: PAT/PMT repeat as 13818-1 duplicates). The output does not depend on the order
    of making (no state)."""
    n = len(raw_segments)
    rng = random.Random(16)
    orders = [list(range(n)), list(reversed(range(n)))] + [rng.sample(range(n), n) for _ in "abc"]
    for order in orders:
        made = {k: make_continuous(raw_segments[k], first_index + k) for k in order}
        assert [made[k] for k in range(n)] == segments
    errors = tsparse.continuity_errors(segments)
    assert errors == [], [str(e) for e in errors[:5]]
    refetched = [segments[i] for i in (0, 0, 1, 1, 2, 2)]
    assert tsparse.continuity_errors(refetched) == []
    # Un-normalised, the playlist order already jumps at every boundary.
    raw_errors = tsparse.continuity_errors(raw_segments)
    assert {e.segment for e in raw_errors} == set(range(1, n))


def test_pes_pids_join_in_any_order_psi_pids_only_from_k_to_k_plus_one(
    segments: list[bytes], first_index: int
) -> None:
    """What the index rule trades (module docstring): in an order a seek makes (reversed,
    shuffled) PES counters never jump; PAT/PMT counters jump exactly where the next segment is
    not the previous one's successor (or itself)."""
    rng = random.Random(72)
    n = len(segments)
    orders = [list(reversed(range(n)))] + [rng.sample(range(n), n) for _ in range(4)]
    for order in orders:
        errors = psi_jumps_only([segments[i] for i in order])
        broken = {
            at for at in range(1, n) if order[at] - order[at - 1] not in (0, 1)
        }  # indexes differ by first_index only: same steps
        assert {e.segment for e in errors} == broken, order
        for e in errors:
            assert (e.expected, e.got) == ((first_index + order[e.segment - 1] + 1) % 16,
                                           (first_index + order[e.segment]) % 16)  # fmt: skip


def test_content_is_unchanged_but_the_sdt(raw_segments: list[bytes], segments: list[bytes]) -> None:
    """Only counters, packetisation and PSI repetition change: the PES bytes, PTS/DTS and PCRs
    per PID and the PAT/PMT tables are the same, for at most 15 added packets per PES PID."""
    for raw, ts in zip(raw_segments, segments, strict=True):
        assert stream_content(ts) == stream_content(raw, without_sdt=True)
        before, after = payload_packet_counts(raw), payload_packet_counts(ts)
        psi = psi_pids(parse_packets(raw))
        for pid, count in before.items():
            if pid in psi:
                assert after[pid] == 1
            elif pid != SDT_PID:
                assert 0 <= after[pid] - count <= MAX_ADDED_PACKETS_PER_PID


def test_split_packets_keep_headers_whole_and_tables_in_one_packet(
    raw_segments: list[bytes], segments: list[bytes]
) -> None:
    """What lenient demuxers rely on stays true: each PES header sits whole in its unit-start
    packet, PCR-carrying packets are untouched, and every PAT/PMT packet holds whole tables
    (hls.js parses a PAT from every payload packet on PID 0, unit start or not)."""
    for raw, ts in zip(raw_segments, segments, strict=True):
        packets = parse_packets(ts)
        psi = psi_pids(packets)
        for p in packets:
            if p.pid in psi:
                assert p.pusi and p.payload[0] == 0, f"packet {p.index}: partial table"
            elif p.pusi and p.payload.startswith(tsparse.PES_START):
                whole = len(p.payload) >= 9 and len(p.payload) >= 9 + p.payload[8]
                assert whole, f"packet {p.index}: PES header cut"
        pcr_packets = [p.raw[4:] for p in parse_packets(raw) if p.pcr is not None]
        assert [p.raw[4:] for p in packets if p.pcr is not None] == pcr_packets


def _ffmpeg_read(ffmpeg: str, path: Path, muxer: str = "framemd5") -> tuple[str, str]:
    """Demux and decode `path` with ffmpeg: (framemd5 of every decoded frame, the log at
    debug level, where the mpegts demuxer reports "Continuity check failed")."""
    result = subprocess.run(
        [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "debug", "-i", str(path),
         "-map", "0", "-f", muxer, "-"],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    return result.stdout.decode(), result.stderr.decode(errors="replace")


def _problems(log: str) -> list[str]:
    return [line for line in log.splitlines() if any(s in line for s in FFMPEG_PROBLEMS)]


def test_ffmpeg_demuxes_the_concatenation_without_continuity_errors(
    raw_segments: list[bytes], segments: list[bytes], ffmpeg: str, tmp_path: Path
) -> None:
    """ffmpeg as the client (it reads HLS segments back to back): the raw concatenation makes it
    log continuity failures and "Packet corrupt"; the normalised one in playlist order logs
    neither, and decodes to exactly the same frames. Reversed (a seek back), only PAT/PMT
    counters jump, which ffmpeg logs and otherwise ignores: no PES packet is marked corrupt."""
    raw_path, fixed_path, reversed_path = (tmp_path / n for n in ("raw.ts", "ok.ts", "rev.ts"))
    raw_path.write_bytes(b"".join(raw_segments))
    fixed_path.write_bytes(b"".join(segments))
    reversed_path.write_bytes(b"".join(reversed(segments)))

    raw_frames, raw_log = _ffmpeg_read(ffmpeg, raw_path)
    assert "Continuity check failed" in raw_log
    if "Video" in raw_log:  # it drops the video packet at each jump (audio PES: just logs)
        assert "Packet corrupt" in raw_log

    frames, log = _ffmpeg_read(ffmpeg, fixed_path)
    assert _problems(log) == []
    assert frames == raw_frames

    _, log = _ffmpeg_read(ffmpeg, reversed_path, "null")  # timestamps go back: no md5 muxer
    psi = psi_pids(parse_packets(segments[0]))
    jumps = re.findall(r"Continuity check failed for pid (\d+)", log)
    assert jumps and {int(pid) for pid in jumps} <= psi
    assert [line for line in _problems(log) if "Continuity check failed" not in line] == []


def test_ffmpeg_and_pyav_find_every_stream_without_the_sdt(
    raw_segments: list[bytes], ffmpeg: str, tmp_path: Path
) -> None:
    """The SDT only named the service: ffmpeg and PyAV find the same streams (codec, PID,
    parameters) in each normalised segment as in the raw one and decode the same frames; what
    goes is the program's service_name in ffmpeg's log, here to show the SDT was there."""
    segments = [make_continuous(raw, k) for k, raw in enumerate(raw_segments)]
    for k, (raw, ts) in enumerate(zip(raw_segments, segments, strict=True)):
        found = []
        for data in (raw, ts):
            with av.open(io.BytesIO(data), "r", format="mpegts") as container:
                streams = [_stream_signature(s) for s in container.streams]
                frames = sum(1 for _ in container.decode(*container.streams))
                found.append((streams, frames))
        (raw_streams, raw_frames), (streams, frames) = found
        assert streams == raw_streams and frames == raw_frames > 0
        raw_path, path = tmp_path / f"raw-{k}.ts", tmp_path / f"ok-{k}.ts"
        raw_path.write_bytes(raw)
        path.write_bytes(ts)
        raw_md5, raw_log = _ffmpeg_read(ffmpeg, raw_path)
        md5, log = _ffmpeg_read(ffmpeg, path)
        assert md5 == raw_md5 and md5.count("\n") > 10
        assert "service_name" in raw_log and "service_name" not in log


def _stream_signature(stream: Any) -> tuple[object, ...]:
    """What a player sets up from a stream: kind, PID, codec and its basic parameters."""
    codec = stream.codec_context
    if stream.type == "video":
        return ("video", stream.id, codec.name, codec.width, codec.height, codec.pix_fmt)
    return (stream.type, stream.id, codec.name, codec.sample_rate, codec.channels)


def test_normalising_is_idempotent_and_both_paths_agree(
    raw_segments: list[bytes], segments: list[bytes], first_index: int
) -> None:
    for k, (raw, ts) in enumerate(zip(raw_segments, segments, strict=True)):
        assert make_continuous(ts, first_index + k) == ts
        assert _normalise(raw, first_index + k, fast=False) == ts


# -- PSI that cannot be one packet: the fallback ----------------------------------------------


def _crc32_mpeg2(data: bytes) -> int:
    """CRC_32 of a section (13818-1 Annex A: polynomial 0x04C11DB7, MSB first, start ~0)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
    return crc


def _with_new_pat_version(ts: bytes) -> bytes:
    """`ts` plus, at its end, its PAT as a new version (version_number + 1, same programs):
    two distinct tables on PID 0, so PID 0 cannot be one packet."""
    packets = parse_packets(ts)
    pat = next(p for p in packets if p.pid == PAT_PID)
    section = bytearray(tsparse.sections(packets, PAT_PID)[0])
    section[5] = (section[5] & 0xC1) | (((section[5] >> 1) + 1) & 0x1F) << 1
    section[-4:] = _crc32_mpeg2(bytes(section[:-4])).to_bytes(4, "big")
    payload = b"\x00" + bytes(section)
    packet = pat.raw[:4] + payload + b"\xff" * (PACKET_BYTES - 4 - len(payload))
    assert pat.raw[3] & 0x30 == 0x10  # payload only, so the layout above is the packet's
    return ts + packet


def test_mixed_single_and_padded_psi_segments_join_in_every_combination(
    raw_segments: list[bytes], first_index: int, ffmpeg: str, tmp_path: Path
) -> None:
    """A PAT version change inside a segment makes its PID 0 fall back to padding: 17 packets
    (1 mod 16) from k to k, so it joins a single-packet neighbour on either side and another
    padded one; all 8 single/padded combinations of three consecutive segments are continuous,
    and ffmpeg reads both alternations without a continuity message."""
    variants = [
        (raw, _with_new_pat_version(raw)) for raw in raw_segments[:3]
    ]  # (single, padded) per position
    made = {
        (k, bool(padded)): make_continuous(raw, first_index + k)
        for k, pair in enumerate(variants)
        for padded, raw in enumerate(pair)
    }
    for combo in itertools.product((False, True), repeat=3):
        chain = [made[k, padded] for k, padded in enumerate(combo)]
        assert tsparse.continuity_errors(chain) == [], combo
    for k, pair in enumerate(variants):
        for padded, raw in enumerate(pair):
            ts = made[k, bool(padded)]
            assert_counter_rules(ts, first_index + k)
            packets = parse_packets(ts)
            pat = [p.cc for p in packets if p.pid == PAT_PID]
            assert len(pat) == (17 if padded else 1), pat
            assert pat[0] == pat[-1] == (first_index + k) % 16
            assert len(tsparse.distinct_sections(packets, PAT_PID)) == 1 + padded
            assert stream_content(ts) == stream_content(raw, without_sdt=True)
    for combo in ((False, True, False), (True, False, True)):
        path = tmp_path / f"mixed-{combo}.ts"
        path.write_bytes(b"".join(made[k, padded] for k, padded in enumerate(combo)))
        assert _problems(_ffmpeg_read(ffmpeg, path, "null")[1]) == [], combo


def _pat_packet(version: int, cc: int = 0) -> bytes:
    pat = _section(0x00, b"\x00\x01\xf0\x00", version=version)  # program 1 -> PMT PID 0x1000
    return _packet(PAT_PID, pusi=True, af=b"", payload=b"\x00" + pat, cc=cc)


@pytest.mark.parametrize(
    ("versions", "kept"),
    [
        ([0] * 5, [0]),  # repeats: one packet
        ([0] * 16 + [1], [0] * 16 + [1]),  # two tables: 17 packets already, none moves
        ([0] * 20 + [1], [0] * 16 + [1]),  # 21: the 4 latest repeats of version 0 go
        ([0] * 3 + [1] * 3, [0] * 3 + [1] * 14),  # 6: 11 more repeats of the last packet
        ([0, 1, 0], [0, 1, 0] + [0] * 14),  # A B A stays A B A: never A B
    ],
)
def test_psi_repeats_go_only_where_the_tables_a_decoder_sees_stay(
    versions: list[int], kept: list[int]
) -> None:
    """ffmpeg's segment muxer repeats PAT/PMT ~8 times a second: a packet equal to the one
    before it on its PID is dropped, down to 1 (mod 16) packets, never a table version a
    decoder would act on (A A B A -> A B A), then padded with repeats of the last packet."""
    ts = b"".join(_pat_packet(v, cc=k) for k, v in enumerate(versions))
    out = make_continuous(ts, 5)
    packets = parse_packets(out)
    assert [(p.payload[6] >> 1) & 0x1F for p in packets] == kept
    assert [p.cc for p in packets] == [(5 + k) % 16 for k in range(len(kept))]
    assert stream_content(out) == stream_content(ts)
    assert_counter_rules(out, 5)


# -- synthetic streams ------------------------------------------------------------------------


def _packet(
    pid: int, *, pusi: bool = False, af: bytes | None = None, payload: bytes = b"", cc: int = 0
) -> bytes:
    """One TS packet; `af` is the adaptation field after its length byte (stuffed to fit)."""
    afc = (2 if af is not None else 0) | (1 if payload else 0)
    header = bytes((0x47, (0x40 if pusi else 0) | pid >> 8, pid & 0xFF, afc << 4 | cc & 0x0F))
    body = b""
    if af is not None:
        length = 183 - len(payload)
        assert len(af) <= length
        if length:
            af = af or b"\x00"  # the flags byte: nothing signalled
            body = bytes((length,)) + af + b"\xff" * (length - len(af))
        else:
            body = b"\x00"
    packet = header + body + payload
    assert len(packet) == PACKET_BYTES, len(packet)
    return packet


def _pcr_field(pcr: int, flags: int = 0) -> bytes:
    base, ext = divmod(pcr, 300)
    return bytes((flags | 0x10,)) + (base << 15 | 0x3F << 9 | ext).to_bytes(6, "big")


def _packetise(
    pid: int, unit: bytes, first_af: bytes | None, stuff: Callable[[], int]
) -> list[bytes]:
    """A PES or PSI unit as TS packets: unit start first (with `first_af`, flags onwards),
    adaptation-field stuffing where the unit runs out, and `stuff()` more stuffing bytes on
    some packets so payload sizes vary."""
    out = []
    q = 0
    while q < len(unit):
        af = first_af if q == 0 else None
        extra = stuff()
        if extra:
            af = (af or b"\x00") + b"\xff" * extra
        room = 184 - (1 + len(af) if af is not None else 0)
        chunk = unit[q : q + room]
        if len(chunk) < room and af is None:
            af = b""
        out.append(_packet(pid, pusi=q == 0, af=af, payload=chunk))
        q += len(chunk)
    return out


def _pes(stream_id: int, pts: int, data: bytes, dts: int | None = None) -> bytes:
    def stamp(prefix: int, t: int) -> bytes:
        return bytes((prefix << 4 | (t >> 29 & 0x0E) | 1, t >> 22 & 0xFF, (t >> 14 & 0xFE) | 1,
                      t >> 7 & 0xFF, (t << 1 & 0xFE) | 1))  # fmt: skip

    fields = stamp(3, pts) + stamp(1, dts) if dts is not None else stamp(2, pts)
    header = bytes((0x80, 0xC0 if dts is not None else 0x80, len(fields))) + fields
    length = len(header) + len(data)
    return (
        b"\x00\x00\x01"
        + bytes((stream_id,))
        + (length if length < 65536 else 0).to_bytes(2, "big")
        + header
        + data
    )


def _section(table_id: int, body: bytes, version: int = 0) -> bytes:
    """A long-form section with its CRC_32."""
    length = 5 + len(body) + 4
    head = bytes((table_id, 0xB0 | length >> 8, length & 0xFF, 0, 1, 0xC1 | (version & 31) << 1))
    section = head + b"\x00\x00" + body
    return section + _crc32_mpeg2(section).to_bytes(4, "big")


PMT_PID = 0x1000


def _pmt_body(pes_pids: list[int], descriptors: bytes) -> bytes:
    """PCR PID, program_info (`descriptors`, any bytes: nobody here parses them), and one
    H.264 (0x1B) entry per PES PID."""
    body = bytes((0xE0 | pes_pids[0] >> 8, pes_pids[0] & 0xFF))
    body += (0xF000 | len(descriptors)).to_bytes(2, "big") + descriptors
    for pid in pes_pids:
        body += bytes((0x1B, 0xE0 | pid >> 8, pid & 0xFF, 0xF0, 0x00))
    return body


@st.composite
def synthetic_streams(draw: st.DrawFn, pes_pids: list[int] | None = None) -> bytes:
    """A segment-like TS: PAT (program 1 -> PMT 0x1000), PMT naming 1-3 PES PIDs (one packet,
    or spanning packets with long program_info), SDT; each repeated, sometimes with a new
    version in between; PES PIDs with random unit sizes and adaptation fields, a PCR-only
    PID, null packets, interleaved at random, with counters canonical (0, 1, 2...), offset, or
    random, and sometimes a duplicate packet. `pes_pids`: fixed PIDs (for streams that must
    look alike, as a rendition's segments do)."""
    rng = draw(st.randoms(use_true_random=False))
    if pes_pids is None:
        pes_pids = draw(
            st.lists(st.integers(0x20, 0x1FEF), min_size=1, max_size=3, unique=True).filter(
                lambda pids: PMT_PID not in pids
            )
        )
    per_pid: dict[int, list[bytes]] = {}

    def stuff() -> int:
        return rng.choice((0, 0, 0, 1, 2, 7, 40))

    for n, pid in enumerate(pes_pids):
        units = []
        sizes = draw(st.lists(st.integers(1, 700), min_size=1, max_size=6))
        sizes[0] = max(sizes[0], 200)  # enough payload to pad (sparser PIDs: their own test)
        for k, size in enumerate(sizes):
            data = draw(st.binary(min_size=size, max_size=size))
            dts = 9000 * k if n == 0 and draw(st.booleans()) else None
            first_af = _pcr_field(27_000_000 * k, 0x40) if n == 0 and draw(st.booleans()) else None
            units += _packetise(pid, _pes(0xE0 + n, 9000 * k + 3003, data, dts), first_af, stuff)
        per_pid[pid] = units

    descriptors = draw(st.binary(max_size=300))  # > ~150 bytes: the PMT spans packets
    bodies = {
        PAT_PID: (0x00, b"\x00\x01" + bytes((0xE0 | PMT_PID >> 8, PMT_PID & 0xFF))),
        PMT_PID: (0x02, _pmt_body(pes_pids, descriptors)),
        SDT_PID: (0x42, draw(st.binary(min_size=4, max_size=100))),
    }
    for pid, (table_id, body) in bodies.items():
        table = _packetise(pid, b"\x00" + _section(table_id, body), None, stuff)
        repeats = draw(st.integers(1, 20))
        per_pid[pid] = table * repeats
        if draw(st.integers(0, 3)) == 0:  # a new version somewhere, the very end included
            update = _packetise(pid, b"\x00" + _section(table_id, body, version=1), None, stuff)
            at = len(table) * draw(st.integers(1, repeats))
            per_pid[pid][at:at] = update

    if draw(st.booleans()):  # PCR-only PID: adaptation field only, no payload
        pcr_pid = draw(st.sampled_from([p for p in range(0x1FF0, 0x1FF4) if p not in pes_pids]))
        per_pid[pcr_pid] = [
            _packet(pcr_pid, af=_pcr_field(1000 * k)) for k in range(draw(st.integers(1, 5)))
        ]

    mode = draw(st.sampled_from(["canonical", "offset", "random"]))
    numbered: dict[int, list[bytes]] = {}
    for pid, pkts in per_pid.items():
        cc = draw(st.integers(0, 15)) if mode == "offset" else 0
        cc -= 1
        out = []
        for pkt in pkts:
            has_payload = bool(pkt[3] & 0x10)
            if mode == "random":  # any value but the last one: no accidental duplicates
                cc = (cc + rng.randrange(1, 16)) & 0x0F
            elif has_payload:
                cc += 1
            out.append(pkt[:3] + bytes(((pkt[3] & 0xF0) | (cc & 0x0F),)) + pkt[4:])
        payload_at = [i for i, p in enumerate(out) if p[3] & 0x10]
        if mode == "canonical" and payload_at and draw(st.booleans()):
            i = rng.choice(payload_at)
            out.insert(i + 1, out[i])  # 13818-1 duplicate: same packet, same counter
        numbered[pid] = out
    labels = [pid for pid, pkts in numbered.items() for _ in pkts]
    labels += [NULL_PID] * draw(st.integers(0, 5))
    rng.shuffle(labels)
    queues = {pid: iter(pkts) for pid, pkts in numbered.items()}
    null = _packet(NULL_PID, payload=b"\xff" * 184)
    return b"".join(null if pid == NULL_PID else next(queues[pid]) for pid in labels)


def _distinct_payload_counts(ts: bytes) -> dict[int, int]:
    """Payload packets per PID as a decoder counts them (a duplicate does not count)."""
    packets = parse_packets(ts)
    return {pid: len(tsparse.payload_packets(packets, pid)) for pid in tsparse.pids(packets)}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.integers(0x20, 0x1FEF), min_size=1, max_size=3, unique=True)
    .filter(lambda pids: PMT_PID not in pids)
    .flatmap(lambda pids: st.tuples(synthetic_streams(pids), synthetic_streams(pids))),
    st.integers(0, 40),
)
def test_synthetic_streams_keep_content_and_join_by_index(
    pair: tuple[bytes, bytes], index: int
) -> None:
    """Apple 7.2 on synthetic streams of one rendition (same PIDs): the counter rules per PID,
    the same PES/PCR/PAT/PMT content without the SDT, <= 15 packets added per PID, PAT/PMT one
    packet unless a table changes or spans packets, idempotent, the fast path (counters already
    s, s+1, ...) equal to the general loop; segment `index + 1` runs on from `index` (and each
    from itself), whichever way each PSI PID came out; PES PIDs join in either order."""
    first, second = pair
    out1, out2 = make_continuous(first, index), make_continuous(second, index + 1)
    for k, ts, out in ((index, first, out1), (index + 1, second, out2)):
        assert_counter_rules(out, k)
        assert SDT_PID not in tsparse.pids(parse_packets(out))
        assert stream_content(out) == stream_content(ts, without_sdt=True)
        before, after = _distinct_payload_counts(ts), _distinct_payload_counts(out)
        for pid, count in after.items():
            assert count - before[pid] <= MAX_ADDED_PACKETS_PER_PID
        packets = parse_packets(ts)
        for pid in (PAT_PID, PMT_PID):  # one table, whole in each of its packets: one packet
            tables = tsparse.distinct_sections(packets, pid)
            whole = all(p.pusi for p in tsparse.payload_packets(packets, pid))
            assert (after[pid] == 1) == (len(tables) == 1 and whole), (pid, after[pid], tables)
        assert make_continuous(out, k) == out
        assert _normalise(ts, k, fast=False) == out
    assert tsparse.continuity_errors([out1, out2]) == []
    # A re-fetch (k after k): a PAT/PMT PID that ends on the packet it starts with (one packet,
    # or padding that repeats it) goes on as a duplicate; one padded with another table jumps
    # there, and only there.
    refetch = psi_jumps_only([out1, out1, out2, out2])
    expected = set()
    for at, out in ((1, out1), (3, out2)):
        packets = parse_packets(out)
        for pid in (PAT_PID, PMT_PID):
            own = tsparse.payload_packets(packets, pid)
            if own[0].raw != own[-1].raw:
                expected.add((at, pid))
    assert {(e.segment, e.pid) for e in refetch} == expected
    psi_jumps_only([out2, out1])


def test_parse_pat_and_pmt_from_the_segment_not_from_fixed_pids() -> None:
    """PMT PIDs are whatever the PAT names (here 0x0100, where PyAV puts video): that PID gets
    the index rule; a PES PID at 0x1000 (a usual PMT PID) keeps whole cycles."""
    pat = _section(0x00, b"\x00\x01\xe1\x00")  # program 1 -> PMT PID 0x0100
    pmt = _section(0x02, _pmt_body([0x1000], b""))
    ts = b"".join(
        [
            _packet(PAT_PID, pusi=True, af=b"", payload=b"\x00" + pat),
            _packet(0x0100, pusi=True, af=b"", payload=b"\x00" + pmt),
            *(
                p[:3] + bytes((p[3] | k,)) + p[4:]
                for k, p in enumerate(_packetise(0x1000, _pes(0xE0, 3003, bytes(900)), None, int))
            ),
        ]
    )
    out = make_continuous(ts, 3)
    counters = payload_counters(parse_packets(out))
    assert counters[PAT_PID] == counters[0x0100] == [3]
    assert counters[0x1000] == list(range(16))


def _numbered(packets: list[bytes]) -> list[bytes]:
    """The packets with counters 0, 1, 2, ... per PID (they are all payload packets here)."""
    seen: dict[int, int] = {}
    out = []
    for p in packets:
        pid = (p[1] & 0x1F) << 8 | p[2]
        k = seen[pid] = seen.get(pid, -1) + 1
        out.append(p[:3] + bytes((p[3] & 0xF0 | k & 0x0F,)) + p[4:])
    return out


@pytest.mark.parametrize("carries", ["sdt", "bat", "scte-35", "pes"])
def test_pid_0x0011_goes_only_when_it_is_the_sdt(carries: str) -> None:
    """DVB's SDT (table_id 0x42) and BAT (0x4A) on PID 0x0011 go; 13818-1 lets the PID carry
    other things, which stay: other sections (here SCTE-35 splice_info, table_id 0xFC, as the
    PMT's stream_type 0x86) or PES."""
    named = [0x0100] + ([SDT_PID] if carries in ("scte-35", "pes") else [])
    pmt = _section(0x02, _pmt_body(named, b""))
    table_id = {"sdt": 0x42, "bat": 0x4A, "scte-35": 0xFC}.get(carries, 0)
    on_0x11 = (
        _packetise(SDT_PID, _pes(0xC0, 3003, bytes(range(200))), None, int)
        if carries == "pes"
        else [_packet(SDT_PID, pusi=True, af=b"", payload=b"\x00" + _section(table_id, b"x"))] * 3
    )
    ts = b"".join(
        _numbered(
            [
                _pat_packet(0),
                _packet(PMT_PID, pusi=True, af=b"", payload=b"\x00" + pmt),
                *on_0x11,
                *_packetise(0x0100, _pes(0xE0, 3003, bytes(range(256)) * 4), None, int),
            ]
        )
    )
    out = make_continuous(ts, 2)
    dropped = carries in ("sdt", "bat")
    assert (SDT_PID in tsparse.pids(parse_packets(out))) != dropped
    assert stream_content(out) == stream_content(ts, without_sdt=dropped)
    assert_counter_rules(out, 2)


# -- malformed and unpaddable input ---------------------------------------------------------------


def _video_packet(cc: int = 0) -> bytes:
    return _packet(0x100, payload=bytes(184))[:3] + bytes((0x10 | cc,)) + bytes(184)


@pytest.mark.parametrize(
    ("ts", "message"),
    [
        (b"", "whole number"),
        (_video_packet()[:-1], "whole number"),
        (_video_packet() + b"\x46" + _video_packet()[1:], "packet 1: sync byte 0x46"),
        (_video_packet()[:3] + b"\x00" + bytes(184), "reserved"),
        (_packet(0x100, af=b"\x00")[:4] + b"\x50" + bytes(183), "without payload"),
        (_packet(0x100, payload=b"x", af=b"")[:4] + b"\xb7" + bytes(183), "no room"),
        (_packet(0x100, pusi=True, af=b"", payload=_pes(0xE0, 0, b"1")), "too little payload"),
    ],
)
def test_malformed_or_unpaddable_input_raises(ts: bytes, message: str) -> None:
    with pytest.raises(ContinuityError, match=message):
        make_continuous(ts, 0)
    assert issubclass(ContinuityError, ValueError)


def test_a_negative_index_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="segment_index -1") as caught:
        make_continuous(_video_packet() * 16, -1)
    assert not isinstance(caught.value, ContinuityError)  # not "serve the segment as is"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([0x0000, 0x0011, 0x0100, 0x0101, 0x1000, 0x1234, NULL_PID]),
            st.integers(0, 255),  # byte 1 flags (PUSI, TEI, priority) and counter bits
            st.sampled_from([0x10, 0x20, 0x30]),  # adaptation_field_control
            st.integers(0, 182),  # adaptation field size when both
            st.sampled_from([0x00, 0x10, 0x40, 0x80, 0x50]),  # AF flags: PCR, RAI, discontinuity
            st.binary(min_size=184, max_size=184),
        ),
        min_size=1,
        max_size=60,
    ),
    st.integers(0, 31),
)
def test_any_well_formed_packets_normalise_or_raise_cleanly(
    spec: list[tuple[int, int, int, int, int, bytes]], index: int
) -> None:
    """Well-formed packets with arbitrary flags and payload bytes (random pointer fields,
    random "PES headers", random PATs naming random PMT PIDs): the result is valid TS whose
    PIDs follow one of the two counter rules (PID 0 the index rule) and join index + 1, or
    `ContinuityError`."""
    packets = []
    for pid, bits, afc, af_size, flags, payload in spec:
        b1 = (bits & 0xE0) | pid >> 8
        b3 = afc | (bits & 0x0F)
        if afc == 0x10:
            packets.append(bytes((0x47, b1, pid & 0xFF, b3)) + payload)
            continue
        length = 183 if afc == 0x20 else af_size
        fields = _pcr_field(12345, flags & 0xE0) if flags & 0x10 else bytes((flags,))
        af = b"" if length == 0 else (fields + b"\xff" * 183)[:length]
        if length and len(fields) > length:
            af = b"\x00" + b"\xff" * (length - 1)
        packets.append(bytes((0x47, b1, pid & 0xFF, b3, length)) + af + payload[: 183 - length])
    ts = b"".join(packets)
    try:
        out, after = make_continuous(ts, index), make_continuous(ts, index + 1)
    except ContinuityError:
        return
    assert len(out) % PACKET_BYTES == 0
    if not out:  # nothing but SDT packets
        return
    parsed = parse_packets(out)  # well-formed, stuffing and all
    counts = _distinct_payload_counts(out)
    for pid, ccs in payload_counters(parsed).items():
        rules = {(1, index % 16)} if pid == PAT_PID else {(0, 0), (1, index % 16)}
        assert (counts[pid] % 16, ccs[0]) in rules, (pid, counts[pid], ccs)
    assert tsparse.continuity_errors([out, after]) == []
    assert make_continuous(out, index) == out
