"""What every MPEG-TS segment hlstrio makes has in common: one timeline, one mux setup, and
continuity counters that run on across segments.

The in-process cuts (`_remux`, `_audio`), the encoder (`_encoder`) and the I-frame resources
all write through these, so a player that switches renditions, or reads segments made by
different code paths, sees one stream.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from typing import Any

import av

from ._continuity import ContinuityError, make_continuous

log = logging.getLogger("hlstrio.mpegts")

# Added to every pts/dts: sources with B-frames start with negative DTS, which some players
# (Chromium's native HLS) reject; 1.4 s is what the ffmpeg CLI's default mux delay gives. Every
# rendition (copied, encoded in-process, encoded by ffmpeg, subtitles) is on source time + this.
TS_OFFSET = Fraction(14, 10)

# WebVTT X-TIMESTAMP-MAP (RFC 8216 3.5): cue times are source times; source time 0 is this
# MPEG-TS time (90 kHz) in every audio and video rendition.
MPEGTS_AT_SOURCE_ZERO = int(TS_OFFSET * 90_000)

# PAT/PMT/SDT once at the start of each segment, not every 0.1 s: a segment is always
# fetched whole, and the default repeats cost ~30 kbit/s (8% of a 360p stream).
MUX_OPTIONS = {"pat_period": "3600", "sdt_period": "3600"}


def shift(packet: av.Packet[Any], time_base: Fraction) -> None:
    """Move a packet to output time: source time + TS_OFFSET."""
    ticks = int(TS_OFFSET / time_base)
    packet.pts = (packet.pts or 0) + ticks
    if packet.dts is not None:
        packet.dts += ticks


def spec_clean(ts: bytes, index: int) -> bytes:
    """Segment `index` with continuity counters that run on from any segment before it
    (Apple HLS authoring 7.2; the scheme is `_continuity`'s). A segment the normaliser cannot
    read is served as it is: a counter jump is a glitch, a missing segment a stall."""
    try:
        return make_continuous(ts, index)
    except ContinuityError as exc:
        log.warning("segment %d: continuity counters left as they are: %s", index, exc)
        return ts
