"""`hlstrio serve` and `hlstrio probe`: one-line errors and a non-zero exit on bad input."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from ._config import ConfigError, Settings, load_settings
from ._ffmpeg import FfmpegNotFound, ffmpeg_exe

if TYPE_CHECKING:
    from .media import MediaInfo


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hlstrio", description="HLS streaming session server")
    parser.add_argument("--version", action="version", version=f"hlstrio {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve a media library over HLS")
    serve.add_argument(
        "media",
        nargs="*",
        type=Path,
        metavar="MEDIA_DIR",
        help="library roots (default: config, else a generated demo library)",
    )
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000; 0 picks a free one)")
    serve.add_argument("--config", type=Path, help="TOML config file")
    serve.add_argument(
        "--insecure-no-auth",
        action="store_true",
        default=None,
        help="allow a non-loopback host with no [users] configured",
    )
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    probe = commands.add_parser("probe", help="print what the server knows about a file")
    probe.add_argument("file", type=Path)
    probe.add_argument("--json", action="store_true", help="print JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        return _probe(args)
    except (ConfigError, FfmpegNotFound) as exc:
        print(f"hlstrio: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `hlstrio probe FILE --json | head`: the reader left; say nothing more (and do not
        # let the interpreter complain about stdout at exit).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # hlstrio.http is hypercorn's error log: its info lines repeat what the CLI prints
    # ("Running on ..."); its warnings and errors still show.
    for noisy in ("hypercorn.error", "hypercorn.access", "hlstrio.http"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    settings = load_settings(
        args.config,
        overrides={
            "media": args.media or None,
            "host": args.host,
            "port": args.port,
            "insecure_no_auth": args.insecure_no_auth,
        },
    )
    for root in settings.media:
        if not root.is_dir():
            raise ConfigError(f"media directory not found: {root}")
    settings.check_bind()
    ffmpeg_exe(settings.ffmpeg)
    # Imported once the input is known good: trio and the web stack take most of a second to
    # import, and a bad flag or config deserves its one-line error at once.
    import trio

    from ._server import serve

    async def announce(s: Settings) -> None:
        async with trio.open_nursery() as nursery:
            server = await nursery.start(partial(serve, s))
            # The one "listening" line, on stdout (scripts and tests wait for it); the server's
            # own log does not repeat it.
            print(f"hlstrio listening on {server.url}", flush=True)

    try:
        trio.run(announce, settings)
    except BaseException as exc:
        failure = _leaf(exc, (OSError, ConfigError, FfmpegNotFound))
        if isinstance(failure, OSError):
            print(
                f"hlstrio: cannot listen on {settings.host}:{settings.port}: "
                f"{failure.strerror or failure}",
                file=sys.stderr,
            )
            return 1
        if failure is not None:
            raise failure from None
        raise
    return 0


def _leaf(exc: BaseException, types: tuple[type[Exception], ...]) -> Exception | None:
    """The first exception of `types` inside (possibly nested) exception groups."""
    if isinstance(exc, types):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _leaf(inner, types)
            if found is not None:
                return found
    return None


def _probe(args: argparse.Namespace) -> int:
    from .media import ProbeError, probe

    try:
        info = probe(args.file)
    except ProbeError as exc:
        print(f"hlstrio: {exc}", file=sys.stderr)  # probe() names the file itself
        return 1
    summary = probe_summary(args.file, info)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print("\n".join(probe_lines(summary)))
    return 0


# `hlstrio probe` output: one JSON-able summary, and the text lines written from it alone, so a
# new kind of track is one more key in `probe_summary` and one more entry in `_TRACK_LINES`.


def probe_summary(file: Path, info: MediaInfo) -> dict[str, Any]:
    """What `hlstrio probe --json` prints about a probed file."""
    video = info.video
    return {
        "file": str(file),
        "container": info.container,
        "duration": round(info.duration, 3),
        "size": info.size,
        "video": None
        if video is None
        else {
            "codec": video.codec,
            "width": video.width,
            "height": video.height,
            "fps": round(video.fps, 3),
            "hls_codec": video.hls_codec,
            "profile": video.profile,
            "pix_fmt": video.pix_fmt,
            "bit_depth": video.bit_depth,
            "color_primaries": video.color_primaries,
            "color_transfer": video.color_transfer,
            "dynamic_range": video.dynamic_range,
            "field_order": video.field_order,
            "interlaced": video.interlaced,
            "keyframes": len(info.keyframe_pts),
            "index_source": info.index_source,
        },
        "audio": [
            {
                "index": a.index,
                "codec": a.codec,
                "channels": a.channels,
                "language": a.language,
                "hls_codec": a.hls_codec,
                "layout": a.layout,
                "title": a.title,
                "default": a.default,
                "forced": a.forced,
                "profile": a.profile,
                "bit_depth": a.bit_depth,
            }
            for a in info.audio
        ],
        "subtitles": [
            {
                "index": s.index,
                "codec": s.codec,
                "text": s.text,
                "language": s.language,
                "title": s.title,
                "forced": s.forced,
                "default": s.default,
            }
            for s in info.subtitles
        ],
    }


def _video_line(video: dict[str, Any]) -> str:
    extra = [f"{video['bit_depth']}-bit"]
    if video["dynamic_range"] != "SDR":
        extra.append(video["dynamic_range"])
    if video["interlaced"]:
        extra.append(f"interlaced ({video['field_order'] or 'unknown order'})")
    return (
        f"video: {video['codec']} {video['width']}x{video['height']} {video['fps']} fps, "
        f"{', '.join(extra)}, {video['keyframes']} keyframes ({video['index_source']})"
    )


def _audio_line(audio: dict[str, Any]) -> str:
    flags = [f for f in ("default", "forced") if audio[f]]
    layout = audio["layout"] or f"{audio['channels']} ch"
    title = f' "{audio["title"]}"' if audio["title"] else ""
    return (
        f"audio #{audio['index']}: {audio['codec']} {layout} {audio['language'] or ''}"
        f"{title} {' '.join(flags)}"
    )


def _subtitle_line(subtitle: dict[str, Any]) -> str:
    kind = "text" if subtitle["text"] else "bitmap"
    flags = [f for f in ("default", "forced") if subtitle[f]]
    title = f' "{subtitle["title"]}"' if subtitle["title"] else ""
    return (
        f"subtitles #{subtitle['index']}: {subtitle['codec']} ({kind}) "
        f"{subtitle['language'] or ''}{title} {' '.join(flags)}"
    )


# summary key -> the line for one track of that kind (a key holds one track, None, or a list).
_TRACK_LINES: tuple[tuple[str, Callable[[dict[str, Any]], str]], ...] = (
    ("video", _video_line),
    ("audio", _audio_line),
    ("subtitles", _subtitle_line),
)


def probe_lines(summary: dict[str, Any]) -> list[str]:
    """What `hlstrio probe` prints: a header line, then one indented line per track."""
    lines = [
        f"{summary['file']}: {summary['container']}, {summary['duration']:.2f} s, "
        f"{summary['size']} bytes"
    ]
    for key, line in _TRACK_LINES:
        tracks = summary[key]
        for track in tracks if isinstance(tracks, list) else [tracks] if tracks else []:
            lines.append("  " + line(track).rstrip())
    return lines
