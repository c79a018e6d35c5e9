"""The JSON API under /api/v1: media library and session lifecycle."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import trio
from quart import Blueprint, Response, jsonify, request

from ..cluster import DirectoryUnavailable
from ..media import MediaGone
from ..media._watch import ScanFailed
from ..streaming import Capabilities, SessionParams
from ..streaming._decision import CONTAINERS, Container
from ._errors import DOMAIN_ERROR_TYPES, ApiError, api_error
from ._fast import cluster_error
from ._services import Services

_SESSION_FIELDS = {"media_id", "start", "mode", "audio", "subtitle", "capabilities"}
_CAPABILITY_FIELDS = {
    "video_codecs",
    "audio_codecs",
    "max_height",
    "max_bitrate",
    "max_audio_channels",
    "containers",
    "max_video_bit_depth",
    "hdr",
}


def api_blueprint(services: Services) -> Blueprint:
    api = Blueprint("api", __name__, url_prefix="/api/v1")

    @api.before_request
    async def authenticate() -> None:
        request.user = services.auth.user_for(request.headers.get("Authorization"))  # type: ignore[attr-defined]

    @api.get("/media")
    async def list_media() -> Response:
        return jsonify({"items": [item.to_json() for item in services.library.items()]})

    @api.get("/media/<media_id>")
    async def get_media(media_id: str) -> Response:
        item = services.library.get(media_id)
        if item is None:
            raise ApiError(404, "media_not_found", "no media with that id")
        return jsonify(item.to_json())

    @api.post("/library/rescan")
    async def rescan_library() -> Response:
        # Answers once a scan that started after this request is done, so the counts say what
        # is on disk now; concurrent rescans and the watcher share that scan.
        try:
            changes = await services.library.rescan()
        except ScanFailed as exc:
            raise ApiError(500, "scan_failed", str(exc)) from None
        return jsonify(changes.to_json())

    @api.post("/sessions")
    async def create_session() -> tuple[Response, int, dict[str, str]]:
        user: str = request.user  # type: ignore[attr-defined]
        body = await _json_body()
        params = parse_session_params(body)
        item = services.library.get(params.media_id)
        if item is None:
            raise ApiError(404, "media_not_found", "no media with that id")
        if params.start >= item.info.duration:
            raise ApiError(
                400, "bad_request", f"start must be below the duration ({item.info.duration:.3f} s)"
            )
        try:
            # Blocking (resolve, stat, sidecar parse): off the event loop. The verified paths
            # are what the session opens.
            files = await trio.to_thread.run_sync(services.library.verify_files, item)
            current = services.library.get(item.id)
            if current is None or current.version != item.version:
                # A rescan published (and ended this file's sessions) while we verified. (Any
                # rescan builds new items: only another version of the file counts.)
                raise MediaGone(f"{item.path}: changed while the session was being made")
            # One node: the session starts here. A cluster: the directory records it (caps over
            # every node) and the node its HLS URLs are routed to starts it.
            session, created = await services.manager.open(user, item, params, files)
        except DirectoryUnavailable as exc:
            raise cluster_error(exc) from None
        except DOMAIN_ERROR_TYPES as exc:
            raise api_error(exc) from None
        return (
            jsonify(session.to_json()),
            201 if created else 200,
            {"Location": f"/api/v1/sessions/{session.id}"},
        )

    @api.get("/sessions")
    async def list_sessions() -> Response:
        user: str = request.user  # type: ignore[attr-defined]
        try:
            sessions = await services.manager.owned_by(user)
        except DirectoryUnavailable as exc:
            raise cluster_error(exc) from None
        return jsonify({"items": [s.to_json() for s in sessions]})

    @api.get("/sessions/<session_id>")
    async def get_session(session_id: str) -> Response:
        user: str = request.user  # type: ignore[attr-defined]
        try:
            # Another user's session is indistinguishable from a missing one, on every node.
            session = await services.manager.find_owned(session_id, user)
        except DirectoryUnavailable as exc:
            raise cluster_error(exc) from None
        if session is None:
            raise _no_such_session()
        return jsonify(session.to_json())

    @api.delete("/sessions/<session_id>")
    async def delete_session(session_id: str) -> tuple[str, int]:
        user: str = request.user  # type: ignore[attr-defined]
        try:
            # Answers once the encoder is dead and the temp dir gone, on whichever node ran it.
            ended = await services.manager.end_owned(session_id, user)
        except DirectoryUnavailable as exc:
            raise cluster_error(exc) from None
        if not ended:
            raise _no_such_session()
        return "", 204

    return api


def _no_such_session() -> ApiError:
    return ApiError(404, "session_not_found", "no such session")


async def _json_body() -> dict[str, Any]:
    raw = await request.get_data(as_text=False)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "bad_json", "the body is not valid JSON") from None
    except RecursionError:
        # ~1000 nested brackets fit easily in 64 KiB and exhaust json's recursion limit.
        raise ApiError(400, "bad_json", "the body is nested too deeply") from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    return body


def _bad(message: str) -> ApiError:
    return ApiError(400, "bad_request", message)


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"{name} must be a finite number")
    try:
        number = float(value)
    except OverflowError:
        raise _bad(f"{name} is out of range") from None
    if not math.isfinite(number):
        raise _bad(f"{name} must be a finite number")
    return number


def _optional_positive_int(value: Any, name: str) -> int | None:
    if value is None:
        return None
    # JSON has one number type: 720.0 is the integer 720 (JavaScript sends it so).
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        raise _bad(f"{name} must be a positive integer or null")
    return value


def _codec_list(value: Any, name: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(v, str) and 0 < len(v) <= 64 for v in value
    ):
        raise _bad(f"{name} must be a list of codec names")
    if len(value) > 64:
        raise _bad(f"{name} has too many entries")
    return value


# A BCP-47-ish language tag: "fr", "pt-BR", "fre".
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}")
_SIDECAR_ID = re.compile(r"x[0-9a-f]{10}")


def _containers(value: Any) -> list[Container] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or not value
        or len(value) > len(CONTAINERS)
        or not all(isinstance(v, str) and v in CONTAINERS for v in value)
    ):
        raise _bad(f"containers must be a non-empty list of {', '.join(CONTAINERS)}")
    # The client's order is its preference.
    return [c for v in dict.fromkeys(value) for c in CONTAINERS if c == v]


def parse_session_params(body: dict[str, Any]) -> SessionParams:
    """Validate a POST /sessions body; any wrong type or unknown field is a 400."""
    unknown = set(body) - _SESSION_FIELDS
    if unknown:
        raise _bad(f"unknown field(s): {', '.join(sorted(unknown))[:200]}")
    media_id = body.get("media_id")
    if not isinstance(media_id, str) or not media_id:
        raise _bad("media_id (string) is required")
    start = _number(body.get("start", 0), "start")
    if start < 0:
        raise _bad("start must be >= 0")
    mode = body.get("mode", "auto")
    if mode not in ("auto", "remux", "transcode"):
        raise _bad("mode must be one of auto, remux, transcode")
    audio = body.get("audio")
    if isinstance(audio, str):
        if not _LANGUAGE.fullmatch(audio):
            raise _bad('audio must be a stream index, a language tag (e.g. "fr") or null')
    elif audio is not None and (
        isinstance(audio, bool) or not isinstance(audio, int) or not 0 <= audio < 2**16
    ):
        raise _bad('audio must be a stream index, a language tag (e.g. "fr") or null')
    subtitle = body.get("subtitle")
    if isinstance(subtitle, str):
        if not (_LANGUAGE.fullmatch(subtitle) or _SIDECAR_ID.fullmatch(subtitle)):
            raise _bad("subtitle must be a stream index, a sidecar id, a language tag or null")
    elif subtitle is not None and (
        isinstance(subtitle, bool) or not isinstance(subtitle, int) or not 0 <= subtitle < 2**16
    ):
        raise _bad("subtitle must be a stream index, a sidecar id, a language tag or null")
    caps_body = body.get("capabilities")
    if caps_body is None:
        caps_body = {}
    if not isinstance(caps_body, dict):
        raise _bad("capabilities must be an object")
    unknown = set(caps_body) - _CAPABILITY_FIELDS
    if unknown:
        raise _bad(f"unknown capability field(s): {', '.join(sorted(unknown))[:200]}")
    channels = _optional_positive_int(caps_body.get("max_audio_channels"), "max_audio_channels")
    if channels is not None and channels > 32:
        raise _bad("max_audio_channels must be at most 32")
    depth = _optional_positive_int(caps_body.get("max_video_bit_depth"), "max_video_bit_depth")
    if depth is not None and depth not in (8, 10, 12):
        raise _bad("max_video_bit_depth must be 8, 10 or 12")
    hdr = caps_body.get("hdr")
    if hdr is not None and not isinstance(hdr, bool):
        raise _bad("hdr must be true, false or null")
    capabilities = Capabilities.from_lists(
        _codec_list(caps_body.get("video_codecs"), "video_codecs"),
        _codec_list(caps_body.get("audio_codecs"), "audio_codecs"),
        _optional_positive_int(caps_body.get("max_height"), "max_height"),
        _optional_positive_int(caps_body.get("max_bitrate"), "max_bitrate"),
        channels,
        _containers(caps_body.get("containers")),
        depth,
        hdr,
    )
    return SessionParams(media_id, start, mode, audio, capabilities, subtitle)
