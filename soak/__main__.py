"""python -m soak soak|load|fuzz [options]: reliability runs against a live server."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import trio

from ._live import Clip, live_server, make_media

# Soak clips: long enough that seeks restart encoders and kills hit a running ffmpeg, small
# enough that three transcodes fit on two cores.
SOAK_CLIPS = [
    Clip("soak_h264.mp4", "h264_aac_mp4", 60, 320, 180),
    Clip("soak_hevc.mkv", "hevc_opus_mkv", 60, 320, 180),
    Clip("soak_two_audio.mp4", "two_audio_mp4", 30, 320, 180),
]
# Load clip: what a real remux player pulls, 720p H.264/AAC at 6 s segments.
LOAD_CLIPS = [Clip("load_720p.mp4", "h264_aac_mp4", 60, 1280, 720)]


def _cache(args: argparse.Namespace) -> Path:
    return Path(args.cache).expanduser()


def cmd_soak(args: argparse.Namespace) -> int:
    from ._soak import SoakConfig, run_soak

    config = SoakConfig(
        ops=args.ops,
        seed=args.seed,
        workers=args.workers,
        rounds=args.rounds,
        idle_timeout=args.idle_timeout,
        session_ttl=args.session_ttl,
    )
    media = make_media(_cache(args) / "soak-media", SOAK_CLIPS)
    with tempfile.TemporaryDirectory(prefix="hlstrio-soak-") as work:
        with live_server(Path(work), [media], config.server_settings(), config.users()) as server:
            print(f"soak: server {server.url} (pid {server.pid}), {config}")
            report = trio.run(run_soak, server, config)
        print(report.summary())
    return 1 if report.errors else 0


def cmd_load(args: argparse.Namespace) -> int:
    from ._load import LoadConfig, run_load

    config = LoadConfig(players=args.players, seconds=args.seconds, ramp=args.ramp)
    media = make_media(_cache(args) / "load-media", LOAD_CLIPS)
    settings = {**config.server_settings(), **dict(_setting(s) for s in args.setting)}
    with tempfile.TemporaryDirectory(prefix="hlstrio-load-") as work:
        with live_server(Path(work), [media], settings, config.users()) as server:
            print(f"load: server {server.url} (pid {server.pid}), {config}")
            report = trio.run(run_load, server, config)
            exit_code = server.stop()
        print(report.summary())
        print(f"  server exit code {exit_code}")
    return 1 if report.errors or exit_code != 0 else 0


def _setting(text: str) -> tuple[str, object]:
    """KEY=VALUE for the server's config file; the value as TOML would read it."""
    import tomllib

    key, _, value = text.partition("=")
    return key, tomllib.loads(f"v = {value}")["v"]


def cmd_fuzz(args: argparse.Namespace) -> int:
    from ._fuzz import run_fuzz

    media = make_media(_cache(args) / "fuzz-media", SOAK_CLIPS[:2])
    with tempfile.TemporaryDirectory(prefix="hlstrio-fuzz-") as work:
        return run_fuzz(Path(work), media, args.max_examples, args.seed, args.extra)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m soak", description=__doc__)
    parser.add_argument("--cache", default="~/.cache/hlstrio/reliability", help="generated media")
    sub = parser.add_subparsers(dest="command", required=True)

    soak = sub.add_parser("soak", help="randomized operations, then the leak invariants")
    soak.add_argument("--ops", type=int, default=3000)
    soak.add_argument("--seed", type=int, default=1)
    soak.add_argument("--workers", type=int, default=3)
    soak.add_argument("--rounds", type=int, default=15, help="invariant checks along the way")
    soak.add_argument("--idle-timeout", type=float, default=1.5)
    soak.add_argument("--session-ttl", type=float, default=3.0)
    soak.set_defaults(run=cmd_soak)

    load = sub.add_parser("load", help="remux players at real playback pace")
    load.add_argument("--players", type=int, default=200)
    load.add_argument("--seconds", type=float, default=60.0)
    load.add_argument("--ramp", type=float, default=6.0, help="players start over this long")
    load.add_argument(
        "--setting", action="append", default=[], help="server setting KEY=VALUE (repeatable)"
    )
    load.set_defaults(run=cmd_load)

    fuzz = sub.add_parser("fuzz", help="schemathesis against the live server's /openapi.json")
    fuzz.add_argument("--max-examples", type=int, default=100)
    fuzz.add_argument("--seed", type=int, default=1)
    fuzz.add_argument("extra", nargs="*", help="more schemathesis options (after --)")
    fuzz.set_defaults(run=cmd_fuzz)

    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
