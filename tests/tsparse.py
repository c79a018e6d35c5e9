"""A small, strict MPEG-TS reader for tests: packets, adaptation fields, PES, PSI, continuity.

Written from ISO/IEC 13818-1 (MPEG-2 Systems); section numbers are cited where a rule is used.
It is meant to be read and trusted, not to be fast: every packet becomes a frozen dataclass, and
anything that breaks the syntax (bad sync byte, an adaptation field that does not fit, stuffing
that is not 0xFF, a PES whose length field disagrees with its bytes) raises `TSParseError`
instead of being skipped, so a test fails at the first malformed byte a producer writes.

    packets = parse_packets(segment)                 # list[Packet]
    units = pes_units(packets)                       # {pid: [PES(stream_id, pts, dts, data)]}
    pcrs(packets)                                    # {pid: [PCR in 27 MHz ticks]}
    sections(packets, 0)                             # PAT sections (bytes) in order
    parse_pmt(sections(packets, pmt_pid)[0])         # {elementary PID: stream_type}
    continuity_errors([seg0, seg1, seg2])            # counter jumps across a playlist

A duplicate packet (13818-1 2.4.3.3: the same packet sent twice in a row with the same
continuity_counter) is what a decoder discards, and so do `pes_units` and `sections`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PACKET_BYTES = 188
SYNC_BYTE = 0x47
NULL_PID = 0x1FFF
PAT_PID = 0x0000
SDT_PID = 0x0011
PES_START = b"\x00\x00\x01"
# PES stream_ids without the optional PES header (13818-1 2.4.3.7, Table 2-21).
PES_NO_HEADER_STREAM_IDS = frozenset({0xBC, 0xBE, 0xBF, 0xF0, 0xF1, 0xFF, 0xF2, 0xF8})
PCR_HZ = 27_000_000  # PCR ticks per second (base * 300 + extension)
PTS_HZ = 90_000  # PTS/DTS ticks per second


class TSParseError(ValueError):
    """The bytes are not well-formed MPEG-TS; the message says where."""


@dataclass(frozen=True, slots=True)
class AdaptationField:
    """13818-1 2.4.3.4. `length` is adaptation_field_length (bytes after the length byte)."""

    length: int
    discontinuity: bool = False
    random_access: bool = False
    es_priority: bool = False
    pcr: int | None = None  # 27 MHz ticks: program_clock_reference_base * 300 + extension
    opcr: int | None = None
    splice_countdown: int | None = None
    private_data: bytes = b""
    stuffing_bytes: int = 0  # trailing 0xFF bytes


@dataclass(frozen=True, slots=True)
class Packet:
    """One 188-byte transport packet (13818-1 2.4.3.2). `index` is its place in its segment."""

    index: int
    pid: int
    transport_error: bool
    pusi: bool  # payload_unit_start_indicator
    priority: bool
    scrambling: int
    adaptation_field_control: int  # 1 payload only, 2 adaptation field only, 3 both
    cc: int  # continuity_counter
    adaptation: AdaptationField | None
    payload: bytes
    raw: bytes

    @property
    def has_payload(self) -> bool:
        return bool(self.adaptation_field_control & 1)

    @property
    def pcr(self) -> int | None:
        return self.adaptation.pcr if self.adaptation is not None else None

    @property
    def discontinuity(self) -> bool:
        return self.adaptation is not None and self.adaptation.discontinuity


@dataclass(frozen=True, slots=True)
class PES:
    """One PES packet (13818-1 2.4.3.6) reassembled from the TS packets of its PID."""

    pid: int
    stream_id: int
    pts: int | None  # 90 kHz ticks
    dts: int | None  # 90 kHz ticks; None when the header carries PTS only
    data: bytes  # the elementary-stream bytes after the PES header
    packet_length: int  # PES_packet_length (0: unbounded, allowed for video)
    first_packet: int  # index of the TS packet that started it


@dataclass(frozen=True, slots=True)
class ContinuityJump:
    """A continuity_counter that is not what 13818-1 2.4.3.3 lets follow the previous one."""

    segment: int  # position in the sequence given to `continuity_errors`
    packet: int  # packet index inside that segment
    pid: int
    expected: int
    got: int

    def __str__(self) -> str:
        return (
            f"segment {self.segment} packet {self.packet} PID {self.pid:#06x}: "
            f"counter {self.got}, expected {self.expected}"
        )


# -- packets ----------------------------------------------------------------------------------


def parse_packets(ts: bytes) -> list[Packet]:
    """Every packet of a TS byte string (a whole number of 188-byte packets)."""
    if len(ts) % PACKET_BYTES:
        raise TSParseError(f"{len(ts)} bytes is not a multiple of {PACKET_BYTES}")
    return [
        parse_packet(ts[p : p + PACKET_BYTES], p // PACKET_BYTES)
        for p in range(0, len(ts), PACKET_BYTES)
    ]


def parse_packet(raw: bytes, index: int = 0) -> Packet:
    if len(raw) != PACKET_BYTES or raw[0] != SYNC_BYTE:
        raise TSParseError(f"packet {index}: no 0x47 sync byte / not 188 bytes")
    afc = (raw[3] >> 4) & 0x03
    if afc == 0:
        raise TSParseError(f"packet {index}: adaptation_field_control 00 is reserved")
    adaptation = None
    start = 4
    if afc & 2:
        adaptation = _parse_adaptation_field(raw, index, payload=bool(afc & 1))
        start = 5 + adaptation.length
    return Packet(
        index=index,
        pid=(raw[1] & 0x1F) << 8 | raw[2],
        transport_error=bool(raw[1] & 0x80),
        pusi=bool(raw[1] & 0x40),
        priority=bool(raw[1] & 0x20),
        scrambling=raw[3] >> 6,
        adaptation_field_control=afc,
        cc=raw[3] & 0x0F,
        adaptation=adaptation,
        payload=raw[start:] if afc & 1 else b"",
        raw=raw,
    )


def _parse_adaptation_field(raw: bytes, index: int, *, payload: bool) -> AdaptationField:
    length = raw[4]
    # 2.4.3.5: 183 when the packet has no payload, 0..182 when it has (>= 1 payload byte).
    if (not payload and length != 183) or (payload and length > 182):
        raise TSParseError(f"packet {index}: adaptation_field_length {length} does not fit")
    if length == 0:
        return AdaptationField(length=0)
    end = 5 + length
    flags = raw[5]
    q = 6

    def take(n: int) -> bytes:
        nonlocal q
        if q + n > end:
            raise TSParseError(f"packet {index}: adaptation field fields overrun its length")
        chunk = raw[q : q + n]
        q += n
        return chunk

    pcr = _clock_reference(take(6)) if flags & 0x10 else None
    opcr = _clock_reference(take(6)) if flags & 0x08 else None
    splice = int.from_bytes(take(1), "big", signed=True) if flags & 0x04 else None
    private = b""
    if flags & 0x02:
        private = take(take(1)[0])
    if flags & 0x01:  # adaptation_field_extension: skipped whole
        take(take(1)[0])
    stuffing = raw[q:end]
    if stuffing.count(0xFF) != len(stuffing):
        raise TSParseError(f"packet {index}: adaptation field stuffing is not all 0xFF")
    return AdaptationField(
        length=length,
        discontinuity=bool(flags & 0x80),
        random_access=bool(flags & 0x40),
        es_priority=bool(flags & 0x20),
        pcr=pcr,
        opcr=opcr,
        splice_countdown=splice,
        private_data=private,
        stuffing_bytes=len(stuffing),
    )


def _clock_reference(b: bytes) -> int:
    """PCR/OPCR: 33-bit base (90 kHz), 6 reserved bits, 9-bit extension (27 MHz)."""
    base = b[0] << 25 | b[1] << 17 | b[2] << 9 | b[3] << 1 | b[4] >> 7
    extension = (b[4] & 0x01) << 8 | b[5]
    return base * 300 + extension


def is_duplicate(packet: Packet, previous: Packet | None) -> bool:
    """13818-1 2.4.3.3: a payload packet sent again right after itself (same PID, counter,
    header and payload; only a PCR may differ)."""
    return (
        previous is not None
        and packet.has_payload
        and previous.has_payload
        and packet.raw[1:4] == previous.raw[1:4]
        and packet.payload == previous.payload
    )


def payload_packets(packets: Iterable[Packet], pid: int) -> list[Packet]:
    """The payload packets of `pid` as a decoder keeps them: duplicates dropped."""
    kept: list[Packet] = []
    previous: Packet | None = None  # previous packet of the PID, duplicate or not
    previous_was_duplicate = False
    for packet in packets:
        if packet.pid != pid:
            continue
        duplicate = not previous_was_duplicate and is_duplicate(packet, previous)
        previous, previous_was_duplicate = packet, duplicate
        if packet.has_payload and not duplicate:
            kept.append(packet)
    return kept


def pids(packets: Iterable[Packet]) -> set[int]:
    """The PIDs present, null packets excluded."""
    return {p.pid for p in packets if p.pid != NULL_PID}


def pcrs(packets: Iterable[Packet]) -> dict[int, list[int]]:
    """PCR values (27 MHz ticks) per PID, in stream order."""
    out: dict[int, list[int]] = {}
    for packet in packets:
        if packet.pcr is not None:
            out.setdefault(packet.pid, []).append(packet.pcr)
    return out


# -- PES ------------------------------------------------------------------------------------------


def carries_pes(packets: Sequence[Packet], pid: int) -> bool:
    """Whether `pid`'s first unit start begins with the PES start code (else PSI)."""
    for packet in packets:
        if packet.pid == pid and packet.pusi and packet.has_payload:
            return packet.payload.startswith(PES_START)
    return False


