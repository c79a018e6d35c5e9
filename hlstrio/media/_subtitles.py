"""Text subtitle cues, read from embedded streams (a window at a time) or sidecar files.

Embedded streams are never extracted whole: a WebVTT segment is made on demand for one
segment's window, so `read_cues` seeks near the window, demuxes only as far as its end and
decodes only the subtitle packets on the way (milliseconds for any window of a two-hour film,
where a full extraction reads the whole file first, as Jellyfin does for a minute or more).
Sidecar files are small, so they are parsed whole (pysubs2; webvtt-py for .vtt) and cached.

Every cue time is SOURCE time: the container's timeline, the seconds a video `Segment.start`
counts in. A sidecar's times count from the start of presentation instead; `load_sidecar`
takes the container's start time to put them on the same timeline.
"""

from __future__ import annotations

import codecs
import functools
import html
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import charset_normalizer
import pysubs2
import webvtt
from av.subtitles.stream import SubtitleStream

from ._language import language_tag
from ._sidecar import SIDECAR_FORMATS, SIDECAR_MAX_BYTES

log = logging.getLogger("hlstrio.subtitles")

# How far before a window `read_cues` starts demuxing, so that a cue which starts before the
# window and lasts into it is found: Matroska and MP4 store a cue once, at its start time.
# 30 s is ffmpeg's own choice for the same problem (matroskadec moves its seek back up to 30 s
# for subtitle tracks); dialogue is far shorter (Netflix's style guide caps an event at 7 s),
# so only signs or songs held on screen longer than 30 s are cut short, and only in segments
# that start more than 30 s after them. The cost is demuxing 30 s more of the file per window.
LOOKBACK_SECONDS = 30.0
# Subtitle packets sit in the file at about their start time, but a muxer interleaves them
# only to within some slack of the other streams (ffmpeg's mov demuxer orders samples by file
# position within 1 s), so demuxing stops this far past the window end on the clock stream.
_INTERLEAVE_SLACK_SECONDS = 2.0
# A cue whose packet carries no duration (rare for text subtitles) shows this long.
_DEFAULT_CUE_SECONDS = 5.0
# The decoders' "until the next subtitle" end time.
_NO_END_MS = 0xFFFFFFFF

# Text subtitle codecs whose decoders hand out ASS dialogue lines (libavcodec names).
TEXT_CODECS = frozenset({"subrip", "srt", "ass", "ssa", "mov_text", "webvtt", "text"})

# Demuxers we run on library files and no protocol but file (the same rule as the probe:
# playlists or concat scripts could make libavformat open other files or URLs).
_OPEN_OPTIONS = {
    "format_whitelist": "mov,matroska,mpegts,avi,mpeg,flv,asf,ogg",
    "protocol_whitelist": "file",
}
_READ_ERRORS = (av.FFmpegError, OSError, EOFError, ArithmeticError, LookupError)


@dataclass(frozen=True, slots=True)
class Cue:
    """One subtitle event: shown from `start_seconds` to `end_seconds` (source time).

    `text` is plain text, lines separated by "\\n", in which exactly four tags are markup:
    <i>, </i>, <b> and </b> (italic and bold, well nested). Every other "<", ">" or "&" is a
    literal character; renderers escape them.
    """

    start_seconds: float
    end_seconds: float
    text: str


class SubtitleReadError(Exception):
    """An embedded subtitle stream cannot be read at all (file unreadable, not a text stream)."""


class SidecarError(Exception):
    """A sidecar file is unreadable or not subtitles: callers skip it with a warning."""


# --- Embedded streams ---------------------------------------------------------------------------


def read_cues(
    path: Path,
    stream_index: int,
    start_seconds: float,
    end_seconds: float,
    *,
    lookback_seconds: float = LOOKBACK_SECONDS,
) -> list[Cue]:
    """Cues of text subtitle stream `stream_index` that overlap [start_seconds, end_seconds).

    Blocking (file I/O): run it in a worker thread. Reads from `lookback_seconds` before the
    window (see LOOKBACK_SECONDS) to just past its end, whatever the file's length. A packet
    that does not decode is skipped with a warning; SubtitleReadError means the stream as a
    whole cannot be read.
    """
    if end_seconds <= start_seconds:
        return []
    name = os.path.abspath(path)
    try:
        with av.open(
            name, "r", container_options=dict(_OPEN_OPTIONS), metadata_errors="replace"
        ) as container:
            return _read_window(
                container, stream_index, start_seconds, end_seconds, lookback_seconds
            )
    except SubtitleReadError as exc:
        raise SubtitleReadError(f"{path.name}: {exc}") from None
    except _READ_ERRORS as exc:
        raise SubtitleReadError(f"cannot read subtitles of {path.name}: {exc}") from exc


