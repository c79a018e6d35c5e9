"""ISO BMFF boxes, pure (no I/O): the media-segment writer and a small init-segment reader.

A media segment is written here, not by libavformat, so that its decode times are ours: the
`tfdt` of segment k+1 must equal the `tfdt` of k plus k's sample durations however the
segments are cut (RFC 8216 section 3.3; ISO/IEC 14496-12 8.8). The init segment comes from
libavformat's mov muxer (`_fmp4.py`); this module only reads back what a media segment needs
from it (track timescale and ID, sample entry, NAL length size, parameter sets) and the RFC 6381
codec string its config box implies.

Layout of `fragment()`'s output (one track, CMAF-style):

    moof
      mfhd            sequence_number
      traf
        tfhd          track_ID, default-base-is-moof, defaults where every sample agrees
        tfdt v1       baseMediaDecodeTime (64-bit)
        trun          data_offset, then per sample: duration, size, flags, composition offset
                      (each only if the samples differ; version 1 when an offset is negative)
    mdat              the samples, in order
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from hlstrio.media._probe import aac_codec_string, hevc_codec_string

# Sample flags (ISO/IEC 14496-12 8.8.3.1): sample_depends_on in bits 24-25, sample_is_non_sync
# in bit 16. A sync sample "does not depend on others"; everything else depends and is non-sync.
SYNC_SAMPLE_FLAGS = 0x0200_0000
NON_SYNC_SAMPLE_FLAGS = 0x0101_0000

# tfhd flags
_BASE_DATA_OFFSET = 0x00_0001
_DEFAULT_DURATION = 0x00_0008
_DEFAULT_SIZE = 0x00_0010
_DEFAULT_FLAGS = 0x00_0020
_DEFAULT_BASE_IS_MOOF = 0x02_0000
# trun flags
_DATA_OFFSET = 0x00_0001
_FIRST_SAMPLE_FLAGS = 0x00_0004
_SAMPLE_DURATION = 0x00_0100
_SAMPLE_SIZE = 0x00_0200
_SAMPLE_FLAGS = 0x00_0400
_SAMPLE_CTS = 0x00_0800

_U32 = 0xFFFF_FFFF


def box(kind: bytes, *payload: bytes) -> bytes:
    """One box: 32-bit size, four-character type, payload."""
    size = 8 + sum(len(p) for p in payload)
    if size > _U32:
        raise ValueError(f"{kind!r} box of {size} bytes needs a 64-bit size")
    return b"".join((struct.pack(">I4s", size, kind), *payload))


def full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    """A FullBox: a box whose payload starts with version (8 bits) and flags (24 bits)."""
    return box(kind, struct.pack(">I", (version << 24) | flags), *payload)


# --- media segments ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    """One access unit of a media segment, in the track's timescale.

    `data` is in the sample entry's format: length-prefixed NAL units for avc1/hvc1 (with the
    init segment's NAL length size), OBUs without temporal delimiters for av01, raw frames for
    audio (AAC without ADTS headers). `duration` is the next sample's decode time minus this
    one's, for the last sample of a segment too (so durations sum to the next segment's tfdt).
    `composition_offset` is presentation minus decode time and may be negative.
    """

    data: bytes
    duration: int
    is_sync: bool = True
    composition_offset: int = 0


def fragment(
    samples: Sequence[Sample],
    *,
    base_decode_time: int,
    sequence_number: int,
    track_id: int = 1,
) -> bytes:
    """moof + mdat for one track: the whole media segment (no styp; HLS does not need one).

    `base_decode_time` is the first sample's decode time in track ticks (tfdt); the caller
    owns the timeline, this only lays out bytes. `sequence_number` goes into mfhd and must
    grow from segment to segment (use the media sequence number: segment index + 1).
    """
    if base_decode_time < 0:
        raise ValueError(f"negative decode time {base_decode_time}")
    if not 0 < sequence_number <= _U32:
        raise ValueError(f"mfhd sequence_number {sequence_number} out of range")
    count = len(samples)
    durations = [s.duration for s in samples]
    sizes = [len(s.data) for s in samples]
    flags = [SYNC_SAMPLE_FLAGS if s.is_sync else NON_SYNC_SAMPLE_FLAGS for s in samples]
    offsets = [s.composition_offset for s in samples]
    if any(d < 0 or d > _U32 for d in durations):
        raise ValueError("sample durations must fit in 32 unsigned bits")

    tfhd_flags = _DEFAULT_BASE_IS_MOOF
    tfhd_fields: list[int] = []
    trun_flags = _DATA_OFFSET
    columns: list[list[int]] = []
    formats: list[str] = []
    # Durations: one default when they agree (audio), else one per sample.
    if count and len(set(durations)) == 1:
        tfhd_flags |= _DEFAULT_DURATION
        tfhd_fields.append(durations[0])
    elif count:
        trun_flags |= _SAMPLE_DURATION
        columns.append(durations)
        formats.append("I")
    if count and len(set(sizes)) == 1:
        tfhd_flags |= _DEFAULT_SIZE
        tfhd_fields.append(sizes[0])
    elif count:
        trun_flags |= _SAMPLE_SIZE
        columns.append(sizes)
        formats.append("I")
    first_flags: int | None = None
    if count and len(set(flags[1:])) <= 1:
        # All alike after the first (one GOP per segment, or audio): defaults + first_sample_flags.
        rest = flags[1] if count > 1 else flags[0]
        tfhd_flags |= _DEFAULT_FLAGS
        tfhd_fields.append(rest)
        if flags[0] != rest:
            trun_flags |= _FIRST_SAMPLE_FLAGS
            first_flags = flags[0]
    elif count:
        trun_flags |= _SAMPLE_FLAGS
        columns.append(flags)
        formats.append("I")
    version = 0
    if any(offsets):
        trun_flags |= _SAMPLE_CTS
        columns.append(offsets)
        version = 1 if min(offsets) < 0 else 0
        formats.append("i" if version else "I")

    tfhd = full_box(
        b"tfhd", 0, tfhd_flags, struct.pack(f">I{len(tfhd_fields)}I", track_id, *tfhd_fields)
    )
    tfdt = full_box(b"tfdt", 1, 0, struct.pack(">Q", base_decode_time))
    head = struct.pack(">Ii", count, 0)  # data_offset patched below
    if first_flags is not None:
        head += struct.pack(">I", first_flags)
    rows = (
        struct.pack(
            ">" + "".join(formats) * count, *(v for row in zip(*columns, strict=True) for v in row)
        )
        if columns
        else b""
    )
    trun = full_box(b"trun", version, trun_flags, head, rows)
    moof = bytearray(
        box(
            b"moof",
            full_box(b"mfhd", 0, 0, struct.pack(">I", sequence_number)),
            box(b"traf", tfhd, tfdt, trun),
        )
    )
    # trun is the last box in moof: its data_offset sits 16 bytes into it (header 8, version
    # and flags 4, sample_count 4). With default-base-is-moof it counts from the moof's first
    # byte to the first sample: past the moof and the mdat header.
    struct.pack_into(">i", moof, len(moof) - len(trun) + 16, len(moof) + 8)
    payload_size = sum(sizes)
    if 8 + payload_size > _U32:
        raise ValueError("media segment over 4 GiB")
    return b"".join(
        (moof, struct.pack(">I4s", 8 + payload_size, b"mdat"), *(s.data for s in samples))
    )


# --- reading init segments --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Box:
    """Where one box sits in a buffer: header at `start`, payload from `body` to `end`."""

    kind: bytes
    start: int
    body: int
    end: int


def boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[Box]:
    """The boxes laid end to end in data[start:end] (not their children)."""
    stop = len(data) if end is None else end
    pos = start
    while pos + 8 <= stop:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > stop:
                raise ValueError("truncated 64-bit box header")
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = stop - pos
        if size < header or pos + size > stop:
            raise ValueError(f"{kind!r} box of {size} bytes overruns its parent")
        yield Box(kind, pos, pos + header, pos + size)
        pos += size


def child(data: bytes, parent: Box | None, kind: bytes, skip: int = 0) -> Box | None:
    """The first `kind` child of `parent` (top level if None); `skip` bytes of fields first."""
    start, end = (0, len(data)) if parent is None else (parent.body + skip, parent.end)
    return next((b for b in boxes(data, start, end) if b.kind == kind), None)


def find(data: bytes, path: str) -> Box | None:
    """The first box along a slash-separated path of plain container boxes, e.g. "moov/trak"."""
    found: Box | None = None
    for kind in path.split("/"):
        found = child(data, found, kind.encode("latin-1"))
        if found is None:
            return None
    return found


# Sample entries: 8 bytes of SampleEntry, then 70 more for a VisualSampleEntry or 20 for an
# AudioSampleEntry (version 0), then the child boxes.
VIDEO_ENTRIES = frozenset({b"avc1", b"avc3", b"hvc1", b"hev1", b"av01", b"vp09"})
AUDIO_ENTRIES = frozenset({b"mp4a", b"Opus", b"fLaC", b"ac-3", b"ec-3"})
_CONFIG_BOXES = {
    b"avc1": b"avcC",
    b"avc3": b"avcC",
    b"hvc1": b"hvcC",
    b"hev1": b"hvcC",
    b"av01": b"av1C",
    b"vp09": b"vpcC",
    b"mp4a": b"esds",
    b"Opus": b"dOps",
    b"fLaC": b"dfLa",
    b"ac-3": b"dac3",
    b"ec-3": b"dec3",
}


@dataclass(frozen=True, slots=True)
class TrackConfig:
    """What a media segment needs to agree with its init segment."""

    track_id: int
    timescale: int  # mdhd: ticks per second of every duration and decode time
    sample_entry: str  # "hvc1", "mp4a", ...
    config: bytes  # payload of the decoder config box (avcC, hvcC, esds...), b"" if none
    # avc1/hvc1 only: bytes per NAL unit length in samples, and the parameter set NAL units
    # the config carries (a sample need not repeat them).
    nal_length_size: int | None = None
    parameter_sets: frozenset[bytes] = frozenset()


def track_config(init: bytes) -> TrackConfig:
    """Read the one track of an init segment. ValueError if it is not one."""
    trak = find(init, "moov/trak")
    tkhd = child(init, trak, b"tkhd")
    mdhd = find(init, "moov/trak/mdia/mdhd")
    stsd = find(init, "moov/trak/mdia/minf/stbl/stsd")
    if trak is None or tkhd is None or mdhd is None or stsd is None:
        raise ValueError("not an init segment: no moov/trak with tkhd, mdhd and stsd")
    if find(init, "moov/mvex/trex") is None:
        raise ValueError("init segment has no mvex/trex: not fragmented")
    tkhd_version = init[tkhd.body]
    (track_id,) = struct.unpack_from(">I", init, tkhd.body + (20 if tkhd_version else 12))
    mdhd_version = init[mdhd.body]
    (timescale,) = struct.unpack_from(">I", init, mdhd.body + (20 if mdhd_version else 12))
    entry = next(boxes(init, stsd.body + 8, stsd.end), None)
    if entry is None:
        raise ValueError("stsd has no sample entry")
    skip = 78 if entry.kind in VIDEO_ENTRIES else 28
    config_kind = _CONFIG_BOXES.get(entry.kind)
    config_box = child(init, entry, config_kind, skip) if config_kind else None
    config = b"" if config_box is None else init[config_box.body : config_box.end]
    nal_length_size: int | None = None
    parameter_sets: frozenset[bytes] = frozenset()
    if config_kind == b"avcC" and len(config) >= 7:
        nal_length_size = (config[4] & 3) + 1
        parameter_sets = frozenset(_avcc_parameter_sets(config))
    elif config_kind == b"hvcC" and len(config) >= 23:
        nal_length_size = (config[21] & 3) + 1
        parameter_sets = frozenset(_hvcc_nal_units(config, types=(32, 33, 34)))
    return TrackConfig(
        track_id=track_id,
        timescale=timescale,
        sample_entry=entry.kind.decode("latin-1"),
        config=config,
        nal_length_size=nal_length_size,
        parameter_sets=parameter_sets,
    )


def _avcc_parameter_sets(avcc: bytes) -> list[bytes]:
    """SPS and PPS NAL units of an AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3)."""
    units: list[bytes] = []
    pos = 5
    for count_mask in (0x1F, 0xFF):  # numOfSequenceParameterSets (5 bits), then PPS (8)
        if pos >= len(avcc):
            break
        count = avcc[pos] & count_mask
        pos += 1
        for _ in range(count):
            (length,) = struct.unpack_from(">H", avcc, pos)
            units.append(avcc[pos + 2 : pos + 2 + length])
            pos += 2 + length
    return units


def _hvcc_nal_units(hvcc: bytes, types: Sequence[int]) -> list[bytes]:
    """NAL units of the given types from an HEVCDecoderConfigurationRecord's arrays."""
    units: list[bytes] = []
    pos = 23
    for _ in range(hvcc[22]):
        nal_type = hvcc[pos] & 0x3F
        (count,) = struct.unpack_from(">H", hvcc, pos + 1)
        pos += 3
        for _ in range(count):
            (length,) = struct.unpack_from(">H", hvcc, pos)
            if nal_type in types:
                units.append(hvcc[pos + 2 : pos + 2 + length])
            pos += 2 + length
    return units


