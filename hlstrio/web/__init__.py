"""HTTP edge: the QuartTrio app, JSON API, HLS routes and auth."""

from ._app import ShieldFinalSend, create_app
from ._auth import LOCAL_USER, Authenticator
from ._services import Services

__all__ = ["LOCAL_USER", "Authenticator", "Services", "ShieldFinalSend", "create_app"]