def pes_units(packets: Sequence[Packet]) -> dict[int, list[PES]]:
    """Every PES packet per PID carrying PES, in order. Bytes before a PID's first unit start
    (the tail of a unit begun in an earlier segment) are ignored."""
    out: dict[int, list[PES]] = {}
    for pid in sorted(pids(packets)):
        if not carries_pes(packets, pid):
            continue
        units: list[PES] = []
        buffer: bytearray | None = None
        first = 0
        for packet in payload_packets(packets, pid):
            if packet.pusi:
                if buffer is not None:
                    units.append(_parse_pes(pid, bytes(buffer), first))
                buffer, first = bytearray(), packet.index
            if buffer is not None:
                buffer += packet.payload
        if buffer is not None:
            units.append(_parse_pes(pid, bytes(buffer), first))
        out[pid] = units
    return out


def _parse_pes(pid: int, unit: bytes, first: int) -> PES:
    where = f"PID {pid:#06x} PES at packet {first}"
    if len(unit) < 6 or not unit.startswith(PES_START):
        raise TSParseError(f"{where}: no packet_start_code_prefix")
    stream_id = unit[3]
    length = int.from_bytes(unit[4:6], "big")
    if length and len(unit) != 6 + length:
        raise TSParseError(f"{where}: PES_packet_length {length} but {len(unit) - 6} bytes")
    if stream_id in PES_NO_HEADER_STREAM_IDS:
        return PES(pid, stream_id, None, None, unit[6:], length, first)
    if len(unit) < 9 or unit[6] >> 6 != 0b10:
        raise TSParseError(f"{where}: bad optional PES header")
    header_end = 9 + unit[8]
    if len(unit) < header_end:
        raise TSParseError(f"{where}: PES header cut short")
    flags = unit[7] >> 6  # PTS_DTS_flags: 2 PTS, 3 PTS and DTS
    if flags == 1:
        raise TSParseError(f"{where}: PTS_DTS_flags 01 is forbidden")
    pts = _timestamp(unit[9:14]) if flags & 2 else None
    dts = _timestamp(unit[14:19]) if flags == 3 else None
    return PES(pid, stream_id, pts, dts, unit[header_end:], length, first)


