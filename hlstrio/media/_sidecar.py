"""Subtitle files next to a video: which ones belong to it, and what their names say.

`Name.mkv` owns `Name.srt`, `Name.en.srt`, `Name.fr.forced.srt`, `Name.en.sdh.srt`,
`Name.eng.default.srt` and the same with .vtt, .ass and .ssa (the naming Plex, Jellyfin and
Kodi read). The file name is all there is to go on; the contents are read only when a
subtitle is served (by the subtitle parser, not here), so a scan costs a directory listing
and a stat per sidecar.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ._language import language_from_word

# Extension (lower case) -> format, named like ffmpeg's subtitle codecs (SubtitleInfo.codec).
SIDECAR_FORMATS: Mapping[str, str] = {
    ".srt": "subrip",
    ".vtt": "webvtt",
    ".ass": "ass",
    ".ssa": "ssa",
}

# Bigger than any real subtitle file (a feature film's SRT is ~100 KiB): anything above is
# not worth parsing on a request path.
SIDECAR_MAX_BYTES = 10 * 1024 * 1024

_FORCED = frozenset({"forced"})
_DEFAULT = frozenset({"default"})
_HEARING_IMPAIRED = frozenset({"sdh", "cc"})
# "hi" is Hindi as a first tag and "hearing impaired" after a language: Name.en.hi.srt.
_HI_AFTER_LANGUAGE = frozenset({"hi"})


@dataclass(frozen=True, slots=True)
class SidecarName:
    """What a sidecar's file name says about it (pure data from `parse_sidecar_name`)."""

    format: str  # "subrip", "webvtt", "ass", "ssa"
    language: str | None  # BCP-47
    title: str | None  # the name's other words: "Name.en.Commentary.srt" -> "Commentary"
    forced: bool
    default: bool
    hearing_impaired: bool


@dataclass(frozen=True, slots=True)
class Sidecar:
    """A subtitle file that belongs to a library item. `path` and `file` stay on the server."""

    id: str  # "x" + 10 hex digits of the file name's hash: stable, URL-safe, never a path
    path: str  # posix path relative to the library root, as found by the scan
    file: Path  # resolved absolute file at scan time
    format: str  # "subrip", "webvtt", "ass", "ssa"
    language: str | None
    title: str | None
    forced: bool = False
    default: bool = False
    hearing_impaired: bool = False

    @property
    def text(self) -> bool:
        return True  # every sidecar format read here is text


def sidecar_id(file_name: str) -> str:
    """A sidecar's id: derived from its file name only, so it does not change when other
    sidecars come or go, and a client that remembered it finds the same file after a rescan."""
    return "x" + hashlib.sha256(os.fsencode(file_name)).hexdigest()[:10]


def parse_sidecar_name(video_stem: str, file_name: str) -> SidecarName | None:
    """Parse `file_name` as a sidecar of the video whose name without extension is
    `video_stem`; None if it is not one (other stem, not a subtitle extension).

    Stems compare case-insensitively (libraries copied from Windows shares mix cases), as do
    extensions and the tags between them. Tags are split at dots: "forced", "default",
    "sdh"/"cc" (and "hi" after a language) are flags; the first tag that names a language
    (a code, "en"/"eng"/"pt-BR", or a name, "English"/"Français") is the language; the other
    tags, in order, are the title.
    """
    base, ext = os.path.splitext(file_name)
    fmt = SIDECAR_FORMATS.get(ext.lower())
    if fmt is None or not video_stem:
        return None
    head, rest = base[: len(video_stem)], base[len(video_stem) :]
    if head.casefold() != video_stem.casefold() or rest[:1] not in ("", "."):
        return None
    language: str | None = None
    forced = default = hearing_impaired = False
    words: list[str] = []
    for tag in rest[1:].split("."):
        key = tag.strip().casefold()
        if not key:
            continue
        if key in _FORCED:
            forced = True
        elif key in _DEFAULT:
            default = True
        elif key in _HEARING_IMPAIRED or (key in _HI_AFTER_LANGUAGE and language is not None):
            hearing_impaired = True
        elif language is None and (found := language_from_word(tag.strip())) is not None:
            language = found
        else:
            words.append(tag.strip())
    return SidecarName(
        format=fmt,
        language=language,
        title=" ".join(words) or None,
        forced=forced,
        default=default,
        hearing_impaired=hearing_impaired,
    )


def match_sidecars(
    video_names: Iterable[str], file_names: Iterable[str]
) -> dict[str, list[tuple[str, SidecarName]]]:
    """Which subtitle files of one directory belong to which of its videos (pure).

    A subtitle file belongs to the video with the longest matching stem, so that with
    `Show.mkv` and `Show.Part2.mkv` side by side, `Show.Part2.en.srt` is Part 2's, not an
    English track of `Show` titled "Part2". Videos with the same stem (`Name.mkv` and
    `Name.mp4`) share their sidecars. Lists are in file name order.
    """
    videos = sorted(video_names)
    matched: dict[str, list[tuple[str, SidecarName]]] = {}
    for file_name in sorted(file_names):
        if os.path.splitext(file_name)[1].lower() not in SIDECAR_FORMATS:
            continue
        owners: list[tuple[str, SidecarName]] = []
        for video in videos:
            stem = os.path.splitext(video)[0]
            parsed = parse_sidecar_name(stem, file_name)
            if parsed is None:
                continue
            longest = len(os.path.splitext(owners[0][0])[0]) if owners else -1
            if len(stem) > longest:
                owners = [(video, parsed)]
            elif len(stem) == longest:
                owners.append((video, parsed))
        for video, parsed in owners:
            matched.setdefault(video, []).append((file_name, parsed))
    return matched