def has_parameter_sets(config: TrackConfig) -> bool:
    """Whether an avc1/hvc1 config carries every parameter set a decoder starts from:
    SPS and PPS for H.264; VPS, SPS and PPS for HEVC."""
    if config.sample_entry.startswith("avc"):
        return {7, 8} <= {u[0] & 0x1F for u in config.parameter_sets if u}
    return {32, 33, 34} <= {(u[0] >> 1) & 0x3F for u in config.parameter_sets if u}


# --- RFC 6381 codec strings -------------------------------------------------------------------


def codec_string(init: bytes) -> str | None:
    """The HLS CODECS value for an init segment's track, from its sample entry's config box.

    avc1/hvc1 follow ISO/IEC 14496-15 annex E, av01 the AV1 ISOBMFF binding (short form),
    vp09 the VP codec ISOBMFF binding (short form unless the colour is not BT.709 SDR), mp4a
    RFC 6381 (mp4a.40.<audio object type>); Opus, fLaC, ac-3 and ec-3 are the entry type.
    """
    config = track_config(init)
    entry, data = config.sample_entry, config.config
    if entry in ("avc1", "avc3"):
        return f"{entry}.{data[1]:02x}{data[2]:02x}{data[3]:02x}" if len(data) >= 4 else None
    if entry in ("hvc1", "hev1"):
        hvc = hevc_codec_string(data)
        return None if hvc is None else entry + hvc[4:]
    if entry == "av01":
        return _av1_codec_string(data)
    if entry == "vp09":
        return _vp9_codec_string(data)
    if entry == "mp4a":
        asc = _esds_decoder_specific_info(data)
        return aac_codec_string(None, asc) if asc else None
    return entry if entry in ("Opus", "fLaC", "ac-3", "ec-3") else None


