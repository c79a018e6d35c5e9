"""GET /openapi.json: the checked-in OpenAPI 3.1 description of the HTTP API.

The spec is a file, not generated from the routes: quart-schema (the maintained generator for
Quart) needs pydantic or msgspec models and its own validation errors, and the API validates
by hand to give exact codes. tests/web/test_openapi.py keeps the file true instead: every route
is described, every description is a route, and live responses validate against its schemas.
"""

from __future__ import annotations

import json
from importlib import resources

from quart import Blueprint, Response


def load_spec() -> dict[str, object]:
    """The spec as shipped in the package (package data, so a wheel install serves it too)."""
    text = resources.files(__package__).joinpath("openapi.json").read_text(encoding="utf-8")
    spec: dict[str, object] = json.loads(text)
    return spec


def openapi_blueprint() -> Blueprint:
    openapi = Blueprint("openapi", __name__)
    # Read once at start-up; compact and served from memory.
    body = json.dumps(load_spec(), separators=(",", ":"), ensure_ascii=False).encode()

    @openapi.get("/openapi.json")
    async def spec() -> Response:
        response = Response(body, status=200, content_type="application/json")
        response.headers["Cache-Control"] = "no-cache"
        return response

    return openapi
