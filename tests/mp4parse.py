"""An ISO BMFF (MP4) box parser for tests, independent of the code under test.

Reads what HLS fMP4 checks need (ISO/IEC 14496-12, 14496-15, RFC 8216 3.3): the box tree;
ftyp; moov with mvhd, trak/tkhd/mdhd/hdlr, the stsd sample entry, its decoder config box
(avcC, hvcC, av1C, vpcC, dOps, dfLa, dac3, dec3, esds) and colour boxes (colr, mdcv, clli);
mvex/trex; and media segments: moof/mfhd/traf/tfhd/tfdt/trun with every sample's size,
duration, flags and composition offset resolved against tfhd and trex defaults, and mdat.

Usage:
    init = parse_init(init_bytes)           # Init: brands, timescale, entry, config, colour...
    frag = parse_fragment(segment, init)    # Fragment: sequence, tfdt, samples, sample bytes
    tree(data)                              # [Box] with children, for anything else
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

# Boxes whose payload is nothing but child boxes.
CONTAINERS = frozenset(
    {
        b"moov",
        b"trak",
        b"mdia",
        b"minf",
        b"stbl",
        b"dinf",
        b"edts",
        b"mvex",
        b"moof",
        b"traf",
        b"udta",
        b"mfra",
        b"sinf",
        b"schi",
    }
)
VISUAL_ENTRIES = frozenset({b"avc1", b"avc3", b"hvc1", b"hev1", b"av01", b"vp09", b"dvh1"})
AUDIO_ENTRIES = frozenset({b"mp4a", b"Opus", b"fLaC", b"ac-3", b"ec-3"})
CONFIG_BOXES = frozenset(
    {b"avcC", b"hvcC", b"av1C", b"vpcC", b"dOps", b"dfLa", b"dac3", b"dec3", b"esds"}
)


class ParseError(AssertionError):
    """The bytes are not well-formed ISO BMFF (an AssertionError so pytest shows it plainly)."""


@dataclass
class Box:
    type: str
    offset: int  # of the header, in the parsed buffer
    size: int  # whole box, header included
    header: int  # 8, or 16 with a 64-bit size
    payload: bytes
    children: list[Box] = field(default_factory=list)

    def find(self, path: str) -> Box | None:
        """First descendant along "a/b/c" (each step a direct child)."""
        return find(self.children, path)

    def all(self, kind: str) -> list[Box]:
        return [c for c in self.children if c.type == kind]


def tree(data: bytes) -> list[Box]:
    """Parse top-level boxes and every container's (and sample entry's) children."""
    return list(_boxes(data, 0, len(data)))


def find(boxes: list[Box], path: str) -> Box | None:
    first, _, rest = path.partition("/")
    for b in boxes:
        if b.type == first:
            return b if not rest else b.find(rest)
    return None


def walk(boxes: list[Box]) -> Iterator[Box]:
    for b in boxes:
        yield b
        yield from walk(b.children)


def _boxes(data: bytes, start: int, end: int) -> Iterator[Box]:
    pos = start
    while pos < end:
        if end - pos < 8:
            raise ParseError(f"{end - pos} stray bytes at {pos}")
        size, raw = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise ParseError(f"box {raw!r} at {pos}: size {size} overruns {end}")
        kind = raw.decode("latin-1")
        payload = data[pos + header : pos + size]
        box = Box(kind, pos, size, header, payload)
        body = pos + header
        if raw in CONTAINERS:
            box.children = list(_boxes(data, body, pos + size))
        elif raw == b"stsd":
            box.children = list(_boxes(data, body + 8, pos + size))
        elif raw in VISUAL_ENTRIES:
            box.children = list(_boxes(data, body + 78, pos + size))
        elif raw in AUDIO_ENTRIES:
            version = struct.unpack_from(">H", data, body + 8)[0]
            extra = {0: 0, 1: 16, 2: 36}.get(version, 0)
            box.children = list(_boxes(data, body + 28 + extra, pos + size))
        yield box
        pos += size


def _full(box: Box) -> tuple[int, int, bytes]:
    """(version, flags, rest) of a FullBox."""
    word = struct.unpack_from(">I", box.payload)[0]
    return word >> 24, word & 0xFFFFFF, box.payload[4:]


# --- init segments ----------------------------------------------------------------------------


@dataclass
class Colour:
    primaries: int
    transfer: int
    matrix: int
    full_range: bool


@dataclass
class MasteringDisplay:
    primaries: tuple[tuple[int, int], ...]  # (x, y) in 0.00002 units, in box order (G, B, R)
    white_point: tuple[int, int]
    max_luminance: int  # 0.0001 cd/m2
    min_luminance: int


@dataclass
class Init:
    boxes: list[Box]
    major_brand: str
    compatible_brands: list[str]
    movie_timescale: int
    track_count: int
    track_id: int
    handler: str  # "vide" / "soun"
    timescale: int  # mdhd
    entry: str  # sample entry type, e.g. "hvc1"
    entry_count: int
    config_type: str | None  # avcC, hvcC, ...
    config: bytes  # its payload
    entry_children: list[str]
    width: int | None = None
    height: int | None = None
    channels: int | None = None
    sample_rate: int | None = None
    colour: Colour | None = None
    mastering: MasteringDisplay | None = None
    content_light: tuple[int, int] | None = None  # (MaxCLL, MaxFALL)
    # trex defaults
    default_sample_description_index: int = 1
    default_sample_duration: int = 0
    default_sample_size: int = 0
    default_sample_flags: int = 0
    sample_table_entries: dict[str, int] = field(default_factory=dict)  # stts/stsz/... counts
    has_edit_list: bool = False


def parse_init(data: bytes) -> Init:
    boxes = tree(data)
    kinds = [b.type for b in boxes]
    if kinds[:2] != ["ftyp", "moov"]:
        raise ParseError(f"an init segment starts ftyp, moov; got {kinds}")
    ftyp = boxes[0].payload
    major = ftyp[:4].decode("latin-1")
    compatible = [ftyp[i : i + 4].decode("latin-1") for i in range(8, len(ftyp), 4)]
    moov = boxes[1]
    mvhd = moov.find("mvhd")
    if mvhd is None:
        raise ParseError("moov without mvhd")
    version, _, rest = _full(mvhd)
    movie_timescale = struct.unpack_from(">I", rest, 16 if version else 8)[0]
    traks = moov.all("trak")
    if not traks:
        raise ParseError("moov without trak")
    trak = traks[0]
    tkhd = trak.find("tkhd")
    mdhd = trak.find("mdia/mdhd")
    hdlr = trak.find("mdia/hdlr")
    stbl = trak.find("mdia/minf/stbl")
    if tkhd is None or mdhd is None or hdlr is None or stbl is None:
        raise ParseError("trak without tkhd/mdhd/hdlr/stbl")
    version, _, rest = _full(tkhd)
    track_id = struct.unpack_from(">I", rest, 16 if version else 8)[0]
    version, _, rest = _full(mdhd)
    timescale = struct.unpack_from(">I", rest, 16 if version else 8)[0]
    handler = _full(hdlr)[2][4:8].decode("latin-1")
    stsd = stbl.find("stsd")
    if stsd is None or not stsd.children:
        raise ParseError("no sample entry")
    entry = stsd.children[0]
    entry_count = struct.unpack_from(">I", stsd.payload, 4)[0]
    config_box = next((c for c in entry.children if c.type.encode() in CONFIG_BOXES), None)
    init = Init(
        boxes=boxes,
        major_brand=major,
        compatible_brands=compatible,
        movie_timescale=movie_timescale,
        track_count=len(traks),
        track_id=track_id,
        handler=handler,
        timescale=timescale,
        entry=entry.type,
        entry_count=entry_count,
        config_type=None if config_box is None else config_box.type,
        config=b"" if config_box is None else config_box.payload,
        entry_children=[c.type for c in entry.children],
        has_edit_list=trak.find("edts/elst") is not None,
    )
    if entry.type.encode() in VISUAL_ENTRIES:
        init.width, init.height = struct.unpack_from(">HH", entry.payload, 24)
    elif entry.type.encode() in AUDIO_ENTRIES:
        init.channels = struct.unpack_from(">H", entry.payload, 16)[0]
        init.sample_rate = struct.unpack_from(">I", entry.payload, 24)[0] >> 16
    for child in entry.children:
        if child.type == "colr" and child.payload[:4] == b"nclx":
            p, t, m, r = struct.unpack_from(">HHHB", child.payload, 4)
            init.colour = Colour(p, t, m, bool(r & 0x80))
        elif child.type == "mdcv":
            v = struct.unpack_from(">8H2I", child.payload)
            init.mastering = MasteringDisplay(
                ((v[0], v[1]), (v[2], v[3]), (v[4], v[5])), (v[6], v[7]), v[8], v[9]
            )
        elif child.type == "clli":
            init.content_light = struct.unpack_from(">HH", child.payload)
    for table in ("stts", "stsc", "stsz", "stco", "co64", "ctts", "stss"):
        box = stbl.find(table)
        if box is not None:
            offset = 8 if table == "stsz" else 4
            init.sample_table_entries[table] = struct.unpack_from(">I", box.payload, offset)[0]
    trex = moov.find("mvex/trex")
    if trex is None:
        raise ParseError("moov without mvex/trex: not a fragmented init segment")
    _, _, rest = _full(trex)
    (
        tid,
        init.default_sample_description_index,
        init.default_sample_duration,
        init.default_sample_size,
        init.default_sample_flags,
    ) = struct.unpack_from(">5I", rest)
    if tid != track_id:
        raise ParseError(f"trex track {tid} != tkhd track {track_id}")
    return init


def nal_length_size(init: Init) -> int:
    if init.config_type == "avcC":
        return (init.config[4] & 3) + 1
    if init.config_type == "hvcC":
        return (init.config[21] & 3) + 1
    raise ParseError(f"{init.config_type} has no NAL length size")


def nal_units(sample: bytes, length_size: int) -> list[bytes]:
    """The NAL units of a length-prefixed avc1/hvc1 sample (ParseError if they do not tile it)."""
    units, pos = [], 0
    while pos < len(sample):
        length = int.from_bytes(sample[pos : pos + length_size], "big")
        pos += length_size
        if length == 0 or pos + length > len(sample):
            raise ParseError(f"NAL unit of {length} bytes at {pos} in a {len(sample)}-byte sample")
        units.append(sample[pos : pos + length])
        pos += length
    return units


def hvcc_arrays(config: bytes) -> dict[int, tuple[bool, list[bytes]]]:
    """NAL type -> (array_completeness, NAL units) of an hvcC payload."""
    arrays: dict[int, tuple[bool, list[bytes]]] = {}
    pos = 23
    for _ in range(config[22]):
        head = config[pos]
        count = struct.unpack_from(">H", config, pos + 1)[0]
        pos += 3
        units = []
        for _ in range(count):
            length = struct.unpack_from(">H", config, pos)[0]
            units.append(config[pos + 2 : pos + 2 + length])
            pos += 2 + length
        arrays[head & 0x3F] = (bool(head & 0x80), units)
    return arrays


# --- media segments ---------------------------------------------------------------------------

SAMPLE_IS_NON_SYNC = 0x0001_0000


@dataclass
class FragSample:
    size: int
    duration: int
    flags: int
    composition_offset: int
    offset: int  # of its first byte in the segment

    @property
    def is_sync(self) -> bool:
        return not self.flags & SAMPLE_IS_NON_SYNC


@dataclass
class Fragment:
    boxes: list[Box]
    sequence_number: int
    track_id: int
    base_decode_time: int
    trun_version: int
    samples: list[FragSample]
    mdat: bytes
    tfhd_flags: int
    trun_flags: int

    @property
    def duration(self) -> int:
        return sum(s.duration for s in self.samples)

    def decode_times(self) -> list[int]:
        times, t = [], self.base_decode_time
        for s in self.samples:
            times.append(t)
            t += s.duration
        return times

    def presentation_times(self) -> list[int]:
        return [
            t + s.composition_offset for t, s in zip(self.decode_times(), self.samples, strict=True)
        ]

    def sample_data(self, data: bytes) -> list[bytes]:
        return [data[s.offset : s.offset + s.size] for s in self.samples]


def parse_fragment(data: bytes, init: Init | None = None) -> Fragment:
    """One media segment: [styp] moof mdat, one traf with one trun, samples inside the mdat.

    Sample values missing from trun come from tfhd, then from the init segment's trex (all
    zero without one).
    """
    boxes = tree(data)
    kinds = [b.type for b in boxes if b.type not in ("styp", "sidx", "prft", "emsg")]
    if kinds != ["moof", "mdat"]:
        raise ParseError(f"a media segment is moof + mdat here; got {[b.type for b in boxes]}")
    moof = next(b for b in boxes if b.type == "moof")
    mdat = next(b for b in boxes if b.type == "mdat")
    mfhd = moof.find("mfhd")
    trafs = moof.all("traf")
    if mfhd is None or len(trafs) != 1:
        raise ParseError("moof needs mfhd and exactly one traf")
    sequence_number = struct.unpack_from(">I", _full(mfhd)[2])[0]
    traf = trafs[0]
    tfhd, tfdt = traf.find("tfhd"), traf.find("tfdt")
    truns = traf.all("trun")
    if tfhd is None:
        raise ParseError("traf without tfhd")
    if tfdt is None:
        raise ParseError("traf without tfdt (RFC 8216 3.3 requires one)")
    if len(truns) != 1:
        raise ParseError(f"{len(truns)} trun boxes")
    _, tf_flags, rest = _full(tfhd)
    track_id = struct.unpack_from(">I", rest)[0]
    pos = 4
    base_offset = moof.offset
    if tf_flags & 0x01:
        base_offset = struct.unpack_from(">Q", rest, pos)[0]
        pos += 8
    elif not tf_flags & 0x020000:
        raise ParseError("tfhd: neither base-data-offset nor default-base-is-moof")
    description, duration, size, flags = (
        (1, 0, 0, 0)
        if init is None
        else (
            init.default_sample_description_index,
            init.default_sample_duration,
            init.default_sample_size,
            init.default_sample_flags,
        )
    )
    if tf_flags & 0x02:
        description = struct.unpack_from(">I", rest, pos)[0]
        pos += 4
    if tf_flags & 0x08:
        duration = struct.unpack_from(">I", rest, pos)[0]
        pos += 4
    if tf_flags & 0x10:
        size = struct.unpack_from(">I", rest, pos)[0]
        pos += 4
    if tf_flags & 0x20:
        flags = struct.unpack_from(">I", rest, pos)[0]
        pos += 4
    if description != 1:
        raise ParseError(f"sample description {description}")
    version, _, rest = _full(tfdt)
    base_decode_time = struct.unpack_from(">Q" if version == 1 else ">I", rest)[0]
    version, tr_flags, rest = _full(truns[0])
    count = struct.unpack_from(">I", rest)[0]
    pos = 4
    data_offset = 0
    if tr_flags & 0x01:
        data_offset = struct.unpack_from(">i", rest, pos)[0]
        pos += 4
    first_flags = None
    if tr_flags & 0x04:
        first_flags = struct.unpack_from(">I", rest, pos)[0]
        pos += 4
    samples = []
    cursor = base_offset + data_offset
    for i in range(count):
        d, s, f, c = duration, size, flags, 0
        if tr_flags & 0x100:
            d = struct.unpack_from(">I", rest, pos)[0]
            pos += 4
        if tr_flags & 0x200:
            s = struct.unpack_from(">I", rest, pos)[0]
            pos += 4
        if tr_flags & 0x400:
            f = struct.unpack_from(">I", rest, pos)[0]
            pos += 4
        elif i == 0 and first_flags is not None:
            f = first_flags
        if tr_flags & 0x800:
            c = struct.unpack_from(">i" if version == 1 else ">I", rest, pos)[0]
            pos += 4
        samples.append(FragSample(s, d, f, c, cursor))
        cursor += s
    if pos != len(rest):
        raise ParseError(f"trun has {len(rest) - pos} bytes left over")
    mdat_start = mdat.offset + mdat.header
    if samples and (samples[0].offset != mdat_start or cursor != mdat.offset + mdat.size):
        raise ParseError(
            f"samples span [{samples[0].offset}, {cursor}) but mdat data is "
            f"[{mdat_start}, {mdat.offset + mdat.size})"
        )
    return Fragment(
        boxes=boxes,
        sequence_number=sequence_number,
        track_id=track_id,
        base_decode_time=base_decode_time,
        trun_version=version,
        samples=samples,
        mdat=mdat.payload,
        tfhd_flags=tf_flags,
        trun_flags=tr_flags,
    )
