"""Sessions and the segments they serve: registry, timeline, playlists, remux and encoder."""

from ._decision import Capabilities, Plan, Unplayable, decide, normalize_codec
from ._manager import DiskFull, SessionManager, new_session_id
from ._playlist import Variant, master_playlist, media_playlist
from ._registry import CapExceeded, SessionRegistry
from ._session import SegmentError, Session, SessionParams
from ._timeline import Segment, Timeline, fixed_grid, keyframe_timeline

__all__ = [
    "CapExceeded",
    "Capabilities",
    "DiskFull",
    "Plan",
    "Segment",
    "SegmentError",
    "Session",
    "SessionManager",
    "SessionParams",
    "SessionRegistry",
    "Timeline",
    "Unplayable",
    "Variant",
    "decide",
    "fixed_grid",
    "keyframe_timeline",
    "master_playlist",
    "media_playlist",
    "new_session_id",
    "normalize_codec",
]