def _av1_codec_string(av1c: bytes) -> str | None:
    # av1C: marker/version, then seq_profile(3) seq_level_idx_0(5), then seq_tier_0,
    # high_bitdepth, twelve_bit, monochrome, chroma subsampling x/y, chroma position (2).
    if len(av1c) < 4 or av1c[0] != 0x81:
        return None
    profile, level = av1c[1] >> 5, av1c[1] & 0x1F
    tier = "H" if av1c[2] & 0x80 else "M"
    depth = (12 if av1c[2] & 0x20 else 10) if av1c[2] & 0x40 else 8
    return f"av01.{profile}.{level:02d}{tier}.{depth:02d}"


def _vp9_codec_string(vpcc: bytes) -> str | None:
    # vpcC v1 (after version/flags): profile, level, bitDepth(4) chroma(3) fullRange(1),
    # colourPrimaries, transferCharacteristics, matrixCoefficients, codecInitSize(16).
    if len(vpcc) < 12 or vpcc[0] != 1:
        return None
    profile, level = vpcc[4], vpcc[5]
    depth, chroma, full = vpcc[6] >> 4, (vpcc[6] >> 1) & 7, vpcc[6] & 1
    primaries, transfer, matrix = vpcc[7], vpcc[8], vpcc[9]
    short = f"vp09.{profile:02d}.{level:02d}.{depth:02d}"
    # The short form means 4:2:0, BT.709 colour, limited range; unspecified (2) reads as that.
    if chroma <= 1 and not full and {primaries, transfer, matrix} <= {1, 2}:
        return short
    return f"{short}.{chroma:02d}.{primaries:02d}.{transfer:02d}.{matrix:02d}.{full:02d}"