def _read_window(
    container: av.container.InputContainer,
    stream_index: int,
    start_seconds: float,
    end_seconds: float,
    lookback_seconds: float,
) -> list[Cue]:
    streams = container.streams
    if not 0 <= stream_index < len(streams):
        raise SubtitleReadError(f"no stream {stream_index}")
    stream = streams[stream_index]
    if not isinstance(stream, SubtitleStream):
        raise SubtitleReadError(f"stream {stream_index} is {stream.type}, not subtitles")
    codec = stream.codec_context.name
    if codec not in TEXT_CODECS:
        raise SubtitleReadError(f"stream {stream_index} is {codec}, not a text subtitle codec")
    time_base = stream.time_base
    if time_base is None or time_base <= 0:
        raise SubtitleReadError(f"stream {stream_index} has no time base")
    styles = _ass_styles(stream.codec_context.extradata) if codec in ("ass", "ssa") else {}
    # The clock: a dense stream whose packets say how far into the file the demuxer is, so
    # reading stops just past the window even where subtitles are minutes apart.
    clock = _clock_stream(container)
    window = (start_seconds, end_seconds)
    from_seconds = start_seconds - lookback_seconds
    cues: list[Cue] = []
    if from_seconds > (container.start_time or 0) / 1_000_000:
        _seek(container, clock or stream, from_seconds)  # (Matroska reads its Cues here)
        held = _last_cue_start(stream, start_seconds)
        if held is not None and held < from_seconds and clock is not None:
            # The container's index names the last cue to start before the window, further
            # back than the lookback: read just that cue (a GOP's worth), then the window.
            _seek(container, clock, held)
            cues += _demux_cues(container, stream, clock, held, window, styles)
            _seek(container, clock, from_seconds)
    cues += _demux_cues(container, stream, clock, end_seconds, window, styles)
    return sorted(set(cues), key=lambda c: (c.start_seconds, c.end_seconds, c.text))


def _last_cue_start(stream: SubtitleStream, seconds: float) -> Fraction | None:
    """Start of the last cue at or before `seconds` by the container's index, if it has one.

    MP4 indexes every sample; ffmpeg and mkvmerge write a Matroska cue point for every
    subtitle block (libavformat loads them on the first seek). Other files: None.
    """
    time_base = stream.time_base
    assert time_base is not None
    entries = stream.index_entries
    if not len(entries):
        return None
    found = entries.search_timestamp(
        int(Fraction(seconds) / time_base), backward=True, any_frame=True
    )
    # Exact (a Fraction): the packet that starts there is compared with it.
    return entries[found].timestamp * time_base if found >= 0 else None


def _demux_cues(
    container: av.container.InputContainer,
    stream: SubtitleStream,
    clock: av.stream.Stream | None,
    until_seconds: Fraction | float,
    window: tuple[float, float],
    styles: dict[str, tuple[bool, bool]],
) -> list[Cue]:
    """Decode the cues that start before `until_seconds` from where the demuxer is, keeping
    those that overlap `window`; stop once the clock (or the subtitles) pass it."""
    time_base = stream.time_base
    assert time_base is not None
    stop_seconds = until_seconds + _INTERLEAVE_SLACK_SECONDS
    start_seconds, end_seconds = window
    cues: list[Cue] = []
    packets = container.demux([stream] if clock is None else [stream, clock])
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.FFmpegError as exc:
            # Damage the demuxer cannot resync past: keep what was read, like a player would.
            log.warning("stopped reading subtitles of stream %d: %s", stream.index, exc)
            break
        if packet.stream is not stream:
            when = packet.dts if packet.dts is not None else packet.pts
            packet_tb = packet.time_base
            if when is not None and packet_tb is not None and when * packet_tb >= stop_seconds:
                break
            continue
        if packet.pts is None or packet.size == 0:
            continue
        packet_start = packet.pts * time_base
        if packet_start >= stop_seconds:
            break
        if packet_start > until_seconds or packet_start >= end_seconds:
            continue
        cues.extend(
            cue
            for cue in _decode_packet(stream, packet, time_base, styles)
            if cue.end_seconds > start_seconds and cue.start_seconds < end_seconds
        )
    return cues


