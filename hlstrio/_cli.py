"""`hlstrio serve` and `hlstrio probe`: one-line errors and a non-zero exit on bad input."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import trio

from . import __version__
from ._config import ConfigError, Settings, load_settings
from ._ffmpeg import FfmpegNotFound, ffmpeg_exe


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


def _serve(args: argparse.Namespace) -> int:
    from ._server import serve

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("hypercorn.error", "hypercorn.access"):
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

    async def announce(s: Settings) -> None:
        async with trio.open_nursery() as nursery:
            server = await nursery.start(partial(serve, s))
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
        print(f"hlstrio: {args.file}: {exc}", file=sys.stderr)
        return 1
    summary = {
        "file": str(args.file),
        "container": info.container,
        "duration": round(info.duration, 3),
        "size": info.size,
        "video": None
        if info.video is None
        else {
            "codec": info.video.codec,
            "width": info.video.width,
            "height": info.video.height,
            "fps": round(info.video.fps, 3),
            "hls_codec": info.video.hls_codec,
            "keyframes": len(info.keyframe_pts),
        },
        "audio": [
            {
                "index": a.index,
                "codec": a.codec,
                "channels": a.channels,
                "language": a.language,
                "hls_codec": a.hls_codec,
            }
            for a in info.audio
        ],
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        video = summary["video"]
        print(f"{args.file}: {info.container}, {info.duration:.2f} s, {info.size} bytes")
        if isinstance(video, dict):
            print(
                f"  video: {video['codec']} {video['width']}x{video['height']} "
                f"{video['fps']} fps, {video['keyframes']} keyframes"
            )
        for a in info.audio:
            print(f"  audio #{a.index}: {a.codec} {a.channels} ch {a.language or ''}".rstrip())
    return 0
