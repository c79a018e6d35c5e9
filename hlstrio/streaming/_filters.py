"""The picture filters of a transcode, pure, and which filters an ffmpeg has (detected once).

A transcode's picture goes through, in this order: deinterlacing (an interlaced source is
made progressive before anything reads its lines), tone mapping (a PQ/HLG source becomes
8-bit BT.709 SDR), then the encoder's burn-in overlay and scaling (`_encoder.encoder_argv`).
Deinterlacing comes first because every later filter treats a frame as one picture: scaling
or converting woven fields smears the two instants together. Tone mapping comes before the
overlay so bitmap subtitles, drawn in SDR colours, are not dimmed as if they were PQ.

What a chain may use depends on the ffmpeg binary: zscale needs libzimg, which a system build
may lack. `detect_filters` asks the binary once (`ffmpeg -hide_banner -filters`) and caches
the answer per path; it blocks, so it runs in a worker thread, once, before sessions start.
Without zscale there is no tone mapping (ffmpeg's `tonemap` needs linear light, which only
zscale makes here); the chain then says so in `notes`, meant for the session's reason.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

from ..media import VideoInfo

TONEMAP_UNAVAILABLE = "tone mapping unavailable in this ffmpeg: HDR shown as SDR without mapping"
DEINTERLACE_UNAVAILABLE = "deinterlacing unavailable in this ffmpeg: fields shown woven"
FILTERS_UNKNOWN = "ffmpeg's filters not detected: HDR shown as SDR without mapping"

# Filters every libavfilter build has unless it was configured without them: they need no
# external library. What is assumed when the binary was never asked.
BUILTIN_FILTERS = frozenset({"bwdif", "yadif", "scale", "overlay", "format", "setparams"})

# zimg's linear light is relative: 1.0 = this many cd/m2. 100 is SDR reference white, so SDR
# display white and 100-nit HDR content land at 1.0 and the tone curve compresses only what
# is brighter.
NOMINAL_PEAK_NITS = 100
# Möbius: linear (unchanged) below `param` (0.3 of SDR white, the default) and a smooth
# roll-off above it up to the signal's peak (the frame's mastering/content-light metadata,
# else 1000 cd/m2). Hable, the other common choice, compresses the mid-tones too: measured on
# the same PQ clip it gives mean luma 98 against 118 for the SDR original (Möbius: 119), the
# "dark picture" complaint. desat=0: keep highlight colours instead of fading them to white.
TONEMAP = "tonemap=tonemap=mobius:desat=0"

# Output colour description of a tone-mapped picture, for the encoder's VUI (H.264 E.2.1):
# what the filters made, stated so a player need not guess. Not enough alone: ffmpeg 7+
# negotiates the matrix and range in the filter graph (swscale converts to them) but takes
# primaries and transfer from the frames (9.0.2: `-color_primaries bt709` on unmapped PQ
# frames still wrote primaries 9, transfer 16), so unmapped frames are relabelled too.
BT709_TAGS = ("-color_primaries", "bt709", "-color_trc", "bt709",
              "-colorspace", "bt709", "-color_range", "tv")  # fmt: skip
RELABEL_BT709 = "setparams=color_primaries=bt709:color_trc=bt709"

# ffmpeg's colour names (the probe's) that zscale's options take as they are (zscale -h).
_ZSCALE_PRIMARIES = frozenset(
    {"bt709", "bt470m", "bt470bg", "smpte170m", "smpte240m", "film", "bt2020", "smpte428",
     "smpte431", "smpte432", "ebu3213"}
)  # fmt: skip
_ZSCALE_MATRICES = frozenset(
    {"bt709", "fcc", "bt470bg", "smpte170m", "smpte240m", "ycgco", "bt2020nc", "bt2020c",
     "chroma-derived-nc", "chroma-derived-c", "ictcp"}
)  # fmt: skip
_ZSCALE_TRANSFERS = frozenset({"smpte2084", "arib-std-b67"})  # the HDR ones: what is mapped

# A filter line of `ffmpeg -filters`: flags, name, pads ("V->V", "|->A", "N->V").
_FILTER_LINE = re.compile(r"^\s*[.A-Z|]{2,3}\s+(\S+)\s+\S*->\S*\s")


@dataclass(frozen=True, slots=True)
class FilterSupport:
    """The filters one ffmpeg binary has."""

    names: frozenset[str]

    @property
    def tone_mapping(self) -> bool:
        """zscale (linearize, convert primaries, re-encode) around tonemap (the curve)."""
        return "zscale" in self.names and "tonemap" in self.names

    @property
    def deinterlacer(self) -> str | None:
        """bwdif (motion-adaptive, better on edges and still areas) else yadif, else None."""
        return next((name for name in ("bwdif", "yadif") if name in self.names), None)


def parse_filter_list(text: str) -> FilterSupport:
    """The filters named in `ffmpeg -hide_banner -filters` output (pure).

    The legend lines ("T.. = Timeline support") have no `->` pads, so they never match; the
    format is the same in ffmpeg 4 (3-letter flags) and 7+ (2-letter flags).
    """
    names = {m.group(1) for m in map(_FILTER_LINE.match, text.splitlines()) if m is not None}
    return FilterSupport(frozenset(names))


_detected: dict[str, FilterSupport] = {}


def detect_filters(ffmpeg: str, *, timeout_seconds: float = 10.0) -> FilterSupport:
    """Ask `ffmpeg` which filters it has, once per path (the answer is cached).

    Blocking (runs the binary, ~40 ms): call it in a worker thread, e.g.
    `await trio.to_thread.run_sync(detect_filters, ffmpeg)` at server start. A binary that
    cannot list its filters is taken to have none: its transcodes then neither deinterlace
    nor tone map, and say so, instead of failing on a filter it lacks.
    """
    known = _detected.get(ffmpeg)
    if known is not None:
        return known
    try:
        done = subprocess.run(
            [ffmpeg, "-nostdin", "-hide_banner", "-filters"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout_seconds,
            check=False,
        )
        support = (
            parse_filter_list(done.stdout) if done.returncode == 0 else FilterSupport(frozenset())
        )
    except (OSError, subprocess.SubprocessError):
        support = FilterSupport(frozenset())
    # Two threads racing here both run the binary once and store equal values: harmless.
    _detected[ffmpeg] = support
    return support


def known_filters(ffmpeg: str) -> FilterSupport | None:
    """What `detect_filters` found for `ffmpeg`, without running anything; None before it ran.
    Safe on the event loop."""
    return _detected.get(ffmpeg)


@dataclass(frozen=True, slots=True)
class PictureChain:
    """The filters before burn-in and scaling, the encoder's colour tags, and why anything
    asked for is missing (for the session's reason)."""

    filters: tuple[str, ...] = ()
    output_args: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def deinterlace_filter(name: str, source: VideoInfo | None) -> str:
    """bwdif/yadif making one progressive frame per interlaced frame (pure).

    mode=send_frame keeps the frame rate (1080i50 -> 1080p25): every output frame keeps its
    input's timestamp, so the forced keyframes stay on the segment grid. parity from the
    probe: by the field coded first, because ffmpeg's own Matroska muxer and demuxer disagree
    on the display half (a "tt" stream reads back "tb", see media/_probe.py), while a stored
    "tb"/"bt" mostly comes from such files; unknown -> auto (the decoder's per-frame flag).
    deint=all: the probe found the stream interlaced; per-frame flags are not always set
    (field-coded H.264 without picture timing SEI).
    """
    order = source.field_order if source is not None else None
    parity = {"tt": "tff", "tb": "tff", "bb": "bff", "bt": "bff"}.get(order or "", "auto")
    return f"{name}=mode=send_frame:parity={parity}:deint=all"


def tonemap_filters(source: VideoInfo | None) -> tuple[str, ...]:
    """PQ/HLG to 8-bit BT.709 SDR with zscale and tonemap (pure).

    Linearize (1.0 = NOMINAL_PEAK_NITS) into float RGB, convert BT.2020 primaries to BT.709
    in linear light, apply the curve, then BT.709 transfer and matrix, limited range, 4:2:0.
    The input description is given from the probe, not left to the frames: a container may
    say HLG where the bitstream does not (the decoded frames then say "unspecified"), and
    zscale fails on them ("no path between colorspaces").
    """
    transfer = source.color_transfer if source is not None else None
    primaries = source.color_primaries if source is not None else None
    matrix = source.color_space if source is not None else None
    colour_range = source.color_range if source is not None else None
    # HDR video is BT.2020 unless it says otherwise (ITU-R BT.2100).
    primaries = primaries if primaries in _ZSCALE_PRIMARIES else "bt2020"
    linearize = [
        f"tin={transfer if transfer in _ZSCALE_TRANSFERS else 'smpte2084'}",
        f"pin={primaries}",
        f"min={matrix if matrix in _ZSCALE_MATRICES else 'bt2020nc'}",
        f"rin={'pc' if colour_range == 'pc' else 'tv'}",
        "t=linear",
        f"npl={NOMINAL_PEAK_NITS}",
        # The gamut conversion in the same pass (zimg does it in linear light, after the
        # transfer): the same picture as a separate `zscale=p=bt709` on the float RGB, for
        # 20-25% less CPU (measured: 5.1-6.0 against 6.9-7.1 s user for 100 frames of 1080p).
        "p=bt709",
    ]
    return (
        f"zscale={':'.join(linearize)}",
        "format=gbrpf32le",
        TONEMAP,
        "zscale=t=bt709:m=bt709:r=tv",
        "format=yuv420p",
    )


def picture_chain(
    source: VideoInfo | None,
    *,
    deinterlace: bool,
    tonemap: bool,
    filters: FilterSupport | None,
) -> PictureChain:
    """What the encoder does to the source picture before burn-in and scaling (pure).

    `filters` None means the binary was never asked (`detect_filters` not run): only the
    filters every build has are used, so no transcode fails on a filter its ffmpeg lacks.
    """
    support = filters if filters is not None else FilterSupport(BUILTIN_FILTERS)
    chain: list[str] = []
    output: tuple[str, ...] = ()
    notes: list[str] = []
    if deinterlace:
        name = support.deinterlacer
        if name is None:
            notes.append(DEINTERLACE_UNAVAILABLE)
        else:
            chain.append(deinterlace_filter(name, source))
    if tonemap:
        # Tagged BT.709 either way: what is sent is SDR (VIDEO-RANGE=SDR); without mapping
        # the PQ/HLG code values are shown as BT.709, washed out, and the reason says so.
        output = BT709_TAGS
        if support.tone_mapping:
            chain.extend(tonemap_filters(source))
        else:
            if "setparams" in support.names:
                chain.append(RELABEL_BT709)
            notes.append(TONEMAP_UNAVAILABLE if filters is not None else FILTERS_UNKNOWN)
    return PictureChain(tuple(chain), output, tuple(notes))
