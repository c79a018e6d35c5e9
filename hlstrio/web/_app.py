"""The QuartTrio app factory. Apps are single-use: build one per server (and per test)."""

from __future__ import annotations

import logging
from typing import Any

import trio
from quart import Response, jsonify
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from .._metrics import Metrics
from ._api import api_blueprint
from ._errors import ApiError, error_response
from ._hls import hls_blueprint
from ._openapi import openapi_blueprint
from ._services import Services
from ._ui import ui_blueprint

log = logging.getLogger("hlstrio.web")

MAX_BODY_BYTES = 64 * 1024


def create_app(services: Services, metrics: Metrics | None = None) -> QuartTrio:
    # No implicit /static route: the UI serves its own assets, and every route is in openapi.json.
    app = QuartTrio("hlstrio", static_folder=None)
    # "/api/v1/media//x" is a 404, not an HTML 308 to a URL built from the Host header.
    app.url_map.merge_slashes = False
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["JSON_SORT_KEYS"] = False
    app.register_blueprint(api_blueprint(services))
    app.register_blueprint(hls_blueprint(services))
    app.register_blueprint(openapi_blueprint())
    app.register_blueprint(ui_blueprint(services))

    @app.get("/healthz")
    async def healthz() -> Response:
        return jsonify({"status": "ok"})

    def count(status: int, code: str) -> None:
        # Errors by JSON code for /metrics (the segment fast path counts its own).
        if metrics is not None:
            metrics.error(status, code)

    @app.errorhandler(ApiError)
    async def api_error(exc: ApiError) -> Response:
        count(exc.status, exc.code)
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(
            status, (exc.name or "error").lower().replace(" ", "_")
        )
        message = "no such resource" if status == 404 else (exc.description or exc.name)
        count(status, code)
        headers = None
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            # RFC 9110 15.5.6: a 405 names the methods the resource supports.
            headers = {"Allow": ", ".join(sorted(exc.valid_methods))}
        return error_response(status, code, message, headers)

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        count(500, "internal_error")
        return error_response(500, "internal_error", "internal server error")

    return app


class ShieldFinalSend:
    """ASGI wrapper: shield the last body send from cancellation.

    With hypercorn's trio worker, a client disconnect (or keep-alive expiry / shutdown) makes
    hypercorn raise inside the final `http.response.body` send, and quart-trio then cancels the
    request nursery mid-send, so the send never returns and graceful shutdown hangs.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return

        async def shielded_send(message: dict[str, Any]) -> None:
            if message.get("type") == "http.response.body" and not message.get("more_body"):
                with trio.CancelScope(shield=True):
                    await send(message)
            else:
                await send(message)

        await self.app(scope, receive, shielded_send)
