"""HLS routes: capability URLs keyed by session id; O(1) lookup, touch, serve.

Segments leave as one in-memory body (an in-process cut, or a transcode file read in one
thread call) or, behind nginx, as an X-Accel-Redirect: never through send_file, whose 8 KiB
thread-hopping chunks are ~300x slower. In the server, well-formed segment GETs are answered by
the ASGI layer in `_fast.py` before they reach this blueprint; both go through `Segments`.

URI layout (names made in `streaming._playlist`): the video rendition at the session root,
every other rendition under `/{rendition}/`.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from functools import lru_cache

from quart import Blueprint, Response, request

from ..streaming import Session, StreamingError
from ..streaming._playlist import VIDEO_RENDITION, parse_segment_name
from ..streaming._trickplay import parse_iframe_name, parse_thumbnail_name
from ._errors import ApiError, api_error
from ._fast import SEGMENT_CACHE_CONTROL, SEGMENT_TYPES, Segments, find_session
from ._services import Services

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"


def hls_blueprint(services: Services) -> Blueprint:
    hls = Blueprint("hls", __name__, url_prefix="/hls")
    segments = Segments(services, None)

    async def session_for(session_id: str) -> Session:
        # This node's session, or (cluster) adopted from the directory: one manager call.
        return await find_session(services.manager, session_id)

    @hls.get("/<session_id>/master.m3u8")
    async def master(session_id: str) -> Response:
        return _playlist(_guard((await session_for(session_id)).master))

    @hls.get("/<session_id>/index.m3u8")
    async def media(session_id: str) -> Response:
        session = await session_for(session_id)
        return _playlist(_guard(lambda: session.media(VIDEO_RENDITION)))

    @hls.get("/<session_id>/<rendition>/index.m3u8")
    async def rendition_media(session_id: str, rendition: str) -> Response:
        session = await session_for(session_id)
        return _playlist(_guard(lambda: session.media(rendition)))

    async def segment(session_id: str, rendition: str, index: str, extension: str) -> Response:
        session = await session_for(session_id)
        parsed = parse_segment_name(f"seg-{index}.{extension}")
        if parsed is None:
            raise ApiError(404, "segment_not_found", "no such segment in the playlist")
        answer = await segments.answer(session.id, rendition, parsed[0], extension)
        response = Response(answer.body, status=200, content_type=SEGMENT_TYPES[extension])
        response.headers["Cache-Control"] = SEGMENT_CACHE_CONTROL
        if answer.accel is not None:
            response.headers["X-Accel-Redirect"] = answer.accel
        return response

    @hls.get("/<session_id>/seg-<index>.ts")
    async def video_segment(session_id: str, index: str) -> Response:
        return await segment(session_id, VIDEO_RENDITION, index, "ts")

    @hls.get("/<session_id>/<rendition>/seg-<index>.ts")
    async def rendition_segment(session_id: str, rendition: str, index: str) -> Response:
        return await segment(session_id, rendition, index, "ts")

    @hls.get("/<session_id>/<rendition>/seg-<index>.vtt")
    async def subtitle_segment(session_id: str, rendition: str, index: str) -> Response:
        return await segment(session_id, rendition, index, "vtt")

    @hls.get("/<session_id>/seg-<index>.m4s")
    async def video_fragment(session_id: str, index: str) -> Response:
        return await segment(session_id, VIDEO_RENDITION, index, "m4s")

    @hls.get("/<session_id>/<rendition>/seg-<index>.m4s")
    async def rendition_fragment(session_id: str, rendition: str, index: str) -> Response:
        return await segment(session_id, rendition, index, "m4s")

    async def init(session_id: str, rendition: str) -> Response:
        session = await session_for(session_id)
        try:
            body = await session.init_segment(rendition)
        except StreamingError as exc:
            raise api_error(exc) from None
        return _resource(body, SEGMENT_TYPES["m4s"])

    # Trick play (streaming/_trickplay.py): I-frames for players' fast-forward and scrubbing
    # (Apple 6.1), scrub thumbnails as a WebVTT thumbnails track and its JPEGs.
    @hls.get("/<session_id>/iframes.m3u8")
    async def iframes(session_id: str) -> Response:
        session = await session_for(session_id)
        return _playlist(_guard(session.iframe_playlist))

    async def iframe(session_id: str, index: str, extension: str) -> Response:
        session = await session_for(session_id)
        parsed = parse_iframe_name(f"iframe-{index}.{extension}")
        if parsed is None:
            raise ApiError(404, "segment_not_found", "no such I-frame")
        try:
            body = await session.iframe(parsed[0], extension)
        except StreamingError as exc:
            raise api_error(exc) from None
        return _resource(body, SEGMENT_TYPES[extension])

    @hls.get("/<session_id>/iframe-<index>.ts")
    async def iframe_ts(session_id: str, index: str) -> Response:
        return await iframe(session_id, index, "ts")

    @hls.get("/<session_id>/iframe-<index>.m4s")
    async def iframe_m4s(session_id: str, index: str) -> Response:
        return await iframe(session_id, index, "m4s")

    @hls.get("/<session_id>/thumbs.vtt")
    async def thumbnails(session_id: str) -> Response:
        session = await session_for(session_id)
        response = Response(_guard(session.thumbnails_track), status=200, content_type="text/vtt")
        response.headers["Cache-Control"] = "private, max-age=3600"
        return response

    @hls.get("/<session_id>/thumb-<index>.jpg")
    async def thumbnail(session_id: str, index: str) -> Response:
        session = await session_for(session_id)
        number = parse_thumbnail_name(f"thumb-{index}.jpg")
        if number is None:
            raise ApiError(404, "segment_not_found", "no such thumbnail")
        try:
            body = await session.thumbnail(number)
        except StreamingError as exc:
            raise api_error(exc) from None
        return _resource(body, "image/jpeg")

    @hls.get("/<session_id>/init.mp4")
    async def video_init(session_id: str) -> Response:
        return await init(session_id, VIDEO_RENDITION)

    @hls.get("/<session_id>/<rendition>/init.mp4")
    async def rendition_init(session_id: str, rendition: str) -> Response:
        return await init(session_id, rendition)

    return hls


def _resource(body: bytes, content_type: str) -> Response:
    response = Response(body, status=200, content_type=content_type)
    response.headers["Cache-Control"] = SEGMENT_CACHE_CONTROL
    return response


def _guard(render: Callable[[], str]) -> str:
    try:
        return render()
    except StreamingError as exc:
        raise api_error(exc) from None


def _playlist(text: str) -> Response:
    """A playlist, gzip-compressed when the client accepts it (Apple HLS authoring 10.1: a
    2 h VOD media playlist is ~1,200 lines, ~60 KB, ~8 KB compressed); segments never are."""
    if accepts_gzip(request.headers.get("Accept-Encoding")):
        response = Response(_gzipped(text), status=200, content_type=PLAYLIST_TYPE)
        response.headers["Content-Encoding"] = "gzip"
    else:
        response = Response(text, status=200, content_type=PLAYLIST_TYPE)
    response.headers["Cache-Control"] = "private, no-cache"
    response.headers["Vary"] = "Accept-Encoding"
    return response


@lru_cache(maxsize=512)
def _gzipped(text: str) -> bytes:
    # A session's playlists never change: compress each once (mtime=0: same bytes every time).
    return gzip.compress(text.encode(), compresslevel=6, mtime=0)


def accepts_gzip(accept_encoding: str | None) -> bool:
    """RFC 9110 12.5.3: gzip (or *) listed with a q-value above 0."""
    if not accept_encoding:
        return False
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() not in ("gzip", "x-gzip", "*"):
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        return q > 0
    return False