def _timestamp(b: bytes) -> int:
    """A 33-bit PTS/DTS spread over 5 bytes with marker bits (13818-1 2.4.3.7)."""
    if len(b) != 5 or not (b[0] & 1 and b[2] & 1 and b[4] & 1):
        raise TSParseError("PTS/DTS marker bits missing")
    return (b[0] >> 1 & 0x07) << 30 | b[1] << 22 | (b[2] >> 1) << 15 | b[3] << 7 | b[4] >> 1


# -- PSI ------------------------------------------------------------------------------------------


def sections(packets: Sequence[Packet], pid: int) -> list[bytes]:
    """Every complete PSI section on `pid`, in order (13818-1 2.4.4: pointer_field after a
    unit start, sections back to back, 0xFF stuffing to the end of the packet)."""
    out: list[bytes] = []
    pending: bytearray | None = None  # None: waiting for a unit start

    def drain() -> None:
        nonlocal pending
        while pending:
            if pending[0] == 0xFF:  # table_id 0xFF: the rest of the packet is stuffing
                pending = None
                return
            if len(pending) < 3:
                return
            size = 3 + ((pending[1] & 0x0F) << 8 | pending[2])
            if len(pending) < size:
                return
            out.append(bytes(pending[:size]))
            del pending[:size]

    for packet in payload_packets(packets, pid):
        payload = packet.payload
        if packet.pusi:
            pointer = payload[0]
            if pending is not None:
                pending += payload[1 : 1 + pointer]
                drain()
                if pending:
                    raise TSParseError(f"packet {packet.index}: a section was cut short")
            pending = bytearray(payload[1 + pointer :])
            drain()
        elif pending is not None:
            pending += payload
            drain()
    return out


