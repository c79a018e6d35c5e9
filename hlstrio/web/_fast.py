"""The hot path as thin ASGI in front of Quart: segment GETs, /metrics, request timing.

Why segments skip Quart: on 2 cores, a Quart-Trio route costs ~0.2 ms of CPU per request more
than plain ASGI on the same Hypercorn (measured: 1,813 vs 2,579 small responses/s). For a 2 MB
body that is a few percent; behind nginx (`accel_redirect`), where hlstrio only answers a
header, it is a third of hlstrio's share of every segment. The contract stays the same: the
Quart route in `_hls.py` answers through the same `Segments.answer` (and is what the OpenAPI
test sees); only GET/HEAD of a well-formed segment path (`/hls/{id}/seg-{n}.ts`,
`/hls/{id}/{rendition}/seg-{n}.ts`, parsed by `streaming.parse_rendition_path`) is taken here,
everything else (odd indices, other methods) falls through to Quart and its JSON errors.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from prometheus_client import CONTENT_TYPE_LATEST

from .._metrics import Metrics
from ..cluster import RETRY_AFTER_SECONDS, DirectoryUnavailable, NodeBusy
from ..streaming import Session, SessionManager, StreamingError, parse_rendition_path
from ._errors import DOMAIN_ERROR_TYPES, ApiError, api_error
from ._services import Services

log = logging.getLogger("hlstrio.web")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Segment content types by URI extension.
SEGMENT_TYPES = {"ts": "video/mp2t", "m4s": "video/mp4", "vtt": "text/vtt"}
# A capability URL: browsers may keep it, shared caches must not.
SEGMENT_CACHE_CONTROL = "private, max-age=3600"
_SEGMENT_HEADERS = {
    extension: [
        (b"content-type", content_type.encode()),
        (b"cache-control", SEGMENT_CACHE_CONTROL.encode()),
    ]
    for extension, content_type in SEGMENT_TYPES.items()
}
_METRICS_TYPE = CONTENT_TYPE_LATEST.encode()


def cluster_error(exc: DirectoryUnavailable | NodeBusy) -> ApiError:
    """503s of cluster mode: the session directory (Redis) cannot be reached, or this node
    cannot take another encoder over. Both pass: retry."""
    retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if isinstance(exc, NodeBusy):
        return ApiError(503, "node_busy", str(exc), retry)
    return ApiError(
        503,
        "directory_unavailable",
        "the session directory is unavailable: sessions this node holds play on, new ones "
        "cannot be made or taken over until it is back",
        retry,
    )


async def find_session(
    manager: SessionManager, session_id: str, resume_at: int | None = None
) -> Session:
    """The session an HLS request names: this node's (an O(1) lookup, nothing else), else, in
    a cluster, adopted from the directory (`SessionManager.session_for`). Raises ApiError."""
    try:
        session = await manager.session_for(session_id, resume_at=resume_at)
    except (DirectoryUnavailable, NodeBusy) as exc:
        raise cluster_error(exc) from None
    except DOMAIN_ERROR_TYPES as exc:
        raise api_error(exc) from None
    if session is None:
        raise ApiError(404, "session_not_found", "unknown or ended session")
    return session


@dataclass(frozen=True, slots=True)
class SegmentAnswer:
    body: bytes  # empty when nginx sends the file
    accel: str | None  # X-Accel-Redirect URI, or None when hlstrio sends the body itself
    extension: str = "ts"


class Segments:
    """Answer a segment request: look up, touch, wait for readiness, then bytes or accel URI.

    Raises ApiError (JSON error) for every failure; callers turn it into a response.
    """

    def __init__(self, services: Services, metrics: Metrics | None) -> None:
        settings = services.settings
        self._manager = services.manager
        self._metrics = metrics
        self._accel = settings.accel_redirect
        self._prefix = settings.accel_prefix
        # The same parent the sessions make their dirs in; nginx's internal location aliases it.
        self._temp_root = settings.temp_dir or Path(tempfile.gettempdir())

    async def answer(
        self, session_id: str, rendition: str, index: int, extension: str = "ts"
    ) -> SegmentAnswer:
        session = await find_session(self._manager, session_id, index)
        if extension != session.segment_extension(rendition):
            raise ApiError(404, "segment_not_found", "no such segment in the playlist")
        started = time.perf_counter()
        try:
            path = await session.segment_path(rendition, index) if self._accel else None
            body = b"" if path is not None else await session.segment(rendition, index)
        except StreamingError as exc:
            raise api_error(exc) from None
        metrics = self._metrics
        if path is None:
            if metrics is not None:
                metrics.bytes_direct.inc(len(body))
                self._observe(metrics, session, started)
            return SegmentAnswer(body, None, extension)
        try:
            relative = path.relative_to(self._temp_root)
        except ValueError:
            log.error("segment %s is outside temp_dir %s: cannot accel", path, self._temp_root)
            raise ApiError(500, "internal_error", "internal server error") from None
        if metrics is not None:
            # One stat of a file that was just written (inode cached): cheap, and the only way
            # to count the bytes nginx will send for us.
            with contextlib.suppress(OSError):
                metrics.bytes_accel.inc(path.stat().st_size)
            self._observe(metrics, session, started)
        return SegmentAnswer(b"", self._prefix + quote(relative.as_posix()), extension)

    @staticmethod
    def _observe(metrics: Metrics, session: Session, started: float) -> None:
        now = time.perf_counter()
        metrics.segment_served(
            session, session.plan.mode, now - started, session.created_at, time.time()
        )


Headers = list[tuple[bytes, bytes]]


def segment_headers(answer: SegmentAnswer) -> Headers:
    headers = [*_SEGMENT_HEADERS[answer.extension], (b"content-length", b"%d" % len(answer.body))]
    if answer.accel is not None:
        headers.append((b"x-accel-redirect", answer.accel.encode()))
    return headers


def error_answer(exc: ApiError) -> tuple[int, Headers, bytes]:
    """The same `{"error": {code, message}}` answer Quart's handlers give."""
    body = json.dumps(
        {"error": {"code": exc.code, "message": exc.message}}, separators=(",", ":")
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"cache-control", b"no-store"),
        (b"content-length", b"%d" % len(body)),
    ]
    for name, value in exc.headers.items():
        headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    return exc.status, headers, body


