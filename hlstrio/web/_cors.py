"""CORS, as thin ASGI around the whole app: players and UIs on other origins.

Two rules, because the two kinds of URL carry their credential differently:
- HLS URLs (/hls/...) are capability URLs: the session id in the path is the credential, there
  are no cookies, so any origin may read them (`Access-Control-Allow-Origin: *`). A Chromecast
  receiver, a host app's UI or a Shaka/video.js page elsewhere then plays them.
- The API takes a bearer token, so only the origins configured in `cors_origins` may call it
  from a browser (the exact origin echoed, `Vary: Origin`); `*` in the list means any origin.
  Preflights (OPTIONS with Access-Control-Request-Method) are answered here for allowed origins
  and refused with a JSON 403 for others, so a misconfigured UI sees why.
Every answer gets the headers, errors included, so a page can read a JSON error body.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ._fast import Message, Receive, Scope, Send

_API_METHODS = b"GET, POST, DELETE, OPTIONS"
_API_HEADERS = b"Authorization, Content-Type"
_HLS_METHODS = b"GET, HEAD, OPTIONS"
_MAX_AGE = b"86400"  # preflight answers may be cached a day
_HLS_EXPOSE = b"Content-Length, Content-Type"


class Cors:
    def __init__(self, app: Any, origins: Iterable[str]) -> None:
        self.app = app
        allowed = set(origins)
        self._any_origin = "*" in allowed
        self._origins = {o.rstrip("/").encode("latin-1") for o in allowed if o != "*"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        origin = _header(scope, b"origin")
        hls = path.startswith("/hls/")
        if scope["method"] == "OPTIONS" and _header(scope, b"access-control-request-method"):
            await self._preflight(send, hls, origin)
            return
        if hls:
            extra = [(b"access-control-allow-origin", b"*"),
                     (b"access-control-expose-headers", _HLS_EXPOSE)]  # fmt: skip
        elif origin is not None and path.startswith("/api/") and self._allowed(origin):
            extra = [(b"access-control-allow-origin", origin), (b"vary", b"Origin")]
        else:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_cors)

    def _allowed(self, origin: bytes) -> bool:
        return self._any_origin or origin in self._origins

    async def _preflight(self, send: Send, hls: bool, origin: bytes | None) -> None:
        if hls:
            headers = [
                (b"access-control-allow-origin", b"*"),
                (b"access-control-allow-methods", _HLS_METHODS),
                # Players send Range; nothing here needs more than the safelisted headers.
                (b"access-control-allow-headers", b"Range"),
            ]
        elif origin is not None and self._allowed(origin):
            headers = [
                (b"access-control-allow-origin", origin),
                (b"access-control-allow-methods", _API_METHODS),
                (b"access-control-allow-headers", _API_HEADERS),
                (b"vary", b"Origin"),
            ]
        else:
            body = json.dumps(
                {
                    "error": {
                        "code": "cors_origin_not_allowed",
                        "message": "this origin is not in cors_origins",
                    }
                }
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 403,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", b"%d" % len(body)),
                        (b"vary", b"Origin"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        headers += [(b"access-control-max-age", _MAX_AGE), (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None
