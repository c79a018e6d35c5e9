"""The JSON API under /api/v1: media library and session lifecycle."""

from __future__ import annotations

import json
import math
from typing import Any

from quart import Blueprint, Response, jsonify, request

from ..media import MediaGone
from ..streaming import Capabilities, CapExceeded, DiskFull, SessionParams, Unplayable
from ._errors import ApiError
from ._services import Services

_SESSION_FIELDS = {"media_id", "start", "mode", "audio", "capabilities"}
_CAPABILITY_FIELDS = {"video_codecs", "audio_codecs", "max_height", "max_bitrate"}


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
            services.library.verify(item)
            session, created = await services.manager.create(user, item, params)
        except MediaGone as exc:
            raise ApiError(404, "media_not_found", str(exc)) from None
        except Unplayable as exc:
            raise ApiError(415, exc.code, str(exc)) from None
        except CapExceeded as exc:
            raise ApiError(429, "too_many_sessions", str(exc), {"Retry-After": "30"}) from None
        except DiskFull as exc:
            raise ApiError(507, "insufficient_storage", str(exc), {"Retry-After": "60"}) from None
        return (
            jsonify(session.to_json()),
            201 if created else 200,
            {"Location": f"/api/v1/sessions/{session.id}"},
        )

    @api.get("/sessions")
    async def list_sessions() -> Response:
        user: str = request.user  # type: ignore[attr-defined]
        sessions = sorted(services.manager.registry.owned_by(user), key=lambda s: s.created_at)
        return jsonify({"items": [s.to_json() for s in sessions]})

    @api.get("/sessions/<session_id>")
    async def get_session(session_id: str) -> Response:
        return jsonify(_owned(services, session_id).to_json())

    @api.delete("/sessions/<session_id>")
    async def delete_session(session_id: str) -> tuple[str, int]:
        await services.manager.end(_owned(services, session_id))
        return "", 204

    return api


def _owned(services: Services, session_id: str) -> Any:
    user: str = request.user  # type: ignore[attr-defined]
    session = services.manager.registry.lookup_owned(session_id, user)
    if session is None:
        raise ApiError(404, "session_not_found", "no such session")
    return session


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
    if audio is not None and (
        isinstance(audio, bool) or not isinstance(audio, int) or not 0 <= audio < 2**16
    ):
        raise _bad("audio must be a stream index (integer) or null")
    caps_body = body.get("capabilities")
    if caps_body is None:
        caps_body = {}
    if not isinstance(caps_body, dict):
        raise _bad("capabilities must be an object")
    unknown = set(caps_body) - _CAPABILITY_FIELDS
    if unknown:
        raise _bad(f"unknown capability field(s): {', '.join(sorted(unknown))[:200]}")
    capabilities = Capabilities.from_lists(
        _codec_list(caps_body.get("video_codecs"), "video_codecs"),
        _codec_list(caps_body.get("audio_codecs"), "audio_codecs"),
        _optional_positive_int(caps_body.get("max_height"), "max_height"),
        _optional_positive_int(caps_body.get("max_bitrate"), "max_bitrate"),
    )
    return SessionParams(media_id, start, mode, audio, capabilities)
