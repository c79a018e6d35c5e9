"""Keyframe index from Matroska Cues: same keyframes as the full scan, or the full scan.

Remux segments start on keyframes (Apple HLS authoring spec 7.4: every segment starts with
an IDR), so a cue that is not a keyframe, or a keyframe with no cue, would cut a broken or
an oversized segment: every case below must either agree with the scan or fall back to it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import pytest

from hlstrio.media import MediaInfo, ProbeError, probe
from hlstrio.media._probe import cue_gop_bytes

from .conftest import cue_points

SCAN = 1 << 62  # index_min_bytes that forces the full scan
CUES = 0  # index_min_bytes that lets any file use its container index


def video_bytes_per_gop(path: Path) -> list[int]:
    sizes: list[int] = []
    with av.open(str(path)) as c:
        for packet in c.demux(c.streams.video[0]):
            if packet.pts is None:
                continue
            if packet.is_keyframe:
                sizes.append(0)
            if sizes:
                sizes[-1] += packet.size
    return sizes


def assert_same_index(cues: MediaInfo, scan: MediaInfo) -> None:
    assert cues.keyframe_pts == scan.keyframe_pts
    assert (cues.video_start_pts, cues.video_end_pts) == (scan.video_start_pts, scan.video_end_pts)
    assert cues.video == scan.video  # same first keyframe: same codec string and scan type
    assert (cues.duration, cues.audio, cues.video_time_base) == (
        scan.duration,
        scan.audio,
        scan.video_time_base,
    )
    # RFC 8216 4.3.4.2: BANDWIDTH is the peak; estimates may exceed the video, never miss it.
    assert len(cues.gop_bytes) == len(scan.gop_bytes)
    assert all(c >= s for c, s in zip(cues.gop_bytes, scan.gop_bytes, strict=True))
    assert sum(cues.gop_bytes) <= cues.size
    # Every keyframe's size (the I-frame BANDWIDTH), read from the cluster headers (_ebml) or
    # by libavformat: exactly the packet sizes the scan demuxed.
    assert cues.keyframe_bytes == scan.keyframe_bytes
    assert len(cues.keyframe_bytes) == len(cues.keyframe_pts)


def test_cues_agree_with_the_full_scan(cues_dir: Path) -> None:
    path = cues_dir / "cues.mkv"
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        before = len(stream.index_entries)
        c.seek(0, stream=stream)
        after = len(stream.index_entries)
    assert before <= 1 and after == 60  # libavformat reads the Cues on the first seek
    scan, cues = probe(path, index_min_bytes=SCAN), probe(path, index_min_bytes=CUES)
    assert (scan.index_source, cues.index_source) == ("scan", "cues")
    assert len(scan.keyframe_pts) == 60
    assert scan.gop_bytes == tuple(video_bytes_per_gop(path))
    assert_same_index(cues, scan)


def test_default_threshold_keeps_small_files_exact(cues_dir: Path) -> None:
    assert probe(cues_dir / "cues.mkv").index_source == "scan"  # 60 s of 64x36 is tiny


def test_file_without_cues_takes_the_scan(cues_dir: Path) -> None:
    live = cues_dir / "live.mkv"
    assert list(cue_points(live.read_bytes())) == []
    info = probe(live, index_min_bytes=CUES)
    assert info.index_source == "scan"
    assert info.keyframe_pts == probe(cues_dir / "cues.mkv", index_min_bytes=SCAN).keyframe_pts


def test_cues_missing_a_keyframe_take_the_scan(cues_dir: Path) -> None:
    # The second CuePoint is voided: the first GOP check finds a keyframe the cues skip.
    path = cues_dir / "void_cue.mkv"
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        c.seek(0, stream=stream)
        assert len(stream.index_entries) == 59
    info = probe(path, index_min_bytes=CUES)
    assert info.index_source == "scan"
    assert len(info.keyframe_pts) == 60


def test_truncated_mkv_is_still_truncated(cues_dir: Path, tmp_path: Path) -> None:
    data = (cues_dir / "cues.mkv").read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 6 // 10])
    with pytest.raises(ProbeError, match="truncated"):
        probe(cut, index_min_bytes=CUES)


def test_cues_in_front_of_a_truncated_file(cues_dir: Path, tmp_path: Path, ffmpeg: str) -> None:
    # Cues written before the clusters survive a cut-off copy; they point past its end.
    front = tmp_path / "front.mkv"
    argv = [ffmpeg, "-nostdin", "-loglevel", "error", "-i", str(cues_dir / "cues.mkv")]
    subprocess.run([*argv, "-c", "copy", "-reserve_index_space", "8192", str(front)], check=True)
    assert probe(front, index_min_bytes=CUES).index_source == "cues"
    data = front.read_bytes()
    cut = tmp_path / "front_cut.mkv"
    cut.write_bytes(data[: len(data) * 6 // 10])
    with pytest.raises(ProbeError, match="truncated"):
        probe(cut, index_min_bytes=CUES)


def test_mkvmerge_cues(mkvmerge: str, cues_dir: Path, tmp_path: Path) -> None:
    # mkvmerge lays out clusters and cues its own way (the commonest writer of MKV rips).
    out = tmp_path / "mkvmerge.mkv"
    subprocess.run([mkvmerge, "-q", "-o", str(out), str(cues_dir / "cues.mkv")], check=True)
    cues, scan = probe(out, index_min_bytes=CUES), probe(out, index_min_bytes=SCAN)
    assert cues.index_source == "cues"
    assert_same_index(cues, scan)


def test_hevc_mkv_index_matches(media_dir: Path) -> None:
    path = media_dir / "hevc_opus.mkv"
    assert_same_index(probe(path, index_min_bytes=CUES), probe(path, index_min_bytes=SCAN))


def test_cue_gop_bytes() -> None:
    # Distinct clusters: position differences; the last span is measured.
    assert cue_gop_bytes([100, 400, 1000], 50) == [300, 600, 50]
    # Two keyframes in one cluster: each gets the whole cluster, an upper bound for both.
    assert cue_gop_bytes([100, 100, 700, 900, 900], 80) == [600, 600, 200, 80, 80]
    assert cue_gop_bytes([5], 7) == [7]
