"""Keyframe sizes of a Matroska/WebM file, read from its cluster headers: a few bytes per cue.

Why: the I-frame playlist's BANDWIDTH needs every keyframe's size. Through libavformat that is
a seek and a read of the whole keyframe packet per cue (~130 KB each in 1080p): 1.4 s for a
2 h film whose pages are not in memory (`nox -s bench -- seek`). But each cue points at a
cluster, and ffmpeg and mkvmerge start a cluster with the keyframe the cue names; the block's
EBML header holds its size. One small `pread` per cue reads it, with no demuxer.

Pure parsing over a `read(offset, length)` callable: the probe hands it `os.pread` on the
file, the tests a bytes buffer. Anything unexpected (no cluster there, a laced video block, a
size that runs past the cluster) raises `EbmlError`, and the probe falls back to libavformat.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

Reader = Callable[[int, int], bytes]  # (offset, length) -> up to length bytes at offset

CLUSTER = 0x1F43B675
TIMESTAMP = 0xE7  # the cluster's timestamp (Timecode in older specs)
SIMPLE_BLOCK = 0xA3
BLOCK_GROUP = 0xA0
BLOCK = 0xA1
_LACING = 0x06  # SimpleBlock/Block flags: several frames in one block
_READ_BYTES = 4096  # one read covers a cluster's first elements (and a few audio blocks)
_MAX_ELEMENTS = 32  # elements looked at per cluster before giving up on finding the track


class EbmlError(Exception):
    """The bytes are not the cluster layout this reader understands."""


@dataclass(frozen=True, slots=True)
class Block:
    track: int  # the Matroska TrackNumber
    timestamp: int  # cluster timestamp + the block's relative one (TimestampScale units)
    size: int  # the frame's bytes (the block minus its 4-byte header): the packet size
    laced: bool = False  # several frames (mkvmerge laces audio): `size` is not one frame's


class _Window:
    """Bytes of the file around where the parser is, read lazily."""

    def __init__(self, read: Reader) -> None:
        self._read = read
        self._start = 0
        self._data = b""

    def bytes_at(self, offset: int, length: int) -> bytes:
        end = self._start + len(self._data)
        if offset < self._start or offset + length > end:
            self._start, self._data = offset, self._read(offset, max(length, _READ_BYTES))
        data = self._data[offset - self._start : offset - self._start + length]
        if len(data) < length:
            raise EbmlError(f"the file ends inside an element at {offset}")
        return data


def _vint(window: _Window, offset: int, *, keep_marker: bool) -> tuple[int, int]:
    """An EBML variable-length integer at `offset`: (value, its length in bytes). Element IDs
    keep their length marker bit; sizes and track numbers do not."""
    first = window.bytes_at(offset, 1)[0]
    if first == 0:
        raise EbmlError(f"no EBML integer at {offset}")
    length = 9 - first.bit_length()  # leading zeros + 1
    value = int.from_bytes(window.bytes_at(offset, length), "big")
    if not keep_marker:
        value &= (1 << (7 * length)) - 1
    return value, length


def _unsigned(window: _Window, offset: int, size: int) -> int:
    if size > 8:
        raise EbmlError(f"an unsigned integer of {size} bytes at {offset}")
    return int.from_bytes(window.bytes_at(offset, size), "big")


def cluster_blocks(read: Reader, position: int) -> Iterator[Block]:
    """The blocks at the start of the cluster at file offset `position`, in file order."""
    window = _Window(read)
    element, id_length = _vint(window, position, keep_marker=True)
    if element != CLUSTER:
        raise EbmlError(f"no cluster at {position}")
    size, size_length = _vint(window, position + id_length, keep_marker=False)
    offset = position + id_length + size_length
    unknown_size = size == (1 << (7 * size_length)) - 1  # a live-written cluster
    end = None if unknown_size else offset + size
    cluster_timestamp: int | None = None
    for _ in range(_MAX_ELEMENTS):
        if end is not None and offset >= end:
            return
        element, id_length = _vint(window, offset, keep_marker=True)
        size, size_length = _vint(window, offset + id_length, keep_marker=False)
        data = offset + id_length + size_length
        if end is not None and data + size > end:
            raise EbmlError(f"an element at {offset} runs past its cluster")
        if element == TIMESTAMP:
            cluster_timestamp = _unsigned(window, data, size)
        elif element in (SIMPLE_BLOCK, BLOCK_GROUP):
            if cluster_timestamp is None:
                raise EbmlError(f"a block before the cluster timestamp at {offset}")
            if element == BLOCK_GROUP:
                # Its Block comes first in every writer we read; anything else: give up.
                inner, inner_id_length = _vint(window, data, keep_marker=True)
                if inner != BLOCK:
                    raise EbmlError(f"a block group without its block first at {offset}")
                size, size_length = _vint(window, data + inner_id_length, keep_marker=False)
                data += inner_id_length + size_length
            yield _block(window, data, size, cluster_timestamp)
        elif element == CLUSTER:
            return  # an unknown-size cluster ended where the next begins
        offset = data + size
    raise EbmlError(f"no block found in the first {_MAX_ELEMENTS} elements at {position}")


def _block(window: _Window, data: int, size: int, cluster_timestamp: int) -> Block:
    track, track_length = _vint(window, data, keep_marker=False)
    header = window.bytes_at(data + track_length, 3)
    relative = int.from_bytes(header[:2], "big", signed=True)
    frame_bytes = size - track_length - 3
    if frame_bytes <= 0:
        raise EbmlError(f"an empty block at {data}")
    return Block(track, cluster_timestamp + relative, frame_bytes, bool(header[2] & _LACING))


def keyframe_sizes(
    read: Reader, positions: list[int], timestamps: list[int], track: int
) -> list[int]:
    """The size of each cue's keyframe: the first block of `track` in the cue's cluster, which
    must be at the cue's timestamp (else EbmlError: the cue does not start its cluster)."""
    sizes = []
    for position, timestamp in zip(positions, timestamps, strict=True):
        block = next((b for b in cluster_blocks(read, position) if b.track == track), None)
        if block is None or block.timestamp != timestamp:
            raise EbmlError(f"the cluster at {position} does not start at its cue's keyframe")
        if block.laced:
            raise EbmlError(f"a laced video block at {position}: its size is not one frame's")
        sizes.append(block.size)
    return sizes
