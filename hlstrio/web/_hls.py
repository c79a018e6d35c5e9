"""HLS routes: capability URLs keyed by session id; O(1) lookup, touch, serve.

Segments leave as one in-memory body (remux bytes, or a transcode file read in one thread
call) or, behind nginx, as an X-Accel-Redirect: never through send_file, whose 8 KiB
thread-hopping chunks are ~300x slower. In the server, well-formed segment GETs are answered by
the ASGI layer in `_fast.py` before they reach this blueprint; both go through `Segments`.
"""

from __future__ import annotations

from collections.abc import Callable

from quart import Blueprint, Response

from ..streaming import SegmentError, Session
from ._errors import ApiError
from ._fast import SEGMENT_CACHE_CONTROL, Segments
from ._services import Services

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
SEGMENT_TYPE = "video/mp2t"


def hls_blueprint(services: Services) -> Blueprint:
    hls = Blueprint("hls", __name__, url_prefix="/hls")
    segments = Segments(services, None)

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

    @hls.get("/<session_id>/seg-<index>.ts")
    async def segment(session_id: str, index: str) -> Response:
        session = session_for(session_id)
        # ASCII digits only: werkzeug's int converter takes any Unicode digit (an Arabic-Indic
        # 3 was segment 3), and a 4000-digit index came back echoed in the error message.
        if not (index.isascii() and index.isdigit() and len(index) <= 9):
            raise ApiError(404, "segment_not_found", "no such segment in the playlist")
        answer = await segments.answer(session.id, int(index))
        response = Response(answer.body, status=200, content_type=SEGMENT_TYPE)
        response.headers["Cache-Control"] = SEGMENT_CACHE_CONTROL
        if answer.accel is not None:
            response.headers["X-Accel-Redirect"] = answer.accel
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
