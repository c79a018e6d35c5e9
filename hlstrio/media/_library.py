"""The media library: which files exist under the configured roots, and what is in them.

Clients only ever see opaque media ids. An id is looked up in a dict built by the last scan;
it is never turned into a path, so no request can name a file outside the roots.

The library stays current while the server runs (`Library.keep_current`, fed by the watcher
in `_watch.py` and by rescans): each scan is compared with the one before, and the ids whose
file left or changed are told to `on_gone` listeners (the session manager ends their sessions).
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any, cast, get_args

import trio

from ._probe import (
    AudioInfo,
    IndexSource,
    MediaInfo,
    ProbeError,
    SubtitleInfo,
    VideoInfo,
    probe,
)
from ._sidecar import SIDECAR_MAX_BYTES, Sidecar, SidecarName, match_sidecars, sidecar_id
from ._watch import Debounce, ScanScheduler

logger = logging.getLogger("hlstrio.media")

_MP4_LIKE = {".mp4", ".m4v", ".mov"}
_OTHER_CONTAINERS = {".mkv", ".webm", ".avi", ".ogv", ".flv", ".wmv"}
_MPEG_STREAMS = {".ts", ".m2ts", ".mts", ".mpg", ".mpeg"}
VIDEO_EXTENSIONS = frozenset(_MP4_LIKE | _OTHER_CONTAINERS | _MPEG_STREAMS)

# Bump when MediaInfo or probe() changes meaning: old cache entries are then ignored.
# 3: every track (subtitles, audio titles/dispositions, video colour and scan type), BCP-47
# languages, Matroska Cues index.
_CACHE_VERSION = 5

# What a session of a file that left the library hears (410 media_removed, then it ends).
REMOVED_REASON = "the file was removed from the library (deleted, moved or no longer playable)"
CHANGED_REASON = (
    "the file changed on disk and was probed again; this session was made from the old "
    "version (its keyframe index no longer matches the file): start a new session"
)
DEFAULT_DEBOUNCE = Debounce(quiet_seconds=1.0, max_delay_seconds=5.0)


class MediaGone(Exception):
    """A library item's file vanished, changed, or now resolves outside its root."""


@dataclass(frozen=True, slots=True)
class VerifiedFiles:
    """What a session may open, resolved and checked just now (`Library.verify_files`)."""

    media: Path
    sidecars: Mapping[str, Path]  # the sidecars that exist and parse, by id


@dataclass(frozen=True, slots=True)
class MediaItem:
    id: str
    title: str
    path: str  # posix path relative to root, as found by the scan (may be a symlink)
    root: Path  # resolved library root
    file: Path  # resolved absolute file at scan time
    info: MediaInfo
    # Subtitle files next to the file (Name.en.srt...), found by every scan, never cached.
    sidecars: tuple[Sidecar, ...] = ()
    # With info.size: which version of the file was probed (None: not from a scan).
    mtime_ns: int | None = None

    @property
    def version(self) -> tuple[Path, int, int | None]:
        """Which file, and which version of it, this item describes: a scan that finds another
        version has *changed* the item (its sessions end), one that finds the same has not,
        even though every scan builds new MediaItem objects."""
        return (self.file, self.info.size, self.mtime_ns)

    def to_json(self) -> dict[str, object]:
        """The item as the HTTP API lists it: no absolute paths, no probe internals.

        Every track is listed. Subtitle ids are what a client sends to pick one: "s<index>"
        for a stream inside the file, the sidecar's own id ("x...") for a file next to it.
        """
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
                "profile": video.profile,
                "bit_depth": video.bit_depth,
                "dynamic_range": video.dynamic_range,
                "interlaced": video.interlaced,
            },
            "audio": [
                {
                    "index": a.index,
                    "codec": a.codec,
                    "channels": a.channels,
                    "layout": a.layout,
                    "language": a.language,
                    "title": a.title,
                    "default": a.default,
                }
                for a in self.info.audio
            ],
            "subtitles": [
                *(
                    {
                        "id": f"s{s.index}",
                        "index": s.index,
                        "format": s.codec,
                        "text": s.text,
                        "language": s.language,
                        "title": s.title,
                        "forced": s.forced,
                        "default": s.default,
                        "hearing_impaired": s.hearing_impaired,
                        "sidecar": False,
                    }
                    for s in self.info.subtitles
                ),
                *(
                    {
                        "id": x.id,
                        "index": None,
                        "format": x.format,
                        "text": x.text,
                        "language": x.language,
                        "title": None if x.title is None else _printable(x.title),
                        "forced": x.forced,
                        "default": x.default,
                        "hearing_impaired": x.hearing_impaired,
                        "sidecar": True,
                    }
                    for x in self.sidecars
                ),
            ],
        }

    def sidecar(self, sidecar_id: str) -> Sidecar | None:
        """The sidecar with this id (what a client sent), None if the item has none such."""
        return next((x for x in self.sidecars if x.id == sidecar_id), None)


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
class Snapshot:
    """The items one scan found (`Library.collect`), to be made the library by `publish`."""

    by_id: dict[str, MediaItem]
    ordered: tuple[MediaItem, ...]


