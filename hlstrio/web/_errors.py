"""Every error leaves as `{"error": {"code", "message"}}` with a fitting HTTP status.

The streaming and media layers raise domain errors that know nothing of HTTP; `DOMAIN_ERRORS`
is the one table that says which status and JSON code each one is, and `api_error` turns any
of them into an `ApiError` (the web layer's own errors: auth, bad request bodies).
"""

from __future__ import annotations

from collections.abc import Mapping

from quart import Response, jsonify

from ..media import MediaGone
from ..streaming import (
    CapExceeded,
    CutFailed,
    DiskFull,
    EncoderGaveUp,
    MediaRemoved,
    SegmentMissing,
    SegmentNotFound,
    SegmentNotReady,
    SessionEnded,
    StreamingError,
    UnknownTrack,
    Unplayable,
)


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


# Domain error -> (HTTP status, JSON code). Subclasses before their bases: first match wins.
DOMAIN_ERRORS: Mapping[type[Exception], tuple[int, str]] = {
    SessionEnded: (404, "session_not_found"),
    SegmentNotFound: (404, "segment_not_found"),
    SegmentNotReady: (503, "segment_not_ready"),
    EncoderGaveUp: (502, "encoder_failed"),
    SegmentMissing: (502, "segment_missing"),
    CutFailed: (502, "remux_failed"),
    MediaRemoved: (410, "media_removed"),
    MediaGone: (404, "media_not_found"),
    UnknownTrack: (400, "unknown_track"),
    Unplayable: (415, "unplayable"),
    CapExceeded: (429, "too_many_sessions"),
    DiskFull: (507, "insufficient_storage"),
}
# Seconds a client should wait before retrying, where the error says "later".
_RETRY_AFTER: Mapping[type[Exception], int] = {CapExceeded: 30, DiskFull: 60}

DomainError = StreamingError | MediaGone | Unplayable | CapExceeded | DiskFull


def api_error(exc: Exception) -> ApiError:
    """The HTTP answer to a domain error (a programming error if it is not in the table)."""
    mapped = next((sc for kind, sc in DOMAIN_ERRORS.items() if isinstance(exc, kind)), None)
    if mapped is None:
        raise TypeError(f"no HTTP mapping for {type(exc).__name__}") from exc
    status, code = mapped
    if isinstance(exc, Unplayable):
        code = exc.code  # what exactly is unplayable: cannot_remux, unknown_audio, ...
    headers: dict[str, str] = {}
    if isinstance(exc, SegmentNotReady):
        headers["Retry-After"] = str(exc.retry_after_seconds)
    retry = next((s for kind, s in _RETRY_AFTER.items() if isinstance(exc, kind)), None)
    if retry is not None:
        headers["Retry-After"] = str(retry)
    return ApiError(status, code, str(exc), headers)


DOMAIN_ERROR_TYPES: tuple[type[Exception], ...] = tuple(DOMAIN_ERRORS)


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response
