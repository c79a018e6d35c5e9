"""trio.run's top: one nursery holding the session manager and hypercorn, plus signals.

Shutdown order matters: sessions end first (encoders killed, temp dirs removed, waiting
requests answered), then hypercorn drains in-flight responses, then the manager's nursery
closes. Nothing a session started can outlive this function.
"""

from __future__ import annotations

import logging
import signal
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import hypercorn.trio
import trio
from hypercorn.config import Config as HypercornConfig

from ._config import Settings
from ._ffmpeg import ffmpeg_exe
from ._metrics import Metrics
from ._reaper import Reaper
from .media import Library, default_cache_dir, ensure_demo_library
from .streaming import SessionManager
from .web import Authenticator, Services, ShieldFinalSend, create_app
from .web._accel import serve_accel
from .web._fast import FastPath

log = logging.getLogger("hlstrio.server")


@dataclass(frozen=True, slots=True)
class RunningServer:
    url: str  # http://host:port, with the real port when 0 was asked
    services: Services
    shutdown: trio.Event  # set it to stop gracefully
    accel_url: str | None = None  # the lean segment endpoint for nginx (accel_listen), if on


async def open_library(settings: Settings, ffmpeg: str) -> Library:
    cache_dir = settings.cache_dir or default_cache_dir()
    roots: tuple[Path, ...] = settings.media
    if not roots:
        log.info("no media configured: serving the demo library (generated once)")
        demo = await trio.to_thread.run_sync(partial(ensure_demo_library, cache_dir, ffmpeg=ffmpeg))
        roots = (demo,)
    library = Library(roots, cache_file=cache_dir / "probe-cache.json")
    await trio.to_thread.run_sync(library.scan)
    log.info("library: %d items from %s", len(library.items()), ", ".join(map(str, roots)))
    return library


def hypercorn_config(settings: Settings) -> HypercornConfig:
    config = HypercornConfig()
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    config.bind = [f"{host}:{settings.port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hlstrio.http")
    config.graceful_timeout = 5.0
    # A connection the client closed lingers (CLOSE_WAIT, its tasks alive) until this expires
    # under hypercorn 0.18; 10 s still spans a player's gap between segment requests.
    config.keep_alive_timeout = 10.0
    # Hundreds of players (re)connect at once after a restart: the default backlog of 100
    # drops SYNs, and a dropped SYN costs the client a 1 s retransmit.
    config.backlog = 2048
    # Players and an nginx front keep connections for hours; the default closes each one
    # after 1,000 requests.
    config.keep_alive_max_requests = 1_000_000
    return config


async def serve(
    settings: Settings,
    *,
    handle_signals: bool = True,
    task_status: trio.TaskStatus[RunningServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    settings.check_bind()
    ffmpeg = ffmpeg_exe(settings.ffmpeg)
    library = await open_library(settings, ffmpeg)
    reaper = Reaper()
    manager = SessionManager(settings, ffmpeg, reaper)
    metrics = Metrics(lambda: manager.registry)
    manager.metrics = metrics  # sessions created from now on report encoder events
    services = Services(settings, library, manager, Authenticator(settings.users))
    web_metrics = metrics if settings.metrics else None
    # Segments and /metrics are answered by a thin ASGI layer in front of Quart (web/_fast.py).
    app = ShieldFinalSend(FastPath(create_app(services, web_metrics), services, web_metrics))
    config = hypercorn_config(settings)
    shutdown = trio.Event()

    async def stop_sessions_then_http() -> None:
        await shutdown.wait()
        log.info("shutting down: ending %d session(s)", len(manager.registry))
        await manager.end_all()

    async with trio.open_nursery() as outer:
        await outer.start(reaper.run)
        await outer.start(manager.run)
        if handle_signals:
            await outer.start(_watch_signals, shutdown)
        accel_url = None
        if settings.accel_listen:
            # In `outer`: cancelled after Hypercorn has drained, like the sessions.
            host, port = settings.accel_address()
            port = await outer.start(serve_accel, services, web_metrics, host, port)
            accel_url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
            log.info("segment endpoint for nginx on %s", accel_url)
        async with trio.open_nursery() as http:
            binds: list[str] = await http.start(
                partial(hypercorn.trio.serve, app, config, shutdown_trigger=stop_sessions_then_http)
            )
            url = binds[0]
            log.info("hlstrio listening on %s", url)
            task_status.started(RunningServer(url, services, shutdown, accel_url))
        outer.cancel_scope.cancel()
    log.info("stopped")


async def _watch_signals(
    shutdown: trio.Event, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for signum in signals:
            log.info("received %s", signal.Signals(signum).name)
            shutdown.set()