def _clock_stream(container: av.container.InputContainer) -> av.stream.Stream | None:
    for video in container.streams.video:
        if not video.disposition & av.stream.Disposition.attached_pic:
            return video
    return container.streams.audio[0] if container.streams.audio else None


def _seek(
    container: av.container.InputContainer, stream: av.stream.Stream, seconds: Fraction | float
) -> None:
    """Seek to at or before `seconds` on `stream` (a keyframe of the clock: earlier still)."""
    time_base = stream.time_base
    assert time_base is not None
    try:
        container.seek(int(Fraction(seconds) / time_base), stream=stream, backward=True)
    except av.FFmpegError:
        # No index to seek with: read from the start (slow, but every cue is found).
        container.seek(0, backward=True)


def _decode_packet(
    stream: SubtitleStream,
    packet: av.Packet[Any],
    time_base: Fraction,
    styles: dict[str, tuple[bool, bool]],
) -> Iterator[Cue]:
    pts = packet.pts
    assert pts is not None
    start = pts * time_base
    try:
        subtitle = stream.decode2(packet)
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        log.warning(
            "skipped a subtitle packet at %.3f s of stream %d: %s", start, stream.index, exc
        )
        return
    if subtitle is None:  # an empty sample: mov_text's gap between cues
        return
    shown = start + Fraction(subtitle.start_display_time, 1000)
    if packet.duration:
        end = start + packet.duration * time_base
    elif subtitle.end_display_time and subtitle.end_display_time != _NO_END_MS:
        end = start + Fraction(subtitle.end_display_time, 1000)
    else:
        end = shown + Fraction(_DEFAULT_CUE_SECONDS)
    for rect in subtitle.rects:
        if not isinstance(rect, av.subtitles.subtitle.AssSubtitle):
            continue
        line = bytes(rect.ass if rect.type == b"ass" else rect.text).decode("utf-8", "replace")
        text = _dialogue_text(line, styles) if rect.type == b"ass" else _plain(line)
        if text is None:
            log.warning(
                "skipped a malformed subtitle event at %.3f s of stream %d", start, stream.index
            )
        elif text and end > shown:
            yield Cue(float(shown), float(end), text)


def _dialogue_text(line: str, styles: dict[str, tuple[bool, bool]]) -> str | None:
    """The cue text of a decoder's ASS event line, None if the line is malformed.

    The decoders' lines are "ReadOrder,Layer,Style,Name,MarginL,MarginR,MarginV,Effect,Text".
    """
    fields = line.split(",", 8)
    if len(fields) != 9:
        return None
    italic, bold = styles.get(fields[2], (False, False))
    return ass_to_text(fields[8], italic=italic, bold=bold, styles=styles)


def _ass_styles(header: bytes | None) -> dict[str, tuple[bool, bool]]:
    """(italic, bold) of each style in an ASS header, so a style-level italic is kept."""
    if not header:
        return {}
    try:
        subs = pysubs2.SSAFile.from_string(header.decode("utf-8", "replace"), format_="ass")
    except (pysubs2.exceptions.Pysubs2Error, ValueError):
        return {}
    return {name: (bool(s.italic), bool(s.bold)) for name, s in subs.styles.items()}


# --- ASS text -> cue text -----------------------------------------------------------------------

_TAG_NAME = re.compile(r"([a-z]+)(.*)", re.DOTALL)
_NEWLINES = re.compile(r"\n{2,}")


