"""Bearer tokens from `[users]`; with no users configured everyone is the single local user."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from ._errors import ApiError

LOCAL_USER = "local"


class Authenticator:
    def __init__(self, users: Mapping[str, str]) -> None:
        # Keyed by token digest: lookup is O(1) and never compares secrets byte by byte.
        self._by_digest = {_digest(token): user for user, token in users.items()}
        self.enabled = bool(users)

    def user_for(self, authorization: str | None) -> str:
        if not self.enabled:
            return LOCAL_USER
        if not authorization:
            raise ApiError(
                401,
                "unauthorized",
                "missing Authorization: Bearer <token>",
                {"WWW-Authenticate": 'Bearer realm="hlstrio"'},
            )
        scheme, _, token = authorization.partition(" ")
        user = self._by_digest.get(_digest(token.strip())) if scheme.lower() == "bearer" else None
        if user is None:
            raise ApiError(
                401,
                "unauthorized",
                "invalid token",
                {"WWW-Authenticate": 'Bearer realm="hlstrio", error="invalid_token"'},
            )
        return user


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
