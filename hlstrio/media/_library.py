"""The media library: which files exist under the configured roots, and what is in them.

Clients only ever see opaque media ids. An id is looked up in a dict built by the last scan;
it is never turned into a path, so no request can name a file outside the roots.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import stat
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from ._probe import AudioInfo, MediaInfo, ProbeError, VideoInfo, probe

logger = logging.getLogger("hlstrio.media")

_MP4_LIKE = {".mp4", ".m4v", ".mov"}
_OTHER_CONTAINERS = {".mkv", ".webm", ".avi", ".ogv", ".flv", ".wmv"}
_MPEG_STREAMS = {".ts", ".m2ts", ".mts", ".mpg", ".mpeg"}
VIDEO_EXTENSIONS = frozenset(_MP4_LIKE | _OTHER_CONTAINERS | _MPEG_STREAMS)

# Bump when MediaInfo or probe() changes meaning: old cache entries are then ignored.
_CACHE_VERSION = 2


class MediaGone(Exception):
    """A library item's file vanished, changed, or now resolves outside its root."""


@dataclass(frozen=True, slots=True)
class MediaItem:
    id: str
    title: str
    path: str  # posix path relative to root, as found by the scan (may be a symlink)
    root: Path  # resolved library root
    file: Path  # resolved absolute file at scan time
    info: MediaInfo

    def to_json(self) -> dict[str, object]:
        """The item as the HTTP API lists it: no absolute paths, no probe internals."""
        video = self.info.video
        return {
            "id": self.id,
            "title": _printable(self.title),
            "path": _printable(self.path),
            "duration": round(self.info.duration, 3),
            "container": self.info.container,
            "video": None
            if video is None
            else {
                "codec": video.codec,
                "width": video.width,
                "height": video.height,
                "fps": round(video.fps, 3),
            },
            "audio": [
                {"index": a.index, "codec": a.codec, "channels": a.channels, "language": a.language}
                for a in self.info.audio
            ],
        }


def _printable(text: str) -> str:
    # Undecodable file name bytes arrive as lone surrogates, which JSON encoders reject.
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def media_id_for(root: Path, relpath: str) -> str:
    """Stable, URL-safe id of the file at `relpath` (posix) under an already *resolved* root.

    The same file gets the same id across restarts, so clients may keep links to it.
    """
    digest = hashlib.sha256(os.fsencode(str(root)) + b"\0" + os.fsencode(relpath))
    return digest.hexdigest()[:24]


def title_for(relpath: str) -> str:
    """A display title from a file name: "My_Holiday.2019.mkv" -> "My Holiday 2019"."""
    name = relpath.rsplit("/", 1)[-1]
    stem = name.rsplit(".", 1)[0] if "." in name[1:] else name
    title = " ".join(stem.replace("_", " ").replace(".", " ").split())
    return title or name


@dataclass(frozen=True, slots=True)
class _Snapshot:
    by_id: dict[str, MediaItem]
    ordered: tuple[MediaItem, ...]