def ass_to_text(
    text: str,
    *,
    italic: bool = False,
    bold: bool = False,
    styles: Mapping[str, tuple[bool, bool]] | None = None,
) -> str:
    """Cue text from ASS event text: override tags dropped except italic and bold.

    {\\i1}/{\\i0} and {\\b1}/{\\b0} (or a weight) become <i>/<b>, {\\r} resets to the line's
    style (`italic`, `bold`), {\\rName} to the style Name of `styles`, \\N and \\n are line
    breaks, \\h a no-break space. Drawings (\\p1 up to \\p0) and every other tag are dropped.
    A "{" with no "}" is text, as renderers show it.
    """
    style = (italic, bold)
    state = style
    drawing = False
    runs: list[tuple[str, tuple[bool, bool]]] = []
    pos = 0
    while pos < len(text):
        brace = text.find("{", pos)
        close = text.find("}", brace) if brace >= 0 else -1
        if brace < 0 or close < 0:
            brace = close = len(text)
        if brace > pos and not drawing:
            runs.append((text[pos:brace], state))
        for tag in text[brace + 1 : close].split("\\")[1:]:
            if tag.startswith("r"):  # \r or \rStyle (no other tag starts with "r")
                reset = tag[1:].strip()
                state = (styles or {}).get(reset, style) if reset else style
                continue
            match = _TAG_NAME.match(tag)
            if match is None:
                continue
            name, arg = match.groups()
            arg = arg.strip()
            if name == "i" and (arg == "" or arg.isdigit()):
                # \i alone goes back to the style; \i1 on, \i0 off.
                state = (arg != "0" if arg else style[0], state[1])
            elif name == "b" and (arg == "" or arg.isdigit()):
                # \b1 on, \b0 off, or a font weight (100..900): bold from semibold on.
                state = (state[0], (arg == "1" or int(arg) >= 600) if arg else style[1])
            elif name == "p" and arg.isdigit():
                drawing = int(arg) > 0
        pos = close + 1
    # Tags are closed at every line end and opened only before visible text, so no line is
    # left holding nothing but markup.
    out: list[str] = []
    current = (False, False)
    for run, wanted in runs:
        run = run.replace("\\N", "\n").replace("\\n", "\n").replace("\\h", "\u00a0")
        for n, piece in enumerate(run.split("\n")):
            if n:
                out.append(_close_tags(current) + "\n")
                current = (False, False)
            if not piece.strip():
                out.append(piece)
                continue
            if wanted != current:
                out.append(_close_tags(current))
                out.append(("<b>" if wanted[1] else "") + ("<i>" if wanted[0] else ""))
                current = wanted
            out.append(piece)
    out.append(_close_tags(current))
    return _tidy("".join(out))


def _close_tags(state: tuple[bool, bool]) -> str:
    return ("</i>" if state[0] else "") + ("</b>" if state[1] else "")


def _plain(text: str) -> str:
    return _tidy(text.replace("\r\n", "\n").replace("\r", "\n"))


def _tidy(text: str) -> str:
    """No trailing spaces, no empty lines (an empty line would end a WebVTT cue)."""
    lines = (line.strip(" \t") for line in text.split("\n"))
    text = "\n".join(line for line in lines if line)
    return _NEWLINES.sub("\n", text).strip()


# --- Sidecar files ------------------------------------------------------------------------------

# The library's sidecar formats (by extension, _sidecar.SIDECAR_FORMATS) -> which parser.
_PARSERS = {"subrip": "srt", "webvtt": "vtt", "ass": "ass", "ssa": "ssa"}


def load_sidecar(
    path: Path, *, origin_seconds: float = 0.0, language: str | None = None
) -> list[Cue]:
    """Every cue of a sidecar .srt/.vtt/.ass/.ssa file, on the source timeline.

    Blocking (reads the file): run it in a worker thread. `origin_seconds` is the container's
    start time (a sidecar counts from the first frame shown); `language` (the sidecar's
    language tag, "fr", "pol"...) picks the legacy code page of a file that is not Unicode.
    Parsed files are cached by (path, size, mtime). Raises SidecarError, and only that.
    """
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise SidecarError(f"cannot read {path.name}: {exc.strerror or exc}") from None
    cues = _parse_sidecar_cached(
        os.path.abspath(path), stat.st_size, stat.st_mtime_ns, _legacy_codec(language)
    )
    if not origin_seconds:
        return list(cues)
    return [
        Cue(c.start_seconds + origin_seconds, c.end_seconds + origin_seconds, c.text) for c in cues
    ]


