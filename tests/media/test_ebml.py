"""Keyframe sizes from Matroska cluster headers (`hlstrio.media._ebml`).

Synthetic clusters (built here byte by byte after the Matroska spec, RFC 9559) for the
parser's cases, then real files from ffmpeg and mkvmerge, where the sizes read from the
headers must equal the packet sizes libavformat demuxes, and must be what the probe used.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from unittest import mock

import av
import pytest

from hlstrio.media import _probe, probe
from hlstrio.media._ebml import (
    BLOCK,
    BLOCK_GROUP,
    CLUSTER,
    SIMPLE_BLOCK,
    TIMESTAMP,
    Block,
    EbmlError,
    Reader,
    cluster_blocks,
    keyframe_sizes,
)

UNKNOWN = object()  # an unknown-size element (as written live)


def element(element_id: int, payload: bytes, size: object = None) -> bytes:
    id_bytes = element_id.to_bytes((element_id.bit_length() + 7) // 8, "big")
    if size is UNKNOWN:
        return id_bytes + b"\x01\xff\xff\xff\xff\xff\xff\xff" + payload
    # A size as an 8-byte vint (marker 0x01), as mkvmerge often writes them.
    return id_bytes + (0x01 << 56 | len(payload)).to_bytes(8, "big") + payload


def block(track: int, relative: int, frame: bytes, flags: int = 0x80) -> bytes:
    return bytes([0x80 | track]) + relative.to_bytes(2, "big", signed=True) + bytes([flags]) + frame


def cluster(timestamp: int, *children: bytes, size: object = None) -> bytes:
    timestamp_element = element(TIMESTAMP, timestamp.to_bytes(2, "big"))
    return element(CLUSTER, timestamp_element + b"".join(children), size)


def reader(data: bytes) -> Reader:
    return lambda offset, length: data[offset : offset + length]


def test_blocks_of_a_cluster_in_file_order() -> None:
    data = b"\x00" * 7 + cluster(
        1000,
        element(SIMPLE_BLOCK, block(2, -5, b"a" * 300)),  # audio first, from before the cue
        element(SIMPLE_BLOCK, block(1, 0, b"v" * 5000)),
        element(BLOCK_GROUP, element(BLOCK, block(1, 40, b"p" * 700, flags=0))),
    )
    assert list(cluster_blocks(reader(data), 7)) == [
        Block(2, 995, 300),
        Block(1, 1000, 5000),
        Block(1, 1040, 700),
    ]


def test_an_unknown_size_cluster_ends_at_the_next_one() -> None:
    first = cluster(0, element(SIMPLE_BLOCK, block(1, 0, b"v" * 10)), size=UNKNOWN)
    data = first + cluster(40, element(SIMPLE_BLOCK, block(1, 0, b"w" * 20)))
    assert list(cluster_blocks(reader(data), 0)) == [Block(1, 0, 10)]
    assert keyframe_sizes(reader(data), [0, len(first)], [0, 40], track=1) == [10, 20]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (element(0x1A45DFA3, b"\x42\x86\x81\x01"), "no cluster"),  # the EBML header
        (element(CLUSTER, element(SIMPLE_BLOCK, block(1, 0, b"v"))), "before the cluster"),
        (cluster(0, element(SIMPLE_BLOCK, block(1, 0, b"v" * 8)))[:14], "ends inside"),
        (cluster(0, element(BLOCK_GROUP, element(0xFB, b"\x00"))), "without its block"),
    ],
    ids=["not-a-cluster", "no-timestamp", "truncated", "group-without-block"],
)
def test_what_it_does_not_understand_is_an_error(data: bytes, message: str) -> None:
    with pytest.raises(EbmlError, match=message):
        list(cluster_blocks(reader(data), 0))


def test_laced_blocks_are_read_past_but_a_laced_keyframe_is_an_error() -> None:
    # mkvmerge laces audio: fine before the video block; a laced video block has no one size.
    data = cluster(
        0,
        element(SIMPLE_BLOCK, block(2, 0, b"a" * 90, flags=0x82)),
        element(SIMPLE_BLOCK, block(1, 0, b"v" * 10)),
    )
    assert keyframe_sizes(reader(data), [0], [0], track=1) == [10]
    with pytest.raises(EbmlError, match="laced"):
        keyframe_sizes(reader(data), [0], [0], track=2)


def test_a_cue_that_does_not_start_its_cluster_is_an_error() -> None:
    data = cluster(1000, element(SIMPLE_BLOCK, block(1, 40, b"v" * 10)))
    with pytest.raises(EbmlError, match="does not start"):
        keyframe_sizes(reader(data), [0], [1000], track=1)


def packet_sizes_at_keyframes(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [p.size for p in container.demux(stream) if p.pts is not None and p.is_keyframe]


def probe_with_cluster_sizes(path: Path) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    """The probe's keyframe sizes, and what the cluster-header reader returned inside it."""
    seen: list[tuple[int, ...] | None] = []
    real = _probe._cluster_keyframe_bytes

    def spy(name: str, index: object) -> tuple[int, ...] | None:
        result = real(name, index)  # type: ignore[arg-type]
        seen.append(result)
        return result

    with mock.patch.object(_probe, "_cluster_keyframe_bytes", spy):
        info = probe(path, index_min_bytes=0)
    assert info.index_source == "cues"
    assert len(seen) == 1
    return info.keyframe_bytes, seen[0]


def test_ffmpeg_files_sizes_come_from_the_cluster_headers(cues_dir: Path) -> None:
    path = cues_dir / "cues.mkv"
    sizes, from_headers = probe_with_cluster_sizes(path)
    assert from_headers is not None  # read from the headers, not by libavformat's seeks
    assert list(sizes) == packet_sizes_at_keyframes(path)


def test_mkvmerge_files_sizes_come_from_the_cluster_headers(
    mkvmerge: str, cues_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "mkvmerge.mkv"
    subprocess.run([mkvmerge, "-q", "-o", str(out), str(cues_dir / "cues.mkv")], check=True)
    sizes, from_headers = probe_with_cluster_sizes(out)
    assert from_headers is not None
    assert list(sizes) == packet_sizes_at_keyframes(out)
