"""Check live HTTP responses against the checked-in OpenAPI spec (hlstrio/web/openapi.json)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import httpx
import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from hlstrio.web._openapi import load_spec

SPEC_URI = "urn:hlstrio:openapi"


@dataclass(frozen=True)
class Operation:
    template: str  # "/api/v1/sessions/{session_id}"
    method: str  # lower case
    spec: dict[str, Any]


@cache
def spec() -> dict[str, Any]:
    return load_spec()


@cache
def _registry() -> Registry:
    # OpenAPI 3.1 schemas are JSON Schema 2020-12; "#/components/..." refs resolve in the spec.
    return Registry().with_resource(SPEC_URI, Resource(contents=spec(), specification=DRAFT202012))


def template_regex(template: str) -> re.Pattern[str]:
    """ "/hls/{session_id}/seg-{index}.ts" -> a regex over request paths (asset names may nest)."""
    parts = re.split(r"(\{[^}]+\})", template)
    out = []
    for part in parts:
        if part == "{name}":
            out.append(r".+")
        elif part.startswith("{"):
            out.append(r"[^/]+")
        else:
            out.append(re.escape(part))
    return re.compile("^" + "".join(out) + "$")


def operation(method: str, path: str) -> Operation:
    """The spec operation a request path and method fall under (literal paths win)."""
    matches = [
        Operation(template, method.lower(), item[method.lower()])
        for template, item in spec()["paths"].items()
        if method.lower() in item and template_regex(template).match(path)
    ]
    assert matches, f"{method} {path} matches no operation in openapi.json"
    # The most literal template wins ("/api/v1/media/{id}/poster.jpg" over "{name}" patterns).
    return max(matches, key=lambda op: len(re.sub(r"\{[^}]+\}", "", op.template)))


def validate(schema: dict[str, Any], instance: Any) -> None:
    validator = jsonschema.Draft202012Validator(
        schema, registry=_registry(), format_checker=jsonschema.FormatChecker()
    )
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def schema_ref(name: str) -> dict[str, Any]:
    return {"$ref": f"{SPEC_URI}#/components/schemas/{name}"}


def _absolute_refs(schema: Any) -> Any:
    """Point the spec's local refs at the registry resource, so a sub-schema validates alone."""
    if isinstance(schema, dict):
        return {
            k: (SPEC_URI + v if k == "$ref" and v.startswith("#") else _absolute_refs(v))
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_absolute_refs(v) for v in schema]
    return schema


def check_response(response: httpx.Response, path: str | None = None) -> Operation:
    """Assert the response is one the spec documents for its operation: status, content type,
    headers, and (for JSON) the body against the schema. Returns the operation."""
    method = response.request.method
    op = operation(method, path or response.request.url.path)
    status = str(response.status_code)
    documented = op.spec["responses"]
    assert status in documented, (
        f"{method} {op.template}: status {status} not in the spec ({sorted(documented)}): "
        f"{response.text[:300]}"
    )
    doc = documented[status]
    for header in doc.get("headers", {}):
        assert header.lower() in response.headers, f"{op.template} {status}: no {header} header"
    content = doc.get("content")
    if not content:
        assert response.content == b"" or method == "HEAD", f"{op.template} {status}: has a body"
        return op
    media_type = response.headers.get("content-type", "").split(";")[0].strip()
    if "*/*" not in content:
        assert media_type in content, f"{op.template} {status}: {media_type} not in {list(content)}"
    if media_type == "application/json":
        validate(_absolute_refs(content[media_type]["schema"]), json.loads(response.content))
    return op