def distinct_sections(packets: Sequence[Packet], pid: int) -> list[bytes]:
    """`sections` with back-to-back repeats folded: the tables a decoder acts on."""
    out: list[bytes] = []
    for section in sections(packets, pid):
        if not out or out[-1] != section:
            out.append(section)
    return out


def parse_pat(section: bytes) -> dict[int, int]:
    """program_number -> program_map_PID of a PAT section (table_id 0)."""
    if section[0] != 0x00:
        raise TSParseError(f"table_id {section[0]:#04x} is not a PAT")
    body = section[8:-4]  # after the 8-byte long header, before CRC_32
    return {
        int.from_bytes(body[i : i + 2], "big"): (body[i + 2] & 0x1F) << 8 | body[i + 3]
        for i in range(0, len(body) - 3, 4)
    }


def parse_pmt(section: bytes) -> dict[int, int]:
    """elementary_PID -> stream_type of a PMT section (table_id 2)."""
    if section[0] != 0x02:
        raise TSParseError(f"table_id {section[0]:#04x} is not a PMT")
    info_length = (section[10] & 0x0F) << 8 | section[11]
    q = 12 + info_length
    end = len(section) - 4
    streams = {}
    while q + 5 <= end:
        streams[(section[q + 1] & 0x1F) << 8 | section[q + 2]] = section[q]
        q += 5 + ((section[q + 3] & 0x0F) << 8 | section[q + 4])
    return streams


# -- continuity -----------------------------------------------------------------------------------


def continuity_errors(segments: Iterable[bytes | Sequence[Packet]]) -> list[ContinuityJump]:
    """Every continuity_counter jump, per PID, walking the segments as one stream.

    13818-1 2.4.3.3: a packet with payload carries the previous counter + 1 (mod 16); one
    without payload (adaptation field only) repeats it; a duplicate (same counter, same
    packet, once) is allowed; a packet whose adaptation field sets discontinuity_indicator
    may carry any value. Null packets are ignored. After a jump the count resumes from the
    value found, as a decoder does, so each jump is reported once.
    """
    errors: list[ContinuityJump] = []
    last: dict[int, Packet] = {}
    last_was_duplicate: dict[int, bool] = {}
    for number, segment in enumerate(segments):
        packets = parse_packets(segment) if isinstance(segment, bytes) else segment
        for packet in packets:
            pid = packet.pid
            if pid == NULL_PID:
                continue
            previous = last.get(pid)
            duplicate = False
            if previous is not None and not packet.discontinuity:
                if packet.has_payload:
                    expected = (previous.cc + 1) & 0x0F
                    duplicate = not last_was_duplicate.get(pid, False) and is_duplicate(
                        packet, previous
                    )
                else:
                    expected = previous.cc
                if packet.cc != expected and not duplicate:
                    errors.append(ContinuityJump(number, packet.index, pid, expected, packet.cc))
            last[pid] = packet
            last_was_duplicate[pid] = duplicate
    return errors