def parse_segment_path(path: str) -> tuple[str, str, int, str] | None:
    """A segment request path -> (session id, rendition, index, extension); else None (Quart)."""
    parsed = parse_rendition_path(path)
    if parsed is None or parsed.kind != "segment":
        return None
    return parsed.session_id, parsed.rendition, parsed.index, parsed.extension


def _route(path: str) -> str:
    if path.startswith("/hls/"):
        return "playlist" if path.endswith(".m3u8") else "segment"
    if path.startswith("/api/"):
        return "api"
    return "other"


class FastPath:
    """ASGI layer: segments and /metrics answered here, the rest passed to the Quart app."""

    def __init__(self, app: Any, services: Services, metrics: Metrics | None) -> None:
        self.app = app
        self._services = services
        self._metrics = metrics
        self._segments = Segments(services, metrics)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        metrics = self._metrics
        if scope["method"] in ("GET", "HEAD"):
            target = parse_segment_path(path)
            if target is not None:
                await self._segment(send, *target)
                return
            if path == "/metrics" and metrics is not None:
                await self._scrape(scope, send, metrics)
                return
        elif path == "/metrics" and metrics is not None:
            await self._error(
                send,
                ApiError(405, "method_not_allowed", "use GET or HEAD", {"Allow": "GET, HEAD"}),
            )
            return
        if metrics is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            metrics.route_seconds[_route(path)].observe(time.perf_counter() - started)

    async def _segment(
        self, send: Send, session_id: str, rendition: str, index: int, extension: str
    ) -> None:
        started = time.perf_counter()
        try:
            try:
                answer = await self._segments.answer(session_id, rendition, index, extension)
            except ApiError as exc:
                await self._error(send, exc)
                return
            except Exception:
                log.exception("unhandled error serving segment %d", index)
                await self._error(send, ApiError(500, "internal_error", "internal server error"))
                return
            headers = segment_headers(answer)
            # HEAD: Hypercorn drops the body itself and keeps the Content-Length.
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": answer.body})
        finally:
            if self._metrics is not None:
                self._metrics.route_seconds["segment"].observe(time.perf_counter() - started)

    async def _scrape(self, scope: Scope, send: Send, metrics: Metrics) -> None:
        started = time.perf_counter()
        try:
            authorization = None
            for name, value in scope["headers"]:
                if name == b"authorization":
                    authorization = value.decode("latin-1")
            try:
                # With [users], /metrics needs a token like /api/ (it shows usage, not ids).
                self._services.auth.user_for(authorization)
            except ApiError as exc:
                await self._error(send, exc)
                return
            body = metrics.render()
            headers = [
                (b"content-type", _METRICS_TYPE),
                (b"cache-control", b"no-store"),
                (b"content-length", b"%d" % len(body)),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        finally:
            metrics.route_seconds["metrics"].observe(time.perf_counter() - started)

    async def _error(self, send: Send, exc: ApiError) -> None:
        if self._metrics is not None:
            self._metrics.error(exc.status, exc.code)
        status, headers, body = error_answer(exc)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