@dataclass(frozen=True, slots=True)
class ScanChanges:
    """What one scan changed, by media id, against the library it replaced."""

    added: tuple[str, ...]
    changed: tuple[str, ...]  # the media file itself (size, mtime or target): probed again
    removed: tuple[str, ...]
    subtitles_changed: tuple[str, ...]  # only the sidecar subtitles came or went
    items: int  # in the library now

    def gone(self) -> list[tuple[str, str]]:
        """(media id, reason) for every item whose sessions can no longer go on."""
        return [(i, REMOVED_REASON) for i in self.removed] + [
            (i, CHANGED_REASON) for i in self.changed
        ]

    def to_json(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "changed": len(self.changed),
            "removed": len(self.removed),
            "subtitles_changed": len(self.subtitles_changed),
            "items": self.items,
        }


def diff_snapshots(old: Mapping[str, MediaItem], new: Mapping[str, MediaItem]) -> ScanChanges:
    """Compare two scans (pure). An item is changed when it names another file, or its file
    another version (size or mtime), than it did: the old probe no longer describes it."""
    changed: list[str] = []
    subtitles: list[str] = []
    for media_id, item in new.items():
        before = old.get(media_id)
        if before is None:
            continue
        if before.version != item.version:
            changed.append(media_id)
        elif before.sidecars != item.sidecars:
            subtitles.append(media_id)
    return ScanChanges(
        added=tuple(i for i in new if i not in old),
        changed=tuple(changed),
        removed=tuple(i for i in old if i not in new),
        subtitles_changed=tuple(subtitles),
        items=len(new),
    )


GoneListener = Callable[[str, str], object]  # (media id, reason)


