"""Sessions and the segments they serve: registry, plan, timeline, playlists, cuts, encoder."""

from ._context import StreamingContext
from ._decision import (
    AudioOutput,
    Capabilities,
    Plan,
    UnknownTrack,
    Unplayable,
    VideoOutput,
    decide,
    normalize_codec,
)
from ._errors import (
    CutFailed,
    EncoderGaveUp,
    MediaRemoved,
    SegmentMissing,
    SegmentNotFound,
    SegmentNotReady,
    SessionEnded,
    StreamingError,
)
from ._lifecycle import SessionState
from ._manager import DiskFull, SessionManager, new_session_id
from ._playlist import (
    Media,
    RenditionPath,
    Variant,
    master_playlist,
    media_playlist,
    parse_rendition_path,
)
from ._registry import CapExceeded, SessionRegistry
from ._session import Session, SessionParams
from ._timeline import Segment, Timeline, fixed_grid, keyframe_timeline

__all__ = [
    "AudioOutput",
    "CapExceeded",
    "Capabilities",
    "CutFailed",
    "DiskFull",
    "EncoderGaveUp",
    "Media",
    "MediaRemoved",
    "Plan",
    "RenditionPath",
    "Segment",
    "SegmentMissing",
    "SegmentNotFound",
    "SegmentNotReady",
    "Session",
    "SessionEnded",
    "SessionManager",
    "SessionParams",
    "SessionRegistry",
    "SessionState",
    "StreamingContext",
    "StreamingError",
    "Timeline",
    "UnknownTrack",
    "Unplayable",
    "Variant",
    "VideoOutput",
    "decide",
    "fixed_grid",
    "keyframe_timeline",
    "master_playlist",
    "media_playlist",
    "new_session_id",
    "normalize_codec",
    "parse_rendition_path",
]
