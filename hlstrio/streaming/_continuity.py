"""MPEG-TS continuity counters that run on across segments made separately and in any order.

Apple's HLS Authoring Specification, rule 7.2, wants the continuity counters of consecutive
segments to be sequential. ISO/IEC 13818-1 2.4.3.3: `continuity_counter` is 4 bits per PID; it
goes up by one (mod 16) on every packet of that PID that carries payload, stays put on a packet
with an adaptation field only, and a packet may be sent twice in a row with the same counter (a
duplicate). Every segment hlstrio serves is made by a fresh muxer (PyAV for remux cuts and
audio renditions, ffmpeg's segment muxer for transcodes), so every PID restarts at 0 in every
segment; ffmpeg as a client then flags "Packet corrupt" at each boundary and VLC 3 drops a
video frame there.

A segment is cut on demand and in any order (players seek), so it cannot know how many packets
the segments before it had. It does know its own index k (the caller passes it; hlstrio's
playlists number segments from 0), and that is enough. For one PID let E_k and X_k be the
counters of its first and last payload packets in segment k and N_k their number, so
X_k = E_k + N_k - 1 (mod 16). Segment k+1 runs on from segment k iff E_k+1 = X_k + 1, i.e.

    E_k+1 - E_k = N_k (mod 16).

Fix E_k by a rule of the index alone, E_k = f(k), and each segment only has to carry
N_k = f(k+1) - f(k) (mod 16) packets: no state, no coordination, any segment made first. Two
rules, one per kind of PID, chosen by what the PID carries:

* PES PIDs (video, audio), and sections other than PAT/PMT: f(k) = 0, so N_k = 0 (mod 16),
  counters 0, 1, ..., 15, 0, ..., 15. Every segment starts the PID at 0 and ends it at 15, and
  15 + 1 = 0, so *any* segment may follow any other (a seek, a re-fetch), not only k+1. The
  price is padding: up to 15 packets per PID per segment (below).
* PSI PIDs, i.e. the PAT (PID 0) and each PMT PID the PAT names: f(k) = k, so N_k = 1
  (mod 16). One packet is enough: each table once, counter k mod 16, nothing added. Muxers
  send the tables again and again (ffmpeg's segment muxer ~8 times a second; PyAV, with
  hlstrio's mux options, once per segment): every packet that repeats the packet before it on
  its PID is dropped. Only such repeats go, so the sequence of tables a decoder acts on stays
  as it was (A A B A -> A B A, never A B). Where more than one packet is left (a new table
  version inside the segment, or a table spanning packets), the PID is padded like a PES PID
  but to 17, 33, ... packets, still numbered from k: N_k = 1 again, so it starts at k and ends
  at k + 16m = k, exactly like a single packet, and its neighbours join it whichever way each
  of them was made. Padding such a PID to whole cycles 0..15 instead, as before, would not: a
  padded segment k ends at 15 and a single-packet k+1 starts at k+1, a jump unless
  k = 15 (mod 16); a single-packet k ends at k and a padded k+1 starts at 0, the same jump.
  One rule per PID, whatever the packet count of a particular segment, is what keeps every
  pair consistent.
* The SDT (PID 0x0011) is removed. It is DVB service information (service and provider
  names), not in 13818-1 nor RFC 8216; HLS clients do not read it (hls.js parses PAT, PMT and
  the PMT's streams only; ffmpeg and PyAV find every stream from PAT and PMT and keep the
  service name as metadata), and a third PSI PID would cost like the others. Only PID 0x0011
  carrying SDT or BAT sections goes (EN 300 468 puts those there; 13818-1 allows other uses
  of the PID: PES, SCTE-35 sections, a PMT the PAT names, which stay).

What the PSI rule gives up: PAT/PMT counters run on from k to k+1 (and from k to k again,
a re-fetch: the same packet with the same counter is a duplicate), not from k to any j, as PES
counters do. A player that seeks from segment 3 to 10 sees them jump 3 -> 10 there. That costs
nothing a client acts on: ffmpeg logs the jump and drops section bytes that *continue* across
it, and every table here is whole in its unit-start packet, which it parses regardless (it
marks packets corrupt for PES PIDs only); hls.js 1.7 checks counters on the video PID alone
(with handleMpegTsVideoIntegrityErrors "skip"); VLC drops frames on PES jumps. Continuity
between k and k+1 needs PAT and PMT in every segment (RFC 8216 3.2: a TS segment SHOULD carry
both at its start; hlstrio's muxers write them first in every segment), and the same PID kinds
in every segment of a rendition (the PAT and PMT do not change between them).

Adaptation-only packets take the counter of the PID's last payload packet; before the PID's
first payload packet in a segment that is f(k) - 1 (the previous segment's last value). A PID
with no payload packet at all (a PCR-only PID) carries 15 always.

A PID that is short of its packet count by `need` (1..15) packets gets them without one bit of
its elementary stream or tables changing:

* PES PIDs (video, audio): `need` payload packets are each split in two. The first half keeps
  the header flags (PUSI), the whole adaptation field (PCR, random_access_indicator,
  discontinuity_indicator...) and the first bytes of payload; the second half gets the rest of
  the payload, PUSI = 0 and an adaptation field of stuffing only, so both stay 188 bytes and
  every payload packet keeps >= 1 payload byte (adaptation_field_control 11 requires it). The
  PES byte stream a demuxer reassembles is the same. Preferred, in order: full 184-byte
  payload packets without PUSI (nothing but ES bytes), then other non-PUSI packets, then PUSI
  packets (cut after the PES header, so the header stays whole in one packet), then packets
  with a PCR; the latest in the segment first, so only the tail's counters move. A sparse PID
  with fewer candidates than `need` has packets cut into more than two pieces; one with too
  little payload even for that (< 16 bytes, fewer once PES headers stay whole) raises
  `ContinuityError`. Scrambled, errored (TEI) and duplicate packets are never cut.
* Section PIDs: first the repeats go (as above; for PIDs on the PES rule, only down to the
  smallest count of the form 16m that keeps every table), then, if still short, the last
  packet that holds whole sections (PUSI, pointer_field 0, sections ending in it) is repeated
  `need` times right after itself. A repeated section with the same version_number is ignored
  by every decoder; repetition is how broadcast sends PSI anyway. Only if no packet holds
  whole sections (a section spanning packets) is a section packet split like a PES one
  (legal: what follows a section's end in a packet is stuffing).

Why sections are repeated, not split: hls.js (1.7.4, vendored in hlstrio/web/static) parses a
PAT from *every* payload packet on PID 0 and a PMT from every packet on the PMT PID, with or
without PUSI. A second half holding only 0xFF stuffing would be read as a PAT pointing at PID
0x1FFF. Repeats are whole, valid tables.

Null packets (PID 0x1FFF) are left as they are. A duplicate packet in the input (same counter
as the packet before it, same bytes) stays a duplicate on a PES PID: same counter as its
original, not counted; on a section PID it goes, like any other repeat.

Cost per segment, against the muxer's own output: each PES PID gains 0-15 packets (7.5, 1.4
KB, on average); PAT and PMT become one packet each; the SDT goes. A video-only or audio-only
rendition (PAT, PMT, one PES PID) thus grows by at most 15 packets (2,820 bytes), and ffmpeg's
segment-muxer segments, which repeat PAT/PMT/SDT ~8 times a second, mostly shrink. Measured
(`python -m bench continuity`, means over 10-30 segments): PyAV video 6 s +0.36 KB (+0.3%),
ffmpeg video 6 s -18.6 KB (-14%), audio-only AAC 128 kbit/s +0.75 KB (+0.6% of a 135 KB 6 s
segment) and +0.83 KB (+1.8% of a 45 KB 2 s one). The previous scheme (every PID on the PES
rule, PAT, PMT and SDT included) added 9.0, 2.0, 9.4 and 9.5 KB there: 7-21% of an audio
segment, most of it 15 repeats of each of PAT, PMT and SDT.

Speed (it runs on every segment; a 6 s 720p segment is ~10,000 packets, ~1.9 MB): nothing
loops over packets in Python on the common path. Header bytes are cut out as columns with
strided slices (`ts[3::188]`); PIDs become one-byte ids through a hash of their two header
bytes (`bytes.translate` + XOR on big integers, checked one-to-one in C); a PID's packets are
found with `bytes.find`/`rfind` on the id column; an input whose counters already run s,
s+1, s+2... per PID (what PyAV and ffmpeg write, with s = 0) is recognised with
`translate(delete=...)` and one comparison per PID; only PAT/PMT/SDT packets and packets
after a PES PID's first edit are touched one by one; the output is one `bytes.join` of input
slices and rewritten packets. Measured in one run on such segments (2 shared cores, loaded;
`python -m bench continuity` has the byte-copy baseline), back to back: PyAV 0.5-1.1 ms
(previous scheme 0.7-1.0), ffmpeg's segment muxer 1.3-1.6 ms (0.5-0.9: its ~110 PAT/PMT/SDT
packets are now looked at one by one; ffmpeg took seconds to encode the segment); with the
output's ~2 MB of fresh pages to fault in, as when alternating with `bytes(bytearray(ts))`,
every variant and the copy itself take 2-6 ms. Other inputs
(counters starting elsewhere on a PID of more than 64 packets, duplicates, adaptation-only
packets, > 15 PIDs) take a plain loop over the packets: 9-17 ms here, as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "CC_MODULUS",
    "MAX_ADDED_PACKETS_PER_PID",
    "PACKET_BYTES",
    "ContinuityError",
    "make_continuous",
]

PACKET_BYTES = 188
CC_MODULUS = 16  # continuity_counter is 4 bits
MAX_ADDED_PACKETS_PER_PID = CC_MODULUS - 1

_SYNC = 0x47
_NULL_PID = 0x1FFF
_PAT_PID = 0x0000
_SDT_PID = 0x0011  # DVB service description table (EN 300 468 5.1.3)
_PAT_TABLE_ID = 0x00
# What DVB sends on PID 0x0011 (EN 300 468 5.1.3, Table 2): SDT actual/other, BAT, stuffing.
_DVB_SI = frozenset({0x42, 0x46, 0x4A, 0x72})
_NULL_ID = 255  # id-column value of null packets; real PIDs get 0..254
_MAX_PIDS = 255
_FAST_MAX_PIDS = 15  # the fast check packs id and counter into one byte: 4 bits each
# On the fast path a PID whose every counter must move (its input starts elsewhere than its
# rule says) is rewritten packet by packet; past this many packets the plain loop is cheaper.
_FAST_MAX_SHIFTED = 64
_PES_START = b"\x00\x00\x01"
# PES stream_ids with no optional PES header (13818-1 Table 2-21): program_stream_map,
# padding, private_stream_2, ECM, EMM, program_stream_directory, DSMCC, H.222.1 type E.
_PES_NO_HEADER = frozenset({0xBC, 0xBE, 0xBF, 0xF0, 0xF1, 0xFF, 0xF2, 0xF8})
# Adaptation field flags with a per-packet meaning that a copy must not repeat:
# discontinuity_indicator, PCR_flag, OPCR_flag, splicing_point_flag.
_PER_PACKET_FLAGS = 0x80 | 0x10 | 0x08 | 0x04

_ALL = bytes(range(256))
_PID_HIGH = bytes(b & 0x1F for b in _ALL)
_LOW_NIBBLE = bytes(b & 0x0F for b in _ALL)
_HIGH_NIBBLE = bytes((b << 4) & 0xF0 if b < _NULL_ID else 0xF0 for b in _ALL)
# Two ways to spread a PID's high 5 bits over a byte, XORed with its low byte in `_pid_ids`.
# The first keeps hlstrio's PIDs apart (0x0000, 0x0011, 0x0100-0x01FF, 0x1000, 0x1FFF).
_SPREADS = tuple(bytes((b * m) & 0xFF for b in _ALL) for m in (0x9D, 0x5B))
_NOT_NIBBLE = tuple(bytes(b for b in _ALL if b >> 4 != v) for v in range(16))
# Key-column bytes (id << 4 | counter) of one cycle of PID id v, counters 0..15.
_CYCLE_KEYS = tuple(bytes(range(v << 4, (v << 4) + CC_MODULUS)) for v in range(16))
# Byte-3 values by adaptation_field_control (for translate(delete=...)), and 0xFF/0x00 masks.
_VALUES_AFC_00 = bytes(b for b in _ALL if b & 0x30 == 0x00)
_VALUES_AFC_10 = bytes(b for b in _ALL if b & 0x30 == 0x20)
_VALUES_AFC_11 = bytes(b for b in _ALL if b & 0x30 == 0x30)
_MASK_AFC_10 = bytes(0xFF if b & 0x30 == 0x20 else 0 for b in _ALL)
_MASK_AFC_11 = bytes(0xFF if b & 0x30 == 0x30 else 0 for b in _ALL)
_MASK_NOT_183 = bytes(0 if b == 183 else 0xFF for b in _ALL)
_MASK_OVER_182 = bytes(0xFF if b > 182 else 0 for b in _ALL)

# The counter rule of a PID (module docstring): E_k = f(k).
_CYCLES = 0  # f(k) = 0: whole cycles 0..15 (PES, sections other than PAT/PMT)
_INDEXED = 1  # f(k) = k: 1 (mod 16) packets from counter k (PAT, PMTs)
_REMOVED = 2  # the SDT: not sent

# What one input packet becomes.
_SPLIT = 1  # several packets, payload shared out (PES, or PSI without whole sections)
_COPY = 2  # itself and `extra` repeats (PSI holding whole sections)
_DROP = 3  # nothing (a PSI repeat, an SDT packet)


class ContinuityError(ValueError):
    """The segment cannot be normalised: not MPEG-TS, damaged, or a PID too sparse to pad.

    The message names the packet or PID. A caller may log it and serve the segment as is.
    """


@dataclass(frozen=True, slots=True)
class _Edit:
    op: int
    extra: int = 0  # payload packets added (split, copy) or removed (-1: a drop)
    sizes: tuple[int, ...] = ()  # split: payload bytes of each piece, first one first


_DROPPED = _Edit(_DROP, -1)
_DROPPED_DUPLICATE = _Edit(_DROP)  # it was not counted: the counters after it stay


def make_continuous(ts: bytes | bytearray | memoryview, segment_index: int) -> bytes:
    """Return segment number `segment_index` (0 = the playlist's first) with counters that
    run on from segment `segment_index - 1` and into `segment_index + 1`, however those are
    made: PES PIDs carry 0..15 a whole number of times, PAT and PMT one packet each (more only
    if a table changes or spans packets) numbered from `segment_index % 16`; the SDT goes.

    `ts` is a whole segment (a multiple of 188 bytes, each packet starting with 0x47). The
    result carries the same PES bytes, PTS/DTS, PCRs, PAT and PMT; see the module docstring.
    Pure and idempotent: feeding a result back with the same index returns it unchanged.
    Raises `ContinuityError` for input it cannot handle, `ValueError` for a negative index.
    """
    if segment_index < 0:
        raise ValueError(f"segment_index {segment_index} < 0: playlists number from 0")
    return _normalise(bytes(ts), segment_index, fast=True)


def _normalise(data: bytes, segment_index: int, *, fast: bool) -> bytes:
    """`make_continuous`; `fast=False` forces the general loop (tests compare the two)."""
    seg = _Segment(data)
    rules = seg.classify()
    index = segment_index % CC_MODULUS

    def first(v: int, count: int) -> int:
        """The first payload counter PID id `v` must have (f(k) in the module docstring). A
        PID without payload packets cannot move its counter: it keeps 15 in every segment."""
        return index if rules[v] == _INDEXED and count else 0

    numbered = seg.canonical_counts() if fast else None
    if numbered is not None:
        counts, starts = numbered
        if any(
            first(v, count) != start and count > _FAST_MAX_SHIFTED
            for v, (count, start) in enumerate(zip(counts, starts, strict=True))
        ):
            numbered = None
    if numbered is None:
        counts = seg.renumber()
        starts = [0] * len(counts)
    edits: dict[int, _Edit] = {}
    for v, pid in enumerate(seg.pids):
        if rules[v] == _REMOVED:
            edits.update(dict.fromkeys(seg.forward(v, 0), _DROPPED))
            continue
        planned = seg.plan(v, pid, counts[v], indexed=rules[v] == _INDEXED)
        base = (first(v, counts[v]) - starts[v]) % CC_MODULUS
        if planned or base:
            seg.shift_after_edits(v, planned, base)
            edits.update(planned)
    return seg.assemble(edits)


class _Segment:
    """One segment's bytes plus per-packet header columns (one byte per packet each)."""

    __slots__ = (
        "b1",
        "b3",
        "data",
        "duplicates",
        "ids",
        "moved",
        "n",
        "new3",
        "originals",
        "pids",
        "pinned",
        "renumbered",
    )

    def __init__(self, data: bytes) -> None:
        size = len(data)
        if size == 0 or size % PACKET_BYTES:
            raise ContinuityError(f"{size} bytes is not a whole number of 188-byte TS packets")
        self.data = data
        self.n = n = size // PACKET_BYTES
        sync = data[0::PACKET_BYTES]
        if sync.count(_SYNC) != n:
            bad = next(i for i, b in enumerate(sync) if b != _SYNC)
            raise ContinuityError(f"packet {bad}: sync byte {sync[bad]:#04x}, not 0x47")
        self.b1 = data[1::PACKET_BYTES]  # TEI, PUSI, priority, PID bits 12-8
        self.b3 = b3 = data[3::PACKET_BYTES]  # scrambling, adaptation_field_control, CC
        _check_adaptation_fields(b3, data[4::PACKET_BYTES])
        self.ids, self.pids = _pid_ids(self.b1, data[2::PACKET_BYTES])
        self.new3 = bytearray(b3)  # byte 3 of every input packet, counters renumbered
        self.renumbered = False  # new3 may differ anywhere (else only at `moved`)
        self.moved: list[int] = []  # packets whose counter shift_after_edits changed
        # Duplicate pairs (13818-1 allows one repeat with the same counter): never split or
        # dropped, so the repeat stays an exact copy of the packet before it. Repeats of the
        # second one may follow the pair; nothing may come between the two.
        self.pinned: set[int] = set()
        self.originals: set[int] = set()
        self.duplicates: dict[int, int] = {}  # second packet of a pair -> its original

    # -- which rule each PID follows ----------------------------------------------------------

    def classify(self) -> list[int]:
        """The counter rule of each PID id: PAT and the PMTs it names are `_INDEXED` (unless
        they carry PES), the SDT `_REMOVED` (PID 0x0011 if it carries SDT or BAT sections and
        is no PMT), others `_CYCLES`."""
        index_of = {pid: v for v, pid in enumerate(self.pids)}
        rules = [_CYCLES] * len(self.pids)
        pat = index_of.get(_PAT_PID)
        if pat is None:
            return rules  # no PAT: no PMT known either (RFC 8216 3.2 wants both)
        rules[pat] = _INDEXED
        for section in self._sections(pat):
            if section[0] == _PAT_TABLE_ID:
                for pid in _pat_pmt_pids(section):
                    v = index_of.get(pid)
                    if v is not None and rules[v] == _CYCLES and not self._is_pes(v, pid):
                        rules[v] = _INDEXED
        sdt = index_of.get(_SDT_PID)
        if sdt is not None and rules[sdt] == _CYCLES and self._first_table_id(sdt) in _DVB_SI:
            rules[sdt] = _REMOVED
        return rules

    def _first_table_id(self, v: int) -> int | None:
        """The table_id of the first section starting on PID id `v` (None: no unit start, or
        the payload there is too short to say)."""
        data = self.data
        for i in self.forward(v, 0):
            x, y = self.b3[i], self.b1[i]
            if y & 0x40 and x & 0x10 and not y & 0x80 and not x & 0xC0:
                p = i * PACKET_BYTES
                q = p + 5 + data[p + 4] if x & 0x20 else p + 4
                q += 1 + data[q]  # the pointer_field and the bytes it skips
                return data[q] if q < p + PACKET_BYTES else None
        return None

    def _sections(self, v: int) -> list[bytes]:
        """The distinct complete sections on PID id `v`, in order of first appearance
        (13818-1 2.4.4: pointer_field after a unit start, sections back to back, 0xFF
        stuffing to the end of the packet). Damaged bytes end a section, never raise."""
        data = self.data
        found: dict[bytes, None] = {}
        pending: bytearray | None = None  # None: waiting for a unit start
        previous = -1  # the PID's previous packet
        for i in self.forward(v, 0):
            x, y = self.b3[i], self.b1[i]
            p = i * PACKET_BYTES
            end = p + PACKET_BYTES
            # Nothing new: a duplicate (same counter too: a decoder discards it), or a packet
            # equal to the previous one but for its counter once that one ended its unit (a
            # muxer's repeat, the common case).
            skip = (
                previous >= 0
                and (pending is None or (x ^ self.b3[previous]) & 0x0F == 0)
                and self._same_packet(i, previous)
            )
            previous = i
            # No payload, errored or scrambled; or nothing new.
            if not x & 0x10 or y & 0x80 or x & 0xC0 or skip:
                continue
            q = p + 5 + data[p + 4] if x & 0x20 else p + 4
            if y & 0x40:
                tail = q + 1 + data[q]  # after the pointer_field and the bytes it skips
                if pending is not None:
                    pending += data[q + 1 : min(tail, end)]
                    _take_sections(pending, found)
                pending = bytearray(data[tail:end]) if tail < end else None
            elif pending is not None:
                pending += data[q:end]
            else:
                continue
            if pending is not None and not _take_sections(pending, found):
                pending = None
        return list(found)

    # -- numbering --------------------------------------------------------------------------

    def canonical_counts(self) -> tuple[list[int], list[int]] | None:
        """(payload packets, first counter) per PID id, if every PID's counters already run
        s, s+1, s+2, ... from its first packet and no packet is adaptation-only; else None.
        No per-packet loop."""
        if len(self.pids) > _FAST_MAX_PIDS:
            return None
        if len(self.b3.translate(None, _VALUES_AFC_10)) < self.n:  # adaptation-only packets
            return None
        # One byte per packet: PID id in the high nibble (null packets: 15), counter below.
        key = _bitwise_or(self.ids.translate(_HIGH_NIBBLE), self.b3.translate(_LOW_NIBBLE))
        counts = []
        starts = []
        for v in range(len(self.pids)):
            seq = key.translate(None, _NOT_NIBBLE[v])
            start = seq[0] & 0x0F
            cycle = _CYCLE_KEYS[v][start:] + _CYCLE_KEYS[v][:start]
            if seq != (cycle * (len(seq) // CC_MODULUS + 1))[: len(seq)]:
                return None
            counts.append(len(seq))
            starts.append(start)
        return counts, starts

    def renumber(self) -> list[int]:
        """Number every PID's payload packets 0, 1, 2, ... in `new3`; return the counts.

        Adaptation-only packets get the counter of the PID's last payload packet; a packet
        that repeats the previous payload packet of its PID with the same counter (a
        duplicate) gets the same counter again and is not counted.
        """
        data, b3, new3 = self.data, self.b3, self.new3
        self.renumbered = True
        counts = [0] * len(self.pids)
        last_cc = [-1] * len(self.pids)  # input counter of the last payload packet, -1: none
        last_at = [0] * len(self.pids)
        for i, v in enumerate(self.ids):
            if v == _NULL_ID:
                continue
            x = b3[i]
            k = counts[v]
            if x & 0x10:
                if x & 0x0F == last_cc[v] and _is_duplicate(data, last_at[v], i):
                    new3[i] = (x & 0xF0) | ((k - 1) & 0x0F)
                    self.pinned.update((last_at[v], i))
                    self.originals.add(last_at[v])
                    self.duplicates[i] = last_at[v]
                    last_cc[v] = -1  # only one duplicate
                    continue
                last_cc[v] = x & 0x0F
                last_at[v] = i
                counts[v] = k + 1
                new3[i] = (x & 0xF0) | (k & 0x0F)
            else:
                new3[i] = (x & 0xF0) | ((k - 1) & 0x0F)
                last_cc[v] = -1  # a duplicate must follow its original directly
        return counts

    def shift_after_edits(self, v: int, edits: dict[int, _Edit], base: int) -> None:
        """Move the counters of PID id `v`'s packets by `base` (all of them) plus the packets
        the edits before them add (or drop)."""
        offset = base
        new3 = self.new3
        start = self.ids.find(v) if base else min(edits)
        for j in self.forward(v, start):
            edit = edits.get(j)
            if offset & 0x0F and (edit is None or edit.op != _DROP):
                c = new3[j]
                new3[j] = (c & 0xF0) | ((c + offset) & 0x0F)
                self.moved.append(j)
            if edit is not None:
                offset += edit.extra

    # -- planning ---------------------------------------------------------------------------

    def plan(self, v: int, pid: int, count: int, *, indexed: bool) -> dict[int, _Edit]:
        """The edits that bring PID id `v` from `count` payload packets to a count its rule
        allows: 1 (mod 16) for `indexed` PIDs, else 0 (mod 16); for section PIDs the
        smallest such count that keeps every table (repeats dropped)."""
        if not count:
            return {}  # adaptation-only: nothing to number
        residue = 1 if indexed else 0
        need = (residue - count) % CC_MODULUS
        if not indexed and self._is_pes(v, pid):
            return self._plan_splits(v, pid, need, True) if need else {}
        # A duplicate carries nothing a decoder keeps: it goes, and its original is free to be
        # dropped or repeated like any other packet.
        duplicates = (
            [i for i in self.forward(v, 0) if i in self.duplicates] if self.duplicates else []
        )
        for i in duplicates:
            self.pinned.discard(self.duplicates[i])
            self.originals.discard(self.duplicates[i])
        edits = dict.fromkeys(duplicates, _DROPPED_DUPLICATE)
        # Dropping a packet equal to the one before it on its PID leaves the sequence of
        # tables a decoder sees as it was (A A B A -> A B A, never A B B).
        repeats = self._repeats(v)  # latest first
        kept = count - len(repeats)
        target = kept + (residue - kept) % CC_MODULUS
        if target <= count:
            edits.update(dict.fromkeys(repeats[: count - target], _DROPPED))
            return edits
        need = target - count
        last = next(
            (i for i in self._backward(v) if i not in self.pinned and self._whole_sections(i)),
            None,
        )
        if last is not None:
            edits[last] = _Edit(_COPY, need)
        else:
            edits.update(self._plan_splits(v, pid, need, False))
        return edits

    def _repeats(self, v: int) -> list[int]:
        """PID id `v`'s packets that hold whole sections and repeat the packet before them on
        the PID (equal but for the counter): what may be dropped, latest first."""
        repeats = []
        later = -1
        whole: bool | None = None  # whether the run of equal packets ending at `later` does
        for i in self._backward(v):
            if i in self.duplicates:  # dropped: the packets around it are neighbours
                continue
            if later >= 0 and self._same_packet(later, i):
                if whole is None:
                    whole = self._whole_sections(later)
                if whole and later not in self.pinned:
                    repeats.append(later)
            else:
                whole = None
            later = i
        return repeats

    def _plan_splits(self, v: int, pid: int, need: int, pes: bool) -> dict[int, _Edit]:
        full: list[int] = []  # full 184-byte payload packets without PUSI, latest first
        ranked: list[tuple[int, int, int, int]] = []  # (preference, -index, payload, head)
        for i in self._backward(v):
            cls, payload, head = self._split_class(i, pes)
            if cls == 0:
                full.append(i)
                if len(full) == need:  # the common case: stop scanning here
                    return {i: _Edit(_SPLIT, 1, _piece_sizes(184, 1, 1)) for i in full}
            elif cls > 0:
                ranked.append((cls, -i, payload, head))
        ranked += [(0, -i, 184, 1) for i in full]
        ranked.sort()
        extras: dict[int, int] = {}
        left = need
        for _, neg, _, _ in ranked:  # one extra piece each, best candidates first
            if not left:
                break
            extras[-neg] = 1
            left -= 1
        for _, neg, payload, head in ranked:  # then more pieces from the same packets
            if not left:
                break
            more = min(payload - head - extras[-neg], left)
            extras[-neg] += more
            left -= more
        if left:
            raise ContinuityError(
                f"PID {pid:#06x}: too little payload in this segment to make 16 packets"
            )
        heads = {-neg: (payload, head) for _, neg, payload, head in ranked}
        return {
            i: _Edit(_SPLIT, e, _piece_sizes(heads[i][0], e, heads[i][1]))
            for i, e in extras.items()
        }

    def _split_class(self, i: int, pes: bool) -> tuple[int, int, int]:
        """(preference, payload bytes, bytes that must stay in the first piece) of packet i
        as a split candidate; preference -1: not a candidate.

        0: full payload, no PUSI; 1: other non-PUSI; 2: PUSI (cut after the PES header or the
        start of the first section); 3: carries a PCR (kept in the first piece, but PCR
        packets are left alone while anything else will do).
        """
        x = self.b3[i]
        y = self.b1[i]
        # No payload, scrambled (cutting would break descrambling), errored, or a duplicate.
        if not x & 0x10 or x & 0xC0 or y & 0x80 or i in self.pinned:
            return -1, 0, 0
        p = i * PACKET_BYTES
        start = 4
        pcr = False
        if x & 0x20:
            af_length = self.data[p + 4]
            start = 5 + af_length
            pcr = af_length > 0 and bool(self.data[p + 5] & 0x10)
        payload = PACKET_BYTES - start
        head = 1
        if y & 0x40:
            head = self._unit_head(p + start, payload, pes)
        if payload - head < 1:
            return -1, 0, 0
        if pcr:
            return 3, payload, head
        if y & 0x40:
            return 2, payload, head
        return (0 if start == 4 else 1), payload, head

    def _unit_head(self, q: int, payload: int, pes: bool) -> int:
        """Bytes at the start of a PUSI packet's payload (at `q`) that must not be split off:
        the PES header, or the pointer_field, what it skips and the next table_id."""
        data = self.data
        if not pes:
            return min(payload, 2 + data[q])
        if payload < 9 or data[q : q + 3] != _PES_START:
            return payload  # not a PES start we understand: leave it whole
        if data[q + 3] in _PES_NO_HEADER:
            return 6
        return min(payload, 9 + data[q + 8])

    def _is_pes(self, v: int, pid: int) -> bool:
        """Whether PID id `v` carries PES (else PSI or unknown): its first unit start says."""
        if pid == _PAT_PID:
            return False
        data = self.data
        for i in self.forward(v, 0):
            x = self.b3[i]
            if self.b1[i] & 0x40 and x & 0x10:
                p = i * PACKET_BYTES
                q = p + (5 + data[p + 4] if x & 0x20 else 4)
                return data[q : q + 3] == _PES_START
        return True  # no unit start in this segment: split only mid-unit packets

    def _whole_sections(self, i: int) -> bool:
        """Whether packet i holds only whole PSI sections (then a repeat of it is whole too)."""
        data = self.data
        p = i * PACKET_BYTES
        x = self.b3[i]
        if not self.b1[i] & 0x40 or self.b1[i] & 0x80 or x & 0xC0 or not x & 0x10:
            return False
        q = p + 4
        if x & 0x20:
            if data[p + 4] and data[p + 5] & _PER_PACKET_FLAGS:
                return False
            q = p + 5 + data[p + 4]
        end = p + PACKET_BYTES
        if q >= end or data[q] != 0:  # pointer_field 0: no tail of an earlier section
            return False
        q += 1
        while q < end and data[q] != 0xFF:  # table_id 0xFF: stuffing to the end
            if q + 3 > end:
                return False
            q += 3 + ((data[q + 1] & 0x0F) << 8 | data[q + 2])
        return q <= end

    def _same_packet(self, i: int, j: int) -> bool:
        """Packets i and j, of one PID, are equal but for their counters."""
        data = self.data
        p, q = i * PACKET_BYTES, j * PACKET_BYTES
        return (
            self.b1[i] == self.b1[j]
            and (self.b3[i] ^ self.b3[j]) & 0xF0 == 0
            and data[p + 4 : p + PACKET_BYTES] == data[q + 4 : q + PACKET_BYTES]
        )

    def forward(self, v: int, start: int) -> Iterator[int]:
        """Indexes of PID id `v`'s packets from `start` on (a C-level find per packet)."""
        ids = self.ids
        i = ids.find(v, start)
        while i >= 0:
            yield i
            i = ids.find(v, i + 1)

    def _backward(self, v: int) -> Iterator[int]:
        ids = self.ids
        i = ids.rfind(v)
        while i >= 0:
            yield i
            i = ids.rfind(v, 0, i)

    # -- output -----------------------------------------------------------------------------

    def assemble(self, edits: dict[int, _Edit]) -> bytes:
        """The output: input bytes, counters from `new3`, edits applied. One output-sized
        allocation when only a few packets changed (the fast path), two otherwise."""
        data, new3 = self.data, self.new3
        if self.renumbered:
            if not edits and new3 == self.b3:
                return data
            patched = bytearray(data)
            patched[3::PACKET_BYTES] = new3
            if not edits:
                return bytes(patched)
            source = memoryview(patched)
            rewrite: list[int] = sorted(edits)
        else:
            source = memoryview(data)
            rewrite = sorted({*edits, *self.moved})
            if not rewrite:
                return data
        chunks: list[bytes | memoryview] = []
        prev = 0
        for i in rewrite:
            p = i * PACKET_BYTES
            chunks.append(source[prev:p])
            prev = p + PACKET_BYTES
            cc = new3[i] & 0x0F
            edit = edits.get(i)
            if edit is None:  # only its counter moved
                chunks.append(bytes((*data[p : p + 3], new3[i])) + data[p + 4 : prev])
            elif edit.op == _SPLIT:
                chunks.append(_split(data, p, cc, edit.sizes))
            elif edit.op == _COPY:
                for k in range(edit.extra + 1):
                    byte3 = (new3[i] & 0xF0) | ((cc + k) & 0x0F)
                    chunks.append(bytes((*data[p : p + 3], byte3)) + data[p + 4 : prev])
        chunks.append(source[prev:])
        return b"".join(chunks)


def _split(data: bytes, p: int, cc: int, sizes: tuple[int, ...]) -> bytes:
    """The packet at byte `p` as len(sizes) packets with counters cc, cc+1, ...: the first
    keeps PUSI and the whole adaptation field; the others carry payload and stuffing only."""
    b1, b2, b3 = data[p + 1], data[p + 2], data[p + 3]
    start = 4
    fields = b""
    if b3 & 0x20:
        start = 5 + data[p + 4]
        fields = data[p + 5 : p + start]  # flags, PCR, ..., and any stuffing already there
    out = bytearray()
    q = p + start
    for k, size in enumerate(sizes):
        if k == 0:
            out += bytes((_SYNC, b1, b2, (b3 & 0xC0) | 0x30 | cc))
            out += _adaptation_field(183 - size, fields)
        elif size == 184:
            out += bytes((_SYNC, b1 & 0xBF, b2, (b3 & 0xC0) | 0x10 | ((cc + k) & 0x0F)))
        else:
            out += bytes((_SYNC, b1 & 0xBF, b2, (b3 & 0xC0) | 0x30 | ((cc + k) & 0x0F)))
            out += _adaptation_field(183 - size, b"")
        out += data[q : q + size]
        q += size
    return bytes(out)


def _adaptation_field(length: int, fields: bytes) -> bytes:
    """adaptation_field_length `length`, then `fields` (flags onwards), then 0xFF stuffing."""
    if length == 0:
        return b"\x00"
    return bytes((length,)) + (fields or b"\x00") + b"\xff" * (length - max(len(fields), 1))


def _piece_sizes(payload: int, extra: int, head: int) -> tuple[int, ...]:
    """`payload` bytes in extra + 1 pieces of >= 1 byte, as even as possible, the first one
    holding at least `head` bytes."""
    pieces = extra + 1
    first = max(payload // pieces + payload % pieces, head)
    rest, odd = divmod(payload - first, extra)
    return (first, *(rest + 1 if k < odd else rest for k in range(extra)))


def _is_duplicate(data: bytes, j: int, i: int) -> bool:
    """Packet i repeats packet j (13818-1: same bytes, only a PCR may differ)."""
    p, q = j * PACKET_BYTES, i * PACKET_BYTES
    if data[p + 1 : p + 4] != data[q + 1 : q + 4]:
        return False
    start = 5 + data[p + 4] if data[p + 3] & 0x20 else 4
    if start > 4 and data[q + 4] + 5 != start:
        return False
    return data[p + start : p + PACKET_BYTES] == data[q + start : q + PACKET_BYTES]


def _check_adaptation_fields(b3: bytes, b4: bytes) -> None:
    """Reject adaptation_field_control 00 (reserved) and adaptation field lengths that do
    not fit the packet (exactly 183 without payload, at most 182 with payload)."""
    n = len(b3)
    if len(b3.translate(None, _VALUES_AFC_00)) != n:
        bad = next(i for i, x in enumerate(b3) if x & 0x30 == 0)
        raise ContinuityError(f"packet {bad}: adaptation_field_control 00 is reserved")
    if len(b3.translate(None, _VALUES_AFC_10)) != n and _overlap(
        b3.translate(_MASK_AFC_10), b4.translate(_MASK_NOT_183)
    ):
        bad = next(i for i, x in enumerate(b3) if x & 0x30 == 0x20 and b4[i] != 183)
        raise ContinuityError(f"packet {bad}: adaptation field without payload is not 183 bytes")
    if len(b3.translate(None, _VALUES_AFC_11)) != n and _overlap(
        b3.translate(_MASK_AFC_11), b4.translate(_MASK_OVER_182)
    ):
        bad = next(i for i, x in enumerate(b3) if x & 0x30 == 0x30 and b4[i] > 182)
        raise ContinuityError(f"packet {bad}: adaptation field leaves no room for payload")


def _pid_ids(b1: bytes, lo: bytes) -> tuple[bytes, list[int]]:
    """A column of one-byte PID ids (null packets: 255) and the PID of each id.

    A PID is 13 bits across two header bytes, which `bytes.translate` cannot see together.
    Hash them into one byte (low byte XOR a spread of the high 5 bits: three C-level passes),
    keep the hash if it is one-to-one on this segment's PIDs (checked in C: each hash value
    must come with a single high part, which with the hash fixes the low byte), else loop.
    """
    hi = b1.translate(_PID_HIGH)
    for spread in _SPREADS:
        key = _bitwise_xor(lo, hi.translate(spread))
        high_of = bytearray(256)
        id_of = bytearray(256)
        pids: list[int] = []
        for k in _present(key):
            i = key.find(k)
            high_of[k] = hi[i]
            id_of[k] = _new_id(pids, hi[i] << 8 | lo[i])
        if key.translate(high_of) == hi:
            return key.translate(id_of), pids
    return _pid_ids_by_loop(hi, lo)


def _pid_ids_by_loop(hi: bytes, lo: bytes) -> tuple[bytes, list[int]]:
    """`_pid_ids` for PID sets that defeat both hashes: one step per packet."""
    pids: list[int] = []
    id_of: dict[int, int] = {}
    ids = bytearray(len(lo))
    for i, (h, low) in enumerate(zip(hi, lo, strict=True)):
        pid = h << 8 | low
        v = id_of.get(pid)
        if v is None:
            v = id_of[pid] = _new_id(pids, pid)
        ids[i] = v
    return bytes(ids), pids


def _new_id(pids: list[int], pid: int) -> int:
    if pid == _NULL_PID:
        return _NULL_ID
    if len(pids) == _MAX_PIDS - 1:
        raise ContinuityError(f"more than {_MAX_PIDS - 1} PIDs in one segment")
    pids.append(pid)
    return len(pids) - 1


def _present(column: bytes) -> bytes:
    """The distinct byte values in `column`, ascending (two C-level passes, no loop)."""
    return _ALL.translate(None, _ALL.translate(None, column))


def _overlap(a: bytes, b: bytes) -> bool:
    """Whether some byte position is nonzero in both."""
    return bool(int.from_bytes(a, "little") & int.from_bytes(b, "little"))


def _bitwise_xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "little") ^ int.from_bytes(b, "little")).to_bytes(len(a), "little")


def _bitwise_or(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "little") | int.from_bytes(b, "little")).to_bytes(len(a), "little")


def _take_sections(pending: bytearray, found: dict[bytes, None]) -> bool:
    """Move the complete sections at the front of `pending` into `found`. False when no more
    can follow in this unit (stuffing, table_id 0xFF, or a section ended with the packet: a
    new one would start in a packet with PUSI)."""
    while pending:
        if pending[0] == 0xFF:
            return False
        if len(pending) < 3:
            return True
        size = 3 + ((pending[1] & 0x0F) << 8 | pending[2])
        if len(pending) < size:
            return True
        found[bytes(pending[:size])] = None
        del pending[:size]
    return False


def _pat_pmt_pids(section: bytes) -> list[int]:
    """The program_map_PIDs of a PAT section (13818-1 2.4.4.3; program_number 0 names the
    network_PID instead, left out). Bytes 0-7 are the long section header, the last 4 CRC_32."""
    body = section[8:-4]
    return [
        (body[i + 2] & 0x1F) << 8 | body[i + 3]
        for i in range(0, len(body) - 3, 4)
        if body[i] or body[i + 1]
    ]