class Library:
    """Media files under a set of roots, rescanned on demand.

    `scan()` blocks (it walks directories and probes files): run it in a worker thread.
    `items()` and `get()` are cheap and safe to call while a scan runs; they see the previous
    scan's result until the new one is complete.

    While the server runs, `keep_current` is the one place scans happen: `changed()` (the
    watcher) and `rescan()` (the API) ask it for one, it coalesces them (`_watch.py`), runs
    the scan in a worker thread and tells `on_gone` listeners what left.
    """

    def __init__(
        self,
        roots: Sequence[Path],
        cache_file: Path | None = None,
        *,
        debounce: Debounce = DEFAULT_DEBOUNCE,
    ) -> None:
        self._roots = tuple(Path(r) for r in roots)
        self._cache_file = cache_file
        self._snapshot = Snapshot({}, ())
        self._scan_lock = threading.Lock()  # one scan at a time: they share the cache
        # The probe cache as the last scan left it; read from the file by the first scan only.
        self._cache: dict[str, dict[str, Any]] | None = None
        self._updates: ScanScheduler[ScanChanges] = ScanScheduler(self._scan_in_thread, debounce)
        self._gone_listeners: list[GoneListener] = []
        self.scans = 0  # scans published: tests and metrics count them

    # --- staying current (trio) -------------------------------------------------------------

    def on_gone(self, listener: GoneListener) -> None:
        """Call `listener(media_id, reason)`, on the event loop, for each item a scan through
        `keep_current` found removed or changed."""
        self._gone_listeners.append(listener)

    def changed(self) -> None:
        """Something under a root changed: scan soon, once it has been quiet (never blocks)."""
        self._updates.notify()

    async def rescan(self) -> ScanChanges:
        """Scan now, or right after the running scan, and return what that scan changed.

        Raises ScanFailed (from `_watch`) if the scan raised, RuntimeError if `keep_current`
        is not running."""
        return await self._updates.rescan()

    async def keep_current(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the scans `changed()` and `rescan()` ask for, one at a time, until cancelled."""
        await self._updates.run(task_status=task_status)

    @property
    def updating(self) -> bool:
        """A scan is running or due (tests wait for this to be False)."""
        return self._updates.busy

    async def _scan_in_thread(self) -> ScanChanges:
        # Walking and probing block: a worker thread. Cancellation (shutdown) is honoured
        # between files; an interrupted scan publishes nothing.
        scanned = await trio.to_thread.run_sync(
            partial(self.collect, interrupt=trio.from_thread.check_cancelled)
        )
        # Published on the event loop, and the listeners told with no await in between: no
        # request sees the new library while a session of a gone file still looks usable.
        changes = self.publish(scanned)
        for media_id, reason in changes.gone():
            for listener in self._gone_listeners:
                try:
                    listener(media_id, reason)
                except Exception:
                    logger.exception("library listener failed for media %s", media_id)
        if changes.added or changes.changed or changes.removed or changes.subtitles_changed:
            logger.info(
                "library changed: %d added, %d changed, %d removed, %d with new subtitles",
                len(changes.added),
                len(changes.changed),
                len(changes.removed),
                len(changes.subtitles_changed),
            )
        return changes

    @property
    def roots(self) -> tuple[Path, ...]:
        return self._roots

    def items(self) -> list[MediaItem]:
        """All items, sorted by title (case-insensitive), then path."""
        return list(self._snapshot.ordered)

    def get(self, media_id: str) -> MediaItem | None:
        return self._snapshot.by_id.get(media_id)

    def scan(self) -> ScanChanges:
        """Walk the roots, probe new or changed files, and publish the result atomically.

        Blocking. Listeners are not told (this is for start-up and tests); while the server
        runs, scans go through `keep_current`."""
        return self.publish(self.collect())

    def collect(self, interrupt: Callable[[], object] | None = None) -> Snapshot:
        """The blocking half of a scan: walk, stat, probe what is new; nothing is published.

        `interrupt` is called before each file and may raise to abandon the scan (the probe
        cache is then left as it was)."""
        with self._scan_lock:
            old_cache = self._cache if self._cache is not None else self._load_cache()
            new_cache: dict[str, dict[str, Any]] = {}
            found: dict[str, MediaItem] = {}
            for root in self._roots:
                for item in self._scan_root(root, old_cache, new_cache, interrupt):
                    found.setdefault(item.id, item)
            if new_cache != old_cache:
                self._save_cache(new_cache)
            self._cache = new_cache
            ordered = tuple(sorted(found.values(), key=lambda i: (i.title.lower(), i.path)))
        logger.info("library scan: %d items in %d roots", len(found), len(self._roots))
        return Snapshot(found, ordered)

    def publish(self, scanned: Snapshot) -> ScanChanges:
        """Make a collected scan the library (one reference swap) and say what it changed.

        Cheap (no I/O): safe on the event loop."""
        old, self._snapshot = self._snapshot, scanned
        self.scans += 1
        return diff_snapshots(old.by_id, scanned.by_id)

    def verify_files(self, item: MediaItem) -> VerifiedFiles:
        """`verify` the media and every sidecar; a sidecar that is gone, outside the root or
        does not parse is skipped with a warning (never an error: the video still plays).
        Blocking (stat, and a parse of each sidecar, cached): call it from a worker thread."""
        from ._subtitles import SidecarError, load_sidecar  # here: avoids an import cycle

        media = self.verify(item)
        sidecars: dict[str, Path] = {}
        for sidecar in item.sidecars:
            try:
                path = self.verify_sidecar(item, sidecar)
                load_sidecar(path, language=sidecar.language)
            except (MediaGone, SidecarError) as exc:
                logger.warning("skipping subtitles %s: %s", sidecar.path, exc)
                continue
            sidecars[sidecar.id] = path
        return VerifiedFiles(media, sidecars)

    def verify(self, item: MediaItem) -> Path:
        """Re-resolve an item's file right before use; raise MediaGone if it is not usable.

        The scan's view can be stale: the file may have been deleted or rewritten, or a symlink
        swapped to point outside the root. Open the returned path, not `item.file` (a symlink
        in the library may point elsewhere now, still inside the root). Blocking (resolve and
        stat): call it from a worker thread.
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
        if st.st_size != item.info.size or (
            item.mtime_ns is not None and st.st_mtime_ns != item.mtime_ns
        ):
            raise MediaGone(f"{item.path}: changed since the last scan")
        return file

    def verify_sidecar(self, item: MediaItem, sidecar: Sidecar) -> Path:
        """Re-resolve a sidecar file right before reading it, as `verify` does for media.

        Raises MediaGone if it vanished, now resolves outside the root, is no longer a regular
        file or has grown past SIDECAR_MAX_BYTES. Blocking: call it from a worker thread.
        """
        walked = item.root.joinpath(*sidecar.path.split("/"))
        try:
            file = walked.resolve(strict=True)
            st = file.stat()
        except (OSError, RuntimeError) as exc:
            raise MediaGone(f"{sidecar.path}: no longer exists") from exc
        if not file.is_relative_to(item.root):
            raise MediaGone(f"{sidecar.path}: now resolves outside its library root")
        if not stat.S_ISREG(st.st_mode):
            raise MediaGone(f"{sidecar.path}: no longer a regular file")
        if st.st_size > SIDECAR_MAX_BYTES:
            raise MediaGone(f"{sidecar.path}: larger than {SIDECAR_MAX_BYTES} bytes")
        return file

    # --- scanning -------------------------------------------------------------------------

    def _scan_root(
        self,
        root: Path,
        old_cache: dict[str, dict[str, Any]],
        new_cache: dict[str, dict[str, Any]],
        interrupt: Callable[[], object] | None,
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
            visible = sorted(n for n in filenames if not n.startswith("."))
            videos = [n for n in visible if os.path.splitext(n)[1].lower() in VIDEO_EXTENSIONS]
            sidecars = match_sidecars(videos, visible) if videos else {}
            for name in videos:
                if interrupt is not None:
                    interrupt()
                walked = Path(dirpath, name)
                relpath = walked.relative_to(rroot).as_posix()
                item = self._scan_file(rroot, relpath, walked, old_cache, new_cache)
                if item is not None:
                    found = _sidecars(rroot, Path(dirpath), sidecars.get(name, ()))
                    items.append(dataclasses.replace(item, sidecars=found))
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
            mtime_ns=st.st_mtime_ns,
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


def _sidecars(
    rroot: Path, directory: Path, matched: Sequence[tuple[str, SidecarName]]
) -> tuple[Sidecar, ...]:
    """The usable sidecars among those a directory listing matched to one video.

    Like media files: a symlink must resolve inside the root. Unreadable files and files over
    SIDECAR_MAX_BYTES are skipped with a warning (nothing is parsed here).
    """
    found: list[Sidecar] = []
    for file_name, parsed in matched:
        walked = directory / file_name
        try:
            file = walked.resolve(strict=True)
            st = file.stat()
        except (OSError, RuntimeError):
            logger.warning("skipping subtitle %s: broken symlink or unreadable", walked)
            continue
        if not file.is_relative_to(rroot):
            logger.warning(
                "skipping subtitle %s: resolves to %s, outside library root", walked, file
            )
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        if st.st_size > SIDECAR_MAX_BYTES:
            logger.warning(
                "skipping subtitle %s: %d bytes, over the %d byte limit",
                walked,
                st.st_size,
                SIDECAR_MAX_BYTES,
            )
            continue
        try:
            with open(file, "rb"):
                pass
        except OSError as exc:
            logger.warning("skipping subtitle %s: %s", walked, exc.strerror or exc)
            continue
        found.append(
            Sidecar(
                id=sidecar_id(file_name),
                path=walked.relative_to(rroot).as_posix(),
                file=file,
                format=parsed.format,
                language=parsed.language,
                title=parsed.title,
                forced=parsed.forced,
                default=parsed.default,
                hearing_impaired=parsed.hearing_impaired,
            )
        )
    return tuple(found)


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
        source = data["index_source"]
        if source not in get_args(IndexSource):
            return None
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
            subtitles=tuple(SubtitleInfo(**t) for t in data["subtitles"]),
            index_source=cast(IndexSource, source),
            keyframe_bytes=tuple(int(b) for b in data["keyframe_bytes"]),
        )
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
