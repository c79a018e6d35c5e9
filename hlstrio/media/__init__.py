"""Media files: probing them, the library of them, and generating synthetic ones."""

from ._demo import ClipKind, default_cache_dir, ensure_demo_library, generate_clip
from ._language import language_name, language_tag
from ._library import Library, MediaGone, MediaItem, VerifiedFiles, media_id_for
from ._poster import Poster, PosterCache, PosterUnavailable, make_poster
from ._probe import (
    AudioInfo,
    DynamicRange,
    FieldOrder,
    IndexSource,
    MediaInfo,
    ProbeError,
    SubtitleInfo,
    VideoInfo,
    audio_codec_string,
    probe,
)
from ._sidecar import SIDECAR_FORMATS, SIDECAR_MAX_BYTES, Sidecar
from ._subtitles import (
    Cue,
    SidecarError,
    SubtitleReadError,
    is_text_codec,
    load_sidecar,
    read_cues,
)

__all__ = [
    "SIDECAR_FORMATS",
    "SIDECAR_MAX_BYTES",
    "AudioInfo",
    "ClipKind",
    "Cue",
    "DynamicRange",
    "FieldOrder",
    "IndexSource",
    "Library",
    "MediaGone",
    "MediaInfo",
    "MediaItem",
    "Poster",
    "PosterCache",
    "PosterUnavailable",
    "ProbeError",
    "Sidecar",
    "SidecarError",
    "SubtitleInfo",
    "SubtitleReadError",
    "VerifiedFiles",
    "VideoInfo",
    "audio_codec_string",
    "default_cache_dir",
    "ensure_demo_library",
    "generate_clip",
    "is_text_codec",
    "language_name",
    "language_tag",
    "load_sidecar",
    "make_poster",
    "media_id_for",
    "probe",
    "read_cues",
]