class Library:
    """Media files under a set of roots, rescanned on demand.

    `scan()` blocks (it walks directories and probes files): run it in a worker thread.
    `items()` and `get()` are cheap and safe to call while a scan runs; they see the previous
    scan's result until the new one is complete.
    """

    def __init__(self, roots: Sequence[Path], cache_file: Path | None = None) -> None:
        self._roots = tuple(Path(r) for r in roots)
        self._cache_file = cache_file
        self._snapshot = _Snapshot({}, ())
        self._scan_lock = threading.Lock()  # one scan at a time: they share the cache file

    @property
    def roots(self) -> tuple[Path, ...]:
        return self._roots

    def items(self) -> list[MediaItem]:
        """All items, sorted by title (case-insensitive), then path."""
        return list(self._snapshot.ordered)

    def get(self, media_id: str) -> MediaItem | None:
        return self._snapshot.by_id.get(media_id)

    def scan(self) -> None:
        """Walk the roots, probe new or changed files, and publish the result atomically."""
        with self._scan_lock:
            old_cache = self._load_cache()
            new_cache: dict[str, dict[str, Any]] = {}
            found: dict[str, MediaItem] = {}
            for root in self._roots:
                for item in self._scan_root(root, old_cache, new_cache):
                    found.setdefault(item.id, item)
            if new_cache != old_cache:
                self._save_cache(new_cache)
            ordered = tuple(sorted(found.values(), key=lambda i: (i.title.lower(), i.path)))
            self._snapshot = _Snapshot(found, ordered)
        logger.info("library scan: %d items in %d roots", len(found), len(self._roots))

    def verify(self, item: MediaItem) -> Path:
        """Re-resolve an item's file right before use; raise MediaGone if it is not usable.

        The scan's view can be stale: the file may have been deleted or rewritten, or a symlink
        swapped to point outside the root. Open the returned path, not `item.file`.
        """
        walked = item.root.joinpath(*item.path.split("/"))
        try:
            file = walked.resolve(strict=True)
            st = file.stat()
        except (OSError, RuntimeError) as exc:  # RuntimeError: symlink loop (Python < 3.13)
            raise MediaGone(f"{item.path}: no longer exists") from exc
        if not file.is_relative_to(item.root):
            raise MediaGone(f"{item.path}: now resolves outside its library root")
        if not stat.S_ISREG(st.st_mode):
            raise MediaGone(f"{item.path}: no longer a regular file")
        if st.st_size != item.info.size:
            raise MediaGone(f"{item.path}: changed since the last scan")
        return file

    # --- scanning -------------------------------------------------------------------------

    def _scan_root(
        self,
        root: Path,
        old_cache: dict[str, dict[str, Any]],
        new_cache: dict[str, dict[str, Any]],
    ) -> list[MediaItem]:
        try:
            rroot = root.resolve(strict=True)
        except (OSError, RuntimeError):
            logger.warning("library root %s does not exist; skipped", root)
            return []
        if not rroot.is_dir():
            logger.warning("library root %s is not a directory; skipped", root)
            return []

        def on_error(exc: OSError) -> None:
            logger.warning("cannot read %s: %s", exc.filename, exc.strerror)

        items: list[MediaItem] = []
        for dirpath, dirnames, filenames in os.walk(rroot, onerror=on_error, followlinks=False):
            # Pruning in place also fixes the walk order, so scans are deterministic.
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if (
                    name.startswith(".")
                    or os.path.splitext(name)[1].lower() not in VIDEO_EXTENSIONS
                ):
                    continue
                walked = Path(dirpath, name)
                relpath = walked.relative_to(rroot).as_posix()
                item = self._scan_file(rroot, relpath, walked, old_cache, new_cache)
                if item is not None:
                    items.append(item)
        return items

    def _scan_file(
        self,
        rroot: Path,
        relpath: str,
        walked: Path,
        old_cache: dict[str, dict[str, Any]],
        new_cache: dict[str, dict[str, Any]],
    ) -> MediaItem | None:
        try:
            file = walked.resolve(strict=True)
            st = file.stat()
        except (OSError, RuntimeError):
            logger.warning("skipping %s: broken symlink or unreadable", walked)
            return None
        if not file.is_relative_to(rroot):
            logger.warning("skipping %s: resolves to %s, outside library root", walked, file)
            return None
        if not stat.S_ISREG(st.st_mode):
            return None

        key = str(file)
        entry = old_cache.get(key)
        fresh = (
            entry is not None
            and entry.get("size") == st.st_size
            and entry.get("mtime_ns") == st.st_mtime_ns
        )
        info, error = _cached_result(entry) if entry is not None and fresh else (None, None)
        if info is None and error is None:
            try:
                info = probe(file)
            except ProbeError as exc:
                error = str(exc)
            result = {"error": error} if info is None else {"info": _info_to_json(info)}
            entry = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, **result}
        assert entry is not None
        new_cache[key] = entry  # failures are cached too: a broken file stays broken
        if info is None:
            reason = (error or "").removeprefix(f"{file}: ")  # probe() names the resolved file
            logger.warning("skipping %s: %s", walked, reason)
            return None
        return MediaItem(
            id=media_id_for(rroot, relpath),
            title=title_for(relpath),
            path=relpath,
            root=rroot,
            file=file,
            info=info,
        )

    # --- probe cache ----------------------------------------------------------------------

    def _load_cache(self) -> dict[str, dict[str, Any]]:
        if self._cache_file is None:
            return {}
        try:
            with open(self._cache_file, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            logger.warning("ignoring unreadable probe cache %s: %s", self._cache_file, exc)
            return {}
        if not isinstance(data, dict) or data.get("version") != _CACHE_VERSION:
            return {}
        entries = data.get("entries")
        if not isinstance(entries, dict):
            return {}
        return {k: v for k, v in entries.items() if isinstance(v, dict)}

    def _save_cache(self, entries: dict[str, dict[str, Any]]) -> None:
        if self._cache_file is None:
            return
        target = self._cache_file
        tmp: str | None = None
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"version": _CACHE_VERSION, "entries": entries}, f)
            # Readers see the old file or the new one, never half of one.
            os.replace(tmp, target)
            tmp = None
        except OSError as exc:
            logger.warning("cannot write probe cache %s: %s", target, exc)
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


def _cached_result(entry: dict[str, Any]) -> tuple[MediaInfo | None, str | None]:
    error = entry.get("error")
    if isinstance(error, str):
        return None, error
    return _info_from_json(entry.get("info")), None


def _info_to_json(info: MediaInfo) -> dict[str, Any]:
    data = dataclasses.asdict(info)
    tb = info.video_time_base
    data["video_time_base"] = None if tb is None else [tb.numerator, tb.denominator]
    return data


def _info_from_json(data: object) -> MediaInfo | None:
    """Rebuild a cached MediaInfo; None (a cache miss) if the entry is malformed."""
    if not isinstance(data, dict):
        return None
    try:
        video = data["video"]
        tb = data["video_time_base"]
        return MediaInfo(
            container=str(data["container"]),
            duration=float(data["duration"]),
            size=int(data["size"]),
            video=None if video is None else VideoInfo(**video),
            audio=tuple(AudioInfo(**a) for a in data["audio"]),
            keyframe_pts=tuple(int(p) for p in data["keyframe_pts"]),
            gop_bytes=tuple(int(b) for b in data["gop_bytes"]),
            video_time_base=None if tb is None else Fraction(int(tb[0]), int(tb[1])),
            video_start_pts=data["video_start_pts"],
            video_end_pts=data["video_end_pts"],
            start_time=float(data["start_time"]),
        )
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
