"""HLS routes: capability URLs keyed by session id; O(1) lookup, touch, serve.

Segments leave as one in-memory body (remux bytes, or a transcode file read in one thread
call): never through send_file, whose 8 KiB thread-hopping chunks are ~300x slower.
"""

from __future__ import annotations

from collections.abc import Callable

from quart import Blueprint, Response

from ..streaming import SegmentError, Session
from ._errors import ApiError
from ._services import Services

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
SEGMENT_TYPE = "video/mp2t"


def hls_blueprint(services: Services) -> Blueprint:
    hls = Blueprint("hls", __name__, url_prefix="/hls")

    def session_for(session_id: str) -> Session:
        session = services.manager.lookup(session_id)
        if session is None:
            raise ApiError(404, "session_not_found", "unknown or ended session")
        return session

    @hls.get("/<session_id>/master.m3u8")
    async def master(session_id: str) -> Response:
        return _playlist(_guard(session_for(session_id).master))

    @hls.get("/<session_id>/index.m3u8")
    async def media(session_id: str) -> Response:
        return _playlist(_guard(session_for(session_id).media))

    @hls.get("/<session_id>/seg-<int:index>.ts")
    async def segment(session_id: str, index: int) -> Response:
        session = session_for(session_id)
        try:
            data = await session.segment(index)
        except SegmentError as exc:
            headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
            raise ApiError(exc.status, exc.code, str(exc), headers) from None
        response = Response(data, status=200, content_type=SEGMENT_TYPE)
        # A capability URL: browsers may keep it, shared caches must not.
        response.headers["Cache-Control"] = "private, max-age=3600"
        return response

    return hls


def _guard(render: Callable[[], str]) -> str:
    try:
        return render()
    except SegmentError as exc:
        raise ApiError(exc.status, exc.code, str(exc)) from None


def _playlist(text: str) -> Response:
    response = Response(text, status=200, content_type=PLAYLIST_TYPE)
    response.headers["Cache-Control"] = "private, no-cache"
    return response
