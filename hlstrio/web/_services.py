"""What the routes need, passed explicitly so each app (and each test) gets its own."""

from __future__ import annotations

from dataclasses import dataclass

from .._config import Settings
from ..media import Library
from ..streaming import SessionManager
from ._auth import Authenticator


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    library: Library
    manager: SessionManager
    auth: Authenticator
