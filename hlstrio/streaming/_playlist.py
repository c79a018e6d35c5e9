"""HLS playlist text, pure. URIs are relative so the session id in the path carries through."""

from __future__ import annotations

from dataclasses import dataclass

from ._timeline import Timeline


@dataclass(frozen=True, slots=True)
class Variant:
    """What one stream actually sends, for the master playlist's EXT-X-STREAM-INF."""

    bandwidth: int  # peak bits/s
    average_bandwidth: int
    codecs: tuple[str, ...]  # RFC 6381 strings of what is in the segments
    width: int | None = None
    height: int | None = None
    frame_rate: float | None = None


def segment_uri(index: int) -> str:
    return f"seg-{index}.ts"


MEDIA_PLAYLIST_URI = "index.m3u8"


def master_playlist(variant: Variant) -> str:
    attrs = [f"BANDWIDTH={variant.bandwidth}", f"AVERAGE-BANDWIDTH={variant.average_bandwidth}"]
    if variant.codecs:
        attrs.append(f'CODECS="{",".join(variant.codecs)}"')
    if variant.width and variant.height:
        attrs.append(f"RESOLUTION={variant.width}x{variant.height}")
    if variant.frame_rate:
        attrs.append(f"FRAME-RATE={variant.frame_rate:.3f}")
    return (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n"
        f"#EXT-X-STREAM-INF:{','.join(attrs)}\n{MEDIA_PLAYLIST_URI}\n"
    )


def media_playlist(timeline: Timeline, start_offset: float | None = None) -> str:
    """The complete VOD list, valid before any segment has been made."""
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        f"#EXT-X-TARGETDURATION:{timeline.target_duration}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    if start_offset:
        lines.append(f"#EXT-X-START:TIME-OFFSET={start_offset:.3f},PRECISE=YES")
    for segment in timeline.segments:
        lines.append(f"#EXTINF:{segment.duration:.6f},")
        lines.append(segment_uri(segment.index))
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"