def _esds_decoder_specific_info(esds: bytes) -> bytes | None:
    """The AudioSpecificConfig inside an esds payload (version/flags, then descriptors)."""

    def descriptors(data: bytes, pos: int, end: int) -> Iterator[tuple[int, int, int]]:
        while pos + 2 <= end:
            tag, size, pos = data[pos], 0, pos + 1
            for _ in range(4):  # expandable size: 7 bits per byte, high bit = more
                byte = data[pos]
                pos += 1
                size = (size << 7) | (byte & 0x7F)
                if not byte & 0x80:
                    break
            yield tag, pos, min(pos + size, end)
            pos += size

    for tag, pos, end in descriptors(esds, 4, len(esds)):
        if tag != 0x03:  # ES_Descriptor: ES_ID(16), flags(8) [+ optional fields]
            continue
        flags = esds[pos + 2]
        pos += 3 + (2 if flags & 0x80 else 0)
        if flags & 0x40:
            pos += 1 + esds[pos]
        pos += 2 if flags & 0x20 else 0
        for inner, ipos, iend in descriptors(esds, pos, end):
            if inner == 0x04:  # DecoderConfigDescriptor: 13 bytes of fields, then DSI
                for dsi, dpos, dend in descriptors(esds, ipos + 13, iend):
                    if dsi == 0x05:
                        return esds[dpos:dend]
    return None