@functools.lru_cache(maxsize=64)
def _parse_sidecar_cached(
    name: str, size_bytes: int, mtime_ns: int, legacy_codec: str | None
) -> tuple[Cue, ...]:
    """The parse of one version of a file: the key changes when the file does (bounded LRU)."""
    del mtime_ns  # part of the cache key only
    path = Path(name)
    if size_bytes > SIDECAR_MAX_BYTES:
        raise SidecarError(f"{path.name}: {size_bytes} bytes is too large for subtitles")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SidecarError(f"cannot read {path.name}: {exc.strerror or exc}") from None
    return tuple(parse_sidecar(data, path.suffix, legacy_codec=legacy_codec, name=path.name))


def parse_sidecar(
    data: bytes, suffix: str, *, legacy_codec: str | None = None, name: str = "sidecar"
) -> list[Cue]:
    """Cues of a sidecar file's bytes (pure). `suffix` is its extension: ".srt", ".vtt"..."""
    fmt = _PARSERS.get(SIDECAR_FORMATS.get(suffix.lower(), ""))
    if fmt is None:
        raise SidecarError(f"{name}: not a subtitle file type we read ({suffix or 'no suffix'})")
    text = decode_text(data, legacy_codec=legacy_codec, name=name)
    try:
        cues = _vtt_cues(text) if fmt == "vtt" else _pysubs2_cues(text, fmt)
    except (pysubs2.exceptions.Pysubs2Error, webvtt.errors.MalformedFileError) as exc:
        raise SidecarError(f"{name}: not a valid {fmt} file ({type(exc).__name__})") from None
    except (ValueError, LookupError, webvtt.errors.MalformedCaptionError) as exc:
        raise SidecarError(f"{name}: not a valid {fmt} file: {exc}") from None
    if not cues:
        raise SidecarError(f"{name}: no subtitle cues in it")
    cues.sort(key=lambda c: (c.start_seconds, c.end_seconds))
    return cues


def _pysubs2_cues(text: str, fmt: str) -> list[Cue]:
    subs = pysubs2.SSAFile.from_string(text, format_=fmt)
    styles = {name: (bool(s.italic), bool(s.bold)) for name, s in subs.styles.items()}
    cues = []
    for event in subs.events:
        if event.is_comment or event.end <= event.start:
            continue
        italic, bold = styles.get(event.style, (False, False))
        cue_text = ass_to_text(event.text, italic=italic, bold=bold, styles=styles)
        if cue_text:
            cues.append(Cue(event.start / 1000, event.end / 1000, cue_text))
    return cues


# WebVTT cue text markup (W3C WebVTT 4.2.2): <i>, <b> kept; <c>, <u>, <v>, <lang>, <ruby>, <rt>
# and timestamp tags dropped; character references decoded (our text is plain).
_VTT_TAG = re.compile(r"<(/?)([^\s.>/]*)[^>]*>")


def _vtt_cues(text: str) -> list[Cue]:
    # webvtt-py follows WebVTT's block rules (NOTE, STYLE, REGION, cue identifiers), which
    # pysubs2's VTT reader (its SRT reader) does not: a NOTE after a cue ends up in its text.
    parsed = webvtt.from_string(text)
    cues = []
    for caption in parsed.captions:
        start = caption.start_time.in_milliseconds() / 1000
        end = caption.end_time.in_milliseconds() / 1000
        if end <= start:
            continue
        cue_text = _tidy(html.unescape(_VTT_TAG.sub(_keep_i_b, caption.raw_text)))
        if cue_text:
            cues.append(Cue(start, end, cue_text))
    return cues


def _keep_i_b(match: re.Match[str]) -> str:
    closing, tag = match.groups()
    return f"<{closing}{tag}>" if tag in ("i", "b") else ""


