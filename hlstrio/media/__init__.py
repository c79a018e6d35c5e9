"""Media files: probing them, the library of them, and generating synthetic ones."""

from ._demo import ClipKind, default_cache_dir, ensure_demo_library, generate_clip
from ._library import Library, MediaGone, MediaItem, media_id_for
from ._probe import AudioInfo, MediaInfo, ProbeError, VideoInfo, probe

__all__ = [
    "AudioInfo",
    "ClipKind",
    "Library",
    "MediaGone",
    "MediaInfo",
    "MediaItem",
    "ProbeError",
    "VideoInfo",
    "default_cache_dir",
    "ensure_demo_library",
    "generate_clip",
    "media_id_for",
    "probe",
]
