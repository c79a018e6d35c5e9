"""trio.run's top: one nursery holding the session manager and hypercorn, plus signals.

Shutdown order matters: sessions end first (encoders killed, temp dirs removed, waiting
requests answered), then hypercorn drains in-flight responses, then the manager's nursery
closes. Nothing a session started can outlive this function.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import hypercorn.trio
import trio
from hypercorn.config import Config as HypercornConfig

from ._config import ConfigError, Settings
from ._ffmpeg import ffmpeg_exe
from ._metrics import Metrics
from ._reaper import Reaper
from .media import Library, default_cache_dir, ensure_demo_library, language_name
from .media._library import VIDEO_EXTENSIONS
from .media._watch import Debounce, watch_roots
from .streaming import CapExceeded, SessionManager
from .streaming._filters import FilterSupport, detect_filters
from .web import Authenticator, Services, ShieldFinalSend, create_app
from .web._accel import serve_accel
from .web._cors import Cors
from .web._fast import FastPath

if TYPE_CHECKING:
    from .cluster._redis import RedisDirectory

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
    debounce = Debounce(settings.watch_debounce, 5 * settings.watch_debounce)
    library = Library(roots, cache_file=cache_dir / "probe-cache.json", debounce=debounce)
    await trio.to_thread.run_sync(library.scan)
    # Rendition names ("Français") come from langcodes' data, 0.3 s to load the first time:
    # load it here, off the event loop, not in the first session's create.
    await trio.to_thread.run_sync(language_name, "en")
    where = ", ".join(map(str, roots))
    if library.items():
        log.info("library: %d items from %s", len(library.items()), where)
    else:
        # Say where we looked and for what: the usual cause is a wrong path or file type.
        kinds = " ".join(sorted(VIDEO_EXTENSIONS))
        log.warning("library is empty: no playable %s files under %s", kinds, where)
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
    metrics = Metrics()
    # Which filters this ffmpeg has (tone mapping needs zscale): asked once, off the loop.
    filters = await trio.to_thread.run_sync(detect_filters, ffmpeg)
    async with open_directory(settings) as directory:
        await _serve(
            settings,
            library,
            ffmpeg,
            reaper,
            metrics,
            filters,
            directory,
            handle_signals,
            task_status,
        )


@contextlib.asynccontextmanager
async def open_directory(settings: Settings) -> AsyncIterator[RedisDirectory | None]:
    """The cluster's session directory in Redis while the server runs, or None on one node.

    Entered around everything else: sessions that end at shutdown may still tell it so. It
    connects lazily and reconnects by itself, so a Redis that is down does not stop a node
    from starting (it answers 503 to new sessions until Redis is back).
    """
    cluster = settings.cluster
    if cluster is None:
        yield None
        return
    try:
        from .cluster._redis import RedisDirectory  # coredis: only needed in cluster mode
    except ImportError as exc:
        raise ConfigError(
            f"[cluster] needs the coredis package ({exc.name} is missing): "
            "pip install 'hlstrio[cluster]'"
        ) from None
    directory = RedisDirectory(
        cluster,
        session_ttl_seconds=settings.session_ttl,
        max_sessions=settings.max_sessions,
        max_sessions_per_user=settings.max_sessions_per_user,
        max_transcodes=settings.max_transcodes,
        cap_error=CapExceeded,
    )
    async with directory.connected():
        yield directory


async def _serve(
    settings: Settings,
    library: Library,
    ffmpeg: str,
    reaper: Reaper,
    metrics: Metrics,
    filters: FilterSupport,
    directory: RedisDirectory | None,
    handle_signals: bool,
    task_status: trio.TaskStatus[RunningServer],
) -> None:
    manager = SessionManager(
        settings,
        ffmpeg,
        reaper=reaper,
        metrics=metrics,
        filters=filters,
        directory=directory,
        library=library,
    )
    # A file that left the library (or changed) ends its sessions: 410 on their next request.
    library.on_gone(manager.media_removed)
    metrics.collect_sessions(lambda: manager.registry)
    services = Services(settings, library, manager, Authenticator(settings.users))
    web_metrics = metrics if settings.metrics else None
    # Segments and /metrics are answered by a thin ASGI layer in front of Quart (web/_fast.py).
    app = ShieldFinalSend(
        Cors(
            FastPath(create_app(services, web_metrics), services, web_metrics),
            settings.cors_origins,
        )
    )
    config = hypercorn_config(settings)
    shutdown = trio.Event()

    async def stop_sessions_then_http() -> None:
        await shutdown.wait()
        log.info("shutting down: ending %d session(s)", len(manager.registry))
        await manager.end_all()

    async with trio.open_nursery() as outer:
        await outer.start(reaper.run)
        await outer.start(manager.run)
        # Library scans (watcher and rescans) run in `outer`: cancelled after HTTP drained.
        await outer.start(library.keep_current)
        if settings.watch:
            own = (manager.temp_parent, settings.cache_dir or default_cache_dir())
            await outer.start(partial(watch_roots, library.roots, library.changed, ignore=own))
            library.changed()  # catch up with changes since the first scan, before the watch
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
            log.debug("http bound to %s", ", ".join(binds))  # the CLI prints "listening on"
            if directory is not None and not directory.advertise:
                # Recorded with the node's heartbeat: what other nodes and operators see.
                directory.advertise = url
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
