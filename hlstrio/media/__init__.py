"""Media files: probing them, the library of them, and generating synthetic ones."""

from ._demo import ClipKind, default_cache_dir, ensure_demo_library, generate_clip
from ._library import Library, MediaGone, MediaItem, media_id_for
from ._poster import Poster, PosterCache, PosterUnavailable, make_poster
from ._probe import AudioInfo, MediaInfo, ProbeError, VideoInfo, probe

__all__ = [
    "AudioInfo",
    "ClipKind",
    "Library",
    "MediaGone",
    "MediaInfo",
    "MediaItem",
    "Poster",
    "PosterCache",
    "PosterUnavailable",
    "ProbeError",
    "VideoInfo",
    "default_cache_dir",
    "ensure_demo_library",
    "generate_clip",
    "make_poster",
    "media_id_for",
    "probe",
]
