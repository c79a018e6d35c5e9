"""Segmented WebVTT for HLS subtitle renditions, pure: cues in, segment text out.

RFC 8216 3.5: each WebVTT segment starts with the header and an X-TIMESTAMP-MAP that maps its
cue times to the MPEG-TS timestamps of the video. Here the map is the same in every segment,
LOCAL 00:00:00.000 = the TS time of source time 0, so a cue's times are plain source times
(the seconds a video `Segment.start` counts in) and read the same in every segment: a cue at
source time t shows at TS time t + offset, where the video (remux or transcode) is on
source time + TS_OFFSET, 126000 ticks at source zero.

A cue that spans a segment boundary is written, with identical timing, into every segment it
overlaps: a player that starts or seeks into the second segment still shows it, and players
that load both (hls.js, Safari) recognise the second copy as the same cue (same start, end and
text) and keep one. Clipping it to each segment would make two different cues, shown twice
or flickering at the boundary.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..media import Cue

# MPEG-TS timestamps are 33 bits (90 kHz) and wrap after 26.5 h. RFC 8216 3.5: clients account
# for PES timestamps that have wrapped while the WebVTT cue times have not, which is exactly
# what these segments do: cue times count on, the MPEGTS value is taken modulo 2^33.
MPEGTS_HZ = 90_000
MPEGTS_WRAP = 1 << 33

_MARKUP = re.compile(r"(</?[ib]>)")


def timestamp_map(mpegts_at_source_zero_ticks: int) -> str:
    """The X-TIMESTAMP-MAP header line: LOCAL 0 (source time 0) is this TS time."""
    ticks = mpegts_at_source_zero_ticks % MPEGTS_WRAP
    return f"X-TIMESTAMP-MAP=MPEGTS:{ticks},LOCAL:00:00:00.000"


def webvtt_segment(
    cues: Iterable[Cue], start_seconds: float, end_seconds: float, mpegts_at_source_zero_ticks: int
) -> str:
    """One WebVTT segment: the cues that overlap [start_seconds, end_seconds) of source time.

    A segment without cues is the header alone, a valid WebVTT file (RFC 8216 3.5 still wants
    the segment: the subtitle playlist covers the whole duration, as the video does).
    """
    chosen = [c for c in cues if c.end_seconds > start_seconds and c.start_seconds < end_seconds]
    return _document(f"WEBVTT\n{timestamp_map(mpegts_at_source_zero_ticks)}\n", chosen)


def webvtt_whole(cues: Iterable[Cue]) -> str:
    """All cues as one WebVTT file with no timestamp map (a download, or a test's reference)."""
    return _document("WEBVTT\n", list(cues))


def _document(header: str, cues: list[Cue]) -> str:
    parts = [header]
    seen: set[tuple[int, int, str]] = set()
    # WebVTT 4.1: cues in order of start time (then end time) in the file.
    for start_ms, end_ms, body in sorted(_cue_blocks(cues)):
        if (start_ms, end_ms, body) in seen:
            continue
        seen.add((start_ms, end_ms, body))
        parts.append(f"\n{cue_timestamp(start_ms)} --> {cue_timestamp(end_ms)}\n{body}\n")
    return "".join(parts)


def _cue_blocks(cues: list[Cue]) -> Iterable[tuple[int, int, str]]:
    for cue in cues:
        # Cue times cannot be negative: a cue before source zero starts at 0.
        start_ms = max(0, round(cue.start_seconds * 1000))
        end_ms = round(cue.end_seconds * 1000)
        if end_ms <= start_ms:
            continue  # nothing to show after rounding (WebVTT: end must follow start)
        body = cue_text(cue.text)
        if body:
            yield start_ms, end_ms, body


def cue_timestamp(milliseconds: int) -> str:
    """HH:MM:SS.mmm (WebVTT allows more than two hour digits; never fewer)."""
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def cue_text(text: str) -> str:
    """WebVTT cue text for a Cue's text: escaped, <i>/<b> well nested, no empty line.

    "&", "<" and ">" become character references (so "-->" can never appear), the markup tags
    of Cue.text are kept, closed in the order they were opened and all closed at the end.
    Empty lines are dropped: in WebVTT an empty line ends the cue.
    """
    lines = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = _render_line(raw.replace("\0", "\ufffd").strip())
        if line:
            lines.append(line)
    return _balance("\n".join(lines))


def _render_line(line: str) -> str:
    out = []
    for piece in _MARKUP.split(line):
        if _MARKUP.fullmatch(piece):
            out.append(piece)
        else:
            out.append(piece.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
    return "".join(out)


def _balance(body: str) -> str:
    """Drop stray closing tags, re-nest crossed ones, close what is left open, drop <i></i>."""
    out: list[str] = []
    stack: list[str] = []
    for piece in _MARKUP.split(body):
        if not _MARKUP.fullmatch(piece):
            out.append(piece)
            continue
        tag = piece.strip("</>")
        if not piece.startswith("</"):
            if tag not in stack:
                stack.append(tag)
                out.append(piece)
        elif tag in stack:
            reopen = []
            while stack[-1] != tag:
                reopen.append(stack.pop())
                out.append(f"</{reopen[-1]}>")
            stack.pop()
            out.append(piece)
            for again in reversed(reopen):
                stack.append(again)
                out.append(f"<{again}>")
    out.extend(f"</{tag}>" for tag in reversed(stack))
    rendered = "".join(out)
    previous = None
    while previous != rendered:  # <b><i></i></b> -> <b></b> -> ""
        previous = rendered
        rendered = re.sub(r"<([ib])>(\n*)</\1>", r"\2", rendered)
    return "\n".join(line for line in rendered.split("\n") if line.strip())