# --- Character sets -----------------------------------------------------------------------------

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# The Windows code page of each language's legacy subtitles (what Windows subtitle tools wrote
# before Unicode, and what VLC and mpv fall back to for that language).
_LEGACY_BY_LANGUAGE = {
    **dict.fromkeys(("pl", "cs", "sk", "hu", "sl", "hr", "bs", "ro", "sq"), "cp1250"),
    **dict.fromkeys(("ru", "uk", "be", "bg", "mk", "sr"), "cp1251"),
    "el": "cp1253",
    "tr": "cp1254",
    "az": "cp1254",
    "he": "cp1255",
    **dict.fromkeys(("ar", "fa", "ur"), "cp1256"),
    **dict.fromkeys(("lt", "lv", "et"), "cp1257"),
    "vi": "cp1258",
    "th": "cp874",
    "ja": "cp932",
    "zh": "gb18030",
    "ko": "cp949",
}
# What charset-normalizer may answer: the legacy code pages subtitles were written in. Left
# free, it reads a short cp1252 text as cp1006 (Urdu) or as UTF-16 without a BOM.
_LEGACY_CODECS = (
    *("cp1252", "cp1250", "cp1251", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257"),
    *("cp1258", "cp874", "cp932", "gb18030", "big5", "cp949", "koi8_r"),
)
# Latin-script pages among them, which it cannot tell apart on a short text: it reads cp1252
# "Ærø" as cp1250 "Ćrř". Of these cp1252 (Western Europe, the Americas) is by far the most
# common in subtitles, so it wins unless the language says otherwise.
_LATIN_CODECS = frozenset({"cp1250", "cp1252", "cp1254", "cp1257", "cp1258"})


def _legacy_codec(language: str | None) -> str | None:
    tag = language_tag(language) if language else None
    return _LEGACY_BY_LANGUAGE.get(tag.split("-")[0]) if tag else None


def decode_text(data: bytes, *, legacy_codec: str | None = None, name: str = "sidecar") -> str:
    """A subtitle file's text, whatever its character set (pure).

    In order: a byte order mark (UTF-8, UTF-16 LE/BE, UTF-32); strict UTF-8 (legacy 8-bit
    text is almost never valid UTF-8 by accident); the language's legacy code page if given;
    charset-normalizer's guess among _LEGACY_CODECS, cp1252 for any Latin-script guess (see
    _LATIN_CODECS); strict cp1252. Raises SidecarError for bytes that are not text.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return _text_only(_decode_cut(data, encoding), name)
            except UnicodeDecodeError:
                raise SidecarError(f"{name}: not valid {encoding.upper()} text") from None
    for encoding in _candidates(data, legacy_codec):
        try:
            return _text_only(_decode_cut(data, encoding), name)
        except UnicodeDecodeError:
            continue
    raise SidecarError(f"{name}: not text in any character set we know")


def _decode_cut(data: bytes, encoding: str) -> str:
    """Strict decoding, except that a character cut off by the end of the file is dropped: a
    file copied halfway is still that encoding (and its complete cues still count).

    Without a BOM, a cut UTF-8 character counts only if the rest has multi-byte characters:
    an ASCII file ending in one high byte is a legacy 8-bit file ending in, say, "é".
    """
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        if exc.reason not in ("unexpected end of data", "truncated data"):
            raise
        text = data[: exc.start].decode(encoding)
        if encoding == "utf-8" and text.isascii():
            raise
        return text


def _candidates(data: bytes, legacy_codec: str | None) -> Iterator[str]:
    yield "utf-8"
    if legacy_codec:
        yield legacy_codec
    # Only now, when it is needed: the detector costs ~100 ms on a film's subtitles.
    guess = charset_normalizer.from_bytes(data, cp_isolation=list(_LEGACY_CODECS)).best()
    if guess is not None:
        yield "cp1252" if guess.encoding in _LATIN_CODECS else guess.encoding
    yield "cp1252"


_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f]")


def _text_only(text: str, name: str) -> str:
    if _CONTROL.search(text):
        raise SidecarError(f"{name}: binary data, not subtitle text")
    return text


# --- Helpers for callers ------------------------------------------------------------------------


def overlapping(cues: Iterable[Cue], start_seconds: float, end_seconds: float) -> list[Cue]:
    """The cues that show at some time in [start_seconds, end_seconds) (pure)."""
    return [c for c in cues if c.end_seconds > start_seconds and c.start_seconds < end_seconds]


def is_text_codec(codec: str) -> bool:
    """Whether a stream of this codec (libavcodec name) can become WebVTT."""
    return codec in TEXT_CODECS
